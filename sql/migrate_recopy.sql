--
-- Copying again the tables that verification sent back.  By then the
-- sibling has the service's foreign keys and the moved tables' triggers.
-- Checked here:
-- - the copy again writes the rows as the source has them: the sibling's
--   triggers in their default state do not fire on them (a BEFORE INSERT
--   trigger that moved with its table changed every row again, and
--   verification failed on every run), and neither do the foreign keys (a
--   referencing table is copied before the table it references, which
--   failed with 23503);
-- - a run that stops after copying a part of the tables again resumes: the
--   tables not copied yet are emptied without a TRUNCATE, which the
--   foreign keys of the tables that keep their rows refused (0A000).
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

-- the referencing table sorts first, so it is copied first
CREATE TABLE rc_b_parent (id integer PRIMARY KEY, v text NOT NULL);
CREATE TABLE rc_a_child (
	id integer PRIMARY KEY,
	parent_id integer NOT NULL REFERENCES rc_b_parent ON DELETE CASCADE,
	v text NOT NULL);
-- a trigger of the application's that moves with its table
CREATE FUNCTION rc_mark() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN NEW.v := NEW.v || '!'; RETURN NEW; END $$;
CREATE TRIGGER rc_mark BEFORE INSERT ON rc_a_child
	FOR EACH ROW EXECUTE FUNCTION rc_mark();
INSERT INTO rc_b_parent SELECT g, 'parent ' || g FROM generate_series(1, 30) g;
INSERT INTO rc_a_child SELECT g, 1 + g % 30, 'child ' || g FROM generate_series(1, 60) g;

SELECT splitdb_add_service('rc_svc');
SELECT splitdb_assign('rc_svc', 'rc_a_child', 'rc_b_parent');

-- in the sibling: a trigger that fires in every session (ENABLE ALWAYS)
-- and changes the parent's rows, so that the first verification fails
\c rc_svc
CREATE FUNCTION public.sabotage() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN NEW.v := upper(NEW.v); RETURN NEW; END $$;
CREATE FUNCTION public.add_sabotage() RETURNS event_trigger LANGUAGE plpgsql AS
$$
BEGIN
	IF pg_catalog.to_regclass('public.rc_b_parent') IS NOT NULL THEN
		IF NOT EXISTS (SELECT FROM pg_catalog.pg_trigger WHERE tgname = 'sabotage') THEN
			CREATE TRIGGER sabotage BEFORE INSERT ON public.rc_b_parent
				FOR EACH ROW EXECUTE FUNCTION public.sabotage();
		END IF;
		IF EXISTS (SELECT FROM pg_catalog.pg_trigger WHERE tgname = 'sabotage' AND tgenabled <> 'A') THEN
			ALTER TABLE public.rc_b_parent ENABLE ALWAYS TRIGGER sabotage;
		END IF;
	END IF;
END
$$;
CREATE EVENT TRIGGER add_sabotage ON ddl_command_end EXECUTE FUNCTION public.add_sabotage();
\c splitdb_regression
SET client_min_messages = warning;

SELECT splitdb_migrate('rc_svc', mode => 'offline', wait => true);
SELECT state, phase FROM splitdb_status WHERE service = 'rc_svc';
SELECT table_name, phase, rows_copied FROM splitdb_table_status WHERE service = 'rc_svc' ORDER BY 1;

-- the sibling now has the foreign key and the moved trigger
\c rc_svc
DROP EVENT TRIGGER add_sabotage;
DROP TRIGGER sabotage ON rc_b_parent;
SELECT conname FROM pg_constraint WHERE contype = 'f' ORDER BY 1;
SELECT tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1;
\c splitdb_regression
SET client_min_messages = warning;

-- Waits (at most 60 s) until the job of service svc is paused at point, or
-- has ended; returns what it saw.
CREATE FUNCTION rc_wait(svc name, point text) RETURNS text
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

-- copy again, and stop the worker after the first batch of the first table
SELECT pg_advisory_lock(1936747639, 0);
SET splitdb.batch_rows = 10;
SET splitdb.copy_streams = 1;
SET splitdb.copy_readers = 1;
SET splitdb.migrate_pause_at = 'copying';
SELECT splitdb_migrate('rc_svc') = (SELECT job_id FROM splitdb.job) AS same_job;
SELECT rc_wait('rc_svc', 'copying');
SELECT table_name, phase, rows_copied FROM splitdb_table_status WHERE service = 'rc_svc' ORDER BY 1;
SELECT pg_terminate_backend(worker_pid) FROM splitdb.job WHERE service = 'rc_svc';
SELECT rc_wait('rc_svc', 'nowhere');
SELECT pg_advisory_unlock(1936747639, 0);
RESET splitdb.migrate_pause_at;

-- resume: the job ends done, with the source's rows
SELECT splitdb_migrate('rc_svc', wait => true) = (SELECT job_id FROM splitdb.job) AS same_job;
SELECT runs, state, phase, last_error FROM splitdb.job;
SELECT table_name, source_rows, target_rows, ok FROM splitdb_verify('rc_svc') ORDER BY 1;
\c rc_svc
SELECT count(*), min(v), max(v), count(*) FILTER (WHERE v LIKE '%!!') AS marked_twice FROM rc_a_child;
SELECT count(*), min(v), max(v) FROM rc_b_parent;
\c splitdb_regression
SET client_min_messages = warning;

-- clean up
DROP FOREIGN TABLE rc_a_child, rc_b_parent;
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
SELECT splitdb_drop_service('rc_svc');
DROP DATABASE rc_svc WITH (FORCE);
DROP FUNCTION rc_wait(name, text);
DROP FUNCTION rc_mark();
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
