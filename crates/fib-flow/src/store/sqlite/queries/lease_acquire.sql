-- Takes or renews a lease in one statement (?3 = now, ?4 = ttl): inserted
-- when missing; renewed when ?2 holds it; taken over when the holder's
-- lease ended (strictly before now); otherwise left alone, and nothing is
-- returned. SET reads the old row throughout, so `acquired_at` compares
-- the old holder.
INSERT INTO fib_flow_leases AS l (name, holder, acquired_at, renewed_at, expires_at)
VALUES (?1, ?2, ?3, ?3, ?3 + ?4)
ON CONFLICT (name) DO UPDATE
SET holder = excluded.holder,
    acquired_at = CASE WHEN l.holder = excluded.holder THEN l.acquired_at
                       ELSE excluded.acquired_at END,
    renewed_at = excluded.renewed_at,
    expires_at = excluded.expires_at
WHERE l.holder = excluded.holder OR l.expires_at < excluded.renewed_at
RETURNING name, holder, acquired_at, renewed_at, expires_at
