-- Benchmark floor: task_submit_many.sql's task insert issued bare, one
-- autocommitted statement without the task_created events. $1 the status
-- of every row; $2..$12 one array per column, item i at index i (as
-- task_submit_many.sql binds them): name, kind, priority, payload, tag,
-- timeout_ms, max_attempts, retry_interval_ms, cron_expr, run_at (absolute
-- due time or null), delay_ms (else due at now + delay). Top-level rows
-- only. The insert trigger notifies idle workers once (per statement).
WITH clock AS (
    SELECT (extract(epoch FROM now()) * 1000)::bigint AS now
)
INSERT INTO fib_flow_tasks
    (name, kind, status, priority, payload, tag, timeout_ms, max_attempts,
     retry_interval_ms, cron_expr, created_at, next_run_at, last_event_at, last_event_type)
SELECT t.name, t.kind, $1, t.priority, t.payload, t.tag, t.timeout_ms, t.max_attempts,
       t.retry_interval_ms, t.cron_expr, clock.now, COALESCE(t.run_at, clock.now + t.delay_ms),
       clock.now, 'task_created'
FROM unnest($2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::bigint[],
            $8::bigint[], $9::bigint[], $10::text[], $11::bigint[], $12::bigint[])
    WITH ORDINALITY AS t(name, kind, priority, payload, tag, timeout_ms, max_attempts,
                         retry_interval_ms, cron_expr, run_at, delay_ms, n)
CROSS JOIN clock
ORDER BY t.n
