DELETE FROM fib_flow_tasks WHERE id = ?1
