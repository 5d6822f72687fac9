-- Benchmark floor: empties every fib-flow table (not fib_flow_migrations)
-- in one statement. TRUNCATE leaves no dead tuples behind (a DELETE would,
-- until vacuumed) and RESTART IDENTITY starts the ids over.
TRUNCATE fib_flow_tasks, fib_flow_task_events, fib_flow_task_attempts, fib_flow_workers,
         fib_flow_leases
    RESTART IDENTITY
