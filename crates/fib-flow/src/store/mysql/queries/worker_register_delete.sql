-- Step 1 of worker_register: the worker's previous row, if any, goes.
DELETE FROM fib_flow_workers WHERE worker_id = ?
