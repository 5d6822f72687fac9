-- A transaction's audit rows in one statement, at the transaction's time:
-- $1 attempts to open (NewAttempt), $2 open attempts to close
-- (AttemptClose), $3 events in order (NewEvent, fields absent when null).
-- Empty arrays make their part a no-op. (The statements that change the
-- task rows stamp their newest-event snapshot themselves.)
WITH clock AS (
    SELECT (extract(epoch FROM now()) * 1000)::bigint AS now
),
opened AS (
    INSERT INTO fib_flow_task_attempts (task_id, attempt, worker_id, started_at)
    SELECT task_id, attempt, worker_id, started_at
    FROM jsonb_to_recordset($1::jsonb)
        AS a(task_id bigint, attempt bigint, worker_id text, started_at bigint)
),
closed AS (
    UPDATE fib_flow_task_attempts AS attempt
    SET ended_at = clock.now,
        outcome = closing.outcome,
        error = closing.error,
        timed_out = closing.timed_out
    FROM jsonb_to_recordset($2::jsonb)
            AS closing(task_id bigint, attempt bigint, outcome text, error text, timed_out boolean),
         clock
    WHERE attempt.task_id = closing.task_id
      AND attempt.attempt = closing.attempt
      AND attempt.ended_at IS NULL
      -- Reach the rows through the index: joined to a set-returning
      -- function alone, the planner scans the whole table.
      AND attempt.task_id = ANY (ARRAY(SELECT (c ->> 'task_id')::bigint
                                       FROM jsonb_array_elements($2::jsonb) AS c))
)
INSERT INTO fib_flow_task_events
    (task_id, root_id, parent_id, event_type, from_status, to_status, stage, worker_id,
     attempt, event_time, message, metadata)
SELECT (e ->> 'task_id')::bigint, (e ->> 'root_id')::bigint, (e ->> 'parent_id')::bigint,
       e ->> 'event_type', e ->> 'from_status', e ->> 'to_status', (e ->> 'stage')::bigint,
       e ->> 'worker_id', (e ->> 'attempt')::bigint, clock.now, e ->> 'message',
       e ->> 'metadata'
FROM jsonb_array_elements($3::jsonb) WITH ORDINALITY AS batch(e, n), clock
ORDER BY n
