-- Step 2 of worker_register: the worker's new active row (?3 = now,
-- ?4 = ttl).
INSERT INTO fib_flow_workers (worker_id, pod_id, status, registered_at, last_seen_at,
                              expires_at, meta)
VALUES (?1, ?2, 'active', ?3, ?3, ?3 + ?4, ?5)
