-- Step 1 of task_heartbeat: one write renews the leases of the tasks this
-- worker is executing (ids as a JSON array, joined: see
-- task_claim_many_update.sql for why not IN).
UPDATE fib_flow_tasks AS t
JOIN JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$')) AS held ON t.id = held.id
SET t.last_active_at = CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)
WHERE t.status = 'running' AND t.worker_id = ?
