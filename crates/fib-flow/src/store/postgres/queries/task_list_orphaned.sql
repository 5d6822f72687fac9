-- Running tasks whose worker is registered but no longer active: nobody
-- will finish them. Tasks of unregistered workers never join.
-- MATERIALIZED: gathered first (through the running-tasks partial index
-- and the workers' keys), then sorted; otherwise the planner walks every
-- task in id order hoping to fill the LIMIT early, which reads the whole
-- table when (as usual) nothing is orphaned.
WITH orphaned AS MATERIALIZED (
    SELECT t.id, t.name, t.worker_id, t.attempt, w.status AS worker_status
    FROM fib_flow_tasks AS t
    JOIN fib_flow_workers AS w ON w.worker_id = t.worker_id
    WHERE t.status = 'running' AND w.status <> 'active'
)
SELECT id, name, worker_id, attempt, worker_status
FROM orphaned
ORDER BY id
LIMIT $1
