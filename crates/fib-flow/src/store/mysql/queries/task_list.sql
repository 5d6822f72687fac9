-- Filters run on the table (byte-wise comparison), rows come from the view.
SELECT r.* FROM fib_flow_task_records AS r
WHERE r.id IN (
    SELECT id FROM fib_flow_tasks
    WHERE (? IS NULL OR tag = ?)
      AND (? IS NULL OR status = ?)
      AND (? IS NULL OR name = ?)
      AND (? IS NULL OR parent_id = ?)
      AND (? IS NULL OR id = ? OR root_id = ?)
      AND (? IS NULL OR suspend_reason = ?)
)
ORDER BY r.created_at, r.id
LIMIT ?
