-- Rows by id (a JSON array of ids), without the context blob.
SELECT * FROM fib_flow_task_records
WHERE id IN (SELECT j.id FROM JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$')) AS j)
