-- The events of the tasks in ?1 (a JSON array of ids), deleted with them.
DELETE FROM fib_flow_task_events WHERE task_id IN (SELECT value FROM json_each(?1))
