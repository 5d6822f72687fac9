SELECT tag, name, status, COUNT(*) AS count
FROM fib_flow_tasks
WHERE (?1 IS NULL OR tag = ?1)
GROUP BY tag, name, status
ORDER BY tag, name, status
