-- One guarded status change: see the SQLite file of the same name. The
-- allowed source statuses arrive as a JSON array; next_run_at changes when
-- the flag is set, to the absolute time if given, else to now + the delay.
-- (No RETURNING in MySQL: task_ref.sql reads the row back in the same
-- transaction, which holds its lock.) A single-table UPDATE assigns left to
-- right, each assignment seeing the ones before it, so `previous_status`
-- takes the old status by coming first (no assignment reads a column set
-- before it otherwise); WHERE reads the row as it was. NOW(3) is fixed for
-- the statement.
UPDATE fib_flow_tasks
SET previous_status = status,
    status = ?,
    -- The transaction's time when an earlier write stamped one, else now;
    -- the assignments after this one read it back from last_active_at.
    last_active_at = COALESCE(?, CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)),
    finished_at = CASE WHEN ? THEN last_active_at ELSE NULL END,
    result = CASE WHEN ? THEN ? ELSE result END,
    error = CASE WHEN ? THEN ? ELSE error END,
    next_run_at = CASE WHEN ? THEN COALESCE(?, last_active_at + ?) ELSE next_run_at END,
    retry_count = COALESCE(?, retry_count),
    worker_id = CASE WHEN ? THEN NULL ELSE worker_id END,
    stage = CASE WHEN ? THEN stage + 1 WHEN ? THEN 0 ELSE stage END,
    cycle = CASE WHEN ? THEN cycle + 1 ELSE cycle END,
    context = CASE WHEN ? THEN ? ELSE context END,
    suspend_reason = CASE WHEN ? THEN ? ELSE suspend_reason END,
    total_children = total_children + COALESCE(?, 0),
    -- A task that finishes or starts a new cycle waits for no children.
    pending_children = COALESCE(?, CASE WHEN ? OR ? THEN 0 ELSE pending_children END),
    on_child_failure = COALESCE(?, on_child_failure),
    last_event_at = last_active_at,
    last_event_type = ?
WHERE id = ?
  AND JSON_CONTAINS(?, JSON_QUOTE(status))
  AND (? IS NULL OR (worker_id = ? AND attempt = ?))
  AND (NOT ? OR pending_children = 0)
  AND (? IS NULL OR last_active_at < CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED) - ? OR started_at + timeout_ms + ? < CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED))
