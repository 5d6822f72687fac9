SELECT CONVERT(cron_expr USING utf8mb4) AS cron_expr, CONVERT(cron_tz USING utf8mb4) AS cron_tz,
       CONVERT(cron_misfire USING utf8mb4) AS cron_misfire
FROM fib_flow_tasks
WHERE id = ? AND kind = 'cron'
