-- How many events event_list.sql matches, whatever the slice.
SELECT COUNT(*)
FROM fib_flow_task_events
WHERE (task_id = $1 OR root_id = $2)
  AND ($3::bigint IS NULL OR parent_id = $3)
  AND ($4::text IS NULL OR worker_id = $4)
  AND (cardinality($5::text[]) = 0 OR event_type = ANY($5))
  AND ($6::bigint IS NULL OR attempt = $6)
  AND ($7::bigint IS NULL OR stage = $7)
  AND ($8::bigint IS NULL OR event_time >= $8)
  AND ($9::bigint IS NULL OR event_time <= $9)
