--
-- splitdb_doctor(): each kind of leftover and inconsistency, injected by
-- hand, reported; repair => true repairs the safe ones and says so, and a
-- second repair finds nothing left to repair.  Checked here:
-- - a job whose row says it copies but whose worker is gone: warning,
--   marked failed;
-- - objects of a cancelled job left in its sibling, their registry rows
--   standing: warning, dropped; a registry row of an object that is gone:
--   info, marked dropped;
-- - a shim of a done job dropped by hand (with the reference triggers on
--   it): critical, never made again;
-- - a reference trigger of a done job disabled: critical, unless its
--   reference is set off;
-- - a capture log of a done job that holds rows, two days after its
--   cutover: warning (the log's timestamp key column is no row's age);
-- - reference ends in the source of a reference that is gone: warning,
--   dropped;
-- - each kind of leftover injected alone and repaired twice (a dead
--   worker, an object of a cancelled job in its sibling and in the source,
--   a row of an object that never was, a stray reference end): the second
--   repair repairs nothing and changes nothing;
-- - a sibling that cannot be reached: warning, no error;
-- - not superuser: refused.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

CREATE TABLE d_room (room_id integer PRIMARY KEY, beds integer NOT NULL);
CREATE TABLE d_stay (stay_id integer PRIMARY KEY, room_id integer NOT NULL REFERENCES d_room);
CREATE TABLE d_bill (bill_id integer PRIMARY KEY, stay_id integer REFERENCES d_stay);
INSERT INTO d_room SELECT g, g FROM generate_series(1, 20) g;
INSERT INTO d_stay SELECT g, g FROM generate_series(1, 20) g;
INSERT INTO d_bill SELECT g, g FROM generate_series(1, 5) g;
CREATE TABLE e_log (id integer PRIMARY KEY);

SELECT splitdb_add_service('d_svc');
SELECT splitdb_assign('d_svc', 'd_room', 'd_stay');
SELECT splitdb_migrate('d_svc', wait => true) > 0 AS migrated;
SELECT splitdb_add_service('e_svc');
SELECT splitdb_assign('e_svc', 'e_log');

-- nothing to report yet
SELECT * FROM splitdb_doctor();

-- e_svc's job, as a cancel that stopped before its drops would leave it:
-- cancelled, the sibling's objects it made standing with their rows; and a
-- row of an object that is gone
SELECT splitdb_migrate('e_svc', wait => true) > 0 AS migrated;
UPDATE splitdb.job SET state = 'cancelled' WHERE service = 'e_svc';
INSERT INTO splitdb.artifact (job_id, service, kind, identity, drop_on)
SELECT job_id, 'e_svc', 'table', 'public.e_gone', '{cancel,rollback}'
  FROM splitdb.job WHERE service = 'e_svc';

-- a job row that says it runs, with no worker: a third service
SELECT splitdb_add_service('f_svc');
INSERT INTO splitdb.job (job_id, service, mode, state, phase, started_by, worker_pid)
VALUES (nextval('splitdb.job_id_seq'), 'f_svc', 'offline', 'copying', 'copying',
		(SELECT oid FROM pg_roles WHERE rolname = current_user), 2147483647);

-- a shim dropped, a reference trigger disabled, a capture log, a stray end
DROP FOREIGN TABLE d_room;
ALTER TABLE d_bill DISABLE TRIGGER USER;
\c d_svc
-- a log as splitdb makes them, of a table whose key has a timestamp: the
-- key's value says nothing of when the row was written
CREATE TABLE public.d_capture (splitdb_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	splitdb_op "char" NOT NULL, am timestamptz NOT NULL, id integer NOT NULL);
INSERT INTO public.d_capture (splitdb_op, am, id) VALUES ('U', '2016-01-01', 1);
\c splitdb_regression
SET client_min_messages = warning;
INSERT INTO splitdb.artifact (job_id, service, kind, identity, drop_on)
SELECT job_id, 'd_svc', 'capture log', 'public.d_capture', '{rollback,finalize}'
  FROM splitdb.job WHERE service = 'd_svc';
