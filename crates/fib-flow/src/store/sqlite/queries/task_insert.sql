-- The snapshot of the newest event is the task_created event the engine
-- writes with the insert.
INSERT INTO fib_flow_tasks
    (name, kind, status, priority, payload, tag, timeout_ms, max_attempts,
     retry_interval_ms, cron_expr, created_at, next_run_at, root_id, parent_id, parent_stage, parent_cycle,
     last_event_at, last_event_type)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?11, 'task_created')
RETURNING id
