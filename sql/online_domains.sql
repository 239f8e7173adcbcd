--
-- Online replay and rollback of tables whose columns outside the key have
-- domain types that refuse NULL: a NOT NULL domain and a domain whose
-- CHECK fails on NULL, one of them in a composite key too.  A round reads
-- the logged keys as rows of the key columns alone, so the columns the
-- keys lack never pass a domain's check as NULL.  Checked here:
-- - writes made while the worker is held before its cutover (updates of
--   those columns, a delete, inserts) are replayed by the cutover's last
--   round and checked there; the job ends done, and the sibling's rows
--   (read through the shims) are exactly the source's (the archived
--   originals), both ways;
-- - writes through the shims after the cutover come back with
--   splitdb_rollback(): the job is rolled_back and the originals hold the
--   rows as written.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

-- Waits (at most 60 s) until the worker of service svc is paused at point
-- or its job has ended; returns what it saw.
CREATE FUNCTION od_wait(svc name, point text) RETURNS text
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

CREATE SCHEMA od;
CREATE DOMAIN od.flag AS boolean NOT NULL;
CREATE DOMAIN od.label AS text CHECK (VALUE IS NOT NULL AND VALUE <> '');
CREATE DOMAIN od.code AS text CHECK (VALUE ~ '^[A-Z]+$');
CREATE TABLE od.item (
	id     integer PRIMARY KEY,
	active od.flag DEFAULT true,
	label  od.label NOT NULL,
	qty    integer NOT NULL
);
CREATE TABLE od.part (
	code od.code,
	n    integer,
	ok   od.flag,
	PRIMARY KEY (code, n)
);
INSERT INTO od.item SELECT g, g % 2 = 0, 'item ' || g, g FROM generate_series(1, 8) g;
INSERT INTO od.part SELECT c, n, true FROM unnest(ARRAY['AB', 'CD']) c, generate_series(1, 2) n;

SELECT splitdb_add_service('online_domains');
SELECT splitdb_assign('online_domains', 'od.item', 'od.part');

-- held before the cutover, while this session writes
SELECT pg_advisory_lock(1936747639, 0);
SET splitdb.migrate_pause_at = 'cutover';
SELECT splitdb_migrate('online_domains') > 0 AS started;
SELECT od_wait('online_domains', 'cutover');
UPDATE od.item SET active = NOT active, label = 'changed ' || id WHERE id <= 3;
DELETE FROM od.item WHERE id = 4;
INSERT INTO od.item VALUES (9, false, 'nine', 9), (10, true, 'ten', 10);
UPDATE od.part SET ok = false WHERE n = 2;
INSERT INTO od.part VALUES ('EF', 1, false);
SELECT pg_advisory_unlock(1936747639, 0);
SELECT od_wait('online_domains', 'none');
SELECT state, phase, last_error FROM splitdb_status WHERE service = 'online_domains';

-- the sibling's rows equal the archived originals', both ways
SELECT (SELECT count(*) FROM (SELECT * FROM od.item EXCEPT ALL SELECT * FROM splitdb_archive.item) d) AS item_only_in_sibling,
	   (SELECT count(*) FROM (SELECT * FROM splitdb_archive.item EXCEPT ALL SELECT * FROM od.item) d) AS item_only_in_source,
	   (SELECT count(*) FROM (SELECT * FROM od.part EXCEPT ALL SELECT * FROM splitdb_archive.part) d) AS part_only_in_sibling,
	   (SELECT count(*) FROM (SELECT * FROM splitdb_archive.part EXCEPT ALL SELECT * FROM od.part) d) AS part_only_in_source;
SELECT * FROM od.item ORDER BY id;
SELECT * FROM od.part ORDER BY code, n;

-- writes through the shims, then back into the source
UPDATE od.item SET active = true, label = 'after' WHERE id IN (1, 5);
DELETE FROM od.item WHERE id = 9;
INSERT INTO od.item VALUES (11, false, 'eleven', 11);
UPDATE od.part SET ok = true WHERE code = 'EF';
SELECT splitdb_rollback('online_domains');
SELECT state FROM splitdb.job WHERE service = 'online_domains';
SELECT c.relkind FROM pg_class c WHERE c.oid = 'od.item'::regclass;
SELECT * FROM od.item ORDER BY id;
SELECT * FROM od.part ORDER BY code, n;

RESET splitdb.migrate_pause_at;

-- clean up
DROP SCHEMA od CASCADE;
DROP SCHEMA IF EXISTS splitdb_archive CASCADE;
DELETE FROM splitdb.job;
SELECT splitdb_drop_service('online_domains');
DROP DATABASE online_domains WITH (FORCE);
DROP FUNCTION od_wait(name, text);
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
