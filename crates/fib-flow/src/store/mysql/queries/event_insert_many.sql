-- Events in one statement, in array order: the first parameter is their
-- time, the second a JSON array of events (fields as in NewEvent, absent
-- when null).
INSERT INTO fib_flow_task_events
    (task_id, root_id, parent_id, event_type, from_status, to_status, stage, worker_id,
     attempt, event_time, message, metadata)
SELECT e.task_id, e.root_id, e.parent_id, e.event_type, e.from_status, e.to_status, e.stage,
       e.worker_id, e.attempt, ?, e.message, e.metadata
FROM JSON_TABLE(?, '$[*]' COLUMNS (
        n           FOR ORDINALITY,
        task_id     BIGINT       PATH '$.task_id',
        root_id     BIGINT       PATH '$.root_id',
        parent_id   BIGINT       PATH '$.parent_id',
        event_type  VARCHAR(100) PATH '$.event_type',
        from_status VARCHAR(32)  PATH '$.from_status',
        to_status   VARCHAR(32)  PATH '$.to_status',
        stage       BIGINT       PATH '$.stage',
        worker_id   VARCHAR(255) PATH '$.worker_id',
        attempt     BIGINT       PATH '$.attempt',
        message     LONGTEXT     PATH '$.message',
        metadata    LONGTEXT     PATH '$.metadata')) AS e
ORDER BY e.n
