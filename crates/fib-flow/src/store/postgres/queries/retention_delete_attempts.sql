-- Step 3 of retention_delete_batch: the attempts of the roots $1 and of
-- every task under them.
DELETE FROM fib_flow_task_attempts
WHERE task_id = ANY(ARRAY(SELECT t.id FROM fib_flow_tasks AS t
                          WHERE t.id = ANY($1::bigint[]) OR t.root_id = ANY($1::bigint[])))
