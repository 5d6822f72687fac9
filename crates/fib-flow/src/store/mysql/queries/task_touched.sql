-- The task task_touch.sql reported on, when the same attempt still owns it
-- (read in the same transaction, under the UPDATE's lock).
SELECT id, CONVERT(name USING utf8mb4) AS name, CONVERT(status USING utf8mb4) AS status, stage,
       root_id, parent_id, last_event_at
FROM fib_flow_tasks
WHERE id = ?
  AND status = 'running'
  AND worker_id = ?
  AND attempt = ?
