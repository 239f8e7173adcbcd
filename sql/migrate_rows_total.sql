--
-- migrate_rows_total: rows_total, the progress figure of a table's copy, is
-- the exact count of a table of at most 8192 pages and the planner's
-- estimate of a larger one, so that preparing does not scan a large table;
-- rows_copied and the verification stay exact
--
CREATE EXTENSION splitdb CASCADE;
SELECT current_database() AS source_db \gset
SELECT splitdb_add_service('rt_svc');

-- large: one row a page (900-byte rows, fillfactor 10), 8,300 pages
CREATE TABLE rt_large (id bigint PRIMARY KEY, pad text)
	WITH (fillfactor = 10, autovacuum_enabled = off);
INSERT INTO rt_large SELECT g, repeat(chr(97 + g % 26), 900) FROM generate_series(1, 8300) g;
-- small: 100 rows
CREATE TABLE rt_small (id int PRIMARY KEY, note text) WITH (autovacuum_enabled = off);
INSERT INTO rt_small SELECT g, 'note ' || g FROM generate_series(1, 100) g;
-- the statistics say 8,300 and 100 rows; then rows go without a vacuum,
-- so they are stale: only a count sees the deletes
VACUUM rt_large, rt_small;
DELETE FROM rt_large WHERE id % 83 = 0;
DELETE FROM rt_small WHERE id <= 10;
SELECT pg_relation_size('rt_large') / current_setting('block_size')::int > 8192 AS large,
	   pg_relation_size('rt_small') / current_setting('block_size')::int <= 8192 AS small;
SELECT (SELECT count(*) FROM rt_large) AS large_rows, (SELECT count(*) FROM rt_small) AS small_rows;

-- the planner's estimates, before the tables become shims
CREATE FUNCTION rt_plan_rows(q text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	plan json;
BEGIN
	EXECUTE 'EXPLAIN (FORMAT JSON) ' || q INTO plan;
	RETURN (plan -> 0 -> 'Plan' ->> 'Plan Rows')::bigint;
END $$;
CREATE TABLE rt_estimate AS
SELECT 'public.rt_large' AS table_name, rt_plan_rows('SELECT * FROM ONLY rt_large') AS plan_rows
UNION ALL
SELECT 'public.rt_small', rt_plan_rows('SELECT * FROM ONLY rt_small');
SELECT * FROM rt_estimate ORDER BY 1;

SELECT splitdb_assign('rt_svc', 'rt_large', 'rt_small');
SET client_min_messages = warning;
SELECT splitdb_migrate('rt_svc', mode => 'offline', wait => true) > 0 AS migrated;
RESET client_min_messages;

-- rt_large: rows_total is the planner's estimate (8,300, the rows deleted
-- since the vacuum not seen); rt_small: the exact count.  rows_copied is
-- what the copy sent, exact on both
SELECT s.table_name, s.phase, s.rows_total, s.rows_copied,
	   s.rows_total = e.plan_rows AS planner_estimate, s.source_rows, s.target_rows, s.verified
  FROM splitdb_table_status s JOIN rt_estimate e USING (table_name)
 WHERE s.service = 'rt_svc' ORDER BY 1;
SELECT state, phase, rows_copied, rows_total FROM splitdb_status WHERE service = 'rt_svc';
-- the sibling holds every row, and the verification compares the exact counts
SELECT table_name, source_rows, target_rows, source_checksum = target_checksum AS same, ok
  FROM splitdb_verify('rt_svc') ORDER BY 1;

-- clean up: the shims use the service's server
DROP FOREIGN TABLE rt_large, rt_small;
DROP TABLE rt_estimate;
DROP FUNCTION rt_plan_rows(text);
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
SELECT splitdb_drop_service('rt_svc');
DROP DATABASE rt_svc WITH (FORCE);
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
