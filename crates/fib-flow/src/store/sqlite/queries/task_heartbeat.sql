-- One write renews the leases of the tasks this worker is executing (ids as
-- a JSON array).
UPDATE fib_flow_tasks
SET last_active_at = ?2
WHERE worker_id = ?1
  AND status = 'running'
  AND id IN (SELECT value FROM json_each(?3))
RETURNING id, attempt
