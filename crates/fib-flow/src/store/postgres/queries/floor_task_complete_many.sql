-- Benchmark floor: the minimal batch completion, one autocommitted
-- statement. The rows among $1 (ids) still in status $2 get status $3 with
-- what a completion writes (task_set_status.sql): previous status, finish
-- time, result $4, no owner, the newest-event snapshot ($5). No fence, no
-- event, no attempt.
WITH clock AS (
    SELECT (extract(epoch FROM now()) * 1000)::bigint AS now
)
UPDATE fib_flow_tasks
SET previous_status = fib_flow_tasks.status,
    status = $3,
    last_active_at = clock.now,
    finished_at = clock.now,
    result = $4,
    worker_id = NULL,
    last_event_at = clock.now,
    last_event_type = $5
FROM clock
WHERE id = ANY($1)
  AND status = $2
