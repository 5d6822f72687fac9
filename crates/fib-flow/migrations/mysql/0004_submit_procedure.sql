-- fib-flow schema, version 4 (MySQL 8.0+ / MariaDB 10.6+): the stored
-- procedure a single submit calls. One task and its task_created event
-- are two inserts and a commit; sent as statements they are one round
-- trip each (or one text command the server parses anew every time, most
-- of a submit's server time). A procedure is parsed once per connection
-- and called as one prepared statement with bound values.
--
-- The database clock is read once: the row's created_at and last_event_at
-- and the event's time. The event's task and root are the new row. Any
-- error rolls the transaction back before it is raised again, so a failed
-- call leaves no transaction open. The id is returned after COMMIT: a
-- returned id is a committed task. String parameters are LONGTEXT in
-- utf8mb4 whatever the database's default character set, so a value
-- reaches its column unconverted and a too-long one is refused by the
-- column itself (the error names the column). Dropped first, so the
-- version can be applied again over a half-applied earlier attempt.

DROP PROCEDURE IF EXISTS fib_flow_submit_task;

CREATE PROCEDURE fib_flow_submit_task(
    IN p_name              LONGTEXT CHARACTER SET utf8mb4,
    IN p_kind              LONGTEXT CHARACTER SET utf8mb4,
    IN p_status            LONGTEXT CHARACTER SET utf8mb4,
    IN p_priority          BIGINT,
    IN p_payload           LONGTEXT CHARACTER SET utf8mb4,
    IN p_tag               LONGTEXT CHARACTER SET utf8mb4,
    IN p_timeout_ms        BIGINT,
    IN p_max_attempts      BIGINT,
    IN p_retry_interval_ms BIGINT,
    IN p_cron_expr         LONGTEXT CHARACTER SET utf8mb4,
    IN p_next_run_at       BIGINT,
    IN p_delay_ms          BIGINT,
    IN p_root_id           BIGINT,
    IN p_parent_id         BIGINT,
    IN p_parent_stage      BIGINT,
    IN p_parent_cycle      BIGINT,
    IN p_event_type        LONGTEXT CHARACTER SET utf8mb4,
    IN p_event_parent_id   BIGINT,
    IN p_from_status       LONGTEXT CHARACTER SET utf8mb4,
    IN p_to_status         LONGTEXT CHARACTER SET utf8mb4,
    IN p_stage             BIGINT,
    IN p_worker_id         LONGTEXT CHARACTER SET utf8mb4,
    IN p_attempt           BIGINT,
    IN p_message           LONGTEXT CHARACTER SET utf8mb4,
    IN p_metadata          LONGTEXT CHARACTER SET utf8mb4
)
MODIFIES SQL DATA
SQL SECURITY INVOKER
BEGIN
    DECLARE v_now BIGINT DEFAULT CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED);
    DECLARE v_id BIGINT;
    DECLARE EXIT HANDLER FOR SQLEXCEPTION
    BEGIN
        ROLLBACK;
        RESIGNAL;
    END;

    START TRANSACTION;
    INSERT INTO fib_flow_tasks
        (name, kind, status, priority, payload, tag, timeout_ms, max_attempts,
         retry_interval_ms, cron_expr, created_at, next_run_at, root_id, parent_id,
         parent_stage, parent_cycle, last_event_at, last_event_type)
    VALUES (p_name, p_kind, p_status, p_priority, p_payload, p_tag, p_timeout_ms,
            p_max_attempts, p_retry_interval_ms, p_cron_expr, v_now,
            COALESCE(p_next_run_at, v_now + p_delay_ms), p_root_id, p_parent_id,
            p_parent_stage, p_parent_cycle, v_now, p_event_type);
    SET v_id = LAST_INSERT_ID();
    INSERT INTO fib_flow_task_events
        (task_id, root_id, parent_id, event_type, from_status, to_status, stage, worker_id,
         attempt, event_time, message, metadata)
    VALUES (v_id, v_id, p_event_parent_id, p_event_type, p_from_status, p_to_status, p_stage,
            p_worker_id, p_attempt, v_now, p_message, p_metadata);
    COMMIT;
    SELECT v_id AS id;
END;
