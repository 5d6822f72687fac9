-- Step 2 of task_claim_many: take the chosen rows (ids as a JSON array),
-- guarded by the claimable statuses (a JSON array), and open a new attempt
-- on each. A join with JSON_TABLE, not `id IN (SELECT … JSON_TABLE …)`:
-- MySQL/MariaDB do not optimise that subquery in an UPDATE and would scan
-- (and lock) the whole table.
UPDATE fib_flow_tasks AS t
JOIN JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$')) AS chosen ON t.id = chosen.id
SET t.status = ?,
    t.worker_id = ?,
    t.attempt = t.attempt + 1,
    t.started_at = ?,
    t.last_active_at = ?
WHERE JSON_CONTAINS(?, JSON_QUOTE(t.status))
