-- Deletes up to ?3 workers, oldest first, that are not active, were last
-- seen before ?1 (now) - ?2, and run no task.
DELETE FROM fib_flow_workers
WHERE worker_id IN (
    SELECT w.worker_id FROM fib_flow_workers AS w
    WHERE w.status <> 'active'
      AND w.last_seen_at < ?1 - ?2
      AND NOT EXISTS (SELECT 1 FROM fib_flow_tasks AS t
                      WHERE t.worker_id = w.worker_id AND t.status = 'running')
    ORDER BY w.last_seen_at, w.worker_id
    LIMIT ?3
)
