--
-- cancel_search_path: the short worker that records the cancel of a job
-- whose worker was gone (57P01) reads the database's settings when it
-- connects; operators that a search_path set on the database puts before
-- pg_catalog's capture none of its statement
--
CREATE EXTENSION splitdb CASCADE;
SELECT splitdb_add_service('cs_svc');
CREATE TABLE cs_item (id int PRIMARY KEY, note text);
INSERT INTO cs_item SELECT g, 'n' || g FROM generate_series(1, 50) g;
SELECT splitdb_assign('cs_svc', 'cs_item');
SET client_min_messages = warning;

-- Waits (at most 60 s) until the job of service svc is paused at point, or
-- has ended; returns what it saw.
CREATE FUNCTION cs_wait(svc name, point text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	st text;
BEGIN
	FOR i IN 1..3000 LOOP
		PERFORM pg_stat_clear_snapshot();
		SELECT s.state INTO st FROM splitdb_status s WHERE s.service = svc;
		IF EXISTS (SELECT FROM pg_stat_activity a JOIN splitdb.job j ON j.worker_pid = a.pid
					WHERE j.service = svc AND a.query = 'paused at ' || point) THEN
			RETURN 'paused at ' || point;
		END IF;
		IF st IN ('done', 'failed', 'cancelled') THEN
			RETURN st;
		END IF;
		PERFORM pg_sleep(0.02);
	END LOOP;
	RAISE EXCEPTION 'the job of service % neither paused at % nor ended within 60 s (state %)', svc, point, st;
END
$$;

-- the job stops in its copy, and its worker is terminated: failed, 57P01
SELECT pg_advisory_lock(1936747639, 0);
SET splitdb.batch_rows = 10;
SET splitdb.migrate_pause_at = 'copying';
SELECT splitdb_migrate('cs_svc') > 0 AS started;
SELECT cs_wait('cs_svc', 'copying');
SELECT pg_terminate_backend(worker_pid) FROM splitdb.job WHERE service = 'cs_svc';
SELECT cs_wait('cs_svc', 'nowhere');
SELECT pg_advisory_unlock(1936747639, 0);
RESET splitdb.migrate_pause_at;
SELECT state, last_sqlstate FROM splitdb.job;

-- the database's search_path shadows = on text and on bigint
CREATE SCHEMA cs_app;
CREATE FUNCTION cs_app.captured_text(a text, b text) RETURNS boolean LANGUAGE plpgsql AS
$$BEGIN RAISE EXCEPTION 'operator =(text, text) of schema cs_app called'; END$$;
CREATE FUNCTION cs_app.captured_bigint(a bigint, b bigint) RETURNS boolean LANGUAGE plpgsql AS
$$BEGIN RAISE EXCEPTION 'operator =(bigint, bigint) of schema cs_app called'; END$$;
CREATE OPERATOR cs_app.= (LEFTARG = text, RIGHTARG = text, FUNCTION = cs_app.captured_text);
CREATE OPERATOR cs_app.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = cs_app.captured_bigint);
SELECT current_database() AS db \gset
ALTER DATABASE :"db" SET search_path = cs_app, pg_catalog, public;

-- the cancel's worker records the job cancelled, without a warning
RESET client_min_messages;
SELECT splitdb_cancel('cs_svc');
SELECT state, last_sqlstate, last_error LIKE 'splitdb_cancel() began after the worker was gone%' AS recorded
  FROM splitdb.job;
ALTER DATABASE :"db" RESET search_path;

-- clean up
SET client_min_messages = warning;
DELETE FROM splitdb.job;
SELECT splitdb_unassign('cs_svc', 'cs_item');
SELECT splitdb_drop_service('cs_svc');
DROP DATABASE cs_svc WITH (FORCE);
DROP TABLE cs_item;
DROP FUNCTION cs_wait(name, text);
DROP SCHEMA cs_app CASCADE;
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
