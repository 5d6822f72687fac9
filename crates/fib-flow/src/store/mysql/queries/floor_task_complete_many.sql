-- Benchmark floor: the minimal batch completion, one autocommitted
-- statement. The rows among the first parameter (ids as a JSON array,
-- joined: see task_claim_many_update.sql for why not IN) still in the
-- status of the last parameter get what a completion writes
-- (task_set_status.sql): previous status, the new status, finish time,
-- result, no owner, the newest-event snapshot. No fence, no event, no
-- attempt. Parameters: ids, status, result, last_event_type, from status.
UPDATE fib_flow_tasks AS t
JOIN JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$')) AS done ON t.id = done.id
CROSS JOIN (SELECT CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED) AS now) AS clock
SET t.previous_status = t.status,
    t.status = ?,
    t.last_active_at = clock.now,
    t.finished_at = clock.now,
    t.result = ?,
    t.worker_id = NULL,
    t.last_event_at = clock.now,
    t.last_event_type = ?
WHERE t.status = ?
