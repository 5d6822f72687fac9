-- Step 1 of worker_reap: lock the active workers whose lease ended
-- (strictly before now), in id order.
SELECT CONVERT(worker_id USING utf8mb4) AS worker_id
FROM fib_flow_workers
WHERE status = 'active' AND expires_at < ?
ORDER BY worker_id
FOR UPDATE
