-- Attempts opened by a claim: ?1 is a JSON array of NewAttempt.
INSERT INTO fib_flow_task_attempts (task_id, attempt, worker_id, started_at)
SELECT json_extract(value, '$.task_id'), json_extract(value, '$.attempt'),
       json_extract(value, '$.worker_id'), json_extract(value, '$.started_at')
FROM json_each(?1)
