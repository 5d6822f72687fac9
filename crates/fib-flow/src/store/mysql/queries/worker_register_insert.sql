-- Step 2 of worker_register: the worker's new active row (now, now,
-- now + ttl).
INSERT INTO fib_flow_workers (worker_id, pod_id, status, registered_at, last_seen_at,
                              expires_at, meta)
VALUES (?, ?, 'active', ?, ?, ?, ?)