-- the cutover two days ago: the log has held rows since then at most
UPDATE splitdb.job SET finished_at = now() - interval '49 hours' WHERE service = 'd_svc';
INSERT INTO splitdb.reference_end
SELECT 999999, side, relid, constraint_name, here, own_table, own_server, own_columns, own_types,
	   other_location, other_server, other_table, other_columns, other_types, other_database,
	   match_full, on_delete, on_update, set_columns, is_deferrable, initially_deferred, always
  FROM splitdb.reference_end LIMIT 1;

SELECT severity, service, location, object, problem, action, repaired
  FROM splitdb_doctor() ORDER BY severity, service, location, object;

-- not superuser
CREATE ROLE regress_doctor_user;
SET ROLE regress_doctor_user;
SELECT * FROM splitdb_doctor();
RESET ROLE;

-- repair, then again
SELECT severity, service, location, object, action, repaired
  FROM splitdb_doctor(repair => true) ORDER BY severity, service, location, object;
SELECT service, state, last_sqlstate FROM splitdb.job ORDER BY job_id;
\c e_svc
SELECT to_regclass('public.e_log') IS NULL AS e_log_dropped;
-- splitdb, which the job installed here before its cutover, went with it
SELECT count(*) AS splitdb_extensions FROM pg_extension WHERE extname IN ('splitdb', 'postgres_fdw');
\c splitdb_regression
SET client_min_messages = warning;
SELECT count(*) AS stray_ends FROM splitdb.reference_end WHERE reference_id = 999999;
SELECT severity, service, location, object, repaired
  FROM splitdb_doctor(repair => true) ORDER BY severity, service, location, object;
SELECT count(*) FILTER (WHERE repaired) AS repaired_a_third_time FROM splitdb_doctor(repair => true);

