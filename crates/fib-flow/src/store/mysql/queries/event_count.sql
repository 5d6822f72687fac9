-- How many events event_list.sql matches, whatever the slice.
SELECT COUNT(*)
FROM fib_flow_task_events
WHERE (task_id = ? OR root_id = ?)
  AND (? IS NULL OR parent_id = ?)
  AND (? IS NULL OR worker_id = ?)
  AND (JSON_LENGTH(?) = 0 OR JSON_CONTAINS(?, JSON_QUOTE(event_type)))
  AND (? IS NULL OR attempt = ?)
  AND (? IS NULL OR stage = ?)
  AND (? IS NULL OR event_time >= ?)
  AND (? IS NULL OR event_time <= ?)
