-- Step 4 of worker_register: every other active worker of the pod is
-- superseded by this one; returns their ids, sorted byte-wise.
WITH superseded AS (
    UPDATE fib_flow_workers
    SET status = 'superseded',
        superseded_at = (extract(epoch FROM now()) * 1000)::bigint,
        superseded_by = $2
    WHERE pod_id = $1 AND status = 'active' AND worker_id <> $2
    RETURNING worker_id
)
SELECT worker_id FROM superseded ORDER BY worker_id COLLATE "C"
