-- One worker with how many tasks run under it (the running index,
-- (status, worker_id, …), answers the count). Text is read converted
-- (see version 1 of the schema), filters compare the table's columns.
SELECT CONVERT(w.worker_id USING utf8mb4) AS worker_id, CONVERT(w.pod_id USING utf8mb4) AS pod_id,
       CONVERT(w.status USING utf8mb4) AS status, w.registered_at, w.last_seen_at, w.expires_at,
       w.superseded_at, CONVERT(w.superseded_by USING utf8mb4) AS superseded_by, w.dead_at,
       w.stopped_at, CONVERT(w.meta USING utf8mb4) AS meta,
       (SELECT COUNT(*) FROM fib_flow_tasks AS t
        WHERE t.status = 'running' AND t.worker_id = w.worker_id) AS running_tasks
FROM fib_flow_workers AS w
WHERE w.worker_id = ?
