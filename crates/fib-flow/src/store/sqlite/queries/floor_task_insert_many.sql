-- Benchmark floor: task_submit_many.sql's task insert issued bare, one
-- autocommitted statement without the task_created events. ?1 the status
-- of every row; ?2 a JSON array of rows (fields named as the columns,
-- absent when null; the due time as run_at, absolute, or delay_ms from
-- ?3); ?3 the statement's time. Top-level rows only.
INSERT INTO fib_flow_tasks
    (name, kind, status, priority, payload, tag, timeout_ms, max_attempts,
     retry_interval_ms, cron_expr, created_at, next_run_at, last_event_at, last_event_type)
SELECT json_extract(value, '$.name'), json_extract(value, '$.kind'), ?1,
       json_extract(value, '$.priority'), json_extract(value, '$.payload'),
       json_extract(value, '$.tag'), json_extract(value, '$.timeout_ms'),
       json_extract(value, '$.max_attempts'), json_extract(value, '$.retry_interval_ms'),
       json_extract(value, '$.cron_expr'), ?3,
       COALESCE(json_extract(value, '$.run_at'), ?3 + json_extract(value, '$.delay_ms')),
       ?3, 'task_created'
FROM json_each(?2)
ORDER BY key
