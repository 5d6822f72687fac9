-- Many top-level tasks and their task_created events in one statement
-- (atomic without a transaction). $1..$16: one array per column of
-- task_insert.sql's parameters, item i at index i; $17..$25 the events'
-- columns (parent_id, event_type, from_status, to_status, stage,
-- worker_id, attempt, message, metadata), one array each in the same
-- order (their task and root are the new ids). Arrays rather than one
-- JSON document: nothing to parse per row. A column that is null in every
-- row may come as a null array (unnest pads it with nulls).
-- One unnest of all the arrays: each row holds a task and its event. The
-- ids are drawn first, in input order, with the item's ordinal kept beside
-- them: the events are inserted in input order (their ids ascend in it),
-- and the ids come back in it. The tasks' row order needs no sort. The insert trigger notifies idle workers once (per statement).
WITH clock AS (
    SELECT (extract(epoch FROM now()) * 1000)::bigint AS now
),
-- The id sequence, looked up once.
id_sequence AS (
    SELECT pg_get_serial_sequence('fib_flow_tasks', 'id')::regclass AS id
),
input AS (
    SELECT nextval(id_sequence.id) AS id, t.*
    FROM id_sequence,
         unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[],
                $7::bigint[], $8::bigint[], $9::bigint[], $10::text[], $11::bigint[],
                $12::bigint[], $13::bigint[], $14::bigint[], $15::bigint[], $16::bigint[],
                $17::bigint[], $18::text[], $19::text[], $20::text[], $21::bigint[],
                $22::text[], $23::bigint[], $24::text[], $25::text[])
        WITH ORDINALITY AS t(name, kind, status, priority, payload, tag, timeout_ms,
                             max_attempts, retry_interval_ms, cron_expr, run_at, delay_ms,
                             root_id, parent_id, parent_stage, parent_cycle,
                             event_parent_id, event_type, from_status, to_status, stage,
                             worker_id, attempt, message, metadata, n)
),
task AS (
    INSERT INTO fib_flow_tasks
        (id, name, kind, status, priority, payload, tag, timeout_ms, max_attempts,
         retry_interval_ms, cron_expr, created_at, next_run_at, root_id, parent_id, parent_stage,
         parent_cycle, last_event_at, last_event_type)
    SELECT input.id, input.name, input.kind, input.status, input.priority, input.payload,
           input.tag, input.timeout_ms, input.max_attempts, input.retry_interval_ms,
           input.cron_expr, clock.now, COALESCE(input.run_at, clock.now + input.delay_ms),
           input.root_id, input.parent_id, input.parent_stage, input.parent_cycle, clock.now,
           input.event_type
    FROM input, clock
),
event AS (
    INSERT INTO fib_flow_task_events
        (task_id, root_id, parent_id, event_type, from_status, to_status, stage, worker_id,
         attempt, event_time, message, metadata)
    SELECT input.id, input.id, input.event_parent_id, input.event_type, input.from_status,
           input.to_status, input.stage, input.worker_id, input.attempt, clock.now,
           input.message, input.metadata
    FROM input, clock
    ORDER BY input.n
)
SELECT id FROM input ORDER BY n
