-- Step 1 of worker_heartbeat (then worker_get, same transaction): renews
-- the lease of an active worker (now, now + ttl); other statuses cannot
-- renew.
UPDATE fib_flow_workers
SET last_seen_at = ?, expires_at = ?
WHERE worker_id = ? AND status = 'active'
