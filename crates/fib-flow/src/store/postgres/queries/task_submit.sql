-- A top-level task and its task_created event in one statement (atomic
-- without a transaction): the task's columns as in task_insert.sql
-- ($1..$16), then the event's type, status, stage, message and metadata
-- ($17..$21); its task and root are the new id. The insert trigger
-- notifies idle workers.
WITH clock AS (
    SELECT (extract(epoch FROM now()) * 1000)::bigint AS now
),
task AS (
    INSERT INTO fib_flow_tasks
        (name, kind, status, priority, payload, tag, timeout_ms, max_attempts,
         retry_interval_ms, cron_expr, created_at, next_run_at, root_id, parent_id, parent_stage,
         parent_cycle, last_event_at, last_event_type)
    SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, clock.now, COALESCE($11, clock.now + $12),
           $13, $14, $15, $16, clock.now, $17
    FROM clock
    RETURNING id
),
event AS (
    INSERT INTO fib_flow_task_events
        (task_id, root_id, parent_id, event_type, from_status, to_status, stage, worker_id,
         attempt, event_time, message, metadata)
    SELECT task.id, task.id, NULL, $17, NULL, $18, $19, NULL, NULL, clock.now, $20, $21
    FROM task, clock
)
SELECT id FROM task
