--
-- The schemas of a service's tables, types and functions grant USAGE in the
-- sibling to the roles that have it in the source.  The sibling's schema,
-- created by the job, granted nothing: once the cutover gave the tables
-- their privileges, a role granted a table still got "permission denied
-- for schema" there, through the shim as well.  Checked here:
-- - a schema of its own for the table (owned by a role that is no
--   superuser, USAGE granted to a reader), one for its enum (USAGE to
--   PUBLIC), one for the trigger's function; a role without USAGE in the
--   source gets none in the sibling, and CREATE is given to nobody;
-- - the reader reads and writes the table in the sibling;
-- - the public schema, already in the sibling, keeps what it had.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

CREATE ROLE regress_sa_owner;
CREATE ROLE regress_sa_reader;
CREATE ROLE regress_sa_outsider;
CREATE SCHEMA "Büro" AUTHORIZATION regress_sa_owner;
CREATE SCHEMA sa_kinds;
CREATE SCHEMA sa_fns;
GRANT USAGE ON SCHEMA sa_kinds TO PUBLIC;
GRANT USAGE ON SCHEMA "Büro" TO regress_sa_reader;
GRANT USAGE ON SCHEMA sa_fns TO regress_sa_reader WITH GRANT OPTION;
GRANT CREATE ON SCHEMA "Büro" TO regress_sa_reader;
CREATE TYPE sa_kinds.mood AS ENUM ('calm', 'busy');
CREATE FUNCTION sa_fns.stamp() RETURNS trigger LANGUAGE plpgsql
	SET search_path = pg_catalog AS $$ BEGIN NEW.note := 'seen'; RETURN NEW; END $$;
CREATE TABLE "Büro"."Schreibtisch" (id int PRIMARY KEY, mood sa_kinds.mood, note text);
CREATE TRIGGER stamp BEFORE INSERT ON "Büro"."Schreibtisch" FOR EACH ROW EXECUTE FUNCTION sa_fns.stamp();
ALTER TABLE "Büro"."Schreibtisch" OWNER TO regress_sa_owner;
GRANT SELECT, INSERT ON "Büro"."Schreibtisch" TO regress_sa_reader;
INSERT INTO "Büro"."Schreibtisch" VALUES (1, 'calm'), (2, 'busy');

SELECT splitdb_add_service('sa_svc');
SELECT splitdb_assign('sa_svc', '"Büro"."Schreibtisch"');
SELECT splitdb_migrate('sa_svc', mode => 'offline', wait => true);
SELECT state FROM splitdb.job;

\c sa_svc
SELECT s.nspname, r.rolname,
	   has_schema_privilege(r.rolname, s.nspname, 'USAGE') AS usage,
	   has_schema_privilege(r.rolname, s.nspname, 'CREATE') AS "create"
  FROM unnest(ARRAY['Büro', 'sa_kinds', 'sa_fns', 'public']) s(nspname),
	   unnest(ARRAY['regress_sa_owner', 'regress_sa_reader', 'regress_sa_outsider']) r(rolname)
 ORDER BY 1, 2;
SELECT has_schema_privilege('regress_sa_reader', 'sa_fns', 'USAGE WITH GRANT OPTION') AS grant_option;
SELECT nspacl FROM pg_namespace WHERE nspname = 'public';
-- the reader reaches the table, its type and its trigger's function
SET ROLE regress_sa_reader;
INSERT INTO "Büro"."Schreibtisch" VALUES (3, 'busy');
SELECT * FROM "Büro"."Schreibtisch" ORDER BY id;
RESET ROLE;
\c splitdb_regression
SET client_min_messages = warning;

-- clean up
SELECT splitdb_rollback('sa_svc');
SELECT splitdb_unassign('sa_svc', '"Büro"."Schreibtisch"');
DELETE FROM splitdb.job;
SELECT splitdb_drop_service('sa_svc');
DROP DATABASE sa_svc WITH (FORCE);
DROP SCHEMA "Büro", sa_kinds, sa_fns CASCADE;
DROP ROLE regress_sa_owner, regress_sa_reader, regress_sa_outsider;
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
