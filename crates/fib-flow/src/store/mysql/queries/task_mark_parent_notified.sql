UPDATE fib_flow_tasks
SET parent_notified_at = CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)
WHERE id = ? AND parent_id IS NOT NULL AND parent_notified_at IS NULL
