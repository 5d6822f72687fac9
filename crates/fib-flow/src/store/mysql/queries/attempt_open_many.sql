-- Attempts opened by a claim: a JSON array of NewAttempt.
INSERT INTO fib_flow_task_attempts (task_id, attempt, worker_id, started_at)
SELECT a.task_id, a.attempt, a.worker_id, a.started_at
FROM JSON_TABLE(?, '$[*]' COLUMNS (
        task_id    BIGINT       PATH '$.task_id',
        attempt    BIGINT       PATH '$.attempt',
        worker_id  VARCHAR(255) PATH '$.worker_id',
        started_at BIGINT       PATH '$.started_at')) AS a
