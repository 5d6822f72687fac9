-- fib-flow schema, version 1 (MySQL 8.0+ / MariaDB 10.6+).
-- Times are BIGINT milliseconds since the Unix epoch on the database clock.
-- Payload, result and context hold real sizes (LONGTEXT / LONGBLOB).
-- MySQL commits DDL implicitly: a failed migration can leave part of it
-- applied; its version is recorded only when all of it succeeded.

CREATE TABLE fib_flow_tasks (
    id                 BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name               VARCHAR(255) NOT NULL,
    kind               VARCHAR(16)  NOT NULL,
    status             VARCHAR(32)  NOT NULL DEFAULT 'pending',
    priority           BIGINT       NOT NULL DEFAULT 0,
    payload            LONGTEXT,
    tag                VARCHAR(255),
    result             LONGTEXT,
    error              LONGTEXT,
    stage              BIGINT       NOT NULL DEFAULT 0,
    cycle              BIGINT       NOT NULL DEFAULT 0,
    timeout_ms         BIGINT       NOT NULL,
    retry_count        BIGINT       NOT NULL DEFAULT 0,
    max_attempts       BIGINT       NOT NULL,
    retry_interval_ms  BIGINT       NOT NULL DEFAULT 0,
    cron_expr          VARCHAR(255),
    cron_tz            VARCHAR(64),
    cron_misfire       VARCHAR(64),
    -- VARBINARY: byte-for-byte, where utf8mb4_bin would ignore trailing spaces.
    unique_key         VARBINARY(255),
    root_id            BIGINT,
    parent_id          BIGINT,
    parent_stage       BIGINT,
    parent_cycle       BIGINT,
    parent_notified_at BIGINT,
    on_child_failure   VARCHAR(16),
    total_children     BIGINT       NOT NULL DEFAULT 0,
    pending_children   BIGINT       NOT NULL DEFAULT 0,
    worker_id          VARCHAR(255),
    attempt            BIGINT       NOT NULL DEFAULT 0,
    suspend_reason     TEXT,
    context            LONGBLOB,
    current_stage_name VARCHAR(255),
    progress_text      TEXT,
    progress_percent   DOUBLE,
    last_event_at      BIGINT,
    last_event_type    VARCHAR(100),
    created_at         BIGINT       NOT NULL,
    next_run_at        BIGINT       NOT NULL,
    started_at         BIGINT,
    last_active_at     BIGINT,
    finished_at        BIGINT,
    -- MySQL has no partial indexes: this column is 1 for claimable rows and
    -- NULL otherwise, so the claim index holds only claimable rows' keys
    -- first and finished rows never slow the claim down.
    claimable          TINYINT AS (CASE WHEN status IN ('pending', 'failed', 'timeout') THEN 1 END) VIRTUAL,
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
        (parent_id IS NULL OR (parent_stage IS NOT NULL AND parent_cycle IS NOT NULL)),
    INDEX idx_fib_flow_tasks_claim (claimable, name, priority DESC, next_run_at, id),
    INDEX idx_fib_flow_tasks_running (status, worker_id, last_active_at),
    INDEX idx_fib_flow_tasks_stats (tag, name, status),
    INDEX idx_fib_flow_tasks_created (created_at, id),
    INDEX idx_fib_flow_tasks_parent (parent_id, parent_cycle, parent_stage, id),
    INDEX idx_fib_flow_tasks_root (root_id, created_at),
    -- Idempotent cron upserts (NULLs never collide).
    UNIQUE INDEX idx_fib_flow_tasks_unique_key (unique_key)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Every column but the context blob: what listing queries read. Text
-- columns compare byte-wise (utf8mb4_bin, which ignores trailing spaces;
-- names, tags and keys cannot end in whitespace) in the table, but a binary
-- collation reads as VARBINARY in the client protocol, so the view
-- converts them to the default (non-binary) collation. Queries filter on
-- the table, never on these converted columns.
CREATE VIEW fib_flow_task_records AS
SELECT id, CONVERT(name USING utf8mb4) AS name, CONVERT(kind USING utf8mb4) AS kind,
       CONVERT(status USING utf8mb4) AS status, priority,
       CONVERT(payload USING utf8mb4) AS payload, CONVERT(tag USING utf8mb4) AS tag,
       CONVERT(result USING utf8mb4) AS result, CONVERT(error USING utf8mb4) AS error,
       stage, cycle, timeout_ms, retry_count, max_attempts, retry_interval_ms,
       CONVERT(cron_expr USING utf8mb4) AS cron_expr, root_id, parent_id, parent_stage,
       total_children, pending_children,
       CONVERT(worker_id USING utf8mb4) AS worker_id, attempt,
       CONVERT(suspend_reason USING utf8mb4) AS suspend_reason, created_at, next_run_at,
       started_at, last_active_at, finished_at
FROM fib_flow_tasks;
