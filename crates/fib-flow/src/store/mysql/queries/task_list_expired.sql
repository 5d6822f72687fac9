-- Running rows whose lease lapsed (heartbeat timeout) or that ran past
-- their total timeout by more than the same grace (their owner enforces the
-- total timeout itself while it lives; this catches owners that died).
SELECT id, CONVERT(name USING utf8mb4) AS name, CONVERT(kind USING utf8mb4) AS kind,
       CONVERT(worker_id USING utf8mb4) AS worker_id, attempt, retry_count, max_attempts, retry_interval_ms,
       (started_at + timeout_ms + clock.grace < clock.now) AS total_timeout
FROM fib_flow_tasks,
     (SELECT CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED) AS now, ? AS grace) AS clock
WHERE status = 'running'
  AND (last_active_at < clock.now - clock.grace OR started_at + timeout_ms + clock.grace < clock.now)
ORDER BY id
LIMIT ?
