-- A registered worker claims only while it is active (the claim's write
-- transaction serialises it against a registration superseding it).
SELECT 1 FROM fib_flow_workers WHERE worker_id = ?1 AND status = 'active'
