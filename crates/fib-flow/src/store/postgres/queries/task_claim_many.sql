-- One statement: per name (with its own limit) the best due rows, locked
-- with SKIP LOCKED so concurrent claimers take different rows; the best
-- $3 of those overall become running under worker $5 with a new attempt.
-- The status list is spelled out for the partial index
-- idx_fib_flow_tasks_claim; a unit test keeps it equal to
-- Transition::Claim's sources, which also guard the update ($6).
-- With $9 the transaction commits without waiting for its WAL flush
-- (synchronous_commit = off for this transaction only; see
-- Config::synchronous_claims); set here so it costs no round trip.
WITH clock AS (
    SELECT (extract(epoch FROM now()) * 1000)::bigint AS now,
           set_config('synchronous_commit',
                      CASE WHEN $9::boolean THEN 'off'
                           ELSE current_setting('synchronous_commit') END,
                      true) AS commit_mode
),
picked AS (
    SELECT t.id, t.priority, t.next_run_at
    FROM unnest($1::text[], $2::bigint[]) AS c(name, lim)
    CROSS JOIN LATERAL (
        SELECT id, priority, next_run_at
        FROM fib_flow_tasks
        WHERE name = c.name
          AND status IN ('pending', 'failed', 'timeout')
          AND next_run_at <= (SELECT now FROM clock)
        ORDER BY priority DESC, next_run_at, id
        LIMIT c.lim
        FOR UPDATE SKIP LOCKED
    ) AS t
    ORDER BY t.priority DESC, t.next_run_at, t.id
    LIMIT $3
)
UPDATE fib_flow_tasks AS task
SET previous_status = task.status,
    status = $4,
    worker_id = $5,
    attempt = task.attempt + 1,
    started_at = clock.now,
    last_active_at = clock.now,
    last_event_at = clock.now,
    last_event_type = CASE WHEN task.retry_count > 0 THEN $8 ELSE $7 END
FROM picked, clock
WHERE task.id = picked.id
  AND task.status = ANY($6)
RETURNING task.id, task.name, task.kind, task.status, task.priority, task.payload, task.tag,
          task.result, task.error, task.stage, task.cycle, task.timeout_ms, task.retry_count,
          task.max_attempts, task.retry_interval_ms, task.cron_expr, task.root_id,
          task.parent_id, task.parent_stage, task.total_children, task.pending_children,
          task.worker_id, task.attempt, task.suspend_reason, task.previous_status,
          task.current_stage_name,
          task.progress_text, task.progress_percent, task.last_event_at, task.last_event_type,
          task.created_at,
          task.next_run_at, task.started_at, task.last_active_at, task.finished_at
