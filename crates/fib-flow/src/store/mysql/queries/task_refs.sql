-- The rows a batch of status changes wrote (see task_set_status.sql),
-- read back in the same transaction, which holds their locks: task_ref.sql
-- for a JSON array of ids. Sent as text (literal.rs): the `?` keeps a
-- line of its own, away from the quotes.
SELECT id, CONVERT(name USING utf8mb4) AS name, CONVERT(kind USING utf8mb4) AS kind,
       CONVERT(status USING utf8mb4) AS status,
       CONVERT(previous_status USING utf8mb4) AS previous_status, stage,
       CONVERT(worker_id USING utf8mb4) AS worker_id, attempt, root_id, retry_count,
       next_run_at, parent_id, parent_stage, parent_cycle, last_active_at,
       CONVERT(error USING utf8mb4) AS error
FROM fib_flow_tasks
WHERE id IN (SELECT j.id
             FROM JSON_TABLE(?,
                             '$[*]' COLUMNS (id BIGINT PATH '$')) AS j)
