-- Which of fib-flow's tables ($1) in the current schema need a vacuum or
-- an analysis that nobody else will run: only when autovacuum is off (for
-- the server or for the table). Vacuum once the dead rows exceed $2 plus
-- $3 times the live rows; analyse once the rows changed since the last
-- analysis exceed $2 plus $4 times the live rows. The analysis matters as
-- much as the vacuum: it refreshes the size the planner sees, and with it
-- the cached plans of every connection (a plan made while a table was
-- small scans it whole once it is large). The statistics lag by up to a
-- second.
SELECT s.relname::text AS table_name,
       s.n_dead_tup > $2 + $3 * s.n_live_tup AS vacuum,
       s.n_mod_since_analyze > $2 + $4 * s.n_live_tup AS analyze
FROM pg_stat_user_tables AS s
JOIN pg_class AS c ON c.oid = s.relid
WHERE s.schemaname = current_schema()
  AND s.relname = ANY($1::text[])
  AND (s.n_dead_tup > $2 + $3 * s.n_live_tup
       OR s.n_mod_since_analyze > $2 + $4 * s.n_live_tup)
  AND (current_setting('autovacuum') = 'off'
       OR COALESCE(c.reloptions, '{}') @> ARRAY['autovacuum_enabled=false'])
ORDER BY s.relname
