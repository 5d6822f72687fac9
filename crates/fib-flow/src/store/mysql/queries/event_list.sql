-- The events in scope (a task id, then a workflow root: exactly one is
-- set) matching the set filters, in the slice. Filters compare the
-- table's columns (byte-wise); text is read converted (see the records
-- view). Each sort key carries the ORDER marker, replaced by ASC or DESC.
SELECT id, task_id, root_id, parent_id, CONVERT(event_type USING utf8mb4) AS event_type,
       CONVERT(from_status USING utf8mb4) AS from_status,
       CONVERT(to_status USING utf8mb4) AS to_status, stage,
       CONVERT(worker_id USING utf8mb4) AS worker_id, attempt, event_time,
       CONVERT(message USING utf8mb4) AS message, CONVERT(metadata USING utf8mb4) AS metadata
FROM fib_flow_task_events
WHERE (task_id = ? OR root_id = ?)
  AND (? IS NULL OR parent_id = ?)
  AND (? IS NULL OR worker_id = ?)
  AND (JSON_LENGTH(?) = 0 OR JSON_CONTAINS(?, JSON_QUOTE(event_type)))
  AND (? IS NULL OR attempt = ?)
  AND (? IS NULL OR stage = ?)
  AND (? IS NULL OR event_time >= ?)
  AND (? IS NULL OR event_time <= ?)
ORDER BY event_time /*ORDER*/, id /*ORDER*/
LIMIT ? OFFSET ?
