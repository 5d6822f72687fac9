-- Step 2 of task_heartbeat (same transaction): the leases renewed.
SELECT id, attempt FROM fib_flow_tasks WHERE status = 'running' AND worker_id = ?
