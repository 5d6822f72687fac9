-- Step 2 of task_claim_many: take the chosen rows (a JSON array of
-- {id, status}: the status each had when step 1 locked it),
-- guarded by the claimable statuses (a JSON array), and open a new attempt
-- on each. A join with JSON_TABLE, not `id IN (SELECT … JSON_TABLE …)`:
-- MySQL/MariaDB do not optimise that subquery in an UPDATE and would scan
-- (and lock) the whole table.
UPDATE fib_flow_tasks AS t
JOIN JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$.id', status VARCHAR(32) PATH '$.status'))
    AS chosen ON t.id = chosen.id
SET t.previous_status = chosen.status,
    t.status = ?,
    t.worker_id = ?,
    t.attempt = t.attempt + 1,
    t.started_at = ?,
    t.last_active_at = ?,
    t.last_event_at = ?,
    t.last_event_type = CASE WHEN t.retry_count > 0 THEN ? ELSE ? END
WHERE JSON_CONTAINS(?, JSON_QUOTE(t.status))
