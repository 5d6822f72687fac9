-- Renews the lease of an active worker ($2 = ttl) and returns its row
-- afterwards; a worker in another status cannot renew and is returned as
-- it is. One statement: the CTE's update is not visible to the rest of
-- it, hence the union.
WITH renewed AS (
    UPDATE fib_flow_workers
    SET last_seen_at = (extract(epoch FROM now()) * 1000)::bigint,
        expires_at = (extract(epoch FROM now()) * 1000)::bigint + $2
    WHERE worker_id = $1 AND status = 'active'
    RETURNING *
)
SELECT w.worker_id, w.pod_id, w.status, w.registered_at, w.last_seen_at, w.expires_at,
       w.superseded_at, w.superseded_by, w.dead_at, w.stopped_at, w.meta,
       (SELECT COUNT(*) FROM fib_flow_tasks AS t
        WHERE t.worker_id = w.worker_id AND t.status = 'running') AS running_tasks
FROM renewed AS w
UNION ALL
SELECT w.worker_id, w.pod_id, w.status, w.registered_at, w.last_seen_at, w.expires_at,
       w.superseded_at, w.superseded_by, w.dead_at, w.stopped_at, w.meta,
       (SELECT COUNT(*) FROM fib_flow_tasks AS t
        WHERE t.worker_id = w.worker_id AND t.status = 'running') AS running_tasks
FROM fib_flow_workers AS w
WHERE w.worker_id = $1 AND NOT EXISTS (SELECT 1 FROM renewed)
