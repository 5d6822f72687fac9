-- Step 1 of task_claim_many, run once per name inside one BEGIN IMMEDIATE
-- transaction (SQLite has no UPDATE inside a CTE and no SKIP LOCKED; the
-- write lock serialises claimers instead). The status list is spelled out
-- so the partial index idx_fib_flow_tasks_claim applies; a unit test keeps it
-- equal to Transition::Claim's sources.
SELECT id, priority, next_run_at
FROM fib_flow_tasks
WHERE name = ?1
  AND status IN ('pending', 'failed', 'timeout')
  AND next_run_at <= ?2
ORDER BY priority DESC, next_run_at, id
LIMIT ?3
