-- The task_created events of a batch submit's tasks, read from the task
-- rows just inserted in this transaction: one row per id of the IN list
-- the caller appends (the ids written in as digits, then
-- ") ORDER BY id"): in id order (input order), so their ids ascend in it.
-- Every event has the same columns but its task: event_type, parent_id,
-- from_status, to_status, stage, worker_id, attempt, message, metadata,
-- event_time. The ids are primary-key lookups: record locks on this
-- transaction's own rows, no gap locks.
INSERT INTO fib_flow_task_events
    (task_id, root_id, event_type, parent_id, from_status, to_status, stage, worker_id,
     attempt, message, metadata, event_time)
SELECT id, id, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
FROM fib_flow_tasks
WHERE id IN (