-- Task records (no context) matching the set filters, in the slice
-- (LIMIT -1: no limit). Each sort key carries the ORDER marker, replaced
-- by ASC or DESC.
SELECT * FROM fib_flow_task_records
WHERE (?1 IS NULL OR tag = ?1)
  AND (?2 IS NULL OR status = ?2)
  AND (?3 IS NULL OR name = ?3)
  AND (?4 IS NULL OR worker_id = ?4)
  AND (?5 IS NULL OR parent_id = ?5)
  AND (?6 IS NULL OR root_id = ?6)
  AND (?7 IS NULL OR kind = ?7)
  AND (?8 IS NULL OR id = ?8 OR root_id = ?8)
ORDER BY created_at /*ORDER*/, id /*ORDER*/
LIMIT ?9 OFFSET ?10
