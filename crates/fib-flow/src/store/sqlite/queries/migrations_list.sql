SELECT version FROM fib_flow_migrations ORDER BY version
