-- Benchmark floor: the batch submit's task insert issued bare, one
-- autocommitted statement without the task_created events. The first
-- parameter is the status of every row; the second a JSON array of rows
-- (fields named as the columns, absent when null; the due time as run_at,
-- absolute, or delay_ms from the statement's clock). Top-level rows only.
INSERT INTO fib_flow_tasks
    (name, kind, status, priority, payload, tag, timeout_ms, max_attempts,
     retry_interval_ms, cron_expr, created_at, next_run_at, last_event_at, last_event_type)
SELECT r.name, r.kind, ?, r.priority, r.payload, r.tag, r.timeout_ms, r.max_attempts,
       r.retry_interval_ms, r.cron_expr, clock.now, COALESCE(r.run_at, clock.now + r.delay_ms),
       clock.now, 'task_created'
FROM (SELECT CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED) AS now) AS clock
CROSS JOIN JSON_TABLE(?, '$[*]' COLUMNS (
        n                 FOR ORDINALITY,
        name              VARCHAR(255) PATH '$.name',
        kind              VARCHAR(16)  PATH '$.kind',
        priority          BIGINT       PATH '$.priority',
        payload           LONGTEXT     PATH '$.payload',
        tag               VARCHAR(255) PATH '$.tag',
        timeout_ms        BIGINT       PATH '$.timeout_ms',
        max_attempts      BIGINT       PATH '$.max_attempts',
        retry_interval_ms BIGINT       PATH '$.retry_interval_ms',
        cron_expr         VARCHAR(255) PATH '$.cron_expr',
        run_at            BIGINT       PATH '$.run_at',
        delay_ms          BIGINT       PATH '$.delay_ms')) AS r
ORDER BY r.n
