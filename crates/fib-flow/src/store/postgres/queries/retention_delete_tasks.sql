-- Step 4 of retention_delete_batch: the roots $1 and every task under them.
DELETE FROM fib_flow_tasks
WHERE id = ANY($1::bigint[]) OR root_id = ANY($1::bigint[])
