-- Wakes idle workers of other processes (deduplicated per transaction).
SELECT pg_notify($1, '')::text
