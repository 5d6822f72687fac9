-- Step 4 of retention_delete_batch: should an event of a task of the
-- workflows (ids a JSON array) carry another root, it goes too. Id list
-- first, as in retention_delete_events.sql.
DELETE e FROM JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$')) AS w
STRAIGHT_JOIN fib_flow_task_events AS e ON e.task_id = w.id
