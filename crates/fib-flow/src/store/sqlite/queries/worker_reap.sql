-- Active workers whose lease ended (strictly before ?1 = now) become dead.
-- RETURNING has no order: the caller sorts.
UPDATE fib_flow_workers
SET status = 'dead', dead_at = ?1
WHERE status = 'active' AND expires_at < ?1
RETURNING worker_id
