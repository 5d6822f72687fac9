-- Step 1 of retention_delete_batch: up to $4 top-level tasks in one of the
-- statuses $1 idle since before the database clock minus $2, with no task
-- under them in one of the statuses $3, oldest first; locked, skipping
-- roots another batch holds.
SELECT root.id
FROM fib_flow_tasks AS root
WHERE root.root_id IS NULL
  AND root.status = ANY($1)
  AND root.last_active_at < (extract(epoch FROM now()) * 1000)::bigint - $2
  AND NOT EXISTS (
      SELECT 1 FROM fib_flow_tasks AS t2
      WHERE t2.root_id = root.id AND t2.status = ANY($3))
ORDER BY root.last_active_at, root.id
LIMIT $4
FOR UPDATE OF root SKIP LOCKED
