--
-- migrate_streams: a batch goes to the sibling over several connections
-- (splitdb.copy_streams); the values of the types the worker writes itself,
-- without their send functions, arrive as they were; the primary key is
-- built after the data
--
CREATE EXTENSION splitdb CASCADE;
SELECT current_database() AS source_db \gset
SELECT splitdb_add_service('str_svc');

CREATE TYPE str_mood AS ENUM ('low', 'high');
CREATE DOMAIN str_qty AS int CHECK (VALUE >= 0);
CREATE TABLE "Str Wide" (
	id bigint PRIMARY KEY,
	b bool, s smallint, i int, o oid, d date, r real, f float8, t time,
	ts timestamp, tz timestamptz, u uuid, tx text, vc varchar(20), bc char(6),
	by bytea, q str_qty, m str_mood, n numeric, j jsonb);
ALTER TABLE "Str Wide" ALTER COLUMN by SET STORAGE EXTERNAL;
INSERT INTO "Str Wide"
SELECT g, g % 3 = 0, (g % 30000)::smallint, g * 7, g::oid, date '2026-01-01' + g % 1000,
	   CASE g % 5 WHEN 0 THEN 'NaN'::real WHEN 1 THEN '-0'::real
				  WHEN 2 THEN 'Infinity'::real ELSE (g / 7.0)::real END,
	   CASE g % 4 WHEN 0 THEN '-Infinity'::float8 WHEN 1 THEN '-0'::float8 ELSE g / 3.0 END,
	   time '00:00' + g * interval '1 second', timestamp '2026-01-01' + g * interval '1 minute',
	   timestamptz '2026-01-01 00:00+00' + g * interval '1 hour',
	   md5(g::text)::uuid, 'ü ' || repeat('x', 200 + g % 50) || ' "q"\', 'v' || g, 'c' || (g % 100),
	   decode('00ff' || lpad(to_hex(g), 8, '0') || '00', 'hex'), g % 10,
	   (ARRAY['low', 'high']::str_mood[])[1 + g % 2], g / 100.0, jsonb_build_object('g', g)
  FROM generate_series(1, 6000) g;
-- NULL in every column but the key; a long text (compressed, out of line)
-- and a long bytea (out of line, not compressed)
INSERT INTO "Str Wide" (id) VALUES (6001);
INSERT INTO "Str Wide" (id, tx, by)
	VALUES (6002, repeat('toast ', 20000), decode(repeat(md5('by'), 1000), 'hex'));
CREATE INDEX str_wide_tz ON "Str Wide" (tz);
-- keys built apart from their constraints: deferrable, NULLS NOT DISTINCT,
-- INCLUDE, storage parameters
CREATE TABLE str_keys (a int, b int, c text,
	PRIMARY KEY (a) DEFERRABLE INITIALLY DEFERRED,
	CONSTRAINT "str b" UNIQUE NULLS NOT DISTINCT (b) INCLUDE (c) WITH (fillfactor = 70));
INSERT INTO str_keys SELECT g, nullif(g, 1), 'c' || g FROM generate_series(1, 100) g;
-- object references go in text: their OIDs mean other objects there
CREATE TABLE str_refs (id int PRIMARY KEY, rel regclass, typ regtype[]);
INSERT INTO str_refs VALUES (1, 'str_keys', '{str_mood,int4}'), (2, '"Str Wide"', NULL);
SELECT splitdb_assign('str_svc', '"Str Wide"', 'str_keys', 'str_refs');

-- fails: out of range, and not for roles that are not superusers
SET splitdb.copy_streams = -1;
SET splitdb.copy_streams = 17;
SET splitdb.maintenance_work_mem = '512kB';
CREATE ROLE splitdb_str_app;
SET ROLE splitdb_str_app;
SET splitdb.copy_streams = 4;
SET splitdb.maintenance_work_mem = '1GB';
RESET ROLE;
DROP ROLE splitdb_str_app;
-- the defaults: streams chosen by each run (0, auto), 256MB per build
SHOW splitdb.copy_streams;
SHOW splitdb.maintenance_work_mem;

-- the sibling records the settings of the sessions that build its indexes
\c str_svc
CREATE SCHEMA str_watch;
CREATE TABLE str_watch.builds (mem text, workers text);
-- (the indexes of splitdb's own catalog, installed there at cutover, are not the job's)
CREATE FUNCTION str_watch.record() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO str_watch.builds
	SELECT current_setting('maintenance_work_mem'),
		   current_setting('max_parallel_maintenance_workers')
	  FROM pg_event_trigger_ddl_commands() c
	 WHERE c.schema_name IS DISTINCT FROM 'splitdb';
