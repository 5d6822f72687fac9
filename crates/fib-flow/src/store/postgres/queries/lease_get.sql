SELECT name, holder, acquired_at, renewed_at, expires_at
FROM fib_flow_leases
WHERE name = $1
