-- Step 3 of retention_delete_batch: the events carrying one of the roots
-- (a JSON array). The retention deletes read the id list first
-- (STRAIGHT_JOIN) and reach the rows through an index: a DELETE has no
-- semi-consistent read, so a scan would wait on (and lock) rows of other
-- workflows; `IN (SELECT … JSON_TABLE …)` is not optimised in a DELETE.
DELETE e FROM JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$')) AS r
STRAIGHT_JOIN fib_flow_task_events AS e ON e.root_id = r.id
