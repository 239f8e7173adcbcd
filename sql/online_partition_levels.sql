--
-- Online mode with a partitioned table of two levels: a write fires the
-- statement triggers of the table it names alone, so the capture sits on
-- every table of the tree, the partitioned tables of the second level
-- included.  Writes made through such a table while the job copies
-- (inserts, updates, a row moved between its partitions, deletes) are
-- logged into the tree's one log and reach the sibling; the job ends done
-- with the sibling's rows equal to the archived original's.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

-- Waits (at most 60 s) until the worker of service svc is paused at point
-- or its job has ended; returns what it saw.
CREATE FUNCTION levels_wait_paused(svc name, point text) RETURNS text
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

-- Waits (at most 120 s) until the last job of service svc has ended.
CREATE FUNCTION levels_wait_done(svc name) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	st text;
BEGIN
	FOR i IN 1..12000 LOOP
		SELECT j.state INTO st FROM splitdb.job j WHERE j.service = svc
		 ORDER BY j.job_id DESC LIMIT 1;
		IF st IN ('done', 'failed', 'cancelled') THEN
			RETURN st;
		END IF;
		PERFORM pg_sleep(0.01);
	END LOOP;
	RAISE EXCEPTION 'the job of service % did not end within 120 s (state %)', svc, st;
END
$$;

-- by year, then by region: "Ereignis 2026" is partitioned again
CREATE TABLE "Ereignis" (
	id     integer NOT NULL,
	jahr   integer NOT NULL,
	region text    NOT NULL,
	wert   integer NOT NULL,
	PRIMARY KEY (id, jahr, region)
) PARTITION BY RANGE (jahr);
CREATE TABLE "Ereignis 2025" PARTITION OF "Ereignis" FOR VALUES FROM (2025) TO (2026);
CREATE TABLE "Ereignis 2026" PARTITION OF "Ereignis" FOR VALUES FROM (2026) TO (2027)
	PARTITION BY LIST (region);
CREATE TABLE "Ereignis 2026 nord" PARTITION OF "Ereignis 2026" FOR VALUES IN ('nord');
CREATE TABLE "Ereignis 2026 süd" PARTITION OF "Ereignis 2026" FOR VALUES IN ('süd');
INSERT INTO "Ereignis"
SELECT g, 2025 + g % 2, CASE WHEN g % 4 < 2 THEN 'nord' ELSE 'süd' END, g
  FROM generate_series(1, 200) g;

SELECT splitdb_add_service('levels_svc');
SELECT splitdb_assign('levels_svc', '"Ereignis"');

-- held after the first batch: batches of 10 rows, the pause's advisory lock
SELECT pg_advisory_lock(1936747639, 0);
SET splitdb.batch_rows = 10;
SET splitdb.migrate_pause_at = 'copying';
SELECT splitdb_migrate('levels_svc') AS job \gset
RESET splitdb.migrate_pause_at;
RESET splitdb.batch_rows;
SELECT levels_wait_paused('levels_svc', 'copying');
SELECT state FROM splitdb_status WHERE service = 'levels_svc';

-- the capture: four triggers on every table of the tree, one log for all
SELECT tgrelid::regclass AS "table", count(*) AS capture_triggers,
	   bool_and(tgenabled = 'A') AS enabled_always
  FROM pg_trigger WHERE tgname LIKE 'splitdb\_capture\_%'
 GROUP BY 1 ORDER BY tgrelid::regclass::text;
SELECT count(DISTINCT log) AS logs, count(*) AS relations FROM splitdb.capture;

-- writes through the partitioned table of the second level, and one
-- straight into a leaf for comparison
INSERT INTO "Ereignis 2026" VALUES (1001, 2026, 'nord', 1), (1002, 2026, 'süd', 2);
UPDATE "Ereignis 2026" SET wert = wert + 1000 WHERE id IN (3, 5, 197);
-- a row moved between the two partitions under "Ereignis 2026"
UPDATE "Ereignis 2026" SET region = 'nord' WHERE id = 199;
DELETE FROM "Ereignis 2026" WHERE id IN (7, 195);
INSERT INTO "Ereignis 2026 nord" VALUES (1003, 2026, 'nord', 3);
SELECT log AS ereignis_log FROM splitdb.capture WHERE relid = '"Ereignis"'::regclass \gset
SELECT splitdb_op, count(*) FROM :ereignis_log GROUP BY 1 ORDER BY 1;

-- let it go: the job ends done
SELECT pg_advisory_unlock(1936747639, 0);
SELECT levels_wait_done('levels_svc');
SELECT state, mode, last_error FROM splitdb_status WHERE service = 'levels_svc';

-- the sibling (through the shim) and the archived original hold the same
-- rows, both ways, each in the same partition
SELECT (SELECT count(*) FROM (SELECT * FROM "Ereignis" EXCEPT ALL SELECT * FROM splitdb_archive."Ereignis") d)
		AS only_in_sibling,
	   (SELECT count(*) FROM (SELECT * FROM splitdb_archive."Ereignis" EXCEPT ALL SELECT * FROM "Ereignis") d)
		AS only_in_source,
	   (SELECT count(*) FROM "Ereignis") AS n;
SELECT table_name, source_rows = target_rows AS same_rows, ok FROM splitdb_verify('levels_svc') ORDER BY 1;
\c levels_svc
SELECT tableoid::regclass AS partition, id, jahr, region, wert FROM "Ereignis"
 WHERE id IN (3, 5, 7, 195, 197, 199, 1001, 1002, 1003) ORDER BY id;
SELECT tableoid::regclass AS partition, count(*) FROM "Ereignis" GROUP BY 1 ORDER BY 1;
\c splitdb_regression
SET client_min_messages = warning;

-- clean up
DROP FOREIGN TABLE "Ereignis";
DELETE FROM splitdb.job;
DROP SCHEMA IF EXISTS splitdb_archive CASCADE;
SELECT splitdb_drop_service('levels_svc');
DROP DATABASE levels_svc WITH (FORCE);
DROP FUNCTION levels_wait_paused(name, text), levels_wait_done(name);
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
