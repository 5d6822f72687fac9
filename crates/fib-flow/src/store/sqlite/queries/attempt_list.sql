-- The attempts in scope (?1 a task, ?2 a workflow root: exactly one is
-- set; a workflow's are those of the root and every task under it)
-- matching the set filters, in the slice (LIMIT -1: no limit). Each sort
-- key carries the ORDER marker, replaced by ASC or DESC.
SELECT a.id, a.task_id, a.attempt, a.worker_id, a.started_at, a.ended_at, a.outcome, a.error,
       a.timed_out
FROM fib_flow_task_attempts AS a
WHERE (a.task_id = ?1
       OR a.task_id IN (SELECT t.id FROM fib_flow_tasks AS t WHERE t.id = ?2 OR t.root_id = ?2))
  AND (?3 IS NULL OR a.worker_id = ?3)
  AND (?4 IS NULL OR a.outcome = ?4)
  AND (?5 IS NULL OR a.started_at >= ?5)
  AND (?6 IS NULL OR a.started_at <= ?6)
  AND (?7 IS NULL OR a.ended_at >= ?7)
  AND (?8 IS NULL OR a.ended_at <= ?8)
  AND (NOT ?9 OR a.ended_at IS NULL)
ORDER BY a.attempt /*ORDER*/, a.id /*ORDER*/
LIMIT ?10 OFFSET ?11
