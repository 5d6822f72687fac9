-- The distinct workers of a workflow's events, byte-wise sorted: grouped
-- and ordered on the table's binary column, read converted.
SELECT CONVERT(e.worker_id USING utf8mb4) AS worker
FROM fib_flow_task_events AS e
WHERE e.root_id = ? AND e.worker_id IS NOT NULL
GROUP BY e.worker_id
ORDER BY e.worker_id
