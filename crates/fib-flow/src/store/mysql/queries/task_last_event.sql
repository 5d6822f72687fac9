-- The tasks' newest-event snapshot: the first parameter is a JSON array of
-- [task_id, event_type] pairs, the second the events' time.
UPDATE fib_flow_tasks AS t
JOIN JSON_TABLE(?, '$[*]' COLUMNS (
        id         BIGINT       PATH '$[0]',
        event_type VARCHAR(100) PATH '$[1]')) AS latest ON t.id = latest.id
SET t.last_event_at = ?,
    t.last_event_type = latest.event_type
