-- Filters run on the table (byte-wise comparison), rows come from the view.
SELECT r.* FROM fib_flow_task_records AS r
WHERE r.id IN (
    SELECT id FROM fib_flow_tasks
    WHERE (? IS NULL OR tag = ?)
      AND (? IS NULL OR status = ?)
      AND (? IS NULL OR name = ?)
)
ORDER BY r.created_at, r.id
LIMIT ?
