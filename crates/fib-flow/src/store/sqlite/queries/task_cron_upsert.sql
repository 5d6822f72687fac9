-- Insert a cron task, or update the schedule with the same unique_key.
-- A pending row moves to the new first occurrence only when the schedule
-- (expression or zone) changed, so an identical upsert changes nothing.
INSERT INTO fib_flow_tasks
    (name, kind, status, priority, payload, tag, timeout_ms, max_attempts,
     retry_interval_ms, cron_expr, cron_tz, cron_misfire, unique_key, created_at, next_run_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL DO UPDATE
SET next_run_at = CASE
        WHEN fib_flow_tasks.status = 'pending'
         AND (fib_flow_tasks.cron_expr IS NOT excluded.cron_expr
              OR fib_flow_tasks.cron_tz IS NOT excluded.cron_tz)
        THEN excluded.next_run_at ELSE fib_flow_tasks.next_run_at END,
    name = excluded.name,
    priority = excluded.priority,
    payload = excluded.payload,
    tag = excluded.tag,
    timeout_ms = excluded.timeout_ms,
    max_attempts = excluded.max_attempts,
    retry_interval_ms = excluded.retry_interval_ms,
    cron_expr = excluded.cron_expr,
    cron_tz = excluded.cron_tz,
    cron_misfire = excluded.cron_misfire
RETURNING id
