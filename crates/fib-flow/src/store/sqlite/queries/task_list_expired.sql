-- Running rows whose lease lapsed (?2 = heartbeat timeout) or that ran past
-- their total timeout by more than the same grace (their owner enforces the
-- total timeout itself while it lives; this catches owners that died).
SELECT id, name, kind, worker_id, attempt, retry_count, max_attempts, retry_interval_ms,
       (started_at + timeout_ms + ?2 < ?1) AS total_timeout
FROM fib_flow_tasks
WHERE status = 'running'
  AND (last_active_at < ?1 - ?2 OR started_at + timeout_ms + ?2 < ?1)
ORDER BY id
LIMIT ?3
