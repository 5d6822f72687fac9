-- The events in scope (?1 a task, ?2 a workflow root: exactly one is set)
-- matching the set filters, in the slice (LIMIT -1: no limit). Each sort
-- key carries the ORDER marker, replaced by ASC or DESC.
SELECT id, task_id, root_id, parent_id, event_type, from_status, to_status, stage, worker_id,
       attempt, event_time, message, metadata
FROM fib_flow_task_events
WHERE (task_id = ?1 OR root_id = ?2)
  AND (?3 IS NULL OR parent_id = ?3)
  AND (?4 IS NULL OR worker_id = ?4)
  AND (json_array_length(?5) = 0 OR event_type IN (SELECT value FROM json_each(?5)))
  AND (?6 IS NULL OR attempt = ?6)
  AND (?7 IS NULL OR stage = ?7)
  AND (?8 IS NULL OR event_time >= ?8)
  AND (?9 IS NULL OR event_time <= ?9)
ORDER BY event_time /*ORDER*/, id /*ORDER*/
LIMIT ?10 OFFSET ?11
