-- Step 2 of retention_delete_batch: the events of the selected workflows
-- (roots $1): those carrying a root, and, should one carry another root,
-- those of a task of the workflow.
DELETE FROM fib_flow_task_events
WHERE root_id = ANY($1::bigint[])
   OR task_id = ANY(ARRAY(SELECT t.id FROM fib_flow_tasks AS t
                          WHERE t.id = ANY($1::bigint[]) OR t.root_id = ANY($1::bigint[])))
