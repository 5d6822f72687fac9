-- Step 2 of lease_acquire (same transaction, row locked): renew when the
-- caller holds the lease; take it over when the holder's ended (strictly
-- before now); otherwise change nothing. MySQL assigns left to right with
-- the values already assigned, so `holder` comes last and the conditions
-- before it read the old holder; the WHERE reads the old row.
-- Params: holder, now (acquired_at), now, now + ttl, holder, name,
-- holder, now.
UPDATE fib_flow_leases
SET acquired_at = IF(holder = ?, acquired_at, ?),
    renewed_at = ?,
    expires_at = ?,
    holder = ?
WHERE name = ? AND (holder = ? OR expires_at < ?)
