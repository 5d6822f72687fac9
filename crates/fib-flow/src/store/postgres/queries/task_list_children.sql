-- The children a parent created at one stage, in id order.
SELECT id, name, status, result, error
FROM fib_flow_tasks
WHERE parent_id = $1 AND parent_stage = $2 AND parent_cycle = $3
ORDER BY id
