-- Rows by id (a JSON array of ids), without the context blob.
SELECT * FROM fib_flow_task_records WHERE id IN (SELECT value FROM json_each(?1))
