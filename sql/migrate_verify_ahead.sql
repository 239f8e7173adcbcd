--
-- migrate_verify_ahead: while the sibling builds an offline job's indexes,
-- the worker counts and checksums the job's tables in the source, which
-- the job's share locks keep as they are until it ends; the verification
-- then asks only the sibling for them.  The counts show in splitdb.job_table
-- (the sibling's side and the verdict still empty) at the end of the
-- indexing step, equal to what splitdb_verify() finds in the source then,
-- and the job ends verified.  An online job, whose source changes until
-- the verification's snapshot, counts nothing ahead, nor does an offline
-- job with splitdb.verify_ahead off.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;
SELECT splitdb_add_service('va_svc');
SELECT splitdb_add_service('va_online');
CREATE TABLE "Va ahead" (id int PRIMARY KEY, "näme" text, at timestamptz);
CREATE INDEX ON "Va ahead" ("näme");
CREATE TABLE va_plain (id int, v text);
CREATE TABLE va_on (id int PRIMARY KEY, v text);
INSERT INTO "Va ahead"
SELECT g, 'n' || g, timestamptz '2026-01-01 00:00+00' + g * interval '1 hour'
  FROM generate_series(1, 1000) g;
INSERT INTO va_plain SELECT g % 10, 'v' || g FROM generate_series(1, 300) g;
INSERT INTO va_on SELECT g, 'o' || g FROM generate_series(1, 200) g;
SELECT splitdb_assign('va_svc', '"Va ahead"', 'va_plain');
SELECT splitdb_assign('va_online', 'va_on');

-- Waits (at most 60 s) until the job of service svc is paused at point, or
-- has ended; returns what it saw.
CREATE FUNCTION va_wait(svc name, point text) RETURNS text
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

-- the offline job, held at the end of its indexing step
SELECT pg_advisory_lock(1936747639, 0);
SET splitdb.copy_streams = 2;
SET splitdb.migrate_pause_at = 'indexing';
SELECT splitdb_migrate('va_svc', mode => 'offline') > 0 AS started;
SELECT va_wait('va_svc', 'indexing');
-- both tables counted in the source, nothing in the sibling's columns yet
SELECT t.table_name, t.source_rows, t.target_rows, t.target_checksum, t.verified,
	   t.source_checksum = v.source_checksum AS checksum_as_source_now,
	   t.source_rows = v.source_rows AS rows_as_source_now
  FROM splitdb.job_table t
  JOIN splitdb_verify('va_svc') v ON v.table_name = t.table_name
 ORDER BY 1;
SELECT table_name, phase, source_rows, target_rows, counts_match, checksums_match
  FROM splitdb_table_status WHERE service = 'va_svc' ORDER BY 1;
-- still unwritable while the job runs: the share lock that makes the counts hold
SET lock_timeout = '100ms';
INSERT INTO va_plain VALUES (99, 'late');
RESET lock_timeout;
SELECT pg_advisory_unlock(1936747639, 0);
SELECT va_wait('va_svc', 'nowhere');
-- verified: the sibling's side equals the side counted ahead
SELECT table_name, source_rows, target_rows, source_checksum = target_checksum AS same_checksum, verified
  FROM splitdb.job_table ORDER BY 1;
SELECT table_name, source_rows, target_rows, ok FROM splitdb_verify('va_svc') ORDER BY 1;

-- the online job counts nothing ahead
SELECT pg_advisory_lock(1936747639, 0);
SELECT splitdb_migrate('va_online', mode => 'online') > 0 AS started;
SELECT va_wait('va_online', 'indexing');
SELECT t.table_name, t.source_rows, t.source_checksum, t.verified
  FROM splitdb.job_table t JOIN splitdb.job j USING (job_id)
 WHERE j.service = 'va_online';
SELECT pg_advisory_unlock(1936747639, 0);
RESET splitdb.migrate_pause_at;
SELECT va_wait('va_online', 'nowhere');
SELECT t.table_name, t.source_rows, t.target_rows, t.verified
  FROM splitdb.job_table t JOIN splitdb.job j USING (job_id)
 WHERE j.service = 'va_online';

-- with splitdb.verify_ahead off, an offline job counts nothing ahead either
SELECT splitdb_add_service('va_off');
CREATE TABLE va_off_t (id int PRIMARY KEY, v text);
INSERT INTO va_off_t SELECT g, 'f' || g FROM generate_series(1, 50) g;
SELECT splitdb_assign('va_off', 'va_off_t');
SET splitdb.verify_ahead = off;
SET splitdb.migrate_pause_at = 'indexing';
SELECT pg_advisory_lock(1936747639, 0);
SELECT splitdb_migrate('va_off', mode => 'offline') > 0 AS started;
RESET splitdb.verify_ahead;
RESET splitdb.migrate_pause_at;
SELECT va_wait('va_off', 'indexing');
SELECT t.table_name, t.source_rows, t.source_checksum, t.verified
  FROM splitdb.job_table t JOIN splitdb.job j USING (job_id)
 WHERE j.service = 'va_off';
SELECT pg_advisory_unlock(1936747639, 0);
SELECT va_wait('va_off', 'nowhere');
SELECT t.table_name, t.source_rows, t.target_rows, t.verified
  FROM splitdb.job_table t JOIN splitdb.job j USING (job_id)
 WHERE j.service = 'va_off';

-- clean up
DROP FOREIGN TABLE "Va ahead", va_plain, va_on, va_off_t;
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
SELECT splitdb_drop_service('va_svc');
SELECT splitdb_drop_service('va_online');
SELECT splitdb_drop_service('va_off');
DROP DATABASE va_svc WITH (FORCE);
DROP DATABASE va_online WITH (FORCE);
DROP DATABASE va_off WITH (FORCE);
DROP FUNCTION va_wait(name, text);
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
