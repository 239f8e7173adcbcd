--
-- The postgres_fdw servers splitdb connects through are a superuser's.
--
-- Whoever owns a foreign server may change where it connects.  A role that
-- is no superuser but may use postgres_fdw in the sibling made a server of
-- the name the cutover gives the sibling's server back to the source
-- (splitdb_source) before the cutover: the cutover kept it, and every check
-- of a table owner there sent that owner's password, and splitdb's proofs
-- of origin, to wherever the role pointed it.  Now:
-- - the cutover refuses a server of that name that a superuser does not own
--   (42501), or that is no postgres_fdw server (42809), and the job resumes
--   once it is gone;
-- - splitdb_add_service(server => ...) refuses a server whose owner is no
--   superuser (42501), before it connects, and registers nothing;
-- - a reference check through a server given to such a role afterwards is
--   refused (42501) before it connects, and the row with it.
-- Names with spaces, mixed case and non-ASCII letters.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;
CREATE ROLE "regress Server Owner" LOGIN;

CREATE SCHEMA "Srv Sché";
CREATE TABLE "Srv Sché"."Kunde" (id integer PRIMARY KEY);
CREATE TABLE "Srv Sché"."Bestellung" (id integer PRIMARY KEY, kunde_id integer
	CONSTRAINT "bestellung's kunde" REFERENCES "Srv Sché"."Kunde");
INSERT INTO "Srv Sché"."Kunde" VALUES (1), (2);
INSERT INTO "Srv Sché"."Bestellung" VALUES (1, 1);

SELECT splitdb_add_service('srv_svc');
SELECT splitdb_assign('srv_svc', '"Srv Sché"."Bestellung"');

-- in the sibling, the role makes the server the cutover would make
\c srv_svc
SET client_min_messages = warning;
CREATE EXTENSION postgres_fdw;
GRANT USAGE ON FOREIGN DATA WRAPPER postgres_fdw TO "regress Server Owner";
SET ROLE "regress Server Owner";
CREATE SERVER splitdb_source FOREIGN DATA WRAPPER postgres_fdw
	OPTIONS (host 'elsewhere.invalid', dbname 'splitdb_regression');
RESET ROLE;
\c splitdb_regression
SET client_min_messages = warning;

\set VERBOSITY terse
SELECT splitdb_migrate('srv_svc', mode => 'offline', wait => true);
\set VERBOSITY default
SELECT state, phase, last_sqlstate FROM splitdb.job WHERE service = 'srv_svc';
-- the original is still where it was, the shim not made
SELECT relkind FROM pg_class WHERE oid = '"Srv Sché"."Bestellung"'::regclass;

-- the server as the role left it, without splitdb's origin option
\c srv_svc
SELECT srvname, srvowner::regrole, srvoptions FROM pg_foreign_server ORDER BY 1;
DROP SERVER splitdb_source;
\c splitdb_regression
SET client_min_messages = warning;

-- gone: the job resumes, and the cutover makes the server itself
SELECT splitdb_migrate('srv_svc', wait => true) > 0 AS migrated;
SELECT state FROM splitdb.job WHERE service = 'srv_svc';
\c srv_svc
SELECT s.srvname, r.rolsuper AS superuser_owns, o LIKE '%splitdb.origin=srv_svc%' AS marked
  FROM pg_foreign_server s JOIN pg_roles r ON r.oid = s.srvowner,
	   unnest(s.srvoptions) o
 WHERE o LIKE 'options=%' ORDER BY 1;
-- a check there goes through it
\set VERBOSITY terse
INSERT INTO "Srv Sché"."Bestellung" VALUES (2, 2);
INSERT INTO "Srv Sché"."Bestellung" VALUES (3, 99);
\set VERBOSITY default

-- handed to the role afterwards: no check goes through it, nor the row
ALTER SERVER splitdb_source OWNER TO "regress Server Owner";
INSERT INTO "Srv Sché"."Bestellung" VALUES (4, 2);
SELECT id, kunde_id FROM "Srv Sché"."Bestellung" ORDER BY id;
ALTER SERVER splitdb_source OWNER TO CURRENT_USER;
INSERT INTO "Srv Sché"."Bestellung" VALUES (4, 2);
SELECT id, kunde_id FROM "Srv Sché"."Bestellung" ORDER BY id;
\c splitdb_regression
SET client_min_messages = warning;

-- a server the DBA names, owned by the role: refused before it connects
GRANT USAGE ON FOREIGN DATA WRAPPER postgres_fdw TO "regress Server Owner";
SET ROLE "regress Server Owner";
CREATE SERVER "Fremder Server" FOREIGN DATA WRAPPER postgres_fdw
	OPTIONS (host 'elsewhere.invalid', dbname 'srv_svc');
RESET ROLE;
CREATE USER MAPPING FOR CURRENT_USER SERVER "Fremder Server" OPTIONS (user 'someone');
SELECT splitdb_add_service('fremd_svc', server => 'Fremder Server');
SELECT count(*) AS services FROM splitdb.service WHERE service = 'fremd_svc';
-- a superuser's, it is used (and found unreachable)
\set VERBOSITY terse
ALTER SERVER "Fremder Server" OWNER TO CURRENT_USER;
SELECT splitdb_add_service('fremd_svc', server => 'Fremder Server');
\set VERBOSITY default
SELECT count(*) AS services FROM splitdb.service WHERE service = 'fremd_svc';

-- clean up
DROP SERVER "Fremder Server" CASCADE;
REVOKE USAGE ON FOREIGN DATA WRAPPER postgres_fdw FROM "regress Server Owner";
DROP FOREIGN TABLE "Srv Sché"."Bestellung" CASCADE;
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
DROP SCHEMA "Srv Sché" CASCADE;
SELECT splitdb_drop_service('srv_svc');
DROP DATABASE srv_svc WITH (FORCE);
DROP ROLE "regress Server Owner";
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
