-- A progress report or checkpoint of the attempt (worker id, attempt: the
-- last two parameters) that owns running task: stamps the transaction's
-- time (the first parameter, else now; assignments run left to right), renews
-- the lease when the second is true, sets the snapshot columns given.
UPDATE fib_flow_tasks
SET last_event_at = COALESCE(?, CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)),
    last_active_at = CASE WHEN ? THEN last_event_at ELSE last_active_at END,
    current_stage_name = COALESCE(?, current_stage_name),
    progress_text = COALESCE(?, progress_text),
    progress_percent = COALESCE(?, progress_percent),
    last_event_type = ?
WHERE id = ?
  AND status = 'running'
  AND worker_id = ?
  AND attempt = ?
