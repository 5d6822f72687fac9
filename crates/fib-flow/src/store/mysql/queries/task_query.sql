-- Task records (no context) matching the set filters, in the slice.
-- Filters run on the table (byte-wise comparison), rows come from the
-- view. Each sort key carries the ORDER marker, replaced by ASC or DESC.
SELECT r.* FROM fib_flow_task_records AS r
WHERE r.id IN (
    SELECT id FROM fib_flow_tasks
    WHERE (? IS NULL OR tag = ?)
      AND (? IS NULL OR status = ?)
      AND (? IS NULL OR name = ?)
      AND (? IS NULL OR worker_id = ?)
      AND (? IS NULL OR parent_id = ?)
      AND (? IS NULL OR root_id = ?)
      AND (? IS NULL OR kind = ?)
      AND (? IS NULL OR id = ? OR root_id = ?)
)
ORDER BY r.created_at /*ORDER*/, r.id /*ORDER*/
LIMIT ? OFFSET ?
