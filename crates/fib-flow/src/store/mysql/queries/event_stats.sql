-- Aggregates over a workflow's events (the checkpoint event type first).
SELECT COUNT(*) AS events,
       COUNT(CASE WHEN event_type = ? THEN 1 END) AS checkpoints,
       MAX(event_time) AS last_event_at
FROM fib_flow_task_events
WHERE root_id = ?
