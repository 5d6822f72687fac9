-- Attempts ended: ?1 is a JSON array of AttemptClose, ?2 the end time. Only
-- attempts still open change.
UPDATE fib_flow_task_attempts
SET ended_at = ?2,
    outcome = closing.outcome,
    error = closing.error,
    timed_out = closing.timed_out
FROM (SELECT json_extract(value, '$.task_id') AS task_id,
             json_extract(value, '$.attempt') AS attempt,
             json_extract(value, '$.outcome') AS outcome,
             json_extract(value, '$.error') AS error,
             json_extract(value, '$.timed_out') AS timed_out
      FROM json_each(?1)) AS closing
WHERE fib_flow_task_attempts.task_id = closing.task_id
  AND fib_flow_task_attempts.attempt = closing.attempt
  AND fib_flow_task_attempts.ended_at IS NULL
