-- Aggregates over a workflow's events; $2 is the checkpoint event type.
SELECT COUNT(*) AS events,
       COUNT(*) FILTER (WHERE event_type = $2) AS checkpoints,
       MAX(event_time) AS last_event_at
FROM fib_flow_task_events
WHERE root_id = $1
