-- Step 2 of task_child_finished (only when step 1 changed the row).
SELECT id, CONVERT(kind USING utf8mb4) AS kind, pending_children,
       CONVERT(on_child_failure USING utf8mb4) AS on_child_failure
FROM fib_flow_tasks
WHERE id = ?
