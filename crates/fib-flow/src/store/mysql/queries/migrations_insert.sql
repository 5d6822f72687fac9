INSERT INTO fib_flow_migrations (version, name, applied_at)
VALUES (?, ?, CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED))
