-- One guarded status change. $13 lists the allowed source statuses; $14 and
-- $15 are the optional fence (worker id and attempt number); $22 refuses a
-- parent still waiting for children. next_run_at changes when $7: to $8
-- (absolute) if given, else to now + $9. Returns the task when it applied.
WITH clock AS (
    SELECT (extract(epoch FROM now()) * 1000)::bigint AS now
)
UPDATE fib_flow_tasks
SET previous_status = fib_flow_tasks.status,
    status = $1,
    last_active_at = clock.now,
    finished_at = CASE WHEN $2 THEN clock.now ELSE NULL END,
    result = CASE WHEN $3 THEN $4::text ELSE result END,
    error = CASE WHEN $5 THEN $6::text ELSE error END,
    next_run_at = CASE WHEN $7 THEN COALESCE($8::bigint, clock.now + $9::bigint) ELSE next_run_at END,
    retry_count = COALESCE($10::bigint, retry_count),
    worker_id = CASE WHEN $11 THEN NULL ELSE worker_id END,
    stage = CASE WHEN $16 THEN stage + 1 WHEN $24 THEN 0 ELSE stage END,
    cycle = CASE WHEN $24 THEN cycle + 1 ELSE cycle END,
    context = CASE WHEN $17 THEN $18::bytea ELSE context END,
    suspend_reason = CASE WHEN $19 THEN $20::text ELSE suspend_reason END,
    -- A task that finishes or starts a new cycle waits for no children.
    pending_children = COALESCE($21::bigint, CASE WHEN $2 OR $24 THEN 0 ELSE pending_children END),
    total_children = total_children + COALESCE($21::bigint, 0),
    on_child_failure = COALESCE($22::text, on_child_failure),
    last_event_at = clock.now,
    last_event_type = $26
FROM clock
WHERE id = $12
  AND status = ANY($13)
  AND ($14::text IS NULL OR (worker_id = $14 AND attempt = $15::bigint))
  AND (NOT $23 OR pending_children = 0)
  AND ($25::bigint IS NULL OR last_active_at < clock.now - $25 OR started_at + timeout_ms + $25 < clock.now)
RETURNING id, name, kind, status, previous_status, stage, worker_id, attempt, root_id,
          retry_count, next_run_at, parent_id, parent_stage, parent_cycle, error
