-- The batch form of task_set_status.sql: several guarded status changes of
-- distinct tasks in one statement (each statement costs a round trip to
-- the driver's worker thread). ?1 is a JSON array with one object per
-- change, its fields named after task_set_status.sql's parameters (the
-- context as hex text); ?2 is the transaction's time. Returns the tasks
-- whose change applied.
WITH change AS (
    SELECT json_extract(v, '$.id') AS c_id,
           json_extract(v, '$.to') AS c_to,
           json_extract(v, '$.finishes') AS c_finishes,
           json_extract(v, '$.set_result') AS c_set_result,
           json_extract(v, '$.result') AS c_result,
           json_extract(v, '$.set_error') AS c_set_error,
           json_extract(v, '$.error') AS c_error,
           json_extract(v, '$.next_run_at') AS c_next_run_at,
           json_extract(v, '$.retry_count') AS c_retry_count,
           json_extract(v, '$.release_owner') AS c_release_owner,
           json_extract(v, '$.from') AS c_from,
           json_extract(v, '$.fence_worker') AS c_fence_worker,
           json_extract(v, '$.fence_attempt') AS c_fence_attempt,
           json_extract(v, '$.advance_stage') AS c_advance_stage,
           json_extract(v, '$.set_context') AS c_set_context,
           unhex(json_extract(v, '$.context')) AS c_context,
           json_extract(v, '$.set_suspend') AS c_set_suspend,
           json_extract(v, '$.suspend_reason') AS c_suspend_reason,
           json_extract(v, '$.child_count') AS c_child_count,
           json_extract(v, '$.on_child_failure') AS c_on_child_failure,
           json_extract(v, '$.require_no_children') AS c_require_no_children,
           json_extract(v, '$.reset_stage') AS c_reset_stage,
           json_extract(v, '$.require_expired_ms') AS c_require_expired_ms,
           json_extract(v, '$.last_event_type') AS c_last_event_type
    FROM (SELECT value AS v FROM json_each(?1) LIMIT -1)
)
UPDATE fib_flow_tasks
SET previous_status = status,
    status = c_to,
    last_active_at = ?2,
    finished_at = CASE WHEN c_finishes THEN ?2 ELSE NULL END,
    result = CASE WHEN c_set_result THEN c_result ELSE result END,
    error = CASE WHEN c_set_error THEN c_error ELSE error END,
    next_run_at = COALESCE(c_next_run_at, next_run_at),
    retry_count = COALESCE(c_retry_count, retry_count),
    worker_id = CASE WHEN c_release_owner THEN NULL ELSE worker_id END,
    stage = CASE WHEN c_advance_stage THEN stage + 1 WHEN c_reset_stage THEN 0 ELSE stage END,
    cycle = CASE WHEN c_reset_stage THEN cycle + 1 ELSE cycle END,
    context = CASE WHEN c_set_context THEN c_context ELSE context END,
    suspend_reason = CASE WHEN c_set_suspend THEN c_suspend_reason ELSE suspend_reason END,
    -- A task that finishes or starts a new cycle waits for no children.
    pending_children = COALESCE(c_child_count,
                                CASE WHEN c_finishes OR c_reset_stage THEN 0
                                     ELSE pending_children END),
    total_children = total_children + COALESCE(c_child_count, 0),
    on_child_failure = COALESCE(c_on_child_failure, on_child_failure),
    last_event_at = ?2,
    last_event_type = c_last_event_type
FROM change
WHERE id = c_id
  AND status IN (SELECT value FROM json_each(c_from))
  AND (c_fence_worker IS NULL OR (worker_id = c_fence_worker AND attempt = c_fence_attempt))
  AND (NOT c_require_no_children OR pending_children = 0)
  AND (c_require_expired_ms IS NULL
       OR last_active_at < ?2 - c_require_expired_ms
       OR started_at + timeout_ms + c_require_expired_ms < ?2)
RETURNING id, name, kind, status, previous_status, stage, worker_id, attempt, root_id,
          retry_count, next_run_at, parent_id, parent_stage, parent_cycle, error
