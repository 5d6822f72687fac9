-- Step 3 of retention_delete_batch: the attempts of the roots (a JSON
-- array) and of every task under them.
DELETE FROM fib_flow_task_attempts
WHERE task_id IN (SELECT value FROM json_each(?1))
   OR task_id IN (SELECT t.id FROM fib_flow_tasks AS t
                  WHERE t.root_id IN (SELECT value FROM json_each(?1)))
