-- Benchmark floor: empties every fib-flow table (not fib_flow_migrations),
-- statements sent as one command on the writer, and starts the
-- AUTOINCREMENT ids over.
DELETE FROM fib_flow_task_events;
DELETE FROM fib_flow_task_attempts;
DELETE FROM fib_flow_tasks;
DELETE FROM fib_flow_workers;
DELETE FROM fib_flow_leases;
DELETE FROM sqlite_sequence
WHERE name IN ('fib_flow_tasks', 'fib_flow_task_events', 'fib_flow_task_attempts');
