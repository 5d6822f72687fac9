-- Step 5 of retention_delete_batch: the attempts of every task of the
-- workflows (ids a JSON array). Id list first, as in
-- retention_delete_events.sql.
DELETE a FROM JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$')) AS w
STRAIGHT_JOIN fib_flow_task_attempts AS a ON a.task_id = w.id
