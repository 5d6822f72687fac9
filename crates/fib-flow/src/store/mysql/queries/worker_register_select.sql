-- Step 3 of worker_register: lock the other active workers of the pod, in
-- id order.
SELECT CONVERT(worker_id USING utf8mb4) AS worker_id
FROM fib_flow_workers
WHERE pod_id = ? AND status = 'active' AND worker_id <> ?
ORDER BY worker_id
FOR UPDATE
