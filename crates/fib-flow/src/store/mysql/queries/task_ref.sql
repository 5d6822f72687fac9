-- The row a status change applied to (see task_set_status.sql).
SELECT id, CONVERT(name USING utf8mb4) AS name, CONVERT(kind USING utf8mb4) AS kind,
       CONVERT(status USING utf8mb4) AS status, parent_id, parent_stage, parent_cycle,
       CONVERT(error USING utf8mb4) AS error
FROM fib_flow_tasks
WHERE id = ?
