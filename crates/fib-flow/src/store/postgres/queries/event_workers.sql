-- The distinct workers of a workflow's events, byte-wise sorted (as
-- SQLite, MySQL's binary collation and Rust sort them).
SELECT worker_id
FROM fib_flow_task_events
WHERE root_id = $1 AND worker_id IS NOT NULL
GROUP BY worker_id
ORDER BY worker_id COLLATE "C"
