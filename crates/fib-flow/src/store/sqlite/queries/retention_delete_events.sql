-- Step 2 of retention_delete_batch: the events of the selected workflows
-- (roots as a JSON array): those carrying a root, and, should one carry
-- another root, those of a task of the workflow.
DELETE FROM fib_flow_task_events
WHERE root_id IN (SELECT value FROM json_each(?1))
   OR task_id IN (SELECT value FROM json_each(?1))
   OR task_id IN (SELECT t.id FROM fib_flow_tasks AS t
                  WHERE t.root_id IN (SELECT value FROM json_each(?1)))
