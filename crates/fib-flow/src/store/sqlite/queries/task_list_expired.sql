-- Running rows whose lease lapsed (?2 = heartbeat timeout) or that ran past
-- their total timeout by more than the same grace (their owner enforces the
-- total timeout itself while it lives; this catches owners that died).
-- A task of a worker registered as active is not expired by its lease:
-- the registry decides that worker's liveness, and its tasks are
-- recovered through task_list_orphaned once it is reaped.
-- MATERIALIZED: see task_list_orphaned.sql (only running rows are read).
WITH expired AS MATERIALIZED (
    SELECT t.id, t.name, t.kind, t.worker_id, t.attempt, t.retry_count, t.max_attempts,
           t.retry_interval_ms, (t.started_at + t.timeout_ms + ?2 < ?1) AS total_timeout
    FROM fib_flow_tasks AS t
    WHERE t.status = 'running'
      AND ((t.last_active_at < ?1 - ?2
            AND NOT EXISTS (SELECT 1 FROM fib_flow_workers AS w
                            WHERE w.worker_id = t.worker_id AND w.status = 'active'))
           OR t.started_at + t.timeout_ms + ?2 < ?1)
)
SELECT id, name, kind, worker_id, attempt, retry_count, max_attempts, retry_interval_ms,
       total_timeout
FROM expired
ORDER BY id
LIMIT ?3
