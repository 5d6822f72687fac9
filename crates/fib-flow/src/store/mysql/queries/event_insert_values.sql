-- The head of a batch submit's event insert: the caller appends one VALUES
-- row per task_created event with sqlx's QueryBuilder (strings bound,
-- integers written in), in task order. Each row: task_id, root_id,
-- parent_id, event_type, from_status, to_status, stage, worker_id,
-- attempt, event_time, message, metadata.
INSERT INTO fib_flow_task_events
    (task_id, root_id, parent_id, event_type, from_status, to_status, stage, worker_id,
     attempt, event_time, message, metadata)
