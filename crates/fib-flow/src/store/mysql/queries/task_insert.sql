-- The snapshot of the newest event is the task_created event the engine
-- writes with the insert.
-- next_run_at: the absolute time when given, else now + the delay.
INSERT INTO fib_flow_tasks
    (name, kind, status, priority, payload, tag, timeout_ms, max_attempts,
     retry_interval_ms, cron_expr, created_at, next_run_at, root_id, parent_id, parent_stage, parent_cycle,
     last_event_at, last_event_type)
SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, clock.now, COALESCE(?, clock.now + ?), ?, ?, ?, ?,
       clock.now, 'task_created'
FROM (SELECT COALESCE(?, CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)) AS now) AS clock
