-- A task without events gets task_created as its newest (at the bound
-- time); see StoreTx::task_stamp_created.
UPDATE fib_flow_tasks
SET last_event_at = ?,
    last_event_type = 'task_created'
WHERE id = ?
  AND last_event_type IS NULL
