-- A worker stops gracefully, unless it already did.
UPDATE fib_flow_workers
SET status = 'stopped', stopped_at = CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)
WHERE worker_id = ? AND status <> 'stopped'
