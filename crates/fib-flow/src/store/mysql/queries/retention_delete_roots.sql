-- Step 7 of retention_delete_batch: the roots (a JSON array). Id list
-- first, as in retention_delete_events.sql.
DELETE t FROM JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$')) AS r
STRAIGHT_JOIN fib_flow_tasks AS t ON t.id = r.id
