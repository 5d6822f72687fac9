-- Step 1 of task_claim_many, once per name inside one transaction: lock
-- this name's best due rows, skipping rows other claimers hold. The
-- generated column `claimable` stands in for a partial index.
SELECT id, priority, next_run_at, CONVERT(status USING utf8mb4) AS status
FROM fib_flow_tasks
WHERE claimable = 1
  AND name = ?
  AND next_run_at <= ?
ORDER BY priority DESC, next_run_at, id
LIMIT ?
FOR UPDATE SKIP LOCKED
