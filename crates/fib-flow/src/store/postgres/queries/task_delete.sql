-- One task with its events and attempts; returns how many tasks went.
WITH gone AS (
    DELETE FROM fib_flow_tasks WHERE id = $1 RETURNING id
),
events AS (
    DELETE FROM fib_flow_task_events WHERE task_id IN (SELECT id FROM gone)
),
attempts AS (
    DELETE FROM fib_flow_task_attempts WHERE task_id IN (SELECT id FROM gone)
)
SELECT count(*) FROM gone
