-- How many attempts attempt_list.sql matches, whatever the slice.
SELECT COUNT(*)
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
