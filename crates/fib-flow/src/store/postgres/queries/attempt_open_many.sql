-- Attempts opened by a claim: $1 is a JSON array of NewAttempt.
INSERT INTO fib_flow_task_attempts (task_id, attempt, worker_id, started_at)
SELECT task_id, attempt, worker_id, started_at
FROM jsonb_to_recordset($1::jsonb)
    AS a(task_id bigint, attempt bigint, worker_id text, started_at bigint)
