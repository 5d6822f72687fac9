-- How many events event_list.sql matches, whatever the slice.
SELECT COUNT(*)
FROM fib_flow_task_events
WHERE (task_id = ?1 OR root_id = ?2)
  AND (?3 IS NULL OR parent_id = ?3)
  AND (?4 IS NULL OR worker_id = ?4)
  AND (json_array_length(?5) = 0 OR event_type IN (SELECT value FROM json_each(?5)))
  AND (?6 IS NULL OR attempt = ?6)
  AND (?7 IS NULL OR stage = ?7)
  AND (?8 IS NULL OR event_time >= ?8)
  AND (?9 IS NULL OR event_time <= ?9)
