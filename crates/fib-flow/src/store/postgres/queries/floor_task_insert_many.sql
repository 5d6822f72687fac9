-- Benchmark floor: task_submit_many.sql's task insert issued bare, one
-- autocommitted statement without the task_created events. $1 the
-- payloads, one array item per row; $2..$13 the shared columns as
-- task_submit_many.sql binds them (name, kind, status, priority, tag,
-- timeout_ms, max_attempts, retry_interval_ms, cron_expr, run_at, delay_ms,
-- last_event_type). The ids come from the column default, in input order.
-- The insert trigger notifies idle workers once (per statement).
WITH clock AS (
    SELECT (extract(epoch FROM now()) * 1000)::bigint AS now
)
INSERT INTO fib_flow_tasks
    (name, kind, status, priority, payload, tag, timeout_ms, max_attempts,
     retry_interval_ms, cron_expr, created_at, next_run_at, last_event_at, last_event_type)
SELECT $2::text, $3::text, $4::text, $5::bigint, t.payload, $6::text, $7::bigint, $8::bigint,
       $9::bigint, $10::text, clock.now, COALESCE($11::bigint, clock.now + $12::bigint), clock.now,
       $13::text
FROM unnest($1::text[]) AS t(payload)
CROSS JOIN clock
