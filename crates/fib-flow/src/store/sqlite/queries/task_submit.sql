-- One top-level task and its task_created event, sent as one command that
-- carries its own transaction: each SQLite statement is a round trip to
-- the driver's worker thread, and BEGIN and COMMIT would be two more.
-- sqlx numbers ?NNN parameters across the statements of one command:
-- ?1-?16 are task_insert.sql's, ?17-?25 the event's other fields. The event's
-- task and root are the new row (last_insert_rowid()). The caller reads
-- every row (the COMMIT runs after the RETURNING row is read) and closes
-- the connection when the command does not finish, so a transaction is
-- never left open on it.
BEGIN IMMEDIATE;

INSERT INTO fib_flow_tasks
    (name, kind, status, priority, payload, tag, timeout_ms, max_attempts,
     retry_interval_ms, cron_expr, created_at, next_run_at, root_id, parent_id, parent_stage, parent_cycle,
     last_event_at, last_event_type)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?11, 'task_created')
RETURNING id;

INSERT INTO fib_flow_task_events
    (task_id, root_id, parent_id, event_type, from_status, to_status, stage, worker_id,
     attempt, event_time, message, metadata)
VALUES (last_insert_rowid(), last_insert_rowid(), ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?11,
        ?24, ?25);

COMMIT;
