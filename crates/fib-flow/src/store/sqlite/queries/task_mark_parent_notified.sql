UPDATE fib_flow_tasks
SET parent_notified_at = ?2
WHERE id = ?1 AND parent_id IS NOT NULL AND parent_notified_at IS NULL
