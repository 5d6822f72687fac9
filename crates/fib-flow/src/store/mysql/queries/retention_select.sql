-- Step 1 of retention_delete_batch: up to the limit top-level tasks in one
-- of the statuses (a JSON array) idle since before the database clock
-- minus the expiry, with no task under them in one of the unfinished
-- statuses (a JSON array), oldest first; locked, skipping roots another
-- batch holds.
SELECT root.id
FROM fib_flow_tasks AS root
WHERE root.root_id IS NULL
  AND JSON_CONTAINS(?, JSON_QUOTE(root.status))
  AND root.last_active_at < CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED) - ?
  AND NOT EXISTS (
      SELECT 1 FROM fib_flow_tasks AS t2
      WHERE t2.root_id = root.id AND JSON_CONTAINS(?, JSON_QUOTE(t2.status)))
ORDER BY root.last_active_at, root.id
LIMIT ?
FOR UPDATE SKIP LOCKED
