-- One guarded status change. ?12 is a JSON array of allowed source statuses;
-- ?13/?14 are the optional fence (worker id and attempt number); ?22 refuses
-- a parent still waiting for children; ?24 re-checks an expired lease.
-- Returns the task when it applied.
UPDATE fib_flow_tasks
SET previous_status = status,
    status = ?1,
    last_active_at = ?2,
    finished_at = CASE WHEN ?3 THEN ?2 ELSE NULL END,
    result = CASE WHEN ?4 THEN ?5 ELSE result END,
    error = CASE WHEN ?6 THEN ?7 ELSE error END,
    next_run_at = COALESCE(?8, next_run_at),
    retry_count = COALESCE(?9, retry_count),
    worker_id = CASE WHEN ?10 THEN NULL ELSE worker_id END,
    stage = CASE WHEN ?15 THEN stage + 1 WHEN ?23 THEN 0 ELSE stage END,
    cycle = CASE WHEN ?23 THEN cycle + 1 ELSE cycle END,
    context = CASE WHEN ?16 THEN ?17 ELSE context END,
    suspend_reason = CASE WHEN ?18 THEN ?19 ELSE suspend_reason END,
    -- A task that finishes or starts a new cycle waits for no children.
    pending_children = COALESCE(?20, CASE WHEN ?3 OR ?23 THEN 0 ELSE pending_children END),
    total_children = total_children + COALESCE(?20, 0),
    on_child_failure = COALESCE(?21, on_child_failure),
    last_event_at = ?2,
    last_event_type = ?25
WHERE id = ?11
  AND status IN (SELECT value FROM json_each(?12))
  AND (?13 IS NULL OR (worker_id = ?13 AND attempt = ?14))
  AND (NOT ?22 OR pending_children = 0)
  AND (?24 IS NULL OR last_active_at < ?2 - ?24 OR started_at + timeout_ms + ?24 < ?2)
RETURNING id, name, kind, status, previous_status, stage, worker_id, attempt, root_id,
          retry_count, next_run_at, parent_id, parent_stage, parent_cycle, error
