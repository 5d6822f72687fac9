-- A task without events gets task_created as its newest; see
-- StoreTx::task_stamp_created.
UPDATE fib_flow_tasks
SET last_event_at = (extract(epoch FROM now()) * 1000)::bigint,
    last_event_type = 'task_created'
WHERE id = $1
  AND last_event_type IS NULL
