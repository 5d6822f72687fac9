-- The batch form of task_set_status.sql: several guarded status changes of
-- distinct tasks in one statement. Each parameter is an array with one
-- element per change, in task_set_status.sql's order ($1..$26), except
-- $13: each change's allowed source statuses, comma-joined. Returns the
-- tasks whose change applied.
WITH clock AS (
    SELECT (extract(epoch FROM now()) * 1000)::bigint AS now
),
change AS (
    SELECT *
    FROM unnest($1::text[], $2::boolean[], $3::boolean[], $4::text[], $5::boolean[],
                $6::text[], $7::boolean[], $8::bigint[], $9::bigint[], $10::bigint[],
                $11::boolean[], $12::bigint[], $13::text[], $14::text[], $15::bigint[],
                $16::boolean[], $17::boolean[], $18::bytea[], $19::boolean[], $20::text[],
                $21::bigint[], $22::text[], $23::boolean[], $24::boolean[], $25::bigint[],
                $26::text[])
        AS c(to_status, finishes, set_result, result, set_error, error, set_next, next_at,
             next_delay, retry_count, release_owner, id, from_list, fence_worker,
             fence_attempt, advance_stage, set_context, context, set_suspend, suspend_reason,
             child_count, on_child_failure, require_no_children, reset_stage,
             require_expired_ms, last_event_type)
)
UPDATE fib_flow_tasks AS t
SET previous_status = t.status,
    status = c.to_status,
    last_active_at = clock.now,
    finished_at = CASE WHEN c.finishes THEN clock.now ELSE NULL END,
    result = CASE WHEN c.set_result THEN c.result ELSE t.result END,
    error = CASE WHEN c.set_error THEN c.error ELSE t.error END,
    next_run_at = CASE WHEN c.set_next THEN COALESCE(c.next_at, clock.now + c.next_delay)
                       ELSE t.next_run_at END,
    retry_count = COALESCE(c.retry_count, t.retry_count),
    worker_id = CASE WHEN c.release_owner THEN NULL ELSE t.worker_id END,
    stage = CASE WHEN c.advance_stage THEN t.stage + 1 WHEN c.reset_stage THEN 0 ELSE t.stage END,
    cycle = CASE WHEN c.reset_stage THEN t.cycle + 1 ELSE t.cycle END,
    context = CASE WHEN c.set_context THEN c.context ELSE t.context END,
    suspend_reason = CASE WHEN c.set_suspend THEN c.suspend_reason ELSE t.suspend_reason END,
    -- A task that finishes or starts a new cycle waits for no children.
    pending_children = COALESCE(c.child_count,
                                CASE WHEN c.finishes OR c.reset_stage THEN 0
                                     ELSE t.pending_children END),
    total_children = t.total_children + COALESCE(c.child_count, 0),
    on_child_failure = COALESCE(c.on_child_failure, t.on_child_failure),
    last_event_at = clock.now,
    last_event_type = c.last_event_type
FROM change AS c, clock
WHERE t.id = c.id
  -- Reach the rows through the primary key: joined to a set-returning
  -- function alone, the planner may scan the whole table.
  AND t.id = ANY($12::bigint[])
  AND t.status = ANY(string_to_array(c.from_list, ','))
  AND (c.fence_worker IS NULL OR (t.worker_id = c.fence_worker AND t.attempt = c.fence_attempt))
  AND (NOT c.require_no_children OR t.pending_children = 0)
  AND (c.require_expired_ms IS NULL
       OR t.last_active_at < clock.now - c.require_expired_ms
       OR t.started_at + t.timeout_ms + c.require_expired_ms < clock.now)
RETURNING t.id, t.name, t.kind, t.status, t.previous_status, t.stage, t.worker_id, t.attempt,
          t.root_id, t.retry_count, t.next_run_at, t.parent_id, t.parent_stage, t.parent_cycle,
          t.error
