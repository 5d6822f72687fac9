-- LIMIT NULL means no limit.
SELECT * FROM fib_flow_task_records
WHERE ($1::text IS NULL OR tag = $1)
  AND ($2::text IS NULL OR status = $2)
  AND ($3::text IS NULL OR name = $3)
ORDER BY created_at, id
LIMIT $4
