-- fib-flow schema, version 1 (SQLite).
-- Times are INTEGER milliseconds since the Unix epoch.

CREATE TABLE fib_flow_tasks (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    name               TEXT    NOT NULL,
    kind               TEXT    NOT NULL,
    status             TEXT    NOT NULL DEFAULT 'pending',
    priority           INTEGER NOT NULL DEFAULT 0,
    payload            TEXT,
    tag                TEXT,
    result             TEXT,
    error              TEXT,
    stage              INTEGER NOT NULL DEFAULT 0,
    cycle              INTEGER NOT NULL DEFAULT 0,
    timeout_ms         INTEGER NOT NULL,
    retry_count        INTEGER NOT NULL DEFAULT 0,
    max_attempts       INTEGER NOT NULL,
    retry_interval_ms  INTEGER NOT NULL DEFAULT 0,
    cron_expr          TEXT,
    cron_tz            TEXT,
    cron_misfire       TEXT,
    unique_key         TEXT,
    root_id            INTEGER,
    parent_id          INTEGER,
    parent_stage       INTEGER,
    parent_cycle       INTEGER,
    parent_notified_at INTEGER,
    on_child_failure   TEXT,
    total_children     INTEGER NOT NULL DEFAULT 0,
    pending_children   INTEGER NOT NULL DEFAULT 0,
    worker_id          TEXT,
    attempt            INTEGER NOT NULL DEFAULT 0,
    suspend_reason     TEXT,
    context            BLOB,
    current_stage_name TEXT,
    progress_text      TEXT,
    progress_percent   REAL,
    last_event_at      INTEGER,
    last_event_type    TEXT,
    created_at         INTEGER NOT NULL,
    next_run_at        INTEGER NOT NULL,
    started_at         INTEGER,
    last_active_at     INTEGER,
    finished_at        INTEGER,
    CONSTRAINT kind_valid CHECK (kind IN ('async', 'cron')),
    CONSTRAINT status_valid CHECK (status IN ('pending', 'running', 'completed', 'failed',
        'timeout', 'permanently_failed', 'paused', 'suspended')),
    CONSTRAINT finished_iff_terminal CHECK
        ((status IN ('completed', 'permanently_failed')) = (finished_at IS NOT NULL)),
    CONSTRAINT running_has_owner CHECK
        (status <> 'running' OR (worker_id IS NOT NULL AND started_at IS NOT NULL)),
    CONSTRAINT timeout_positive CHECK (timeout_ms > 0),
    CONSTRAINT max_attempts_positive CHECK (max_attempts >= 1),
    CONSTRAINT counts_non_negative CHECK (retry_count >= 0 AND retry_interval_ms >= 0 AND attempt >= 0
        AND total_children >= 0 AND pending_children >= 0),
    CONSTRAINT child_failure_valid CHECK (on_child_failure IN ('fail_parent', 'resume')),
    CONSTRAINT misfire_valid CHECK (cron_misfire IN ('run_once', 'skip')),
    CONSTRAINT cron_has_expr CHECK (kind <> 'cron' OR cron_expr IS NOT NULL),
    CONSTRAINT child_has_parent_stage CHECK
        (parent_id IS NULL OR (parent_stage IS NOT NULL AND parent_cycle IS NOT NULL))
);

-- The claim: per name, due rows in priority / due time / id order. The
-- status list must equal Transition::Claim's sources (a store test checks).
CREATE INDEX idx_fib_flow_tasks_claim ON fib_flow_tasks (name, priority DESC, next_run_at, id)
    WHERE status IN ('pending', 'failed', 'timeout');
-- Heartbeats (per worker) and the expiry scan.
CREATE INDEX idx_fib_flow_tasks_running ON fib_flow_tasks (worker_id, last_active_at)
    WHERE status = 'running';
CREATE INDEX idx_fib_flow_tasks_stats ON fib_flow_tasks (tag, name, status);
CREATE INDEX idx_fib_flow_tasks_status ON fib_flow_tasks (status, name);
CREATE INDEX idx_fib_flow_tasks_created ON fib_flow_tasks (created_at, id);
-- Children of a task, per stage (child results, cascading cancels).
CREATE INDEX idx_fib_flow_tasks_parent ON fib_flow_tasks (parent_id, parent_cycle, parent_stage, id) WHERE parent_id IS NOT NULL;
CREATE INDEX idx_fib_flow_tasks_root ON fib_flow_tasks (root_id, created_at) WHERE root_id IS NOT NULL;

-- Idempotent cron upserts: one schedule per caller-chosen key.
CREATE UNIQUE INDEX idx_fib_flow_tasks_unique_key ON fib_flow_tasks (unique_key)
    WHERE unique_key IS NOT NULL;

-- Every column but the context blob: what listing queries read.
CREATE VIEW fib_flow_task_records AS
SELECT id, name, kind, status, priority, payload, tag, result, error, stage, cycle, timeout_ms,
       retry_count, max_attempts, retry_interval_ms, cron_expr, root_id, parent_id,
       parent_stage, total_children, pending_children, worker_id, attempt, suspend_reason, created_at, next_run_at, started_at,
       last_active_at, finished_at
FROM fib_flow_tasks;
