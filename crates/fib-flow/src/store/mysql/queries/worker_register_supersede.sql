-- Step 4 of worker_register: the locked workers (a JSON array of ids) are
-- superseded by this one at now. A join with JSON_TABLE: see
-- task_claim_many_update.sql.
UPDATE fib_flow_workers AS w
JOIN JSON_TABLE(?, '$[*]' COLUMNS (
    worker_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin PATH '$'
)) AS old ON w.worker_id = old.worker_id
SET w.status = 'superseded', w.superseded_at = ?, w.superseded_by = ?
WHERE w.status = 'active'
