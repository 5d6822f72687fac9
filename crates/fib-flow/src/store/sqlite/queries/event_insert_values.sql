-- The head of an event insert: the caller appends one VALUES row per event
-- with sqlx's QueryBuilder (every value bound), in order,
-- so their ids ascend in it. Each row: task_id, root_id, parent_id,
-- event_type, from_status, to_status, stage, worker_id, attempt,
-- event_time, message, metadata.
INSERT INTO fib_flow_task_events
    (task_id, root_id, parent_id, event_type, from_status, to_status, stage, worker_id,
     attempt, event_time, message, metadata)
