-- The attempts of the tasks in ?1 (a JSON array of ids), deleted with them.
DELETE FROM fib_flow_task_attempts WHERE task_id IN (SELECT value FROM json_each(?1))
