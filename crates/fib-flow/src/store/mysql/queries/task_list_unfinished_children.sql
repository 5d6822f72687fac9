SELECT id FROM fib_flow_tasks
WHERE parent_id = ? AND JSON_CONTAINS(?, JSON_QUOTE(status))
ORDER BY id
FOR UPDATE
