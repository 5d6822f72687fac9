-- Step 1 of worker_heartbeat (then worker_get, same transaction): renews
-- the lease of an active worker (?2 = now, ?3 = ttl); other statuses
-- cannot renew.
UPDATE fib_flow_workers
SET last_seen_at = ?2, expires_at = ?2 + ?3
WHERE worker_id = ?1 AND status = 'active'
