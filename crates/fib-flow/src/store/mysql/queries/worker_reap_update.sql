-- Step 2 of worker_reap (same transaction): the locked workers (a JSON
-- array of ids) become dead at now. A join with JSON_TABLE: see
-- task_claim_many_update.sql.
UPDATE fib_flow_workers AS w
JOIN JSON_TABLE(?, '$[*]' COLUMNS (
    worker_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin PATH '$'
)) AS gone ON w.worker_id = gone.worker_id
SET w.status = 'dead', w.dead_at = ?
WHERE w.status = 'active'
