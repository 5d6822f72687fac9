-- One top-level task and its task_created event: the procedure of
-- migrations/mysql/0004_submit_procedure.sql, one prepared call. Binds,
-- in order: name, kind, status, priority, payload, tag, timeout_ms,
-- max_attempts, retry_interval_ms, cron_expr, next_run_at, delay_ms,
-- root_id, parent_id, parent_stage, parent_cycle; then the event's
-- event_type, parent_id, from_status, to_status, stage, worker_id, attempt,
-- message, metadata (bind_created_event). Returns the committed task's id.
CALL fib_flow_submit_task(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
