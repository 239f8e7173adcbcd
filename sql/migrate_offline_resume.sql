--
-- An offline job that stops after its copy lets go of its tables, and the
-- application writes to them until the job resumes.  Checked here:
-- - splitdb_migrate() resumes the job, whose verification finds the
--   tables changed, and the same run copies them again and ends done (it
--   failed, and took one more call, before);
-- - the sibling then holds the rows written while the job was stopped,
--   the foreign key between the tables included.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

CREATE TABLE ofr_parent (id integer PRIMARY KEY, v text NOT NULL);
CREATE TABLE ofr_child (
	id integer PRIMARY KEY,
	parent_id integer NOT NULL REFERENCES ofr_parent ON DELETE CASCADE,
	v text NOT NULL);
INSERT INTO ofr_parent SELECT g, 'parent ' || g FROM generate_series(1, 20) g;
INSERT INTO ofr_child SELECT g, 1 + g % 20, 'child ' || g FROM generate_series(1, 40) g;

SELECT splitdb_add_service('ofr_svc');
SELECT splitdb_assign('ofr_svc', 'ofr_parent', 'ofr_child');

-- Waits (at most 60 s) until the job of service svc is paused at point, or
-- has ended; returns what it saw.
CREATE FUNCTION ofr_wait(svc name, point text) RETURNS text
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

-- stop the job before its cutover, after a verification that passed
SELECT pg_advisory_lock(1936747639, 0);
SET splitdb.migrate_pause_at = 'cutover';
SELECT splitdb_migrate('ofr_svc', mode => 'offline') IS NOT NULL AS started;
SELECT ofr_wait('ofr_svc', 'cutover');
SELECT pg_terminate_backend(worker_pid) FROM splitdb.job WHERE service = 'ofr_svc';
SELECT ofr_wait('ofr_svc', 'nowhere');
SELECT pg_advisory_unlock(1936747639, 0);
RESET splitdb.migrate_pause_at;
SELECT state, phase, mode FROM splitdb_status WHERE service = 'ofr_svc';

-- the application writes while the job is stopped
INSERT INTO ofr_parent VALUES (21, 'parent 21');
INSERT INTO ofr_child VALUES (41, 21, 'child 41');
UPDATE ofr_parent SET v = 'changed' WHERE id = 1;
DELETE FROM ofr_parent WHERE id = 2;

-- resume: one call copies again and cuts over
SELECT splitdb_migrate('ofr_svc', wait => true) = (SELECT job_id FROM splitdb.job) AS same_job;
SELECT runs, state, phase, last_error FROM splitdb.job;
SELECT table_name, source_rows, target_rows, ok FROM splitdb_verify('ofr_svc') ORDER BY 1;
SELECT count(*), count(*) FILTER (WHERE v = 'changed') AS changed,
	count(*) FILTER (WHERE id = 2) AS deleted, count(*) FILTER (WHERE id = 21) AS added
  FROM ofr_parent;
SELECT count(*), count(*) FILTER (WHERE id = 41) AS added FROM ofr_child;

-- clean up
DROP FOREIGN TABLE ofr_child, ofr_parent;
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
SELECT splitdb_drop_service('ofr_svc');
DROP DATABASE ofr_svc WITH (FORCE);
DROP FUNCTION ofr_wait(name, text);
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
