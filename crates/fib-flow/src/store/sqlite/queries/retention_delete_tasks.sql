-- Step 4 of retention_delete_batch: the roots (a JSON array) and every task
-- under them.
DELETE FROM fib_flow_tasks
WHERE id IN (SELECT value FROM json_each(?1))
   OR root_id IN (SELECT value FROM json_each(?1))
