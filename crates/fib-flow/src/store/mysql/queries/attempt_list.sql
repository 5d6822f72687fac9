-- The attempts in scope (a task id, then a workflow root twice: exactly
-- one is set; a workflow's are those of the root and every task under it)
-- matching the set filters, in the slice. Each sort key carries the ORDER
-- marker, replaced by ASC or DESC.
SELECT a.id, a.task_id, a.attempt, CONVERT(a.worker_id USING utf8mb4) AS worker_id,
       a.started_at, a.ended_at, CONVERT(a.outcome USING utf8mb4) AS outcome,
       CONVERT(a.error USING utf8mb4) AS error, a.timed_out
FROM fib_flow_task_attempts AS a
WHERE (a.task_id = ?
       OR a.task_id IN (SELECT t.id FROM fib_flow_tasks AS t WHERE t.id = ? OR t.root_id = ?))
  AND (? IS NULL OR a.worker_id = ?)
  AND (? IS NULL OR a.outcome = ?)
  AND (? IS NULL OR a.started_at >= ?)
  AND (? IS NULL OR a.started_at <= ?)
  AND (? IS NULL OR a.ended_at >= ?)
  AND (? IS NULL OR a.ended_at <= ?)
  AND (NOT ? OR a.ended_at IS NULL)
ORDER BY a.attempt /*ORDER*/, a.id /*ORDER*/
LIMIT ? OFFSET ?
