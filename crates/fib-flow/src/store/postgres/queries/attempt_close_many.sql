-- Attempts ended at the transaction's time: $1 is a JSON array of
-- AttemptClose. Only attempts still open change.
UPDATE fib_flow_task_attempts AS attempt
SET ended_at = (extract(epoch FROM now()) * 1000)::bigint,
    outcome = closing.outcome,
    error = closing.error,
    timed_out = closing.timed_out
FROM jsonb_to_recordset($1::jsonb)
    AS closing(task_id bigint, attempt bigint, outcome text, error text, timed_out boolean)
WHERE attempt.task_id = closing.task_id
  AND attempt.attempt = closing.attempt
  AND attempt.ended_at IS NULL
