-- A progress report or checkpoint of the attempt ($2, $3) that owns
-- running task $1: renews the lease when $4, sets the snapshot columns
-- given. Returns the task when the attempt still owns it.
UPDATE fib_flow_tasks
SET last_active_at = CASE WHEN $4 THEN (extract(epoch FROM now()) * 1000)::bigint
                          ELSE last_active_at END,
    current_stage_name = COALESCE($5, current_stage_name),
    progress_text = COALESCE($6, progress_text),
    progress_percent = COALESCE($7, progress_percent),
    last_event_at = (extract(epoch FROM now()) * 1000)::bigint,
    last_event_type = $8
WHERE id = $1
  AND status = 'running'
  AND worker_id = $2
  AND attempt = $3
RETURNING id, name, status, stage, root_id, parent_id
