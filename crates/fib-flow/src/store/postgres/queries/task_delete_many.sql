DELETE FROM fib_flow_tasks
WHERE ($1::text IS NULL OR tag = $1)
  AND ($2::text IS NULL OR status = $2)
  AND ($3::text IS NULL OR name = $3)
  AND ($4::bigint IS NULL OR parent_id = $4)
  AND ($5::bigint IS NULL OR id = $5 OR root_id = $5)
  AND ($6::text IS NULL OR suspend_reason = $6)
