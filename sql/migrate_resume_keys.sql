--
-- A job that fails in its indexing step after a partitioned table's primary
-- key was added but before its partitions' keys were attached to it, and
-- resumes.  The key is added with ALTER TABLE ONLY, which leaves the
-- partitioned index invalid until every partition's index is attached; a
-- resumed run drops such invalid indexes so as to build them again, and one
-- that backs a constraint must go with it (DROP INDEX refuses it).  Checked
-- here:
-- - the first run fails on the sibling's refusal of ALTER INDEX ... ATTACH
--   PARTITION, leaving the partitioned key invalid there;
-- - a resumed run drops that key and fails the same way again (before the
--   fix it failed on "cannot drop index ... because constraint ... requires
--   it");
-- - once the cause is gone the same job ends done, with a valid key whose
--   partitions' keys are attached, and the sibling holds the source's rows.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

CREATE TABLE rk_parted (id integer, k integer, v text, PRIMARY KEY (id, k))
	PARTITION BY RANGE (k);
CREATE TABLE rk_low PARTITION OF rk_parted FOR VALUES FROM (0) TO (50);
CREATE TABLE rk_high PARTITION OF rk_parted FOR VALUES FROM (50) TO (100);
INSERT INTO rk_parted SELECT g, g, 'row ' || g FROM generate_series(1, 99) g;

SELECT splitdb_add_service('rk_svc');
SELECT splitdb_assign('rk_svc', 'rk_parted');

-- in the sibling: every ALTER INDEX fails
\c rk_svc
CREATE FUNCTION public.refuse_alter_index() RETURNS event_trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'ALTER INDEX refused here'; END $$;
CREATE EVENT TRIGGER refuse_alter_index ON ddl_command_end WHEN TAG IN ('ALTER INDEX')
	EXECUTE FUNCTION public.refuse_alter_index();
\c splitdb_regression
SET client_min_messages = warning;

SELECT splitdb_migrate('rk_svc', mode => 'offline', wait => true);
SELECT runs, state, phase, last_error FROM splitdb.job;
\c rk_svc
SELECT c.relname, i.indisvalid, k.contype
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
  LEFT JOIN pg_constraint k ON k.conindid = i.indexrelid AND k.conrelid = i.indrelid
 WHERE i.indrelid IN ('rk_parted'::regclass, 'rk_low'::regclass, 'rk_high'::regclass)
 ORDER BY 1;
\c splitdb_regression
SET client_min_messages = warning;

-- the cause is still there: the resumed run drops the invalid key and
-- fails on the same refusal, not on the drop
SELECT splitdb_migrate('rk_svc', wait => true);
SELECT runs, state, phase, last_error FROM splitdb.job;

-- remove it, and resume: the same job ends done
\c rk_svc
DROP EVENT TRIGGER refuse_alter_index;
\c splitdb_regression
SET client_min_messages = warning;
SELECT splitdb_migrate('rk_svc', wait => true) = (SELECT job_id FROM splitdb.job) AS same_job;
SELECT runs, state, phase, last_error FROM splitdb.job;
\c rk_svc
SELECT c.relname, i.indisvalid, k.contype, p.relname AS attached_to
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
  LEFT JOIN pg_constraint k ON k.conindid = i.indexrelid AND k.conrelid = i.indrelid
  LEFT JOIN pg_inherits h ON h.inhrelid = i.indexrelid
  LEFT JOIN pg_class p ON p.oid = h.inhparent
 WHERE i.indrelid IN ('rk_parted'::regclass, 'rk_low'::regclass, 'rk_high'::regclass)
 ORDER BY 1;
SELECT count(*), count(DISTINCT (id, k)), min(v), max(v) FROM rk_parted;
\c splitdb_regression
SET client_min_messages = warning;
SELECT count(*), min(v), max(v) FROM rk_parted;

-- clean up
DROP FOREIGN TABLE rk_parted;
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
SELECT splitdb_drop_service('rk_svc');
DROP DATABASE rk_svc WITH (FORCE);
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
