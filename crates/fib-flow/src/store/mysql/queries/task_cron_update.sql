-- Change a cron task's schedule or payload; a row whose status is in the
-- JSON array moves to the new schedule's next occurrence at once.
UPDATE fib_flow_tasks
SET next_run_at = CASE WHEN ? IS NOT NULL AND JSON_CONTAINS(?, JSON_QUOTE(status)) THEN ? ELSE next_run_at END,
    cron_expr = COALESCE(?, cron_expr),
    cron_tz = COALESCE(?, cron_tz),
    cron_misfire = COALESCE(?, cron_misfire),
    payload = CASE WHEN ? THEN ? ELSE payload END
WHERE id = ? AND kind = 'cron'
