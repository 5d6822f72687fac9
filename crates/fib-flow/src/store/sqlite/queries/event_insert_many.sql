-- Events in one statement: ?1 is a JSON array of events (fields as in
-- NewEvent, absent when null), inserted in array order at time ?2.
INSERT INTO fib_flow_task_events
    (task_id, root_id, parent_id, event_type, from_status, to_status, stage, worker_id,
     attempt, event_time, message, metadata)
SELECT json_extract(value, '$.task_id'), json_extract(value, '$.root_id'),
       json_extract(value, '$.parent_id'), json_extract(value, '$.event_type'),
       json_extract(value, '$.from_status'), json_extract(value, '$.to_status'),
       json_extract(value, '$.stage'), json_extract(value, '$.worker_id'),
       json_extract(value, '$.attempt'), ?2, json_extract(value, '$.message'),
       json_extract(value, '$.metadata')
FROM json_each(?1)
ORDER BY key
