SELECT * FROM fib_flow_task_records WHERE id = $1
