--
-- The plan warns of roles that may read or write a moving table and have
-- no user mapping for the service's server: after the cutover the table is
-- a shim, a postgres_fdw foreign table, on which every statement needs the
-- current user's mapping (or the PUBLIC one), so theirs fail with 42704
-- (shown at the end).  One warning per role, naming its tables.
-- - a role with privileges of its own, with column privileges only, with
--   privileges through a role it inherits, the tables' owner: named;
-- - a role with a mapping of its own, a role with privileges on a table
--   that stays only, a role that cannot log in, superusers: not named;
-- - a PUBLIC mapping on the server: nobody is named.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

CREATE ROLE regress_sm_owner LOGIN;
CREATE SCHEMA "Sm" AUTHORIZATION regress_sm_owner;
SET ROLE regress_sm_owner;
CREATE TABLE "Sm"."order" (id integer PRIMARY KEY, note text);
CREATE TABLE "Sm".line (id integer PRIMARY KEY, qty integer);
CREATE TABLE "Sm".stays (id integer PRIMARY KEY);
INSERT INTO "Sm"."order" VALUES (1, 'first');
RESET ROLE;

CREATE ROLE "regress_sm app" LOGIN;
CREATE ROLE regress_sm_columns LOGIN;
CREATE ROLE regress_sm_group NOLOGIN;
CREATE ROLE regress_sm_member LOGIN IN ROLE regress_sm_group;
CREATE ROLE regress_sm_mapped LOGIN;
CREATE ROLE regress_sm_other LOGIN;
CREATE ROLE regress_sm_nologin NOLOGIN;
GRANT USAGE ON SCHEMA "Sm" TO PUBLIC;
GRANT SELECT, INSERT ON "Sm"."order", "Sm".line TO "regress_sm app";
GRANT SELECT (id) ON "Sm".line TO regress_sm_columns;
GRANT DELETE ON "Sm"."order" TO regress_sm_group;
GRANT ALL ON "Sm"."order", "Sm".line TO regress_sm_mapped, regress_sm_nologin;
GRANT ALL ON "Sm".stays TO regress_sm_other;

SELECT splitdb_add_service('sm_svc');
SELECT splitdb_assign('sm_svc', '"Sm"."order"', '"Sm".line');
CREATE USER MAPPING FOR regress_sm_mapped SERVER splitdb_sm_svc
	OPTIONS (user 'regress_sm_mapped', password_required 'false');
SELECT object, detail FROM splitdb_plan('sm_svc')
 WHERE action = 'warning' AND detail LIKE '%has no user mapping%'
 ORDER BY object;

-- a PUBLIC mapping serves every role: no role is named
CREATE USER MAPPING FOR PUBLIC SERVER splitdb_sm_svc
	OPTIONS (user 'regress_sm_mapped', password_required 'false');
SELECT count(*) AS warnings FROM splitdb_plan('sm_svc')
 WHERE action = 'warning' AND detail LIKE '%has no user mapping%';
DROP USER MAPPING FOR PUBLIC SERVER splitdb_sm_svc;

-- what the warning says happens, after the migration
SELECT splitdb_migrate('sm_svc', wait => true) > 0 AS migrated;
SET ROLE "regress_sm app";
SELECT note FROM "Sm"."order";
RESET ROLE;
SET ROLE regress_sm_mapped;
SELECT note FROM "Sm"."order";
RESET ROLE;

-- clean up
DROP USER MAPPING FOR regress_sm_mapped SERVER splitdb_sm_svc;
DROP FOREIGN TABLE "Sm"."order", "Sm".line;
DROP SCHEMA "Sm" CASCADE;
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
SELECT splitdb_drop_service('sm_svc');
DROP DATABASE sm_svc WITH (FORCE);
DROP ROLE "regress_sm app", regress_sm_columns, regress_sm_member, regress_sm_group,
	regress_sm_mapped, regress_sm_other, regress_sm_nologin, regress_sm_owner;
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
