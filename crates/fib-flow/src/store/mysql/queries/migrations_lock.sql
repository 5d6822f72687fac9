-- Serialises concurrent setup() calls; MySQL DDL commits implicitly, so a
-- session lock is used instead of a transaction.
SELECT GET_LOCK('fib_flow_migrations', 60)
