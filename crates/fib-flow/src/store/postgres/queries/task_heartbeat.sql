-- One write renews every task the worker is running.
UPDATE fib_flow_tasks
SET last_active_at = (extract(epoch FROM now()) * 1000)::bigint
WHERE worker_id = $1 AND status = 'running'
RETURNING id, attempt
