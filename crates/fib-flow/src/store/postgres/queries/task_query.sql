-- Task records (no context) matching the set filters, in the slice
-- (LIMIT NULL: no limit). Each sort key carries the ORDER marker, replaced
-- by ASC or DESC.
SELECT * FROM fib_flow_task_records
WHERE ($1::text IS NULL OR tag = $1)
  AND ($2::text IS NULL OR status = $2)
  AND ($3::text IS NULL OR name = $3)
  AND ($4::text IS NULL OR worker_id = $4)
  AND ($5::bigint IS NULL OR parent_id = $5)
  AND ($6::bigint IS NULL OR root_id = $6)
  AND ($7::text IS NULL OR kind = $7)
  AND ($8::bigint IS NULL OR id = $8 OR root_id = $8)
ORDER BY created_at /*ORDER*/, id /*ORDER*/
LIMIT $9 OFFSET $10
