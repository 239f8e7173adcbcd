--
-- The ways out of a migration that are not rollback: splitdb_cancel() and
-- splitdb_finalize(), the artifact registry the job fills, and
-- splitdb_drop_service() after them.  Checked here:
-- - the refusals of cancel and finalize (not superuser, unknown service,
--   no job), each changing nothing;
-- - the registry of a job that failed while indexing: only what the
--   sibling lacked (the enum made there beforehand is not listed), each to
--   go on cancel and rollback;
-- - the cancel of that failed job: cancelled, every registry row dropped,
--   its cross-service references gone, the sibling holding only what it
--   held before (the enum, the test's own functions), the source's schema
--   unchanged; a second cancel refused;
-- - splitdb_drop_service() of a service whose only job is cancelled;
-- - a new migration of the service afterwards: done, verified, and its
--   registry rows (archive on finalize, shims and reference triggers on
--   rollback);
-- - cancel refused once done (hint: rollback); finalize refused for a job
--   not done; finalize: the archive gone, the shims still reading the
--   sibling; finalize again refused; drop_shim refused while a view reads
--   a shim, then the shims gone; splitdb_drop_service refused while its
--   shims or a cross-service reference remain.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

CREATE TYPE c_kind AS ENUM ('small', 'large');
CREATE DOMAIN c_positive AS integer CHECK (VALUE > 0);
CREATE FUNCTION c_default_note() RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'none' $$;
CREATE TABLE c_room (
	room_id serial PRIMARY KEY,
	kind    c_kind NOT NULL,
	beds    c_positive,
	note    text DEFAULT c_default_note()
);
CREATE INDEX c_room_kind_idx ON c_room (kind);
CREATE TABLE c_stay (
	stay_id integer PRIMARY KEY,
	room_id integer NOT NULL REFERENCES c_room
);
-- stays in the source, refers to a table that moves
CREATE TABLE c_bill (
	bill_id integer PRIMARY KEY,
	stay_id integer REFERENCES c_stay
);
INSERT INTO c_room (kind, beds) SELECT CASE WHEN g % 2 = 0 THEN 'small' ELSE 'large' END::c_kind, g
  FROM generate_series(1, 50) g;
INSERT INTO c_stay SELECT g, g FROM generate_series(1, 50) g;
INSERT INTO c_bill SELECT g, g FROM generate_series(1, 20) g;

-- the source's schema as it is before any job (kept out of public)
CREATE SCHEMA c_check;
CREATE TABLE c_check.schema_before AS
SELECT c.oid::regclass::text AS rel, c.relkind,
	   (SELECT string_agg(pg_get_constraintdef(k.oid), '; ' ORDER BY k.conname)
		  FROM pg_constraint k WHERE k.conrelid = c.oid) AS constraints,
	   (SELECT count(*) FROM pg_trigger t WHERE t.tgrelid = c.oid) AS triggers
  FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace;

-- refusals, before there is anything to cancel
CREATE ROLE regress_cancel_user;
SET ROLE regress_cancel_user;
SELECT splitdb_cancel('c_svc');
SELECT splitdb_finalize('c_svc');
RESET ROLE;
SELECT splitdb_cancel('no_such_service');
SELECT splitdb_add_service('c_svc');
SELECT splitdb_assign('c_svc', 'c_room', 'c_stay');
SELECT splitdb_cancel('c_svc');
SELECT splitdb_finalize('c_svc');
SELECT count(*) AS jobs FROM splitdb.job;

-- in the sibling, beforehand: the enum (splitdb must keep it), and a
-- trigger that changes every row of c_stay the copy writes, so that the
-- job fails when it adds c_stay's foreign key (indexing)
\c c_svc
CREATE TYPE public.c_kind AS ENUM ('small', 'large');
CREATE FUNCTION public.sabotage() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN NEW.room_id := NEW.room_id + 1; RETURN NEW; END $$;
CREATE FUNCTION public.add_sabotage() RETURNS event_trigger LANGUAGE plpgsql AS
$$
BEGIN
	IF pg_catalog.to_regclass('public.c_stay') IS NOT NULL
	   AND NOT EXISTS (SELECT FROM pg_catalog.pg_trigger WHERE tgname = 'sabotage') THEN
		CREATE TRIGGER sabotage BEFORE INSERT ON public.c_stay
			FOR EACH ROW EXECUTE FUNCTION public.sabotage();
	END IF;
END
$$;
CREATE EVENT TRIGGER add_sabotage ON ddl_command_end EXECUTE FUNCTION public.add_sabotage();
CREATE VIEW public.sibling_objects AS
SELECT 'relation ' || c.oid::regclass::text AS object FROM pg_class c
 WHERE c.relnamespace = 'public'::regnamespace AND c.relname NOT IN ('sibling_objects', 'objects_before')
UNION ALL SELECT 'type ' || t.oid::regtype::text FROM pg_type t
 WHERE t.typnamespace = 'public'::regnamespace AND t.typrelid = 0 AND t.typelem = 0
UNION ALL SELECT 'function ' || p.oid::regprocedure::text FROM pg_proc p
 WHERE p.pronamespace = 'public'::regnamespace
UNION ALL SELECT 'trigger ' || t.tgname FROM pg_trigger t WHERE NOT t.tgisinternal
UNION ALL SELECT 'extension ' || e.extname FROM pg_extension e WHERE e.extname <> 'plpgsql'
UNION ALL SELECT 'server ' || s.srvname FROM pg_foreign_server s;
CREATE TABLE public.objects_before AS SELECT * FROM public.sibling_objects;
\c splitdb_regression
SET client_min_messages = warning;

SELECT splitdb_migrate('c_svc', wait => true);
SELECT state, phase FROM splitdb.job;

-- what the job recorded in the sibling: what it lacked, enum aside
SELECT service, kind, identity, parent, drop_on, dropped_at IS NULL AS standing
  FROM splitdb.artifact ORDER BY artifact_id;
SELECT count(*) AS references_recorded FROM splitdb.reference;

SELECT splitdb_cancel('c_svc');
SELECT state, phase, worker_pid, finished_at IS NOT NULL AS finished FROM splitdb.job;
SELECT count(*) FILTER (WHERE dropped_at IS NULL) AS standing,
	   count(*) FILTER (WHERE dropped_at IS NOT NULL) AS dropped
  FROM splitdb.artifact;
SELECT count(*) AS references_left FROM splitdb.reference;
SELECT state, way_out FROM splitdb_status WHERE service = 'c_svc';

-- the sibling holds what it held before, the source is as it was
\c c_svc
(SELECT * FROM public.sibling_objects EXCEPT SELECT * FROM public.objects_before)
UNION ALL
(SELECT * FROM public.objects_before EXCEPT SELECT * FROM public.sibling_objects);
SELECT count(*) AS objects_kept FROM public.objects_before;
\c splitdb_regression
SET client_min_messages = warning;
(SELECT c.oid::regclass::text AS rel, c.relkind,
	   (SELECT string_agg(pg_get_constraintdef(k.oid), '; ' ORDER BY k.conname)
		  FROM pg_constraint k WHERE k.conrelid = c.oid) AS constraints,
	   (SELECT count(*) FROM pg_trigger t WHERE t.tgrelid = c.oid) AS triggers
   FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace
 EXCEPT SELECT * FROM c_check.schema_before)
UNION ALL
(SELECT * FROM c_check.schema_before
 EXCEPT SELECT c.oid::regclass::text, c.relkind,
	   (SELECT string_agg(pg_get_constraintdef(k.oid), '; ' ORDER BY k.conname)
		  FROM pg_constraint k WHERE k.conrelid = c.oid),
	   (SELECT count(*) FROM pg_trigger t WHERE t.tgrelid = c.oid)
   FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace);
SELECT to_regnamespace('splitdb_archive') IS NULL AS no_archive;

-- a second cancel is refused and changes nothing, and so are a finalize
-- and a rollback of the cancelled job, whose hints say how to go on
SELECT splitdb_cancel('c_svc');
SELECT splitdb_finalize('c_svc');
SELECT splitdb_rollback('c_svc');
SELECT state, updated_at = finished_at AS unchanged FROM splitdb.job;

-- with its only job cancelled, the service can be dropped once it owns no
-- tables (the job's rows go with it), and registered again
SELECT splitdb_drop_service('c_svc');
SELECT splitdb_unassign('c_svc', 'c_room', 'c_stay');
SELECT splitdb_drop_service('c_svc');
SELECT count(*) AS jobs, (SELECT count(*) FROM splitdb.artifact) AS artifacts FROM splitdb.job;
SELECT splitdb_add_service('c_svc', create_database => false);
SELECT splitdb_assign('c_svc', 'c_room', 'c_stay');

-- without the sabotage, a new job takes the service through
\c c_svc
DROP EVENT TRIGGER add_sabotage;
\c splitdb_regression
SET client_min_messages = warning;
SELECT splitdb_migrate('c_svc', wait => true) > 1 AS new_job;
SELECT state FROM splitdb.job ORDER BY job_id;
SELECT table_name, ok FROM splitdb_verify('c_svc') ORDER BY 1;
SELECT state, way_out FROM splitdb_status WHERE service = 'c_svc';
SELECT service IS NULL AS in_source, kind, identity, parent, drop_on
  FROM splitdb.artifact a
 WHERE job_id = (SELECT max(job_id) FROM splitdb.job)
   AND (service IS NULL OR kind = 'trigger')
 ORDER BY artifact_id;

-- done: cancel refused, finalize does it
SELECT splitdb_cancel('c_svc');
SELECT state FROM splitdb.job ORDER BY job_id;
SELECT splitdb_finalize('c_svc');
SELECT state FROM splitdb.job ORDER BY job_id;
SELECT to_regclass('splitdb_archive.c_room') IS NULL AS room_archive_gone,
	   to_regclass('splitdb_archive.c_stay') IS NULL AS stay_archive_gone;
SELECT count(*) AS rooms_through_the_shim FROM c_room;
SELECT state, way_out FROM splitdb_status WHERE service = 'c_svc';
SELECT splitdb_finalize('c_svc');
SELECT splitdb_drop_service('c_svc');

-- the shims go only when nothing reads them
CREATE VIEW c_big_rooms AS SELECT room_id FROM c_room WHERE beds > 40;
SELECT splitdb_finalize('c_svc', drop_shim => true);
SELECT to_regclass('c_room') IS NOT NULL AS shim_kept;
DROP VIEW c_big_rooms;
SELECT splitdb_finalize('c_svc', drop_shim => true);
SELECT to_regclass('c_room') IS NULL AS room_shim_gone, to_regclass('c_stay') IS NULL AS stay_shim_gone;
SELECT splitdb_finalize('c_svc', drop_shim => true);
-- c_bill still refers to c_stay, in the sibling now: a finalized service
-- counts as moved, and the reference is still checked there
SELECT child_table, child_location, parent_table, parent_location, parent_database
  FROM splitdb.reference_placement WHERE child_table = 'public.c_bill' ORDER BY 1;
INSERT INTO c_bill VALUES (98, 7);
INSERT INTO c_bill VALUES (99, 999);
SELECT splitdb_drop_service('c_svc');
SELECT count(*) AS services FROM splitdb.service;

-- clean up
DROP TABLE c_bill;
DROP SCHEMA c_check CASCADE;
DELETE FROM splitdb.job;
SELECT splitdb_drop_service('c_svc');
DROP DATABASE c_svc WITH (FORCE);
DROP ROLE regress_cancel_user;
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
