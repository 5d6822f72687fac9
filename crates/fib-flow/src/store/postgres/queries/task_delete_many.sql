-- The tasks matching the filter with their events and attempts; returns
-- how many tasks went.
WITH gone AS (
    DELETE FROM fib_flow_tasks
    WHERE ($1::text IS NULL OR tag = $1)
      AND ($2::text IS NULL OR status = $2)
      AND ($3::text IS NULL OR name = $3)
      AND ($4::bigint IS NULL OR parent_id = $4)
      AND ($5::bigint IS NULL OR id = $5 OR root_id = $5)
      AND ($6::text IS NULL OR suspend_reason = $6)
    RETURNING id
),
events AS (
    DELETE FROM fib_flow_task_events WHERE task_id IN (SELECT id FROM gone)
),
attempts AS (
    DELETE FROM fib_flow_task_attempts WHERE task_id IN (SELECT id FROM gone)
)
SELECT count(*) FROM gone
