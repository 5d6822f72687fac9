-- Benchmark floor: empties every fib-flow table (not fib_flow_migrations),
-- one TRUNCATE TABLE per table, sent as one command (text protocol).
-- TRUNCATE drops and recreates each table's data, so no purge work is left
-- behind, and starts the AUTO_INCREMENT ids over.
TRUNCATE TABLE fib_flow_task_events;
TRUNCATE TABLE fib_flow_task_attempts;
TRUNCATE TABLE fib_flow_tasks;
TRUNCATE TABLE fib_flow_workers;
TRUNCATE TABLE fib_flow_leases;
