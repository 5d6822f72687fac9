SELECT id FROM fib_flow_tasks
WHERE parent_id = $1 AND status = ANY($2)
ORDER BY id
FOR UPDATE
