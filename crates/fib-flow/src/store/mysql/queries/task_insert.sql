-- next_run_at: the absolute time when given, else now + the delay.
INSERT INTO fib_flow_tasks
    (name, kind, status, priority, payload, tag, timeout_ms, max_attempts,
     retry_interval_ms, cron_expr, created_at, next_run_at, root_id, parent_id, parent_stage, parent_cycle)
SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, clock.now, COALESCE(?, clock.now + ?), ?, ?, ?, ?
FROM (SELECT CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED) AS now) AS clock
