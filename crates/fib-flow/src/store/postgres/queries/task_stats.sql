-- Byte order ("C") so every backend sorts alike.
SELECT tag, name, status, COUNT(*) AS count
FROM fib_flow_tasks
WHERE ($1::text IS NULL OR tag = $1)
GROUP BY tag, name, status
ORDER BY tag COLLATE "C" NULLS FIRST, name COLLATE "C", status COLLATE "C"
