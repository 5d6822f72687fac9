-- Deletes up to the limit of workers, oldest first, that are not active,
-- were last seen before now - older_than_ms, and run no task.
DELETE FROM fib_flow_workers
WHERE status <> 'active'
  AND last_seen_at < CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED) - ?
  AND NOT EXISTS (SELECT 1 FROM fib_flow_tasks AS t
                  WHERE t.status = 'running' AND t.worker_id = fib_flow_workers.worker_id)
ORDER BY last_seen_at, worker_id
LIMIT ?
