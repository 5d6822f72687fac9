-- Attempts ended: a JSON array of AttemptClose, then their end time (the
-- transaction's). Only attempts still open change. (A join with
-- JSON_TABLE: see task_claim_many_update.sql.)
UPDATE fib_flow_task_attempts AS a
JOIN JSON_TABLE(?, '$[*]' COLUMNS (
        task_id   BIGINT   PATH '$.task_id',
        attempt   BIGINT   PATH '$.attempt',
        outcome   VARCHAR(32) PATH '$.outcome',
        error     LONGTEXT PATH '$.error',
        timed_out BOOLEAN  PATH '$.timed_out')) AS closing
    ON a.task_id = closing.task_id AND a.attempt = closing.attempt
SET a.ended_at = ?,
    a.outcome = closing.outcome,
    a.error = closing.error,
    a.timed_out = closing.timed_out
WHERE a.ended_at IS NULL
