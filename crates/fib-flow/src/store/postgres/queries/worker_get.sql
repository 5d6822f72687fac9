-- One worker with how many tasks run under it (the running-tasks partial
-- index answers the count).
SELECT w.worker_id, w.pod_id, w.status, w.registered_at, w.last_seen_at, w.expires_at,
       w.superseded_at, w.superseded_by, w.dead_at, w.stopped_at, w.meta,
       (SELECT COUNT(*) FROM fib_flow_tasks AS t
        WHERE t.worker_id = w.worker_id AND t.status = 'running') AS running_tasks
FROM fib_flow_workers AS w
WHERE w.worker_id = $1
