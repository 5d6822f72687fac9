-- Step 1 of worker_register: registrations of one pod take turns (until
-- the transaction ends), so two starting at once cannot miss each other's
-- uncommitted rows and both stay active.
SELECT pg_advisory_xact_lock(hashtext('fib_flow_workers:' || $1))
