-- A progress report or checkpoint of the attempt (worker id, attempt: the
-- last two parameters) that owns running task (the fifth): renews the lease
-- when the first is true, sets the snapshot columns given.
UPDATE fib_flow_tasks
SET last_active_at = CASE WHEN ? THEN CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)
                          ELSE last_active_at END,
    current_stage_name = COALESCE(?, current_stage_name),
    progress_text = COALESCE(?, progress_text),
    progress_percent = COALESCE(?, progress_percent),
    last_event_at = CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED),
    last_event_type = ?
WHERE id = ?
  AND status = 'running'
  AND worker_id = ?
  AND attempt = ?
