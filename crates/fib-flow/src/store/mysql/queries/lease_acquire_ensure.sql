-- Step 1 of lease_acquire: make sure the row exists and lock it. A new
-- row is the caller's lease (now, now, now + ttl); an existing one is left
-- as it is (`name = name` changes nothing) but locked, so concurrent
-- callers take turns. Not INSERT IGNORE, which would also swallow errors
-- such as a name too long.
INSERT INTO fib_flow_leases (name, holder, acquired_at, renewed_at, expires_at)
VALUES (?, ?, ?, ?, ?)
ON DUPLICATE KEY UPDATE name = name
