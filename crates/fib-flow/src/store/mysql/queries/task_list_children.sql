-- The children a parent created at one stage, in id order.
SELECT id, CONVERT(name USING utf8mb4) AS name, CONVERT(status USING utf8mb4) AS status,
       CONVERT(result USING utf8mb4) AS result, CONVERT(error USING utf8mb4) AS error
FROM fib_flow_tasks
WHERE parent_id = ? AND parent_stage = ? AND parent_cycle = ?
ORDER BY id
