-- A batch of top-level tasks and their task_created events in one
-- statement (atomic without a transaction). The tasks share every column
-- but the payload, so each shared value is bound once: $1 the payloads,
-- one array item per task, in input order; $2..$12 the shared task
-- columns (name, kind, status, priority, tag, timeout_ms, max_attempts,
-- retry_interval_ms, cron_expr, run_at: an absolute due time or null,
-- delay_ms: else due at now + delay); $13 their last_event_type; $14..$21
-- the shared event columns (parent_id, from_status, to_status, stage,
-- worker_id, attempt, message, metadata), the event type being $13. Each
-- event's task and root are its task's new id.
-- The ids come from the column default, drawn row by row as unnest yields
-- the payloads in array order, so within this statement they ascend in
-- input order (a concurrent insert may take ids in between, never
-- reorder these): sorted by id, the tasks are in input order. The events
-- are inserted in that order (their ids ascend in it) and the ids come
-- back in it. The insert trigger notifies idle workers once (per
-- statement).
WITH clock AS (
    SELECT (extract(epoch FROM now()) * 1000)::bigint AS now
),
task AS (
    INSERT INTO fib_flow_tasks
        (name, kind, status, priority, payload, tag, timeout_ms, max_attempts,
         retry_interval_ms, cron_expr, created_at, next_run_at, last_event_at, last_event_type)
    SELECT $2::text, $3::text, $4::text, $5::bigint, t.payload, $6::text, $7::bigint, $8::bigint,
           $9::bigint, $10::text, clock.now, COALESCE($11::bigint, clock.now + $12::bigint),
           clock.now, $13::text
    FROM unnest($1::text[]) AS t(payload)
    CROSS JOIN clock
    RETURNING id
),
event AS (
    INSERT INTO fib_flow_task_events
        (task_id, root_id, parent_id, event_type, from_status, to_status, stage, worker_id,
         attempt, event_time, message, metadata)
    SELECT task.id, task.id, $14::bigint, $13::text, $15::text, $16::text, $17::bigint,
           $18::text, $19::bigint, clock.now, $20::text, $21::text
    FROM task, clock
    ORDER BY task.id
)
SELECT id FROM task ORDER BY id
