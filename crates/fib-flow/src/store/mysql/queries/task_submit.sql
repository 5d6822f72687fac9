-- One top-level task and its task_created event, sent as one text command
-- that carries its own transaction: one round trip where prepared inserts,
-- the clock, BEGIN and COMMIT take five. Plain VALUES inserts: no read of
-- the tasks table, no locks beyond the new rows. A text command takes no
-- parameters, so the caller writes each value in place of its
-- {placeholder}: integers as digits, strings as hex literals
-- (CONVERT(X'…' USING utf8mb4)), NULL; nothing the user wrote reaches the
-- SQL text unencoded. The database clock is read once: the row's
-- created_at and the event's time. The event's task and root are the new
-- row. The id is read after COMMIT, so a returned id is a committed task;
-- the caller closes the connection when the command does not finish, so a
-- transaction is never left open on it.
START TRANSACTION;

SET @fib_flow_now = CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED);

INSERT INTO fib_flow_tasks
    (name, kind, status, priority, payload, tag, timeout_ms, max_attempts,
     retry_interval_ms, cron_expr, created_at, next_run_at, root_id, parent_id, parent_stage,
     parent_cycle, last_event_at, last_event_type)
VALUES ({name}, {kind}, {status}, {priority}, {payload}, {tag}, {timeout_ms}, {max_attempts},
        {retry_interval_ms}, {cron_expr}, @fib_flow_now,
        COALESCE({next_run_at}, @fib_flow_now + {delay_ms}), {root_id}, {parent_id},
        {parent_stage}, {parent_cycle}, @fib_flow_now, {event_type});

SET @fib_flow_submitted_id = LAST_INSERT_ID();

INSERT INTO fib_flow_task_events
    (task_id, root_id, parent_id, event_type, from_status, to_status, stage, worker_id,
     attempt, event_time, message, metadata)
VALUES (@fib_flow_submitted_id, @fib_flow_submitted_id, {event_parent_id}, {event_type},
        {from_status}, {to_status}, {stage}, {worker_id}, {attempt}, @fib_flow_now, {message},
        {metadata});

COMMIT;

SELECT CAST(@fib_flow_submitted_id AS SIGNED) AS id;
