SELECT cron_expr, cron_tz, cron_misfire FROM fib_flow_tasks WHERE id = $1 AND kind = 'cron'