-- each kind of leftover alone, repaired twice: the second repair repairs
-- nothing and changes nothing (the jobs, every registry row with its
-- dropped_at, the source's reference ends, relations and triggers)
CREATE SCHEMA doctor_check;
CREATE VIEW doctor_check.state AS
SELECT 'job ' || job_id || ' ' || state || ' ' || coalesce(worker_pid::text, '-') || ' '
	   || coalesce(last_sqlstate, '-') || ' ' || coalesce(finished_at::text, '-') AS x
  FROM splitdb.job
UNION ALL
SELECT 'artifact ' || artifact_id || ' ' || coalesce(dropped_at::text, 'standing') FROM splitdb.artifact
UNION ALL
SELECT 'end ' || reference_id || ' ' || side::text FROM splitdb.reference_end
UNION ALL
SELECT 'relation ' || c.oid::regclass::text || ' ' || c.relkind::text FROM pg_class c
 WHERE c.relnamespace = 'public'::regnamespace
UNION ALL
SELECT 'trigger ' || t.tgrelid::regclass::text || ' ' || t.tgname || ' ' || t.tgenabled::text
  FROM pg_trigger t WHERE NOT t.tgisinternal;
CREATE TABLE doctor_check.after_first (x text);
\set second_repair 'TRUNCATE doctor_check.after_first; INSERT INTO doctor_check.after_first SELECT x FROM doctor_check.state; SELECT count(*) FILTER (WHERE repaired) AS repaired_again, count(*) FILTER (WHERE severity <> \'critical\') AS reported_again FROM splitdb_doctor(repair => true); SELECT * FROM ((SELECT x FROM doctor_check.state EXCEPT SELECT x FROM doctor_check.after_first) UNION ALL (SELECT x FROM doctor_check.after_first EXCEPT SELECT x FROM doctor_check.state)) changed;'
-- a job row that says it runs, its worker gone
UPDATE splitdb.job SET state = 'copying', worker_pid = 2147483647, last_sqlstate = NULL,
	   finished_at = NULL
 WHERE service = 'f_svc';
SELECT severity, service, object, repaired FROM splitdb_doctor(repair => true)
 WHERE severity <> 'critical' ORDER BY severity, location, object;
:second_repair
-- an object of a cancelled job left in its sibling
\c e_svc
CREATE TABLE public.e_again (id integer);
\c splitdb_regression
SET client_min_messages = warning;
INSERT INTO splitdb.artifact (job_id, service, kind, identity, drop_on)
SELECT job_id, 'e_svc', 'table', 'public.e_again', '{cancel}' FROM splitdb.job WHERE service = 'e_svc';
SELECT severity, service, location, object, repaired FROM splitdb_doctor(repair => true)
 WHERE severity <> 'critical' ORDER BY severity, location, object;
:second_repair
\c e_svc
SELECT to_regclass('public.e_again') IS NULL AS e_again_dropped;
\c splitdb_regression
SET client_min_messages = warning;
-- a registry row of an object that never was
INSERT INTO splitdb.artifact (job_id, service, kind, identity, drop_on)
SELECT job_id, 'e_svc', 'table', 'public.e_never', '{cancel}' FROM splitdb.job WHERE service = 'e_svc';
SELECT severity, service, location, object, repaired FROM splitdb_doctor(repair => true)
 WHERE severity <> 'critical' ORDER BY severity, location, object;
:second_repair
-- an object of a cancelled job left in the source
CREATE VIEW public.e_view AS SELECT 1 AS one;
INSERT INTO splitdb.artifact (job_id, service, kind, identity, drop_on)
SELECT job_id, NULL, 'view', 'public.e_view', '{cancel}' FROM splitdb.job WHERE service = 'e_svc';
SELECT severity, service, location, object, repaired FROM splitdb_doctor(repair => true)
 WHERE severity <> 'critical' ORDER BY severity, location, object;
:second_repair
SELECT to_regclass('public.e_view') IS NULL AS e_view_dropped;
-- a stray reference end in the source
INSERT INTO splitdb.reference_end
SELECT 999998, side, relid, constraint_name, here, own_table, own_server, own_columns, own_types,
	   other_location, other_server, other_table, other_columns, other_types, other_database,
	   match_full, on_delete, on_update, set_columns, is_deferrable, initially_deferred, always
  FROM splitdb.reference_end LIMIT 1;
SELECT severity, service, location, object, repaired FROM splitdb_doctor(repair => true)
 WHERE severity <> 'critical' ORDER BY severity, location, object;
:second_repair
SELECT count(*) AS stray_ends FROM splitdb.reference_end WHERE reference_id = 999998;

-- a reference set off has its triggers disabled on purpose: not reported
SELECT splitdb_reference_mode(reference_id, 'off') AS was FROM splitdb.reference;
SELECT count(*) AS disabled_reported FROM splitdb_doctor() WHERE problem LIKE 'the trigger is disabled%';

-- a sibling that cannot be reached is a warning, not an error
ALTER SERVER splitdb_d_svc OPTIONS (SET dbname 'd_svc_nowhere');
SELECT severity, service, location, object, problem LIKE 'cannot be reached: %' AS unreachable
  FROM splitdb_doctor() WHERE location = 'd_svc';
ALTER SERVER splitdb_d_svc OPTIONS (SET dbname 'd_svc');

-- clean up
DROP SCHEMA doctor_check CASCADE;
DROP TABLE d_bill;
DROP FOREIGN TABLE d_stay, e_log;
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
SELECT splitdb_drop_service('d_svc');
SELECT splitdb_drop_service('e_svc');
SELECT splitdb_drop_service('f_svc');
DROP DATABASE d_svc WITH (FORCE);
DROP DATABASE e_svc WITH (FORCE);
DROP DATABASE f_svc WITH (FORCE);
DROP ROLE regress_doctor_user;
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
