-- Workers matching the optional filters (pod, status; each bound twice),
-- each with how many tasks run under it.
SELECT CONVERT(w.worker_id USING utf8mb4) AS worker_id, CONVERT(w.pod_id USING utf8mb4) AS pod_id,
       CONVERT(w.status USING utf8mb4) AS status, w.registered_at, w.last_seen_at, w.expires_at,
       w.superseded_at, CONVERT(w.superseded_by USING utf8mb4) AS superseded_by, w.dead_at,
       w.stopped_at, CONVERT(w.meta USING utf8mb4) AS meta,
       (SELECT COUNT(*) FROM fib_flow_tasks AS t
        WHERE t.status = 'running' AND t.worker_id = w.worker_id) AS running_tasks
FROM fib_flow_workers AS w
WHERE (? IS NULL OR w.pod_id = ?)
  AND (? IS NULL OR w.status = ?)
ORDER BY w.registered_at, w.worker_id
