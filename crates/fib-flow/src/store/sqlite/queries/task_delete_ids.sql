-- Tasks by id (?1, a JSON array), after their events and attempts.
DELETE FROM fib_flow_tasks WHERE id IN (SELECT value FROM json_each(?1))
