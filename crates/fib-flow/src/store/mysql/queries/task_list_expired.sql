-- Running rows whose lease lapsed (heartbeat timeout) or that ran past
-- their total timeout by more than the same grace (their owner enforces the
-- total timeout itself while it lives; this catches owners that died).
-- A task of a worker registered as active is not expired by its lease:
-- the registry decides that worker's liveness, and its tasks are
-- recovered through task_list_orphaned once it is reaped.
SELECT t.id, CONVERT(t.name USING utf8mb4) AS name, CONVERT(t.kind USING utf8mb4) AS kind,
       CONVERT(t.worker_id USING utf8mb4) AS worker_id, t.attempt, t.retry_count, t.max_attempts,
       t.retry_interval_ms, (t.started_at + t.timeout_ms + clock.grace < clock.now) AS total_timeout
FROM fib_flow_tasks AS t,
     (SELECT CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED) AS now, ? AS grace) AS clock
WHERE t.status = 'running'
  AND ((t.last_active_at < clock.now - clock.grace
        AND NOT EXISTS (SELECT 1 FROM fib_flow_workers AS w
                        WHERE w.worker_id = t.worker_id AND w.status = 'active'))
       OR t.started_at + t.timeout_ms + clock.grace < clock.now)
ORDER BY t.id
LIMIT ?
