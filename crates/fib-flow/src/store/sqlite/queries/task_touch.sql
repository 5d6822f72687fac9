-- A progress report or checkpoint of the attempt (?2, ?3) that owns
-- running task ?1: renews the lease when ?5, sets the snapshot columns
-- given. Returns the task when the attempt still owns it.
UPDATE fib_flow_tasks
SET last_active_at = CASE WHEN ?5 THEN ?4 ELSE last_active_at END,
    current_stage_name = COALESCE(?6, current_stage_name),
    progress_text = COALESCE(?7, progress_text),
    progress_percent = COALESCE(?8, progress_percent),
    last_event_at = ?4,
    last_event_type = ?9
WHERE id = ?1
  AND status = 'running'
  AND worker_id = ?2
  AND attempt = ?3
RETURNING id, name, status, stage, root_id, parent_id
