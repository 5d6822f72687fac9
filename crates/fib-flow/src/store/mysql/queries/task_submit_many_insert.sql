-- The head of a batch submit's task insert: the caller appends one VALUES
-- row per task with sqlx's QueryBuilder (a file cannot spell a list of
-- variable length). A plain multi-row INSERT ... VALUES is a "simple
-- insert": InnoDB reserves all its auto-increment ids at once, so they are
-- consecutive (by @@auto_increment_increment) from LAST_INSERT_ID(), in
-- row order, under every innodb_autoinc_lock_mode. (INSERT ... SELECT is a
-- "bulk insert", whose ids may interleave with concurrent inserts under
-- lock mode 2.) Each row: name, kind, status, priority, payload, tag,
-- timeout_ms, max_attempts, retry_interval_ms, cron_expr, created_at,
-- next_run_at, root_id, parent_id, parent_stage, parent_cycle,
-- last_event_at, last_event_type.
INSERT INTO fib_flow_tasks
    (name, kind, status, priority, payload, tag, timeout_ms, max_attempts,
     retry_interval_ms, cron_expr, created_at, next_run_at, root_id, parent_id, parent_stage,
     parent_cycle, last_event_at, last_event_type)
