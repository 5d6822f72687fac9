-- The claim (see Store::task_claim_many) in one statement, run inside the
-- caller's BEGIN IMMEDIATE transaction (SQLite has no SKIP LOCKED: the
-- write lock serialises claimers instead). SQLite has no LATERAL join
-- either, so each name's best due rows come from an arm of their own:
-- the arms placeholder below is replaced by one task_claim_many_arm.sql per name, joined with
-- UNION ALL, arm i reading its name and limit from ?(9+2i) and ?(10+2i).
-- The best ?4 of those overall become running under worker ?2 with a new
-- attempt, guarded by the claimable statuses (?5) and, with ?8, by the
-- worker still being active in the registry (a worker superseded or
-- reaped meanwhile claims nothing). ?1 is 'running', ?3 the transaction's
-- time, ?6 / ?7 the last event type of a first / later attempt.
UPDATE fib_flow_tasks
SET previous_status = status,
    status = ?1,
    worker_id = ?2,
    attempt = attempt + 1,
    started_at = ?3,
    last_active_at = ?3,
    last_event_at = ?3,
    last_event_type = CASE WHEN retry_count > 0 THEN ?7 ELSE ?6 END
WHERE id IN (SELECT id FROM ({arms}) ORDER BY priority DESC, next_run_at, id LIMIT ?4)
  AND status IN (SELECT value FROM json_each(?5))
  AND (NOT ?8 OR EXISTS (SELECT 1 FROM fib_flow_workers
                         WHERE worker_id = ?2 AND status = 'active'))
RETURNING id, name, kind, status, priority, payload, tag, result, error, stage, cycle,
          timeout_ms, retry_count, max_attempts, retry_interval_ms, cron_expr, root_id,
          parent_id, parent_stage, total_children, pending_children, worker_id, attempt,
          suspend_reason, previous_status, current_stage_name, progress_text,
          progress_percent, last_event_at, last_event_type, created_at, next_run_at,
          started_at, last_active_at, finished_at
