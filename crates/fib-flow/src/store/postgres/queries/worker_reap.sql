-- Active workers whose lease ended (strictly before now) become dead;
-- returns their ids, sorted byte-wise (as on the other backends).
WITH reaped AS (
    UPDATE fib_flow_workers
    SET status = 'dead', dead_at = (extract(epoch FROM now()) * 1000)::bigint
    WHERE status = 'active' AND expires_at < (extract(epoch FROM now()) * 1000)::bigint
    RETURNING worker_id
)
SELECT worker_id FROM reaped ORDER BY worker_id COLLATE "C"
