-- A worker stops gracefully (?2 = now), unless it already did.
UPDATE fib_flow_workers
SET status = 'stopped', stopped_at = ?2
WHERE worker_id = ?1 AND status <> 'stopped'