END $$;
CREATE EVENT TRIGGER str_watch_builds ON ddl_command_end WHEN TAG IN ('CREATE INDEX')
	EXECUTE FUNCTION str_watch.record();
\c :source_db

-- three streams, batches of 2,500 rows: each batch fills more than three
-- chunks, so every batch is spread over three COPY commands
SET splitdb.copy_streams = 3;
SET splitdb.batch_rows = 2500;
SET splitdb.maintenance_work_mem = '300MB';
SET client_min_messages = warning;
-- offline: str_keys has no key an online replay could find its rows by
SELECT splitdb_migrate('str_svc', mode => 'offline', wait => true) > 0 AS migrated;
RESET client_min_messages;
SELECT state, phase, rows_copied, rows_total FROM splitdb_status WHERE service = 'str_svc';
SELECT table_name, phase, rows_copied, copy_format, verified
  FROM splitdb_table_status WHERE service = 'str_svc' ORDER BY 1;
-- the checkpoint is the last batch's last key
SELECT table_name, rows_copied, last_key FROM splitdb.job_table ORDER BY 1;

-- every row, in text form, is the same on both sides; so are the raw bytes
-- of the long values and the signs of the zeros
SELECT md5(string_agg(w::text, E'\n' ORDER BY id)) AS source_rows,
	   sum(length(by)) AS source_bytes,
	   count(*) FILTER (WHERE f = 0 AND f::text = '-0') AS source_negative_zeros
  FROM splitdb_archive."Str Wide" w \gset
\c str_svc
SELECT md5(string_agg(w::text, E'\n' ORDER BY id)) = :'source_rows' AS same_rows,
	   sum(length(by)) = :source_bytes AS same_bytes,
	   count(*) FILTER (WHERE f = 0 AND f::text = '-0') = :source_negative_zeros AS same_zeros,
	   count(*) AS rows
  FROM "Str Wide" w;
-- three batches, each in three COPY transactions
SELECT count(DISTINCT xmin::text) AS copy_transactions FROM "Str Wide";
-- the primary key came after the data: its transaction is later than theirs
SELECT (SELECT xmin::text::bigint FROM pg_class WHERE relname = 'Str Wide_pkey')
		 > (SELECT max(xmin::text::bigint) FROM "Str Wide") AS key_built_after_data;
SELECT conrelid::regclass, conname, pg_get_constraintdef(oid), condeferrable, condeferred
  FROM pg_constraint WHERE conrelid IN ('"Str Wide"'::regclass, 'str_keys'::regclass) ORDER BY 1, 2;
SELECT indexrelid::regclass, pg_get_indexdef(indexrelid) FROM pg_index
 WHERE indrelid IN ('"Str Wide"'::regclass, 'str_keys'::regclass)
 ORDER BY indexrelid::regclass::text COLLATE "C";
SELECT id, rel, rel = 'str_keys'::regclass AS names_str_keys, typ FROM str_refs ORDER BY id;
-- every index was built with the job's splitdb.maintenance_work_mem and,
-- three side by side, without parallel workers
SELECT mem, workers, count(*) AS builds FROM str_watch.builds GROUP BY 1, 2;
-- the deferred key is still deferred: a duplicate waits for the commit
BEGIN;
INSERT INTO str_keys VALUES (2, 1000, 'dup');
UPDATE str_keys SET a = 1000 WHERE c = 'dup';
COMMIT;
-- the key that treats NULLs as equal refuses a second NULL
INSERT INTO str_keys VALUES (1001, NULL, 'second null');
\c :source_db
-- the same definitions in the source (the archived originals)
SELECT conrelid::regclass, conname, pg_get_constraintdef(oid), condeferrable, condeferred
  FROM pg_constraint WHERE conrelid IN ('splitdb_archive."Str Wide"'::regclass,
									   'splitdb_archive.str_keys'::regclass) ORDER BY 1, 2;

-- clean up: the shim uses the service's server
DROP FOREIGN TABLE "Str Wide", str_keys, str_refs;
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
DELETE FROM splitdb.job;
SELECT splitdb_drop_service('str_svc');
DROP DATABASE str_svc WITH (FORCE);
DROP TYPE str_mood;
DROP DOMAIN str_qty;
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
