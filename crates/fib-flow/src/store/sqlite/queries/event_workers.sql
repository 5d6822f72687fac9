-- The distinct workers of a workflow's events, byte-wise sorted.
SELECT worker_id
FROM fib_flow_task_events
WHERE root_id = ?1 AND worker_id IS NOT NULL
GROUP BY worker_id
ORDER BY worker_id
