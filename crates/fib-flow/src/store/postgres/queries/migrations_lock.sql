-- Serialises concurrent setup() calls (held until the transaction ends).
SELECT pg_advisory_xact_lock(hashtext('fib_flow_migrations'))
