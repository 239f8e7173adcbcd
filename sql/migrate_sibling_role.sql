--
-- The role that a service's user mapping connects as must be a superuser in
-- the sibling: the cutover installs splitdb there, with the triggers of the
-- change capture and of the cross-service references.  A job mapped to
-- another role copied, indexed and verified every row, then failed at its
-- cutover (42501, "permission denied to create extension", and with the
-- extension installed by hand "permission denied for function
-- install_capture").  splitdb_migrate() refuses it now, in both modes,
-- before it makes a job (and a worker that finds such a connection, in a
-- job the launcher resumes, fails before it changes anything: TAP test
-- 032_sibling_role.pl).  Checked here:
-- - each call fails with 42501 and says which role, why, and what to do;
-- - nothing was made: no job, no capture in the source, the table takes
--   writes, the sibling has no table and no splitdb;
-- - mapped to a superuser again, each job runs to done, with the writes
--   made in between;
-- - mapped to that role again after the cutover, splitdb_rollback() and
--   splitdb_finalize() are refused (they failed with "permission denied
--   for function capture_problem" and "for schema splitdb_capture"), and
--   the job, the shim, the archive and the sibling's capture are as they
--   were.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

CREATE ROLE "regress_sr Mover" LOGIN;
CREATE TABLE "Lager" (id int PRIMARY KEY, v text NOT NULL);
CREATE TABLE "Regal" (id int PRIMARY KEY, v text NOT NULL);
INSERT INTO "Lager" SELECT g, 'l' || g FROM generate_series(1, 500) g;
INSERT INTO "Regal" SELECT g, 'r' || g FROM generate_series(1, 300) g;
SELECT splitdb_add_service('sr_off');
SELECT splitdb_add_service('sr_on');
SELECT splitdb_assign('sr_off', '"Lager"');
SELECT splitdb_assign('sr_on', '"Regal"');
ALTER USER MAPPING FOR CURRENT_USER SERVER splitdb_sr_off OPTIONS (SET user 'regress_sr Mover');
ALTER USER MAPPING FOR CURRENT_USER SERVER splitdb_sr_on OPTIONS (SET user 'regress_sr Mover');

-- refused in both modes, before a job is made
SELECT splitdb_migrate('sr_off', mode => 'offline', wait => true);
\echo :LAST_ERROR_SQLSTATE
SELECT splitdb_migrate('sr_on', mode => 'online');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS jobs FROM splitdb.job;

-- nothing was made in the source: no capture, no log, no shim; writes go on
SELECT c.relname, c.relkind,
	   (SELECT count(*) FROM pg_trigger t WHERE t.tgrelid = c.oid) AS triggers
  FROM pg_class c WHERE c.oid IN ('"Lager"'::regclass, '"Regal"'::regclass) ORDER BY 1;
SELECT count(*) AS capture_entries FROM splitdb.capture;
SELECT count(*) AS capture_schemas FROM pg_namespace WHERE nspname = 'splitdb_capture';
INSERT INTO "Lager" VALUES (501, 'dazwischen');
UPDATE "Regal" SET v = 'geändert' WHERE id = 7;

-- nor in the siblings
\c sr_off
SELECT count(*) AS tables FROM pg_class WHERE relname IN ('Lager', 'Regal');
SELECT count(*) AS extensions FROM pg_extension WHERE extname = 'splitdb';
\c sr_on
SELECT count(*) AS tables FROM pg_class WHERE relname IN ('Lager', 'Regal');
SELECT count(*) AS extensions FROM pg_extension WHERE extname = 'splitdb';
\c splitdb_regression
SET client_min_messages = warning;

-- mapped to a superuser again, each job runs to done
DO $$
BEGIN
	EXECUTE format('ALTER USER MAPPING FOR CURRENT_USER SERVER splitdb_sr_off OPTIONS (SET user %L)', current_user);
	EXECUTE format('ALTER USER MAPPING FOR CURRENT_USER SERVER splitdb_sr_on OPTIONS (SET user %L)', current_user);
END
$$;
SELECT splitdb_migrate('sr_off', mode => 'offline', wait => true) IS NOT NULL AS migrated;
SELECT splitdb_migrate('sr_on', mode => 'online', wait => true) IS NOT NULL AS migrated;
SELECT service, mode, state, runs FROM splitdb.job ORDER BY service;
SELECT count(*), max(id), count(*) FILTER (WHERE v = 'dazwischen') AS between FROM "Lager";
SELECT count(*), count(*) FILTER (WHERE v = 'geändert') AS changed FROM "Regal";

-- the mapping changed after the cutover: the ways out say why they cannot
-- go on, and change nothing
ALTER USER MAPPING FOR CURRENT_USER SERVER splitdb_sr_off OPTIONS (SET user 'regress_sr Mover');
SELECT splitdb_rollback('sr_off');
\echo :LAST_ERROR_SQLSTATE
SELECT splitdb_finalize('sr_off');
\echo :LAST_ERROR_SQLSTATE
SELECT state FROM splitdb.job WHERE service = 'sr_off';
SELECT n.nspname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relname = 'Lager' ORDER BY 1;
SELECT count(*) AS archived_rows FROM splitdb_archive."Lager";
\c sr_off
SELECT count(*) AS capture_logs FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'splitdb_capture';
\c splitdb_regression
SET client_min_messages = warning;
DO $$
BEGIN
	EXECUTE format('ALTER USER MAPPING FOR CURRENT_USER SERVER splitdb_sr_off OPTIONS (SET user %L)', current_user);
END
$$;

-- clean up
SELECT splitdb_rollback('sr_off');
SELECT splitdb_rollback('sr_on');
SELECT splitdb_unassign('sr_off', '"Lager"');
SELECT splitdb_unassign('sr_on', '"Regal"');
DELETE FROM splitdb.job;
SELECT splitdb_drop_service('sr_off');
SELECT splitdb_drop_service('sr_on');
DROP DATABASE sr_off WITH (FORCE);
DROP DATABASE sr_on WITH (FORCE);
DROP TABLE "Lager", "Regal";
DROP ROLE "regress_sr Mover";
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
