-- A transaction's audit rows, three statements sent as one command (each
-- SQLite statement costs a round trip to the driver's worker thread):
-- ?1 attempts to open (NewAttempt), ?2 open attempts to close
-- (AttemptClose; only attempts still open change, found through the
-- (task_id, attempt) index), ?3 events in order (NewEvent, fields absent
-- when null), ?4 the transaction's time. An empty array makes its
-- statement a no-op.
WITH opened AS MATERIALIZED (SELECT value AS v FROM json_each(?1))
INSERT INTO fib_flow_task_attempts (task_id, attempt, worker_id, started_at)
SELECT json_extract(v, '$.task_id'), json_extract(v, '$.attempt'),
       json_extract(v, '$.worker_id'), json_extract(v, '$.started_at')
FROM opened;

UPDATE fib_flow_task_attempts
SET ended_at = ?4,
    outcome = c.outcome,
    error = c.error,
    timed_out = c.timed_out
FROM (SELECT json_extract(v, '$.task_id') AS task_id,
             json_extract(v, '$.attempt') AS attempt,
             json_extract(v, '$.outcome') AS outcome,
             json_extract(v, '$.error') AS error,
             json_extract(v, '$.timed_out') AS timed_out
      FROM (SELECT value AS v FROM json_each(?2) LIMIT -1)) AS c
WHERE fib_flow_task_attempts.task_id = c.task_id
  AND fib_flow_task_attempts.attempt = c.attempt
  AND fib_flow_task_attempts.ended_at IS NULL;

WITH event AS MATERIALIZED (SELECT key, value AS v FROM json_each(?3))
INSERT INTO fib_flow_task_events
    (task_id, root_id, parent_id, event_type, from_status, to_status, stage, worker_id,
     attempt, event_time, message, metadata)
SELECT json_extract(v, '$.task_id'), json_extract(v, '$.root_id'),
       json_extract(v, '$.parent_id'), json_extract(v, '$.event_type'),
       json_extract(v, '$.from_status'), json_extract(v, '$.to_status'),
       json_extract(v, '$.stage'), json_extract(v, '$.worker_id'),
       json_extract(v, '$.attempt'), ?4, json_extract(v, '$.message'),
       json_extract(v, '$.metadata')
FROM event
ORDER BY key;
