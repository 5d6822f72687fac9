-- Step 3 of lease_acquire (same transaction): the lease when the caller
-- holds it now.
SELECT CONVERT(name USING utf8mb4) AS name, CONVERT(holder USING utf8mb4) AS holder,
       acquired_at, renewed_at, expires_at
FROM fib_flow_leases
WHERE name = ? AND holder = ?
