-- A worker stops gracefully, unless it already did.
UPDATE fib_flow_workers
SET status = 'stopped', stopped_at = (extract(epoch FROM now()) * 1000)::bigint
WHERE worker_id = $1 AND status <> 'stopped'
