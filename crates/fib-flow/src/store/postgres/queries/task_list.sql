-- LIMIT NULL means no limit.
SELECT * FROM fib_flow_task_records
WHERE ($1::text IS NULL OR tag = $1)
  AND ($2::text IS NULL OR status = $2)
  AND ($3::text IS NULL OR name = $3)
  AND ($5::bigint IS NULL OR parent_id = $5)
  AND ($6::bigint IS NULL OR id = $6 OR root_id = $6)
  AND ($7::text IS NULL OR suspend_reason = $7)
ORDER BY created_at, id
LIMIT $4
