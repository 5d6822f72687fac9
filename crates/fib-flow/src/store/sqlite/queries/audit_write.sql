-- A transaction's audit rows, three statements sent as one command (each
-- SQLite statement costs a round trip to the driver's worker thread):
-- ?1 attempts to open (NewAttempt), ?2 open attempts to close
-- (AttemptClose; only attempts still open change, found through the
-- (task_id, attempt) index), ?3 events in order (NewEvent, fields absent
-- when null), ?4 the transaction's time. An empty array makes its
-- statement a no-op.
INSERT INTO fib_flow_task_attempts (task_id, attempt, worker_id, started_at)
SELECT json_extract(value, '$.task_id'), json_extract(value, '$.attempt'),
       json_extract(value, '$.worker_id'), json_extract(value, '$.started_at')
FROM json_each(?1);

UPDATE fib_flow_task_attempts
SET ended_at = ?4,
    outcome = (SELECT json_extract(value, '$.outcome') FROM json_each(?2) AS c
               WHERE json_extract(c.value, '$.task_id') = fib_flow_task_attempts.task_id
                 AND json_extract(c.value, '$.attempt') = fib_flow_task_attempts.attempt),
    error = (SELECT json_extract(value, '$.error') FROM json_each(?2) AS c
             WHERE json_extract(c.value, '$.task_id') = fib_flow_task_attempts.task_id
               AND json_extract(c.value, '$.attempt') = fib_flow_task_attempts.attempt),
    timed_out = (SELECT json_extract(value, '$.timed_out') FROM json_each(?2) AS c
                 WHERE json_extract(c.value, '$.task_id') = fib_flow_task_attempts.task_id
                   AND json_extract(c.value, '$.attempt') = fib_flow_task_attempts.attempt)
WHERE (task_id, attempt) IN (SELECT json_extract(value, '$.task_id'), json_extract(value, '$.attempt')
                             FROM json_each(?2))
  AND ended_at IS NULL;

INSERT INTO fib_flow_task_events
    (task_id, root_id, parent_id, event_type, from_status, to_status, stage, worker_id,
     attempt, event_time, message, metadata)
SELECT json_extract(value, '$.task_id'), json_extract(value, '$.root_id'),
       json_extract(value, '$.parent_id'), json_extract(value, '$.event_type'),
       json_extract(value, '$.from_status'), json_extract(value, '$.to_status'),
       json_extract(value, '$.stage'), json_extract(value, '$.worker_id'),
       json_extract(value, '$.attempt'), ?4, json_extract(value, '$.message'),
       json_extract(value, '$.metadata')
FROM json_each(?3)
ORDER BY key;
