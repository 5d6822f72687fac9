-- How many tasks task_query.sql matches, whatever the slice.
SELECT COUNT(*) FROM fib_flow_tasks
WHERE (? IS NULL OR tag = ?)
  AND (? IS NULL OR status = ?)
  AND (? IS NULL OR name = ?)
  AND (? IS NULL OR worker_id = ?)
  AND (? IS NULL OR parent_id = ?)
  AND (? IS NULL OR root_id = ?)
  AND (? IS NULL OR kind = ?)
  AND (? IS NULL OR id = ? OR root_id = ?)
