-- Grouped on the byte-wise table columns; converted for the client (see
-- the view in 0001_init.sql).
SELECT CONVERT(tag USING utf8mb4) AS tag, CONVERT(name USING utf8mb4) AS name,
       CONVERT(status USING utf8mb4) AS status, COUNT(*) AS count
FROM fib_flow_tasks
WHERE (? IS NULL OR tag = ?)
GROUP BY fib_flow_tasks.tag, fib_flow_tasks.name, fib_flow_tasks.status
ORDER BY fib_flow_tasks.tag, fib_flow_tasks.name, fib_flow_tasks.status
