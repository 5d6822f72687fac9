-- fib-flow schema, version 4: MySQL's stored procedure for a single submit
-- (see migrations/mysql/0004_submit_procedure.sql). This backend inserts a
-- task and its event in one statement already, so nothing changes here;
-- the version exists so that every backend ships the same list.
SELECT 1;
