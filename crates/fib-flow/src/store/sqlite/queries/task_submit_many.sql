-- Many top-level tasks in one statement: ?1 a JSON array of rows (fields
-- named as the columns, absent when null; next_run_at already resolved),
-- ?2 the transaction's time. Rows are inserted in array order, so their
-- rowids increase in array order (RETURNING itself promises no order: the
-- caller sorts the ids). The events follow in the same transaction.
INSERT INTO fib_flow_tasks
    (name, kind, status, priority, payload, tag, timeout_ms, max_attempts,
     retry_interval_ms, cron_expr, created_at, next_run_at, last_event_at, last_event_type)
SELECT json_extract(value, '$.name'), json_extract(value, '$.kind'),
       json_extract(value, '$.status'), json_extract(value, '$.priority'),
       json_extract(value, '$.payload'), json_extract(value, '$.tag'),
       json_extract(value, '$.timeout_ms'), json_extract(value, '$.max_attempts'),
       json_extract(value, '$.retry_interval_ms'), json_extract(value, '$.cron_expr'), ?2,
       json_extract(value, '$.next_run_at'), ?2, json_extract(value, '$.last_event_type')
FROM json_each(?1)
ORDER BY key
RETURNING id
