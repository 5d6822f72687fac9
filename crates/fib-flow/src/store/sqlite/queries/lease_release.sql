-- Only the holder gives a lease up.
DELETE FROM fib_flow_leases WHERE name = ?1 AND holder = ?2
