-- The ids task_delete_many deletes (their events and attempts go first).
SELECT id FROM fib_flow_tasks
WHERE (?1 IS NULL OR tag = ?1)
  AND (?2 IS NULL OR status = ?2)
  AND (?3 IS NULL OR name = ?3)
  AND (?4 IS NULL OR parent_id = ?4)
  AND (?5 IS NULL OR id = ?5 OR root_id = ?5)
  AND (?6 IS NULL OR suspend_reason = ?6)
