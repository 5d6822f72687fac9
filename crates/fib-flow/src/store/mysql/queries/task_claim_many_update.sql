-- Step 2 of task_claim_many: take the chosen rows (ids as a JSON array),
-- guarded by the claimable statuses, and open a new attempt on each.
UPDATE fib_flow_tasks
SET status = ?,
    worker_id = ?,
    attempt = attempt + 1,
    started_at = ?,
    last_active_at = ?
WHERE id IN (SELECT j.id FROM JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$')) AS j)
  AND status IN (SELECT j.s FROM JSON_TABLE(?, '$[*]' COLUMNS (s VARCHAR(32) PATH '$')) AS j)
