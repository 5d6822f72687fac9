-- Step 1 of retention_delete_batch: up to ?5 top-level tasks in one of
-- the statuses ?1 (a JSON array) idle since before ?2 (now) minus ?3, with
-- no task under them in one of the statuses ?4 (a JSON array), oldest
-- first. The write transaction (BEGIN IMMEDIATE) keeps them as they are.
SELECT root.id
FROM fib_flow_tasks AS root
WHERE root.root_id IS NULL
  AND root.status IN (SELECT value FROM json_each(?1))
  AND root.last_active_at < ?2 - ?3
  AND NOT EXISTS (
      SELECT 1 FROM fib_flow_tasks AS t2
      WHERE t2.root_id = root.id
        AND t2.status IN (SELECT value FROM json_each(?4)))
ORDER BY root.last_active_at, root.id
LIMIT ?5
