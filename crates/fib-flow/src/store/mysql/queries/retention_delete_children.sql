-- Step 6 of retention_delete_batch: every task under the roots (a JSON
-- array). Id list first, as in retention_delete_events.sql.
DELETE t FROM JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$')) AS r
STRAIGHT_JOIN fib_flow_tasks AS t ON t.root_id = r.id
