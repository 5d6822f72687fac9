-- fib-flow schema, version 2 (SQLite): the execution audit.
-- Events are an append-only history; attempts one row per claim. Neither
-- has foreign keys: retention and deletes remove them with their tasks, in
-- the same transaction.

CREATE TABLE fib_flow_task_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id     INTEGER NOT NULL,
    root_id     INTEGER NOT NULL,
    parent_id   INTEGER,
    event_type  TEXT    NOT NULL,
    from_status TEXT,
    to_status   TEXT,
    stage       INTEGER,
    worker_id   TEXT,
    attempt     INTEGER,
    event_time  INTEGER NOT NULL,
    message     TEXT,
    metadata    TEXT
);
CREATE INDEX idx_fib_flow_task_events_task ON fib_flow_task_events (task_id, event_time, id);
CREATE INDEX idx_fib_flow_task_events_root ON fib_flow_task_events (root_id, event_time, id);

CREATE TABLE fib_flow_task_attempts (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id    INTEGER NOT NULL,
    attempt    INTEGER NOT NULL,
    worker_id  TEXT,
    started_at INTEGER NOT NULL,
    ended_at   INTEGER,
    outcome    TEXT,
    error      TEXT,
    timed_out  INTEGER NOT NULL DEFAULT 0,
    CONSTRAINT open_iff_no_outcome CHECK ((ended_at IS NULL) = (outcome IS NULL))
);
CREATE UNIQUE INDEX idx_fib_flow_task_attempts_task ON fib_flow_task_attempts (task_id, attempt);

-- The status a task had before its last change (what its events record as
-- `from_status`).
ALTER TABLE fib_flow_tasks ADD COLUMN previous_status TEXT;

DROP VIEW fib_flow_task_records;
CREATE VIEW fib_flow_task_records AS
SELECT id, name, kind, status, priority, payload, tag, result, error, stage, cycle, timeout_ms,
       retry_count, max_attempts, retry_interval_ms, cron_expr, root_id, parent_id,
       parent_stage, total_children, pending_children, worker_id, attempt, suspend_reason,
       previous_status,
       current_stage_name, progress_text, progress_percent, last_event_at, last_event_type,
       created_at, next_run_at, started_at, last_active_at, finished_at
FROM fib_flow_tasks;
