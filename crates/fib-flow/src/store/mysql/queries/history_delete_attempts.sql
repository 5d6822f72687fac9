-- The attempts of the tasks in a JSON array of ids, deleted with them.
DELETE a FROM fib_flow_task_attempts AS a
JOIN JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$')) AS gone ON a.task_id = gone.id
