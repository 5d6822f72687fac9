-- Benchmark floor: the minimal batch completion, one autocommitted
-- statement. The rows among ?1 (ids as a JSON array) still in status ?2
-- get status ?3 with what a completion writes (task_set_status.sql):
-- previous status, finish time ?6, result ?4, no owner, the newest-event
-- snapshot (?5). No fence, no event, no attempt.
UPDATE fib_flow_tasks
SET previous_status = status,
    status = ?3,
    last_active_at = ?6,
    finished_at = ?6,
    result = ?4,
    worker_id = NULL,
    last_event_at = ?6,
    last_event_type = ?5
WHERE id IN (SELECT value FROM json_each(?1))
  AND status = ?2
