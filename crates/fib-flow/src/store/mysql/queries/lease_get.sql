SELECT CONVERT(name USING utf8mb4) AS name, CONVERT(holder USING utf8mb4) AS holder,
       acquired_at, renewed_at, expires_at
FROM fib_flow_leases
WHERE name = ?
