-- Events in one statement, in array order, at the transaction's time: $1 is
-- a JSON array of events (fields as in NewEvent, absent when null); $2 the
-- JSON array of [task_id, event_type] pairs that updates each task's
-- newest-event snapshot in the same statement.
WITH clock AS (
    SELECT (extract(epoch FROM now()) * 1000)::bigint AS now
),
inserted AS (
    INSERT INTO fib_flow_task_events
        (task_id, root_id, parent_id, event_type, from_status, to_status, stage, worker_id,
         attempt, event_time, message, metadata)
    SELECT (e ->> 'task_id')::bigint, (e ->> 'root_id')::bigint, (e ->> 'parent_id')::bigint,
           e ->> 'event_type', e ->> 'from_status', e ->> 'to_status', (e ->> 'stage')::bigint,
           e ->> 'worker_id', (e ->> 'attempt')::bigint, clock.now, e ->> 'message',
           e ->> 'metadata'
    FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS batch(e, n), clock
    ORDER BY n
)
UPDATE fib_flow_tasks AS task
SET last_event_at = clock.now,
    last_event_type = latest.value ->> 1
FROM jsonb_array_elements($2::jsonb) AS latest(value), clock
WHERE task.id = (latest.value ->> 0)::bigint
