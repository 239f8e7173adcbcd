--
-- The registry of a reference's ends when the services at both ends
-- migrate, one after the other.  The child's service migrates first: its
-- sibling reaches the parent in the source, and the job records the server
-- it makes there for that (splitdb_source), not one for the parent's
-- service, which is not migrated yet.  Then the parent's service migrates:
-- its cutover installs the source's ends again on the parent's shim, a
-- foreign table, which has no TRUNCATE trigger and no constraint trigger;
-- the first job's rows of those triggers are marked dropped and the plain
-- triggers that replace them recorded, so splitdb_doctor() finds nothing
-- missing, and every write is still checked.  Neither service can then be
-- rolled back; the refusal says so, and changes nothing.  Finalizing the
-- parent's service with drop_shim takes the first job's triggers on that
-- shim with it, and marks their rows dropped.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

CREATE TABLE rr_parent (id integer PRIMARY KEY);
CREATE TABLE rr_child (
	id        integer PRIMARY KEY,
	parent_id integer REFERENCES rr_parent
);
CREATE TABLE rr_late (
	id        integer PRIMARY KEY,
	parent_id integer REFERENCES rr_parent DEFERRABLE INITIALLY DEFERRED
);
INSERT INTO rr_parent VALUES (1), (2), (3);
INSERT INTO rr_child VALUES (1, 1), (2, NULL);
INSERT INTO rr_late VALUES (1, 2);

SELECT splitdb_add_service('rr_kids');
SELECT splitdb_add_service('rr_home');
SELECT splitdb_assign('rr_kids', 'rr_child', 'rr_late');
SELECT splitdb_assign('rr_home', 'rr_parent');

-- the child's service first: its sibling reaches the source only
SELECT splitdb_migrate('rr_kids', mode => 'offline', wait => true) AS kids_job \gset
SELECT service, identity, drop_on FROM splitdb.artifact
 WHERE job_id = :kids_job AND kind = 'server' ORDER BY 1, 2;
SELECT severity, location, object, problem FROM splitdb_doctor() ORDER BY 2, 3;

-- the parent's service: its table becomes a shim
SELECT splitdb_migrate('rr_home', mode => 'offline', wait => true) AS home_job \gset
SELECT severity, location, object, problem FROM splitdb_doctor() ORDER BY 2, 3;

-- the first job's standing rows in the source are the triggers there
SELECT a.identity, a.parent
  FROM splitdb.artifact a
 WHERE a.job_id = :kids_job AND a.service IS NULL AND a.kind = 'trigger'
   AND a.dropped_at IS NULL
 ORDER BY 2, 1;
SELECT t.tgname, t.tgrelid::regclass AS parent
  FROM pg_trigger t
 WHERE t.tgrelid IN ('rr_parent'::regclass, 'rr_child'::regclass, 'rr_late'::regclass)
   AND t.tgname LIKE 'splitdb\_ref\_%'
 ORDER BY 2, 1;
-- those that are gone with the original table, marked dropped
SELECT a.identity, a.parent
  FROM splitdb.artifact a
 WHERE a.job_id = :kids_job AND a.service IS NULL AND a.kind = 'trigger'
   AND a.dropped_at IS NOT NULL AND a.identity NOT LIKE 'splitdb\_capture\_%'
 ORDER BY 2, 1;

-- both directions are still enforced, between the two siblings
\set VERBOSITY terse
INSERT INTO rr_child VALUES (3, 9);
DELETE FROM rr_parent WHERE id = 1;
BEGIN;
INSERT INTO rr_late VALUES (2, 9);
COMMIT;
DELETE FROM rr_parent WHERE id = 3;
SELECT * FROM rr_parent ORDER BY id;
SELECT * FROM rr_child ORDER BY id;
SELECT * FROM rr_late ORDER BY id;

-- neither service can be rolled back: the key links two siblings; the
-- refusals change nothing
\set VERBOSITY default
SELECT splitdb_rollback('rr_kids');
SELECT splitdb_rollback('rr_home');
SELECT service, state FROM splitdb.job ORDER BY job_id;
SELECT c.relnamespace::regnamespace AS schema, c.relname, c.relkind FROM pg_class c
 WHERE c.relname IN ('rr_parent', 'rr_child', 'rr_late') ORDER BY c.relnamespace::regnamespace::text, c.relname;
SELECT count(*) AS standing_triggers FROM splitdb.artifact
 WHERE kind = 'trigger' AND dropped_at IS NULL;

-- finalized, nothing is reported either; the parent's shim dropped too,
-- with the first job's triggers on it, whose rows are marked dropped
SELECT splitdb_finalize('rr_kids');
SELECT splitdb_finalize('rr_home', drop_shim => true);
SELECT severity, location, object, problem FROM splitdb_doctor() ORDER BY 2, 3;
SELECT a.identity, a.parent, a.dropped_at IS NOT NULL AS dropped
  FROM splitdb.artifact a
 WHERE a.job_id = :kids_job AND a.service IS NULL AND a.kind = 'trigger'
   AND a.identity NOT LIKE 'splitdb\_capture\_%'
 ORDER BY 2, 1;
SELECT to_regclass('rr_parent') AS parent_shim;

-- clean up
DROP FOREIGN TABLE rr_child, rr_late;
DELETE FROM splitdb.job;
DROP SCHEMA IF EXISTS splitdb_archive CASCADE;
SELECT splitdb_drop_service('rr_kids');
SELECT splitdb_drop_service('rr_home');
DROP DATABASE rr_kids WITH (FORCE);
DROP DATABASE rr_home WITH (FORCE);
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
