-- A registered worker claims only while it is active. The share lock is
-- held until the claim commits, so a registration superseding this worker
-- (or a reap) waits for the claim, then recovers what it took; one that
-- committed first makes this return nothing.
SELECT 1 FROM fib_flow_workers WHERE worker_id = ? AND status = 'active' LOCK IN SHARE MODE
