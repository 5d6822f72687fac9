SELECT RELEASE_LOCK('fib_flow_migrations')
