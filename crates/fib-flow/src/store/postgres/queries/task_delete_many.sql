DELETE FROM fib_flow_tasks
WHERE ($1::text IS NULL OR tag = $1)
  AND ($2::text IS NULL OR status = $2)
  AND ($3::text IS NULL OR name = $3)
