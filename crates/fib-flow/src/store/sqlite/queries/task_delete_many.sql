DELETE FROM fib_flow_tasks
WHERE (?1 IS NULL OR tag = ?1)
  AND (?2 IS NULL OR status = ?2)
  AND (?3 IS NULL OR name = ?3)
