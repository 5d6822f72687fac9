-- The snapshot of the newest event is the task_created event the engine
-- writes with the insert.
-- next_run_at: $11 (absolute) when given, else now + $12 (a delay). The
-- insert trigger notifies idle workers.
WITH clock AS (
    SELECT (extract(epoch FROM now()) * 1000)::bigint AS now
)
INSERT INTO fib_flow_tasks
    (name, kind, status, priority, payload, tag, timeout_ms, max_attempts,
     retry_interval_ms, cron_expr, created_at, next_run_at, root_id, parent_id, parent_stage, parent_cycle,
     last_event_at, last_event_type)
SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, clock.now, COALESCE($11, clock.now + $12),
       $13, $14, $15, $16, clock.now, 'task_created'
FROM clock
RETURNING id
