-- Step 3 of worker_register: the worker's new active row ($3 = ttl), at
-- the transaction's time.
INSERT INTO fib_flow_workers (worker_id, pod_id, status, registered_at, last_seen_at,
                              expires_at, meta)
SELECT $1, $2, 'active', clock.now, clock.now, clock.now + $3, $4
FROM (SELECT (extract(epoch FROM now()) * 1000)::bigint AS now) AS clock
