-- Running rows whose lease lapsed ($1 = heartbeat timeout) or that ran past
-- their total timeout by more than the same grace (their owner enforces the
-- total timeout itself while it lives; this catches owners that died).
WITH clock AS (
    SELECT (extract(epoch FROM now()) * 1000)::bigint AS now
)
SELECT id, name, kind, worker_id, attempt, retry_count, max_attempts, retry_interval_ms,
       (started_at + timeout_ms + $1 < clock.now) AS total_timeout
FROM fib_flow_tasks, clock
WHERE status = 'running'
  AND (last_active_at < clock.now - $1 OR started_at + timeout_ms + $1 < clock.now)
ORDER BY id
LIMIT $2
