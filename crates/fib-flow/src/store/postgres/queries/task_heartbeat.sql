-- One write renews the leases of the tasks this worker is executing.
UPDATE fib_flow_tasks
SET last_active_at = (extract(epoch FROM now()) * 1000)::bigint
WHERE worker_id = $1
  AND status = 'running'
  AND id = ANY($2)
RETURNING id, attempt
