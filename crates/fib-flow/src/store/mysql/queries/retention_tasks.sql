-- Step 2 of retention_delete_batch: the ids of every task of the selected
-- workflows (the roots, a JSON array given twice, and the tasks under them).
SELECT r.id FROM JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$')) AS r
UNION ALL
SELECT t.id FROM JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$')) AS r
STRAIGHT_JOIN fib_flow_tasks AS t ON t.root_id = r.id
