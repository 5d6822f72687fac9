-- The ids task_delete_many deletes, locked (their events and attempts go first).
SELECT id FROM fib_flow_tasks
WHERE (? IS NULL OR tag = ?)
  AND (? IS NULL OR status = ?)
  AND (? IS NULL OR name = ?)
  AND (? IS NULL OR parent_id = ?)
  AND (? IS NULL OR id = ? OR root_id = ?)
  AND (? IS NULL OR suspend_reason = ?)
FOR UPDATE
