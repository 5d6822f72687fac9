-- Change a cron task's schedule or payload; a row whose status is in ?7
-- (a JSON array) moves to the new schedule's next occurrence ?6 at once.
UPDATE fib_flow_tasks
SET cron_expr = COALESCE(?2, cron_expr),
    cron_tz = COALESCE(?3, cron_tz),
    cron_misfire = COALESCE(?4, cron_misfire),
    payload = CASE WHEN ?8 THEN ?5 ELSE payload END,
    next_run_at = CASE WHEN ?6 IS NOT NULL AND status IN (SELECT value FROM json_each(?7))
                       THEN ?6 ELSE next_run_at END
WHERE id = ?1 AND kind = 'cron'
