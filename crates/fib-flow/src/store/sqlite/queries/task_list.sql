-- LIMIT -1 means no limit in SQLite.
SELECT * FROM fib_flow_task_records
WHERE (?1 IS NULL OR tag = ?1)
  AND (?2 IS NULL OR status = ?2)
  AND (?3 IS NULL OR name = ?3)
  AND (?5 IS NULL OR parent_id = ?5)
  AND (?6 IS NULL OR id = ?6 OR root_id = ?6)
  AND (?7 IS NULL OR suspend_reason = ?7)
ORDER BY created_at, id
LIMIT ?4
