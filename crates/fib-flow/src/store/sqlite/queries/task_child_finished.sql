-- Count one finished child on a parent still waiting at the child's stage.
UPDATE fib_flow_tasks
SET pending_children = pending_children - 1
WHERE id = ?1 AND status = 'suspended' AND stage = ?2 AND cycle = ?3 AND pending_children > 0
RETURNING id, kind, pending_children, on_child_failure
