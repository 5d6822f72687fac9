-- Takes or renews a lease in one statement ($3 = ttl): inserted when
-- missing; renewed when $2 holds it; taken over when the holder's lease
-- ended (strictly before now); otherwise left alone, and nothing is
-- returned. A concurrent caller waits for the row's lock and then
-- re-checks the WHERE against the committed row, so at most one wins.
-- SET reads the old row throughout, so `acquired_at` compares the old
-- holder.
INSERT INTO fib_flow_leases AS l (name, holder, acquired_at, renewed_at, expires_at)
SELECT $1, $2, clock.now, clock.now, clock.now + $3
FROM (SELECT (extract(epoch FROM now()) * 1000)::bigint AS now) AS clock
ON CONFLICT (name) DO UPDATE
SET holder = excluded.holder,
    acquired_at = CASE WHEN l.holder = excluded.holder THEN l.acquired_at
                       ELSE excluded.acquired_at END,
    renewed_at = excluded.renewed_at,
    expires_at = excluded.expires_at
WHERE l.holder = excluded.holder OR l.expires_at < excluded.renewed_at
RETURNING l.name, l.holder, l.acquired_at, l.renewed_at, l.expires_at
