--
-- Online mode: a migration while this session writes to the tables.  The
-- test hook splitdb.migrate_pause_at holds the worker after each copy
-- batch while this session holds the advisory lock (1936747639, 0); with
-- splitdb.batch_rows = 10 the tables are copied in many batches.  Checked
-- here:
-- - refusals that change nothing (no job row, no capture object): a bad
--   splitdb.migrate_pause_at; a table without a key in online mode
--   (0A000, the hint names mode => 'offline'), which offline mode migrates;
--   so is a table whose keys are all DEFERRABLE, which the plan warns of;
-- - at the first pause (the first batch of the first table, checkpoint
--   {100}) the capture is in place: a log per tree, four triggers on every
--   table, the registry's rows; then inserts below and above the
--   checkpoint, key updates crossing it both ways (cascading into the other
--   table), deletes of copied rows, a unique value moved between two rows
--   and two rows swapping theirs in one transaction, INSERT ... ON
--   CONFLICT, COPY FROM, no-op updates, wide TOAST values written and kept;
-- - at a later pause, in the middle of the partitioned table's copy:
--   TRUNCATE, rows inserted again below and above that leaf's checkpoint,
--   partition-key updates moving rows between the partitions both ways,
--   deletes and updates of copied rows;
-- - the job ends done, mode online, with its rounds and lag recorded; the
--   sibling's rows (read through the shims) equal the archived originals'
--   both ways, splitdb_verify agrees, and the rows this session wrote are
--   there as written;
-- - after the cutover the source's capture is gone: no capture trigger on
--   the archived originals, no splitdb_capture schema, no splitdb.capture
--   row, every capture row of the registry marked dropped;
-- - a second service held before each catch-up round: its state is
--   catching_up with the lag measured, writes made there arrive (an enum
--   and an array of a composite type among them, replayed in COPY's text
--   format);
-- - a third service whose cutover would hold writes past its freeze
--   budget: it lets go, switches nothing, and resumes to done;
-- - a fourth whose cutover's last replay runs past the budget while its
--   COPY is under way: 55P03 from the round itself, the sibling's
--   transaction rolled back (none of the round's rows there), resumed to
--   done;
-- - a fifth whose last round left changes behind: at done its lag is 0,
--   since the cutover replayed them under its locks.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

-- Waits (at most 60 s) until the worker of service svc is paused at point
-- (its activity reads 'paused at <point>') or its job has ended.  Returns
-- what it saw; raises when neither happened in time.
CREATE FUNCTION online_wait_paused(svc name, point text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	st text;
BEGIN
	FOR i IN 1..3000 LOOP
		PERFORM pg_stat_clear_snapshot();
		SELECT j.state INTO st FROM splitdb.job j WHERE j.service = svc
		 ORDER BY j.job_id DESC LIMIT 1;
		IF EXISTS (SELECT FROM pg_stat_activity a JOIN splitdb.job j ON j.worker_pid = a.pid
					WHERE j.service = svc AND a.query = 'paused at ' || point) THEN
			RETURN 'paused at ' || point;
		END IF;
		IF st IN ('done', 'failed', 'cancelled') THEN
			RETURN st;
		END IF;
		PERFORM pg_sleep(0.02);
	END LOOP;
	RAISE EXCEPTION 'the worker of service % did not pause at % within 60 s (state %)', svc, point, st;
END
$$;

-- Lets the worker of service svc, paused at 'copying', copy at least one
-- more batch (rows_copied or a table's phase changes), then holds it again
-- at its next pause.
CREATE FUNCTION online_advance(svc name) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	before text;
	now_ text;
BEGIN
	SELECT string_agg(jt.relid || ':' || jt.phase || ':' || jt.rows_copied, ',' ORDER BY jt.relid)
	  INTO before FROM splitdb.job_table jt JOIN splitdb.job j USING (job_id) WHERE j.service = svc;
	PERFORM pg_advisory_unlock(1936747639, 0);
	FOR i IN 1..60000 LOOP
		SELECT string_agg(jt.relid || ':' || jt.phase || ':' || jt.rows_copied, ',' ORDER BY jt.relid)
		  INTO now_ FROM splitdb.job_table jt JOIN splitdb.job j USING (job_id) WHERE j.service = svc;
		EXIT WHEN now_ IS DISTINCT FROM before;
		PERFORM pg_sleep(0.001);
	END LOOP;
	PERFORM pg_advisory_lock(1936747639, 0);
	IF now_ IS NOT DISTINCT FROM before THEN
		RAISE EXCEPTION 'the worker of service % copied nothing within 60 s', svc;
	END IF;
	RETURN online_wait_paused(svc, 'copying');
END
$$;

-- Waits (at most 120 s) until the last job of service svc has ended; logs
-- the states it saw on the way (they depend on timing); returns the last.
CREATE FUNCTION online_wait_done(svc name) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	st text;
	seen text[] := '{}';
BEGIN
	FOR i IN 1..12000 LOOP
		SELECT j.state INTO st FROM splitdb.job j WHERE j.service = svc
		 ORDER BY j.job_id DESC LIMIT 1;
		IF seen[cardinality(seen)] IS DISTINCT FROM st THEN
			seen := seen || st;
		END IF;
		IF st IN ('done', 'failed', 'cancelled') THEN
			RAISE LOG 'online test: service % passed through %', svc, seen;
			RETURN st;
		END IF;
		PERFORM pg_sleep(0.01);
	END LOOP;
	RAISE EXCEPTION 'the job of service % did not end within 120 s (states seen: %)', svc, seen;
END
$$;

-- what splitdb made for the capture in this (the source) database
CREATE VIEW online_capture_objects AS
SELECT 'schema' AS kind, nspname::text AS name FROM pg_namespace WHERE nspname = 'splitdb_capture'
UNION ALL
SELECT 'trigger', tgrelid::regclass || ' ' || tgname FROM pg_trigger WHERE tgname LIKE 'splitdb\_capture\_%'
UNION ALL
SELECT 'capture', relid::text || ' -> ' || log::text FROM splitdb.capture;

-------------------------------------------------------------------------
-- the tables: a mixed-case, quoted, non-ASCII name with an identity, a
-- generated column, a unique key and wide values; a partitioned table
-- referencing it (ON UPDATE CASCADE), with a generated column
-------------------------------------------------------------------------
CREATE TABLE "Kunde ""Ö"" Liste" (
	id         integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	email      text NOT NULL UNIQUE,
	name       text NOT NULL,
	name_upper text GENERATED ALWAYS AS (upper(name)) STORED,
	note       text
);
-- ids 10, 20, ..., 1000; the orders reference only ids divisible by 20
INSERT INTO "Kunde ""Ö"" Liste" (id, email, name)
SELECT g * 10, 'k' || g * 10 || '@example.org', 'Kunde ' || g * 10 FROM generate_series(1, 100) g;
-- a wide value, stored out of line (TOAST), in a row the copy reaches later
UPDATE "Kunde ""Ö"" Liste" SET note = (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 3000) g)
 WHERE id = 600;
SELECT pg_column_size(note) > 2000 AS toasted FROM "Kunde ""Ö"" Liste" WHERE id = 600;

CREATE TABLE bestellung (
	id    integer NOT NULL,
	kunde integer NOT NULL REFERENCES "Kunde ""Ö"" Liste" (id) ON UPDATE CASCADE,
	menge integer NOT NULL,
	summe numeric GENERATED ALWAYS AS (menge * 2.5) STORED,
	PRIMARY KEY (id)
) PARTITION BY RANGE (id);
CREATE TABLE bestellung_lo PARTITION OF bestellung FOR VALUES FROM (MINVALUE) TO (5000);
CREATE TABLE bestellung_hi PARTITION OF bestellung FOR VALUES FROM (5000) TO (MAXVALUE);
-- 400 rows in each partition (40 batches each)
INSERT INTO bestellung (id, kunde, menge)
SELECT g * 10 + o, (g % 50) * 20 + 20, g FROM generate_series(1, 400) g, (VALUES (0), (5000)) v(o);

SELECT splitdb_add_service('online_svc');
SELECT splitdb_assign('online_svc', '"Kunde ""Ö"" Liste"', 'bestellung');

-------------------------------------------------------------------------
-- refusals, each changing nothing
-------------------------------------------------------------------------
SET splitdb.migrate_pause_at = 'nowhere';
-- fails: no such point (22023)
SELECT splitdb_migrate('online_svc');
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
RESET splitdb.migrate_pause_at;
SELECT count(*) AS jobs FROM splitdb.job;
SELECT * FROM online_capture_objects;
SELECT count(*) AS artifacts FROM splitdb.artifact;

-- a table without a key: refused in online mode (the default)
CREATE TABLE ohne_schluessel (v text, n integer);
INSERT INTO ohne_schluessel SELECT 'v' || g, g FROM generate_series(1, 30) g;
SELECT splitdb_add_service('online_keyless');
SELECT splitdb_assign('online_keyless', 'ohne_schluessel');
-- fails: no key (0A000), the hint names mode => 'offline'
SELECT splitdb_migrate('online_keyless');
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
-- fails: the same, named explicitly and waited for
SELECT splitdb_migrate('online_keyless', mode => 'online', wait => true);
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
SELECT count(*) AS jobs FROM splitdb.job;
SELECT * FROM online_capture_objects;
SELECT relkind FROM pg_class WHERE oid = 'ohne_schluessel'::regclass;
-- offline mode migrates it
SELECT splitdb_migrate('online_keyless', mode => 'offline', wait => true) > 0 AS migrated;
SELECT state, mode, lag_rows FROM splitdb_status WHERE service = 'online_keyless';
SELECT c.relkind, (SELECT count(*) FROM ohne_schluessel) AS n, (SELECT sum(n) FROM ohne_schluessel) AS total
  FROM pg_class c WHERE c.oid = 'ohne_schluessel'::regclass;
SELECT * FROM online_capture_objects;

-- tables whose keys are all DEFERRABLE (a deferrable key can hold
-- duplicates until its transaction commits, so it is no online key): the
-- plan warns and names the key, and online mode is refused with a message
-- that says so; a deferrable key beside an immediate one is no matter
CREATE TABLE aufschub_pk (id integer PRIMARY KEY DEFERRABLE, v text);
CREATE TABLE "Aufschub uq" ("Code" text NOT NULL, v text,
	CONSTRAINT "Code eindeutig" UNIQUE ("Code") DEFERRABLE INITIALLY DEFERRED);
CREATE TABLE aufschub_beide (id integer PRIMARY KEY DEFERRABLE, code text NOT NULL UNIQUE);
INSERT INTO aufschub_pk VALUES (1, 'a'), (2, 'b');
INSERT INTO "Aufschub uq" VALUES ('x', 'a');
SELECT splitdb_add_service('online_deferred');
SELECT splitdb_assign('online_deferred', 'aufschub_pk', '"Aufschub uq"', 'aufschub_beide');
SELECT action, object, detail FROM splitdb_plan('online_deferred')
 WHERE action IN ('warning', 'blocker') ORDER BY object, detail;
-- fails: 0A000, the message names the deferrable key
SELECT splitdb_migrate('online_deferred');
-- the primary key added again without DEFERRABLE: the other table is named
ALTER TABLE aufschub_pk DROP CONSTRAINT aufschub_pk_pkey, ADD PRIMARY KEY (id);
SELECT object FROM splitdb_plan('online_deferred')
 WHERE action = 'warning' AND detail LIKE '%DEFERRABLE%';
SELECT splitdb_migrate('online_deferred', mode => 'online', wait => true);
SELECT count(*) AS jobs FROM splitdb.job WHERE service = 'online_deferred';
SELECT splitdb_unassign('online_deferred', 'aufschub_pk', '"Aufschub uq"', 'aufschub_beide');
SELECT splitdb_drop_service('online_deferred');
DROP DATABASE online_deferred WITH (FORCE);
DROP TABLE aufschub_pk, "Aufschub uq", aufschub_beide;

-------------------------------------------------------------------------
-- the online job, held after its first batch
-------------------------------------------------------------------------
SELECT pg_advisory_lock(1936747639, 0);
SET splitdb.batch_rows = 10;
SET splitdb.copy_streams = 1;
SET splitdb.copy_readers = 1;
SET splitdb.migrate_pause_at = 'copying';
SELECT splitdb_migrate('online_svc') AS job \gset
SELECT online_wait_paused('online_svc', 'copying');
SELECT state, phase, mode, current_table FROM splitdb_status WHERE service = 'online_svc';
SELECT table_name, relkind, phase, rows_copied, last_key FROM splitdb.job_table
 WHERE job_id = :job ORDER BY table_name;

-- the capture, installed before the copy began
SELECT * FROM online_capture_objects ORDER BY 1, 2;
SELECT kind, identity, parent FROM splitdb.artifact
 WHERE job_id = :job AND service IS NULL ORDER BY artifact_id;

-- inserts below and above the checkpoint {100}, one taking its id from
-- the identity (1)
INSERT INTO "Kunde ""Ö"" Liste" (id, email, name) VALUES
	(55, 'k55@example.org', 'unter dem Stand'),
	(555, 'k555@example.org', 'über dem Stand'),
	(1010, 'k1010@example.org', 'nach dem Ende');
INSERT INTO "Kunde ""Ö"" Liste" (email, name) VALUES ('identity@example.org', 'aus der Identität')
RETURNING id;
-- key updates crossing the checkpoint: up (40, copied and referenced: its
-- orders follow) and down (700, not copied yet, referenced too)
UPDATE "Kunde ""Ö"" Liste" SET id = 995 WHERE id = 40;
UPDATE "Kunde ""Ö"" Liste" SET id = 65 WHERE id = 700;
SELECT count(*) FILTER (WHERE kunde = 995) AS orders_of_995, count(*) FILTER (WHERE kunde = 65) AS orders_of_65
  FROM bestellung;
-- deletes of copied rows (10, 90) and of one not copied yet (910)
DELETE FROM "Kunde ""Ö"" Liste" WHERE id IN (10, 90, 910);
-- a unique value moved from a copied row to one not copied yet, and two
-- copied rows swapping theirs, each in one transaction
BEGIN;
UPDATE "Kunde ""Ö"" Liste" SET email = 'moved@example.org' WHERE id = 50;
UPDATE "Kunde ""Ö"" Liste" SET email = 'k50@example.org' WHERE id = 850;
COMMIT;
BEGIN;
UPDATE "Kunde ""Ö"" Liste" SET email = 'swap@example.org' WHERE id = 70;
UPDATE "Kunde ""Ö"" Liste" SET email = 'k70@example.org' WHERE id = 80;
UPDATE "Kunde ""Ö"" Liste" SET email = 'k80@example.org' WHERE id = 70;
COMMIT;
-- a wide value written into a copied row (the checkpoint's); the row not
-- copied yet with one gets another column changed, its wide value kept
UPDATE "Kunde ""Ö"" Liste" SET note = (SELECT string_agg(md5((g * 7)::text), '') FROM generate_series(1, 3000) g)
 WHERE id = 100;
UPDATE "Kunde ""Ö"" Liste" SET name = 'Kunde 600 geändert' WHERE id = 600;
-- no-op updates of every copied row and of some not copied
UPDATE "Kunde ""Ö"" Liste" SET name = name WHERE id <= 200;
-- INSERT ... ON CONFLICT: an update of a copied row, nothing, an insert
INSERT INTO "Kunde ""Ö"" Liste" (id, email, name) VALUES (20, 'k20@example.org', 'Kunde 20 neu')
	ON CONFLICT (id) DO UPDATE SET name = excluded.name;
INSERT INTO "Kunde ""Ö"" Liste" (id, email, name) VALUES (60, 'k60@example.org', 'nicht neu')
	ON CONFLICT DO NOTHING;
INSERT INTO "Kunde ""Ö"" Liste" (id, email, name) VALUES (75, 'k75@example.org', 'Kunde 75')
	ON CONFLICT (id) DO UPDATE SET name = excluded.name;
-- COPY FROM, below and above the checkpoint
COPY "Kunde ""Ö"" Liste" (id, email, name, note) FROM stdin;
15	k15@example.org	kopiert unten	\N
25	k25@example.org	kopiert unten	eine Notiz
1500	k1500@example.org	kopiert oben	\N
\.
-- an order for a customer not copied yet
INSERT INTO bestellung (id, kunde, menge) VALUES (2005, 555, 7);

-- the worker was held throughout
SELECT online_wait_paused('online_svc', 'copying');
SELECT table_name, phase, rows_copied, last_key FROM splitdb.job_table
 WHERE job_id = :job AND table_name = 'public."Kunde ""Ö"" Liste"';
-- every change is logged
SELECT log AS kunde_log FROM splitdb.capture WHERE relid = '"Kunde ""Ö"" Liste"'::regclass \gset
SELECT log AS bestellung_log FROM splitdb.capture WHERE relid = 'bestellung'::regclass \gset
SELECT splitdb_op, count(*) FROM :kunde_log GROUP BY 1 ORDER BY 1;
SELECT splitdb_op, count(*) FROM :bestellung_log GROUP BY 1 ORDER BY 1;

-------------------------------------------------------------------------
-- later: held in the middle of a partition's copy
-------------------------------------------------------------------------
DO $$
BEGIN
	FOR i IN 1..200 LOOP
		PERFORM online_advance('online_svc');
		EXIT WHEN EXISTS (SELECT FROM splitdb.job_table jt JOIN splitdb.job j USING (job_id)
						   WHERE j.service = 'online_svc' AND jt.relkind = 'r'
							 AND jt.table_name LIKE 'public.bestellung_%'
							 AND jt.phase = 'copying' AND jt.last_key IS NOT NULL);
	END LOOP;
END
$$;
SELECT online_wait_paused('online_svc', 'copying');
-- the leaf being copied, with a checkpoint inside its keys
SELECT jt.table_name AS leaf, jt.last_key[1]::integer AS checkpoint
  FROM splitdb.job_table jt
 WHERE jt.job_id = :job AND jt.table_name LIKE 'public.bestellung_%' AND jt.phase = 'copying' \gset
SELECT state, current_table = :'leaf' AS copying_the_leaf FROM splitdb_status WHERE service = 'online_svc';
SELECT :checkpoint % 5000 BETWEEN 10 AND 3990 AS checkpoint_inside;

-- TRUNCATE, then the orders again: 400 in each partition, other amounts
-- and customers
TRUNCATE bestellung;
INSERT INTO bestellung (id, kunde, menge)
SELECT g * 10 + o, (g % 25) * 20 + 60, g + 1000 FROM generate_series(1, 400) g, (VALUES (0), (5000)) v(o);
-- in the leaf being copied: the checkpoint's row (the last copied) and
-- the next one change partitions (lo -> hi is +5003, hi -> lo is -4997:
-- keys ending in 3, none taken); a copied row and one not copied are
-- deleted; a copied row and one not copied change their customer
SELECT CASE WHEN :'leaf' = 'public.bestellung_lo' THEN 5003 ELSE -4997 END AS shift \gset
UPDATE bestellung SET id = id + :shift WHERE id IN (:checkpoint, :checkpoint + 10);
DELETE FROM bestellung WHERE id IN (:checkpoint - 10, :checkpoint + 20);
UPDATE bestellung SET kunde = 555 WHERE id IN (:checkpoint - 20, :checkpoint + 30);
-- an insert between the checkpoint and the next key, another below it
INSERT INTO bestellung (id, kunde, menge) VALUES (:checkpoint + 1, 555, 1), (:checkpoint - 1, 555, 2);
SELECT tableoid::regclass = :'leaf'::regclass AS in_the_leaf, count(*) FROM bestellung GROUP BY 1 ORDER BY 1;

-------------------------------------------------------------------------
-- let it go: the job ends done
-------------------------------------------------------------------------
SELECT pg_advisory_unlock(1936747639, 0);
SELECT online_wait_done('online_svc');
SELECT state, phase, mode, last_error, lag_rows IS NOT NULL AS lag_rows, lag_seconds IS NOT NULL AS lag_seconds,
	   lag_trend IS NOT NULL AS lag_trend
  FROM splitdb_status WHERE service = 'online_svc';
SELECT rounds >= 2 AS rounds, lag_at IS NOT NULL AS lag_at, cutover_attempts >= 1 AS cutover_attempts
  FROM splitdb.job WHERE job_id = :job;
SELECT table_name, phase FROM splitdb_table_status WHERE service = 'online_svc' ORDER BY 1;

-- the shims (reading the sibling) and the archived originals hold the same
-- rows, both ways
SELECT c.relkind, n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relname IN ('Kunde "Ö" Liste', 'bestellung') ORDER BY 2, 1;
SELECT (SELECT count(*) FROM (SELECT * FROM "Kunde ""Ö"" Liste"
							  EXCEPT ALL SELECT * FROM splitdb_archive."Kunde ""Ö"" Liste") d) AS only_in_sibling,
	   (SELECT count(*) FROM (SELECT * FROM splitdb_archive."Kunde ""Ö"" Liste"
							  EXCEPT ALL SELECT * FROM "Kunde ""Ö"" Liste") d) AS only_in_source,
	   (SELECT count(*) FROM "Kunde ""Ö"" Liste") AS n;
SELECT (SELECT count(*) FROM (SELECT * FROM bestellung EXCEPT ALL SELECT * FROM splitdb_archive.bestellung) d)
		AS only_in_sibling,
	   (SELECT count(*) FROM (SELECT * FROM splitdb_archive.bestellung EXCEPT ALL SELECT * FROM bestellung) d)
		AS only_in_source,
	   (SELECT count(*) FROM bestellung) AS n;
SELECT table_name, source_rows = target_rows AS same_rows, ok FROM splitdb_verify('online_svc') ORDER BY 1;

-- the rows written at the first pause, as the sibling has them
SELECT id, email, name, name_upper, md5(note) AS note FROM "Kunde ""Ö"" Liste"
 WHERE id IN (1, 10, 15, 20, 25, 30, 40, 50, 55, 60, 65, 70, 75, 80, 90, 100, 555, 600, 700, 850, 910, 995, 1010, 1500)
 ORDER BY id;
SELECT md5(note) = md5((SELECT string_agg(md5((g * 7)::text), '') FROM generate_series(1, 3000) g)) AS wide_100,
	   (SELECT md5(note) = md5((SELECT string_agg(md5(g::text), '') FROM generate_series(1, 3000) g))
		  FROM "Kunde ""Ö"" Liste" WHERE id = 600) AS wide_600
  FROM "Kunde ""Ö"" Liste" WHERE id = 100;
SELECT count(*) FILTER (WHERE kunde = 995) AS orders_of_995, count(*) FILTER (WHERE kunde = 65) AS orders_of_65,
	   count(*) FILTER (WHERE kunde = 555) AS orders_of_555
  FROM bestellung;
-- the rows written at the second pause, in the sibling: each partition's
-- rows (the moved ones in their new partition)
\c online_svc
SELECT tableoid = :'leaf'::regclass AS in_the_leaf, count(*) FROM bestellung GROUP BY 1 ORDER BY 1;
SELECT count(*) AS shifted FROM bestellung WHERE id % 10 IN (3, 7);
SELECT count(*) AS off_grid FROM bestellung WHERE id % 10 IN (1, 9);
\c splitdb_regression
SET client_min_messages = warning;

-- the source's capture is gone, and the registry says so
SELECT * FROM online_capture_objects;
SELECT tgrelid::regclass, tgname FROM pg_trigger
 WHERE tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'splitdb_archive'::regnamespace)
   AND tgname LIKE 'splitdb%'
 ORDER BY 1, 2;
SELECT kind, count(*) AS n, bool_and(dropped_at IS NOT NULL) AS all_dropped FROM splitdb.artifact
 WHERE job_id = :job AND service IS NULL AND (kind = 'capture log' OR identity LIKE 'splitdb\_capture%')
 GROUP BY 1 ORDER BY 1;

-------------------------------------------------------------------------
-- a second service, held before each catch-up round
-------------------------------------------------------------------------
-- with an enum and an array of a composite type, which the replay sends in
-- COPY's text format (their binary forms carry OIDs of this database)
CREATE TYPE online_stimmung AS ENUM ('gut', 'schlecht');
CREATE TYPE online_paar AS (a integer, b text);
CREATE TABLE nachzug (id integer PRIMARY KEY, v text NOT NULL,
					  s online_stimmung NOT NULL DEFAULT 'gut', p online_paar[]);
INSERT INTO nachzug (id, v, p) SELECT g, 'v' || g, ARRAY[ROW(g, 'x')::online_paar] FROM generate_series(1, 50) g;
SELECT splitdb_add_service('online_lag');
SELECT splitdb_assign('online_lag', 'nachzug');
SELECT pg_advisory_lock(1936747639, 0);
SET splitdb.migrate_pause_at = 'catching_up';
SELECT splitdb_migrate('online_lag') AS lag_job \gset
SELECT online_wait_paused('online_lag', 'catching_up');
SELECT state, phase, mode, lag_rows, lag_seconds IS NOT NULL AS lag_seconds, lag_trend
  FROM splitdb_status WHERE service = 'online_lag';
SELECT rounds >= 1 AS rounds FROM splitdb.job WHERE job_id = :lag_job;
SELECT table_name, phase FROM splitdb_table_status WHERE service = 'online_lag';
-- writes while it catches up
INSERT INTO nachzug SELECT g, 'neu ' || g FROM generate_series(51, 60) g;
UPDATE nachzug SET v = 'geändert', s = 'schlecht',
				   p = ARRAY[ROW(0, E'tab\there "q" \\ x')::online_paar, NULL] WHERE id <= 5;
UPDATE nachzug SET id = id + 100 WHERE id BETWEEN 6 AND 8;
DELETE FROM nachzug WHERE id BETWEEN 9 AND 12;
SELECT online_wait_paused('online_lag', 'catching_up');
SELECT pg_advisory_unlock(1936747639, 0);
SELECT online_wait_done('online_lag');
SELECT state, mode, lag_rows FROM splitdb_status WHERE service = 'online_lag';
SELECT (SELECT count(*) FROM (SELECT * FROM nachzug EXCEPT ALL SELECT * FROM splitdb_archive.nachzug) d) AS only_in_sibling,
	   (SELECT count(*) FROM (SELECT * FROM splitdb_archive.nachzug EXCEPT ALL SELECT * FROM nachzug) d) AS only_in_source;
SELECT count(*), min(id), max(id), count(*) FILTER (WHERE v = 'geändert') AS changed,
	   count(*) FILTER (WHERE s = 'schlecht') AS schlecht FROM nachzug;
SELECT p FROM nachzug WHERE id = 1;
SELECT * FROM online_capture_objects;
-------------------------------------------------------------------------
-- a third service: more waits for the cutover's last replay than its
-- freeze budget allows; the attempt lets go and switches nothing
-------------------------------------------------------------------------
CREATE TABLE stau (id integer PRIMARY KEY, v text NOT NULL);
INSERT INTO stau SELECT g, 'v' || g FROM generate_series(1, 100) g;
SELECT splitdb_add_service('online_freeze');
SELECT splitdb_assign('online_freeze', 'stau');
SELECT pg_advisory_lock(1936747639, 0);
SET splitdb.migrate_pause_at = 'cutover';
SET splitdb.cutover_max_freeze = '1ms';
SET splitdb.cutover_attempts = 1;
SELECT splitdb_migrate('online_freeze') AS freeze_job \gset
SELECT online_wait_paused('online_freeze', 'cutover');
-- 20,000 changes wait: far more than 1 ms of replay
INSERT INTO stau SELECT g, 'neu ' || g FROM generate_series(101, 20100) g;
SELECT pg_advisory_unlock(1936747639, 0);
SELECT online_wait_done('online_freeze');
SELECT state, phase, mode FROM splitdb_status WHERE service = 'online_freeze';
-- the reason: the replay let go, or would have taken too long
SELECT last_sqlstate, last_error ~ '^could not take the cutover''s locks within its budget' AS gave_up,
	   last_error ~ 'would hold writes (for about \d+ ms, )?longer than splitdb.cutover_max_freeze \(1 ms\)' AS let_go,
	   cutover_attempts FROM splitdb.job WHERE job_id = :freeze_job;
-- nothing switched: the source's table is still a table, with every row,
-- its capture logging; the sibling holds the rows before the pause only
SELECT relkind, (SELECT count(*) FROM stau) AS source_rows FROM pg_class WHERE oid = 'stau'::regclass;
SELECT count(*) AS capture_rows FROM splitdb.capture WHERE job_id = :freeze_job;
\c online_freeze
SELECT count(*) AS sibling_rows FROM stau;
\c splitdb_regression
SET client_min_messages = warning;
-- resumed with a budget of its own (a resume keeps the job's recorded
-- settings unless the session sets others): the rest is replayed before
-- the cutover
RESET splitdb.migrate_pause_at;
SET splitdb.cutover_max_freeze = '500ms';
SET splitdb.cutover_attempts = 20;
SELECT splitdb_migrate('online_freeze', wait => true) = :freeze_job AS same_job;
RESET splitdb.cutover_max_freeze;
RESET splitdb.cutover_attempts;
SELECT state, mode FROM splitdb_status WHERE service = 'online_freeze';
SELECT relkind, (SELECT count(*) FROM stau) AS rows_through_the_shim FROM pg_class WHERE oid = 'stau'::regclass;
SELECT (SELECT count(*) FROM (SELECT * FROM stau EXCEPT ALL SELECT * FROM splitdb_archive.stau) d) AS only_in_sibling,
	   (SELECT count(*) FROM (SELECT * FROM splitdb_archive.stau EXCEPT ALL SELECT * FROM stau) d) AS only_in_source;

-------------------------------------------------------------------------
-- a fourth service: the cutover's last replay runs past its budget while
-- it sends the rows (the estimate before it had no rate to go by).  The
-- table's CHECK constraint sleeps 2 ms a row where public.online_bremse
-- holds a row: in the sibling only, where the copy and the rounds before
-- the cutover have 10 narrow rows; 1,500 wide ones wait at the cutover,
-- so the COPY waits on the sibling.  The
-- round ends its COPY after a fetch, lets go (55P03) and rolls the
-- sibling back: nothing switched, no row of the round left there
-------------------------------------------------------------------------
CREATE TABLE public.online_bremse ();
CREATE FUNCTION public.online_langsam(integer) RETURNS boolean
LANGUAGE sql AS $$
	SELECT CASE WHEN EXISTS (SELECT FROM public.online_bremse)
				THEN pg_catalog.pg_sleep(0.002) IS NOT NULL ELSE true END
$$;
CREATE TABLE schleppend (id integer PRIMARY KEY CHECK (public.online_langsam(id)), v text NOT NULL);
INSERT INTO schleppend SELECT g, 'v' || g FROM generate_series(1, 10) g;
SELECT splitdb_add_service('online_slow');
SELECT splitdb_assign('online_slow', 'schleppend');
\c online_slow
CREATE TABLE public.online_bremse ();
INSERT INTO public.online_bremse DEFAULT VALUES;
\c splitdb_regression
SET client_min_messages = warning;
SELECT pg_advisory_lock(1936747639, 0);
SET splitdb.migrate_pause_at = 'cutover';
SET splitdb.cutover_max_freeze = '300ms';
SET splitdb.cutover_attempts = 1;
SELECT splitdb_migrate('online_slow') AS slow_job \gset
SELECT online_wait_paused('online_slow', 'cutover');
-- 1,500 rows of about 10 kB wait, 2 ms each in the sibling
INSERT INTO schleppend SELECT g, repeat(md5(g::text), 300) FROM generate_series(11, 1510) g;
SELECT pg_advisory_unlock(1936747639, 0);
SELECT online_wait_done('online_slow');
SELECT state, phase FROM splitdb_status WHERE service = 'online_slow';
-- the round itself let go, in the middle of its rows
SELECT last_sqlstate,
	   last_error ~ 'would hold writes longer than splitdb.cutover_max_freeze \(300 ms\)' AS round_let_go,
	   last_error ~ 'before it had replayed everything' AS midway,
	   cutover_attempts FROM splitdb.job WHERE job_id = :slow_job;
SELECT relkind, (SELECT count(*) FROM schleppend) AS source_rows FROM pg_class WHERE oid = 'schleppend'::regclass;
\c online_slow
-- the round's rows were rolled back with its transaction
SELECT count(*) AS sibling_rows, max(id) FROM schleppend;
DELETE FROM public.online_bremse;
\c splitdb_regression
SET client_min_messages = warning;
RESET splitdb.migrate_pause_at;
RESET splitdb.cutover_max_freeze;
SET splitdb.cutover_attempts = 20;
SELECT splitdb_migrate('online_slow', wait => true) = :slow_job AS same_job;
RESET splitdb.cutover_attempts;
SELECT state FROM splitdb_status WHERE service = 'online_slow';
SELECT (SELECT count(*) FROM (SELECT * FROM schleppend EXCEPT ALL SELECT * FROM splitdb_archive.schleppend) d) AS only_in_sibling,
	   (SELECT count(*) FROM (SELECT * FROM splitdb_archive.schleppend EXCEPT ALL SELECT * FROM schleppend) d) AS only_in_source,
	   (SELECT count(*) FROM schleppend) AS rows_through_the_shim;

-------------------------------------------------------------------------
-- a fifth service: the last round before the cutover left changes behind.
-- A write that commits while a round replays stays for the next; which
-- round that is no test can time, so the lag that round would have
-- recorded is set by hand at the pause before the cutover, where 5 rows
-- are written.  The cutover replays them under its locks: at done nothing
-- is left, and splitdb_status says so
-------------------------------------------------------------------------
CREATE TABLE spaet (id integer PRIMARY KEY, v text NOT NULL);
INSERT INTO spaet SELECT g, 'v' || g FROM generate_series(1, 20) g;
SELECT splitdb_add_service('online_late');
SELECT splitdb_assign('online_late', 'spaet');
SELECT pg_advisory_lock(1936747639, 0);
SET splitdb.migrate_pause_at = 'cutover';
SELECT splitdb_migrate('online_late') AS late_job \gset
SELECT online_wait_paused('online_late', 'cutover');
INSERT INTO spaet SELECT g, 'spät ' || g FROM generate_series(21, 25) g;
UPDATE splitdb.job SET lag_rows = 5, lag_seconds = 0.001, lag_trend = 'growing' WHERE job_id = :late_job;
SELECT state, lag_rows, lag_trend FROM splitdb_status WHERE service = 'online_late';
SELECT pg_advisory_unlock(1936747639, 0);
SELECT online_wait_done('online_late');
SELECT state, lag_rows, lag_seconds, lag_trend FROM splitdb_status WHERE service = 'online_late';
SELECT count(*) AS rows_through_the_shim, count(*) FILTER (WHERE v LIKE 'spät %') AS late_rows FROM spaet;

-------------------------------------------------------------------------
-- a seventh service: its capture broken by hand while the job was failed
-- (a superuser disables splitdb's event triggers and drops a capture
-- trigger), then rows written that nothing logs.  The resumed job finds
-- the capture not intact, installs it again and copies every table again:
-- the rows written meanwhile reach the sibling, and one call ends it done
-- (without that, they would be missing there until the verification
-- failed the job)
-------------------------------------------------------------------------
CREATE TABLE gebrochen (id integer PRIMARY KEY, v text NOT NULL);
INSERT INTO gebrochen SELECT g, 'v' || g FROM generate_series(1, 300) g;
SELECT splitdb_add_service('online_broken');
SELECT splitdb_assign('online_broken', 'gebrochen');
SELECT pg_advisory_lock(1936747639, 0);
SET splitdb.migrate_pause_at = 'catching_up';
SELECT splitdb_migrate('online_broken') AS broken_job \gset
SELECT online_wait_paused('online_broken', 'catching_up');
SELECT pg_terminate_backend(worker_pid) IS NOT NULL AS terminated FROM splitdb.job WHERE job_id = :broken_job;
SELECT online_wait_done('online_broken');
SELECT pg_advisory_unlock(1936747639, 0);
RESET splitdb.migrate_pause_at;
ALTER EVENT TRIGGER splitdb_guard_ddl DISABLE;
ALTER EVENT TRIGGER splitdb_guard_drop DISABLE;
ALTER EVENT TRIGGER splitdb_guard_start DISABLE;
DROP TRIGGER splitdb_capture_insert ON gebrochen;
ALTER EVENT TRIGGER splitdb_guard_ddl ENABLE ALWAYS;
ALTER EVENT TRIGGER splitdb_guard_drop ENABLE ALWAYS;
ALTER EVENT TRIGGER splitdb_guard_start ENABLE ALWAYS;
INSERT INTO gebrochen SELECT g, 'ungeloggt ' || g FROM generate_series(301, 350) g;
UPDATE gebrochen SET v = 'geändert' WHERE id = 5;
SELECT splitdb_migrate('online_broken', wait => true) = :broken_job AS same_job;
SELECT state, runs FROM splitdb.job WHERE job_id = :broken_job;
SELECT count(*), count(*) FILTER (WHERE v LIKE 'ungeloggt %') AS unlogged,
	   count(*) FILTER (WHERE v = 'geändert') AS changed FROM gebrochen;
SELECT (SELECT count(*) FROM (SELECT * FROM gebrochen EXCEPT ALL SELECT * FROM splitdb_archive.gebrochen) d) AS only_in_sibling,
	   (SELECT count(*) FROM (SELECT * FROM splitdb_archive.gebrochen EXCEPT ALL SELECT * FROM gebrochen) d) AS only_in_source;
SELECT evtname, evtenabled FROM pg_event_trigger WHERE evtname LIKE 'splitdb\_guard\_%' ORDER BY 1;

RESET splitdb.migrate_pause_at;
RESET splitdb.batch_rows;
RESET splitdb.copy_streams;
RESET splitdb.copy_readers;

-- clean up
DROP FOREIGN TABLE bestellung, "Kunde ""Ö"" Liste", ohne_schluessel, nachzug, stau, schleppend, spaet, gebrochen;
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
DELETE FROM splitdb.job;
SELECT splitdb_drop_service('online_svc');
SELECT splitdb_drop_service('online_keyless');
SELECT splitdb_drop_service('online_lag');
SELECT splitdb_drop_service('online_freeze');
SELECT splitdb_drop_service('online_slow');
SELECT splitdb_drop_service('online_late');
SELECT splitdb_drop_service('online_broken');
DROP DATABASE online_svc WITH (FORCE);
DROP DATABASE online_keyless WITH (FORCE);
DROP DATABASE online_lag WITH (FORCE);
DROP DATABASE online_freeze WITH (FORCE);
DROP DATABASE online_slow WITH (FORCE);
DROP DATABASE online_late WITH (FORCE);
DROP DATABASE online_broken WITH (FORCE);
DROP FUNCTION public.online_langsam(integer);
DROP TABLE public.online_bremse;
DROP VIEW online_capture_objects;
DROP FUNCTION online_wait_paused(name, text), online_advance(name), online_wait_done(name);
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
