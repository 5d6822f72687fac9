-- Step 2 of task_claim_many: take the chosen rows (ids as a JSON array),
-- guarded by the claimable statuses, and open a new attempt on each.
UPDATE fib_flow_tasks
SET previous_status = status,
    status = ?1,
    worker_id = ?2,
    attempt = attempt + 1,
    started_at = ?3,
    last_active_at = ?3,
    last_event_at = ?3,
    last_event_type = CASE WHEN retry_count > 0 THEN ?7 ELSE ?6 END
WHERE id IN (SELECT value FROM json_each(?4))
  AND status IN (SELECT value FROM json_each(?5))
