-- Tasks by id (a JSON array), after their events and attempts.
DELETE t FROM fib_flow_tasks AS t
JOIN JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$')) AS gone ON t.id = gone.id
