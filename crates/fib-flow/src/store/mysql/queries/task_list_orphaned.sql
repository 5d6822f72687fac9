-- Running tasks whose worker is registered but no longer active: nobody
-- will finish them. Tasks of unregistered workers never join.
SELECT t.id, CONVERT(t.name USING utf8mb4) AS name,
       CONVERT(t.worker_id USING utf8mb4) AS worker_id, t.attempt,
       CONVERT(w.status USING utf8mb4) AS worker_status
FROM fib_flow_tasks AS t
JOIN fib_flow_workers AS w ON w.worker_id = t.worker_id
WHERE t.status = 'running' AND w.status <> 'active'
ORDER BY t.id
LIMIT ?
