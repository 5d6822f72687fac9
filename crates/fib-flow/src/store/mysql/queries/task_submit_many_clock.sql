-- The time a batch submit stamps on its rows (ms, database clock) and the
-- step between consecutive auto-increment ids.
SELECT CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED) AS now,
       CAST(@@auto_increment_increment AS SIGNED) AS step
