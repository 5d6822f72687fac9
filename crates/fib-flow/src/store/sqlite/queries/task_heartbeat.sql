-- One write renews every task the worker is running.
UPDATE fib_flow_tasks
SET last_active_at = ?2
WHERE worker_id = ?1 AND status = 'running'
RETURNING id, attempt
