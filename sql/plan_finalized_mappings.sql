--
-- The user mappings that a service's plan asks for in the sibling of a
-- service finalized before it.  Service pf_child moved a table that refers
-- to one that stays, owned by a role that is no superuser; it was then
-- finalized, which dropped the archived original that the reference's row
-- names by OID.  When the referenced table is assigned to service
-- pf_parent, the reference's end in pf_child's sibling will check through
-- server splitdb_pf_parent there, with the owner's user mapping, which
-- splitdb cannot create: the plan of pf_parent warns of it, reading the
-- owner from the shim that stands for the moved table (it read nothing,
-- and the cutover was the first to say so).
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

CREATE ROLE regress_pf_owner;
CREATE TABLE pf_parent_t (id integer PRIMARY KEY);
CREATE TABLE pf_child_t (id integer PRIMARY KEY, parent_id integer REFERENCES pf_parent_t);
INSERT INTO pf_parent_t VALUES (1);
INSERT INTO pf_child_t VALUES (1, 1);
ALTER TABLE pf_parent_t OWNER TO regress_pf_owner;
ALTER TABLE pf_child_t OWNER TO regress_pf_owner;

SELECT splitdb_add_service('pf_child');
SELECT splitdb_add_service('pf_parent');
-- the owner's mapping in the source, for the shim's end
CREATE USER MAPPING FOR regress_pf_owner SERVER splitdb_pf_child
	OPTIONS (user 'regress_pf_owner', password 'regress-pw');
SELECT splitdb_assign('pf_child', 'pf_child_t');

-- the cutover stops for the owner's mapping in the sibling, made by hand
\set VERBOSITY terse
SELECT splitdb_migrate('pf_child', mode => 'offline', wait => true);
\set VERBOSITY default
\c pf_child
CREATE USER MAPPING FOR regress_pf_owner SERVER splitdb_source
	OPTIONS (user 'regress_pf_owner', password 'regress-pw');
\c splitdb_regression
SET client_min_messages = warning;
SELECT splitdb_migrate('pf_child', wait => true) > 0 AS migrated;
SELECT splitdb_finalize('pf_child');
SELECT to_regclass('splitdb_archive.pf_child_t') IS NULL AS original_gone,
	   (SELECT relkind FROM pg_class WHERE oid = 'pf_child_t'::regclass) AS shim;

-- the referenced table moves next: pf_child's sibling needs the owner's
-- mapping on the server to pf_parent's sibling
CREATE USER MAPPING FOR regress_pf_owner SERVER splitdb_pf_parent
	OPTIONS (user 'regress_pf_owner', password 'regress-pw');
SELECT splitdb_assign('pf_parent', 'pf_parent_t');
SELECT action, object, detail FROM splitdb_plan('pf_parent')
 WHERE action IN ('warning', 'blocker') ORDER BY step;

-- clean up
SELECT splitdb_unassign('pf_parent', 'pf_parent_t');
DROP FOREIGN TABLE pf_child_t;
DROP TABLE pf_parent_t;
DELETE FROM splitdb.job;
DROP SCHEMA IF EXISTS splitdb_archive CASCADE;
SELECT splitdb_drop_service('pf_child');
SELECT splitdb_drop_service('pf_parent');
DROP DATABASE pf_child WITH (FORCE);
DROP DATABASE pf_parent WITH (FORCE);
DROP OWNED BY regress_pf_owner;
DROP ROLE regress_pf_owner;
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
