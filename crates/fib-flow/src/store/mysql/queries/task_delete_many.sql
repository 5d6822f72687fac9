DELETE FROM fib_flow_tasks
WHERE (? IS NULL OR tag = ?)
  AND (? IS NULL OR status = ?)
  AND (? IS NULL OR name = ?)
