-- fib-flow schema, version 2 (PostgreSQL): the execution audit.
-- Events are an append-only history; attempts one row per claim. Neither
-- has foreign keys: retention and deletes remove them with their tasks, in
-- the same transaction.

CREATE TABLE fib_flow_task_events (
    id          BIGSERIAL PRIMARY KEY,
    task_id     BIGINT  NOT NULL,
    root_id     BIGINT  NOT NULL,
    parent_id   BIGINT,
    event_type  VARCHAR(100) NOT NULL,
    from_status VARCHAR(32),
    to_status   VARCHAR(32),
    stage       BIGINT,
    worker_id   VARCHAR(255),
    attempt     BIGINT,
    event_time  BIGINT  NOT NULL,
    message     TEXT,
    metadata    TEXT
);
CREATE INDEX idx_fib_flow_task_events_task ON fib_flow_task_events (task_id, event_time, id);
CREATE INDEX idx_fib_flow_task_events_root ON fib_flow_task_events (root_id, event_time, id);

CREATE TABLE fib_flow_task_attempts (
    id         BIGSERIAL PRIMARY KEY,
    task_id    BIGINT  NOT NULL,
    attempt    BIGINT  NOT NULL,
    worker_id  VARCHAR(255),
    started_at BIGINT  NOT NULL,
    ended_at   BIGINT,
    outcome    VARCHAR(32),
    error      TEXT,
    timed_out  BOOLEAN NOT NULL DEFAULT FALSE,
    CONSTRAINT open_iff_no_outcome CHECK ((ended_at IS NULL) = (outcome IS NULL))
);
CREATE UNIQUE INDEX idx_fib_flow_task_attempts_task ON fib_flow_task_attempts (task_id, attempt);

-- The status a task had before its last change (what its events record as
-- `from_status`).
ALTER TABLE fib_flow_tasks ADD COLUMN previous_status VARCHAR(32);

DROP VIEW fib_flow_task_records;
CREATE VIEW fib_flow_task_records AS
SELECT id, name, kind, status, priority, payload, tag, result, error, stage, cycle, timeout_ms,
       retry_count, max_attempts, retry_interval_ms, cron_expr, root_id, parent_id,
       parent_stage, total_children, pending_children, worker_id, attempt, suspend_reason,
       previous_status,
       current_stage_name, progress_text, progress_percent, last_event_at, last_event_type,
       created_at, next_run_at, started_at, last_active_at, finished_at
FROM fib_flow_tasks;
