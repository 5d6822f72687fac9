-- A task without events gets task_created as its newest (at ?1); see
-- StoreTx::task_stamp_created.
UPDATE fib_flow_tasks
SET last_event_at = ?1,
    last_event_type = 'task_created'
WHERE id = ?2
  AND last_event_type IS NULL
