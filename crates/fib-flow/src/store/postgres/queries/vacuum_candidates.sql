-- Which of fib-flow's tables ($1) in the current schema need a vacuum
-- that nobody else will run: only when autovacuum is off (for the server
-- or for the table), and only tables whose dead rows exceed $2 plus $3
-- times their live rows (the statistics lag by up to a second).
SELECT s.relname::text
FROM pg_stat_user_tables AS s
JOIN pg_class AS c ON c.oid = s.relid
WHERE s.schemaname = current_schema()
  AND s.relname = ANY($1::text[])
  AND s.n_dead_tup > $2 + $3 * s.n_live_tup
  AND (current_setting('autovacuum') = 'off'
       OR COALESCE(c.reloptions, '{}') @> ARRAY['autovacuum_enabled=false'])
ORDER BY s.relname
