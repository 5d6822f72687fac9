-- The tasks' newest-event snapshot: ?1 is a JSON array of
-- [task_id, event_type] pairs, ?2 the events' time.
UPDATE fib_flow_tasks
SET last_event_at = ?2,
    last_event_type = latest.event_type
FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS event_type
      FROM json_each(?1)) AS latest
WHERE fib_flow_tasks.id = latest.id
