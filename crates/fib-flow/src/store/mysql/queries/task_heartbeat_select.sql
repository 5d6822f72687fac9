-- Step 2 of task_heartbeat (same transaction): the leases renewed.
SELECT t.id, t.attempt
FROM fib_flow_tasks AS t
JOIN JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$')) AS held ON t.id = held.id
WHERE t.status = 'running' AND t.worker_id = ?
