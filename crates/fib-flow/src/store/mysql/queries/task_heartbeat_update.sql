-- Step 1 of task_heartbeat: one write renews every task the worker runs.
UPDATE fib_flow_tasks
SET last_active_at = CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)
WHERE status = 'running' AND worker_id = ?
