-- Step 1 of task_child_finished: count one finished child on a parent still
-- waiting at the child's stage. The row lock serialises children finishing
-- at once on several workers.
UPDATE fib_flow_tasks
SET pending_children = pending_children - 1
WHERE id = ? AND status = 'suspended' AND stage = ? AND cycle = ? AND pending_children > 0
