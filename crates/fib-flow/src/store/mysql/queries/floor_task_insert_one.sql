-- The benchmark floor's single-row insert: the columns of a batch row
-- (task_submit_many_insert.sql), every value bound, autocommitted. Binds:
-- name, kind, status, priority, payload, tag, timeout_ms, max_attempts,
-- retry_interval_ms, cron_expr, created_at, next_run_at, last_event_at,
-- last_event_type.
INSERT INTO fib_flow_tasks
    (name, kind, status, priority, payload, tag, timeout_ms, max_attempts,
     retry_interval_ms, cron_expr, created_at, next_run_at, last_event_at, last_event_type)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
