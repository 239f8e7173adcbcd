--
-- migrate_readers: a table of at least 100,000 rows is split into key
-- ranges (splitdb.job_range), each read by the worker or a copier; a small
-- table is read by the worker alone.  Checked here, for composite keys of
-- text and uuid columns, with 2 readers (bounds from a sample of whole
-- keys) and 3 readers (bounds from the histogram of the first key column):
-- the sibling holds exactly the source's rows (splitdb_verify, and every
-- row's text), the ranges are done, contiguous, start and end unbounded,
-- and each holds exactly the source rows between its bounds, which add up
-- to the table; the small table has no ranges.
--
CREATE EXTENSION splitdb CASCADE;
SELECT current_database() AS source_db \gset
SET client_min_messages = warning;

-- fails: out of range, and not for roles that are not superusers
SET splitdb.copy_readers = -1;
SET splitdb.copy_readers = 17;
CREATE ROLE splitdb_rd_app;
SET ROLE splitdb_rd_app;
SET splitdb.copy_readers = 2;
RESET ROLE;
DROP ROLE splitdb_rd_app;
-- the default: readers chosen by each run (0, auto)
SHOW splitdb.copy_readers;

-- two readers: key (tag text, id uuid), few tags, no statistics
CREATE TABLE rd2_events (
	tag  text NOT NULL,
	id   uuid NOT NULL,
	n    integer NOT NULL,
	note text,
	PRIMARY KEY (tag, id));
INSERT INTO rd2_events
SELECT 'tag ' || (g % 5), md5(g::text)::uuid, g, CASE WHEN g % 11 = 0 THEN NULL ELSE 'n' || g END
  FROM generate_series(1, 110000) g;
CREATE TABLE rd2_small (tag text, id uuid, PRIMARY KEY (tag, id));
INSERT INTO rd2_small SELECT 'tag ' || g, md5(g::text)::uuid FROM generate_series(1, 20) g;

-- three readers: key (id uuid, part text), analyzed
CREATE TABLE rd3_events (
	id   uuid NOT NULL,
	part text NOT NULL,
	n    bigint NOT NULL,
	PRIMARY KEY (id, part));
INSERT INTO rd3_events
SELECT md5((g / 2)::text)::uuid, 'part ' || (g % 2), g FROM generate_series(1, 160000) g;
ANALYZE rd3_events;

SELECT splitdb_add_service('rd_two');
SELECT splitdb_assign('rd_two', 'rd2_events', 'rd2_small');
SELECT splitdb_add_service('rd_three');
SELECT splitdb_assign('rd_three', 'rd3_events');

SELECT md5(string_agg(t::text, E'\n' ORDER BY tag, id)) AS rd2_rows FROM rd2_events t \gset
SELECT md5(string_agg(t::text, E'\n' ORDER BY id, part)) AS rd3_rows FROM rd3_events t \gset

SET splitdb.batch_rows = 20000;
SET splitdb.copy_streams = 2;
SET splitdb.copy_readers = 2;
SELECT splitdb_migrate('rd_two', wait => true) > 0 AS migrated;
SET splitdb.copy_readers = 3;
SELECT splitdb_migrate('rd_three', wait => true) > 0 AS migrated;
RESET splitdb.copy_readers;

SELECT service, state, rows_copied, rows_total FROM splitdb_status
 WHERE service IN ('rd_two', 'rd_three') ORDER BY 1;
-- a ranged table keeps no checkpoint of its own; the small one has no
-- ranges: one reader
SELECT jt.table_name, jt.phase, jt.rows_copied, jt.last_key, jt.verified,
	   (SELECT count(*) FROM splitdb.job_range r
		 WHERE r.job_id = jt.job_id AND r.relid = jt.relid) AS ranges
  FROM splitdb.job_table jt ORDER BY 1;
SELECT table_name, source_rows, target_rows, source_checksum = target_checksum AS same_checksum, ok
  FROM splitdb_verify('rd_two') ORDER BY 1;
SELECT table_name, source_rows, target_rows, source_checksum = target_checksum AS same_checksum, ok
  FROM splitdb_verify('rd_three') ORDER BY 1;

-- the ranges: as many as readers, all done, every one holding rows; the
-- first unbounded below, the last above, each starting where the one
-- before ends; bounds of whole keys (sample) or of the first column
-- (histogram)
SELECT jt.table_name, r.range_no, r.done, r.rows_copied > 0 AS has_rows,
	   r.lower_key IS NULL AS open_below, r.upper_key IS NULL AS open_above,
	   r.lower_key IS NOT DISTINCT FROM lag(r.upper_key) OVER w AS follows,
	   cardinality(coalesce(r.upper_key, r.lower_key)) AS bound_columns,
	   r.last_key IS NOT NULL AS checkpointed
  FROM splitdb.job_range r JOIN splitdb.job_table jt USING (job_id, relid)
WINDOW w AS (PARTITION BY r.job_id, r.relid ORDER BY r.range_no)
 ORDER BY 1, 2;
-- the table's progress is the sum of its ranges'
SELECT jt.table_name, jt.rows_copied, sum(r.rows_copied) AS range_rows,
	   jt.bytes_copied = sum(r.bytes_copied) AS same_bytes
  FROM splitdb.job_range r JOIN splitdb.job_table jt USING (job_id, relid)
 GROUP BY jt.table_name, jt.rows_copied, jt.bytes_copied ORDER BY 1;

-- each range copied exactly the source's rows between its bounds: no row
-- twice, none skipped (the bounds, from a sample or from statistics, vary)
SELECT r.range_no, r.rows_copied =
	   (SELECT count(*) FROM splitdb_archive.rd2_events e
		 WHERE (r.lower_key IS NULL OR (e.tag, e.id) >= (r.lower_key[1], r.lower_key[2]::uuid))
		   AND (r.upper_key IS NULL OR (e.tag, e.id) < (r.upper_key[1], r.upper_key[2]::uuid))) AS same_rows
  FROM splitdb.job_range r JOIN splitdb.job_table jt USING (job_id, relid)
 WHERE jt.table_name = 'public.rd2_events' ORDER BY 1;
SELECT r.range_no, r.rows_copied =
	   (SELECT count(*) FROM splitdb_archive.rd3_events e
		 WHERE (r.lower_key IS NULL OR e.id >= r.lower_key[1]::uuid)
		   AND (r.upper_key IS NULL OR e.id < r.upper_key[1]::uuid)) AS same_rows
  FROM splitdb.job_range r JOIN splitdb.job_table jt USING (job_id, relid)
 WHERE jt.table_name = 'public.rd3_events' ORDER BY 1;

-- every row, in text form, is the same in the sibling
\c rd_two
SELECT md5(string_agg(t::text, E'\n' ORDER BY tag, id)) = :'rd2_rows' AS same_rows, count(*)
  FROM rd2_events t;
\c rd_three
SELECT md5(string_agg(t::text, E'\n' ORDER BY id, part)) = :'rd3_rows' AS same_rows, count(*)
  FROM rd3_events t;
\c :source_db
SET client_min_messages = warning;

-- clean up: the shims use the services' servers
DROP FOREIGN TABLE rd2_events, rd2_small, rd3_events;
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
SELECT splitdb_drop_service('rd_two');
SELECT splitdb_drop_service('rd_three');
DROP DATABASE rd_two WITH (FORCE);
DROP DATABASE rd_three WITH (FORCE);
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
