-- (The BEGIN IMMEDIATE transaction already holds the write lock.)
SELECT id FROM fib_flow_tasks
WHERE parent_id = ?1 AND status IN (SELECT value FROM json_each(?2))
ORDER BY id
