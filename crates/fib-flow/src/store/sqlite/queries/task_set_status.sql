-- One guarded status change. ?12 is a JSON array of allowed source statuses;
-- ?13/?14 are the optional fence (worker id and attempt number).
UPDATE fib_flow_tasks
SET status = ?1,
    last_active_at = ?2,
    finished_at = CASE WHEN ?3 THEN ?2 ELSE NULL END,
    result = CASE WHEN ?4 THEN ?5 ELSE result END,
    error = CASE WHEN ?6 THEN ?7 ELSE error END,
    next_run_at = COALESCE(?8, next_run_at),
    retry_count = COALESCE(?9, retry_count),
    worker_id = CASE WHEN ?10 THEN NULL ELSE worker_id END
WHERE id = ?11
  AND status IN (SELECT value FROM json_each(?12))
  AND (?13 IS NULL OR (worker_id = ?13 AND attempt = ?14))
