-- fib-flow schema, version 2 (MySQL 8.0+ / MariaDB 10.6+): the execution
-- audit. Events are an append-only history; attempts one row per claim.
-- Neither has foreign keys: retention and deletes remove them with their
-- tasks, in the same transaction.

CREATE TABLE fib_flow_task_events (
    id          BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    task_id     BIGINT       NOT NULL,
    root_id     BIGINT       NOT NULL,
    parent_id   BIGINT,
    event_type  VARCHAR(100) NOT NULL,
    from_status VARCHAR(32),
    to_status   VARCHAR(32),
    stage       BIGINT,
    worker_id   VARCHAR(255),
    attempt     BIGINT,
    event_time  BIGINT       NOT NULL,
    message     LONGTEXT,
    metadata    LONGTEXT,
    INDEX idx_fib_flow_task_events_task (task_id, event_time, id),
    INDEX idx_fib_flow_task_events_root (root_id, event_time, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE fib_flow_task_attempts (
    id         BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    task_id    BIGINT      NOT NULL,
    attempt    BIGINT      NOT NULL,
    worker_id  VARCHAR(255),
    started_at BIGINT      NOT NULL,
    ended_at   BIGINT,
    outcome    VARCHAR(32),
    error      LONGTEXT,
    timed_out  BOOLEAN     NOT NULL DEFAULT FALSE,
    CONSTRAINT open_iff_no_outcome CHECK ((ended_at IS NULL) = (outcome IS NULL)),
    UNIQUE INDEX idx_fib_flow_task_attempts_task (task_id, attempt)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- The status a task had before its last change (what its events record as
-- `from_status`).
ALTER TABLE fib_flow_tasks ADD COLUMN previous_status VARCHAR(32);

-- See version 1 for why text columns are converted.
CREATE OR REPLACE VIEW fib_flow_task_records AS
SELECT id, CONVERT(name USING utf8mb4) AS name, CONVERT(kind USING utf8mb4) AS kind,
       CONVERT(status USING utf8mb4) AS status, priority,
       CONVERT(payload USING utf8mb4) AS payload, CONVERT(tag USING utf8mb4) AS tag,
       CONVERT(result USING utf8mb4) AS result, CONVERT(error USING utf8mb4) AS error,
       stage, cycle, timeout_ms, retry_count, max_attempts, retry_interval_ms,
       CONVERT(cron_expr USING utf8mb4) AS cron_expr, root_id, parent_id, parent_stage,
       total_children, pending_children,
       CONVERT(worker_id USING utf8mb4) AS worker_id, attempt,
       CONVERT(suspend_reason USING utf8mb4) AS suspend_reason,
       CONVERT(previous_status USING utf8mb4) AS previous_status,
       CONVERT(current_stage_name USING utf8mb4) AS current_stage_name,
       CONVERT(progress_text USING utf8mb4) AS progress_text, progress_percent,
       last_event_at, CONVERT(last_event_type USING utf8mb4) AS last_event_type,
       created_at, next_run_at, started_at, last_active_at, finished_at
FROM fib_flow_tasks;
