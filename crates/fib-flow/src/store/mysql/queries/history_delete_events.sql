-- The events of the tasks in a JSON array of ids, deleted with them.
DELETE e FROM fib_flow_task_events AS e
JOIN JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$')) AS gone ON e.task_id = gone.id
