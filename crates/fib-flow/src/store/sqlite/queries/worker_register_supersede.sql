-- Step 3 of worker_register: every other active worker of the pod is
-- superseded by this one (?3 = now). RETURNING has no order: the caller
-- sorts.
UPDATE fib_flow_workers
SET status = 'superseded', superseded_at = ?3, superseded_by = ?2
WHERE pod_id = ?1 AND status = 'active' AND worker_id <> ?2
RETURNING worker_id
