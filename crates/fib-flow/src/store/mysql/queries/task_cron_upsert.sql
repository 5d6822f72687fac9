-- Insert a cron task, or update the schedule with the same unique_key
-- (LAST_INSERT_ID(id) returns the existing row's id). Assignments run left
-- to right, so next_run_at compares the old schedule before it changes: a
-- pending row moves to the new first occurrence only when the schedule
-- changed, and an identical upsert changes nothing.
INSERT INTO fib_flow_tasks
    (name, kind, status, priority, payload, tag, timeout_ms, max_attempts,
     retry_interval_ms, cron_expr, cron_tz, cron_misfire, unique_key, created_at, next_run_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED), ?)
ON DUPLICATE KEY UPDATE
    id = LAST_INSERT_ID(id),
    next_run_at = IF(status = 'pending'
                     AND NOT (cron_expr <=> VALUES(cron_expr) AND cron_tz <=> VALUES(cron_tz)),
                     VALUES(next_run_at), next_run_at),
    name = VALUES(name),
    priority = VALUES(priority),
    payload = VALUES(payload),
    tag = VALUES(tag),
    timeout_ms = VALUES(timeout_ms),
    max_attempts = VALUES(max_attempts),
    retry_interval_ms = VALUES(retry_interval_ms),
    cron_expr = VALUES(cron_expr),
    cron_tz = VALUES(cron_tz),
    cron_misfire = VALUES(cron_misfire)
