-- One name's arm of task_claim_many.sql: its best due rows, at most its
-- limit. The status list is spelled out so the partial index
-- idx_fib_flow_tasks_claim applies; a unit test keeps it equal to
-- Transition::Claim's sources.
SELECT * FROM (
    SELECT id, priority, next_run_at
    FROM fib_flow_tasks
    WHERE name = ?{name}
      AND status IN ('pending', 'failed', 'timeout')
      AND next_run_at <= ?3
    ORDER BY priority DESC, next_run_at, id
    LIMIT ?{limit}
)
