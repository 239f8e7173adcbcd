--
-- Tables with inheritance children (INHERITS), moved with them: a statement
-- on a parent writes its children's rows too, but PostgreSQL fires the
-- statement triggers of the table it names alone, with the children's rows
-- in its transition tables.  The capture logs the parent's keys into each
-- child's log as well (a child whose key has a column of its own gets a
-- "T", everything may have changed), and each replay reads its table
-- alone (ONLY).  Shown:
-- - an online job with writes through the parent while it copies: done,
--   each table equal to its archived original;
-- - after the cutover, writes in the sibling through the parent (updates
--   and deletes of the children's rows, a key changed) and into a child:
--   splitdb_rollback() brings each row back into its own table, with its
--   own columns;
-- - a table that inherits from a moved table, made in the sibling after
--   the cutover, captures nothing: splitdb_rollback() refuses, naming it,
--   and changes nothing; without it, the rollback goes on.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

CREATE FUNCTION inh_wait(svc name, point text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	st text;
BEGIN
	FOR i IN 1..6000 LOOP
		PERFORM pg_stat_clear_snapshot();
		SELECT j.state INTO st FROM splitdb.job j WHERE j.service = svc
		 ORDER BY j.job_id DESC LIMIT 1;
		IF point IS NOT NULL AND EXISTS (
			SELECT FROM pg_stat_activity a JOIN splitdb.job j ON j.worker_pid = a.pid
			 WHERE j.service = svc AND a.query = 'paused at ' || point) THEN
			RETURN 'paused at ' || point;
		END IF;
		IF st IN ('done', 'failed', 'cancelled') THEN
			RETURN st;
		END IF;
		PERFORM pg_sleep(0.02);
	END LOOP;
	RAISE EXCEPTION 'the job of service % did not pause at % nor end within 120 s (state %)', svc, point, st;
END
$$;

-- a parent, a child with the parent's key, a grandchild keyed on a column
-- of its own
CREATE TABLE "Fahrzeug" (id integer PRIMARY KEY, name text NOT NULL);
CREATE TABLE "Fahrzeug Lkw" (achsen integer NOT NULL) INHERITS ("Fahrzeug");
ALTER TABLE "Fahrzeug Lkw" ADD PRIMARY KEY (id);
CREATE TABLE "Fahrzeug Lkw kühl" (kennung text PRIMARY KEY) INHERITS ("Fahrzeug Lkw");
INSERT INTO "Fahrzeug" SELECT g, 'auto ' || g FROM generate_series(1, 60) g;
INSERT INTO "Fahrzeug Lkw" SELECT g, 'lkw ' || g, 2 + g % 3 FROM generate_series(101, 160) g;
INSERT INTO "Fahrzeug Lkw kühl" SELECT g, 'kühl ' || g, 3, 'K-' || g FROM generate_series(201, 260) g;

SELECT splitdb_add_service('inh_svc');
SELECT splitdb_assign('inh_svc', '"Fahrzeug"', '"Fahrzeug Lkw"', '"Fahrzeug Lkw kühl"');

-------------------------------------------------------------------------
-- online: writes through the parent while the job copies
-------------------------------------------------------------------------
SELECT pg_advisory_lock(1936747639, 0);
SET splitdb.batch_rows = 10;
SET splitdb.migrate_pause_at = 'copying';
SELECT splitdb_migrate('inh_svc') > 0 AS started;
RESET splitdb.migrate_pause_at;
RESET splitdb.batch_rows;
SELECT inh_wait('inh_svc', 'copying');
UPDATE "Fahrzeug" SET name = name || ' (1)' WHERE id % 10 = 5;
DELETE FROM "Fahrzeug" WHERE id % 10 = 7;
UPDATE "Fahrzeug" SET id = id + 1000 WHERE id IN (150, 250);
INSERT INTO "Fahrzeug Lkw" VALUES (170, 'lkw 170', 4);
SELECT pg_advisory_unlock(1936747639, 0);
SELECT inh_wait('inh_svc', NULL);
SELECT state, mode, last_error FROM splitdb_status WHERE service = 'inh_svc';
-- each table with its descendants, in the sibling (the shims, whose remote
-- queries read the descendants too) and archived, both ways; then each
-- table alone, counted and checksummed by splitdb_verify()
SELECT (SELECT count(*) FROM (SELECT * FROM "Fahrzeug" EXCEPT ALL
							  SELECT * FROM splitdb_archive."Fahrzeug") d) AS only_in_sibling,
	   (SELECT count(*) FROM (SELECT * FROM splitdb_archive."Fahrzeug" EXCEPT ALL
							  SELECT * FROM "Fahrzeug") d) AS only_in_source,
	   (SELECT count(*) FROM "Fahrzeug") AS n;
SELECT (SELECT count(*) FROM (SELECT * FROM "Fahrzeug Lkw" EXCEPT ALL
							  SELECT * FROM splitdb_archive."Fahrzeug Lkw") d) AS only_in_sibling,
	   (SELECT count(*) FROM (SELECT * FROM splitdb_archive."Fahrzeug Lkw" EXCEPT ALL
							  SELECT * FROM "Fahrzeug Lkw") d) AS only_in_source,
	   (SELECT count(*) FROM "Fahrzeug Lkw") AS n;
SELECT (SELECT count(*) FROM (SELECT * FROM "Fahrzeug Lkw kühl" EXCEPT ALL
							  SELECT * FROM splitdb_archive."Fahrzeug Lkw kühl") d) AS only_in_sibling,
	   (SELECT count(*) FROM (SELECT * FROM splitdb_archive."Fahrzeug Lkw kühl" EXCEPT ALL
							  SELECT * FROM "Fahrzeug Lkw kühl") d) AS only_in_source,
	   (SELECT count(*) FROM "Fahrzeug Lkw kühl") AS n;
SELECT table_name, source_rows = target_rows AS same_rows, ok FROM splitdb_verify('inh_svc') ORDER BY 1;

-------------------------------------------------------------------------
-- after the cutover: writes in the sibling, then the way back
-------------------------------------------------------------------------
\c inh_svc
UPDATE "Fahrzeug" SET name = name || ' (2)' WHERE id IN (3, 103, 203);
DELETE FROM "Fahrzeug" WHERE id IN (4, 104, 204);
UPDATE "Fahrzeug" SET id = id + 2000 WHERE id IN (106, 206);
INSERT INTO "Fahrzeug Lkw" VALUES (180, 'lkw 180', 5);
INSERT INTO "Fahrzeug Lkw kühl" VALUES (280, 'kühl 280', 3, 'K-280');
SELECT tableoid::regclass AS "table", * FROM "Fahrzeug"
 WHERE id IN (3, 4, 103, 104, 106, 170, 180, 203, 204, 206, 280, 1150, 1250, 2106, 2206) ORDER BY id;
SELECT tableoid::regclass AS "table", count(*) FROM "Fahrzeug" GROUP BY 1 ORDER BY 1;
-- a table that inherits from a moved one, made here: it captures nothing
CREATE TABLE "Fahrzeug Bus" (sitze integer) INHERITS ("Fahrzeug");
INSERT INTO "Fahrzeug Bus" VALUES (300, 'bus 300', 40);
\c splitdb_regression
SET client_min_messages = warning;
-- fails: the capture is incomplete (55000), naming the new table
SELECT splitdb_rollback('inh_svc');
SELECT state FROM splitdb_status WHERE service = 'inh_svc';
SELECT relkind FROM pg_class WHERE oid = '"Fahrzeug"'::regclass;
\c inh_svc
DROP TABLE "Fahrzeug Bus";
\c splitdb_regression
SET client_min_messages = warning;
SELECT splitdb_rollback('inh_svc');
SELECT state FROM splitdb_status WHERE service = 'inh_svc';
-- each row back in its own table, with its own columns
SELECT tableoid::regclass AS "table", * FROM "Fahrzeug"
 WHERE id IN (3, 4, 103, 104, 106, 170, 180, 203, 204, 206, 280, 1150, 1250, 2106, 2206) ORDER BY id;
SELECT * FROM ONLY "Fahrzeug Lkw" WHERE id IN (103, 170, 180, 1150, 2106) ORDER BY id;
SELECT * FROM "Fahrzeug Lkw kühl" WHERE id IN (203, 280, 1250, 2206) ORDER BY id;
SELECT tableoid::regclass AS "table", count(*) FROM "Fahrzeug" GROUP BY 1 ORDER BY 1;

-- clean up
DROP TABLE "Fahrzeug" CASCADE;
DELETE FROM splitdb.job;
DROP SCHEMA IF EXISTS splitdb_archive CASCADE;
SELECT splitdb_drop_service('inh_svc');
DROP DATABASE inh_svc WITH (FORCE);
DROP FUNCTION inh_wait(name, text);
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
