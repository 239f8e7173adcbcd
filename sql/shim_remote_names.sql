--
-- A shim's remote names, for its owner that is no superuser.
--
-- postgres_fdw lets a foreign table's owner change its options, among them
-- the remote table it reads (schema_name, table_name) and each column's
-- remote column (column_name).  The sibling skips its own checks of what a
-- shim's statement writes there, since the source's triggers check the
-- shim's table and columns; so an owner who pointed one shim at another
-- table of the sibling, or swapped a shim's columns, wrote rows there that
-- no reference checked: a key that the referenced table lacks, and a
-- referenced row deleted under another role's referencing rows.  Now
-- refused (42501) on a relation with splitdb's triggers, the options
-- unchanged; the shim's other options (batch_size, fetch_size) stay its
-- owner's, and a foreign table of the owner's own is not guarded.
-- Names with spaces, mixed case and non-ASCII letters.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;
CREATE ROLE "regress Shim Owner" LOGIN;

CREATE SCHEMA "Fern Sché";
GRANT USAGE, CREATE ON SCHEMA "Fern Sché" TO "regress Shim Owner";
SET ROLE "regress Shim Owner";
CREATE TABLE "Fern Sché"."Kunde" (id integer PRIMARY KEY, "Code" integer NOT NULL UNIQUE);
CREATE TABLE "Fern Sché"."Notiz" (id integer PRIMARY KEY, kunde_id integer, body text);
CREATE TABLE "Fern Sché"."Bestellung" (id integer PRIMARY KEY, kunde_id integer
	CONSTRAINT "bestellung's kunde" REFERENCES "Fern Sché"."Kunde");
INSERT INTO "Fern Sché"."Kunde" VALUES (1, 10), (2, 20);
INSERT INTO "Fern Sché"."Bestellung" VALUES (1, 1);
RESET ROLE;

SELECT splitdb_add_service('fern_svc');
CREATE USER MAPPING FOR "regress Shim Owner" SERVER splitdb_fern_svc
	OPTIONS (user 'regress Shim Owner', password_required 'false');
SELECT splitdb_assign('fern_svc', '"Fern Sché"."Kunde"', '"Fern Sché"."Notiz"');
-- the cutover stops for the owner's mapping in the sibling, made by hand
\set VERBOSITY terse
SELECT splitdb_migrate('fern_svc', mode => 'offline', wait => true);
\c fern_svc
CREATE USER MAPPING FOR "regress Shim Owner" SERVER splitdb_source
	OPTIONS (user 'regress Shim Owner', password_required 'false');
\c splitdb_regression
SET client_min_messages = warning;
SELECT splitdb_migrate('fern_svc', wait => true) > 0 AS migrated;

-- the shims' options and their columns' before
CREATE VIEW shim_options AS
SELECT c.relname, f.ftoptions,
	   (SELECT pg_catalog.array_agg(a.attname || '=' || a.attfdwoptions::text ORDER BY a.attnum)
		  FROM pg_attribute a
		 WHERE a.attrelid = c.oid AND a.attfdwoptions IS NOT NULL) AS column_options
  FROM pg_class c JOIN pg_foreign_table f ON f.ftrelid = c.oid
 WHERE c.relnamespace = '"Fern Sché"'::regnamespace
 ORDER BY 1;
SELECT * FROM shim_options;

GRANT USAGE ON FOREIGN SERVER splitdb_fern_svc TO "regress Shim Owner";
\set VERBOSITY default
SET ROLE "regress Shim Owner";
-- the shim of a table without references pointed at the referenced table
ALTER FOREIGN TABLE "Fern Sché"."Notiz" OPTIONS (SET table_name 'Kunde');
ALTER FOREIGN TABLE "Fern Sché"."Notiz" OPTIONS (SET schema_name 'public');
-- a name option among harmless ones: the whole command is refused
ALTER FOREIGN TABLE "Fern Sché"."Notiz" OPTIONS (ADD fetch_size '5', SET table_name 'Kunde');
-- the referenced shim's key column read from another column
ALTER FOREIGN TABLE "Fern Sché"."Kunde" ALTER COLUMN id OPTIONS (ADD column_name 'Code');
ALTER FOREIGN TABLE "Fern Sché"."Kunde" ALTER COLUMN "Code" OPTIONS (ADD column_name 'id');
-- with another subcommand in the same statement
ALTER FOREIGN TABLE "Fern Sché"."Kunde" ALTER COLUMN "Code" SET STATISTICS 10,
	ALTER COLUMN "Code" OPTIONS (ADD column_name 'id');
-- a column added that reads the key column under another name
ALTER FOREIGN TABLE "Fern Sché"."Kunde" ADD COLUMN "Schlüssel" integer OPTIONS (column_name 'id');
-- a column added with other options, or none, is the owner's
ALTER FOREIGN TABLE "Fern Sché"."Notiz" ADD COLUMN "Extra" text;
ALTER FOREIGN TABLE "Fern Sché"."Notiz" DROP COLUMN "Extra";
-- the shim's other options are its owner's
ALTER FOREIGN TABLE "Fern Sché"."Notiz" OPTIONS (ADD batch_size '10');
-- a foreign table of the owner's own, not a shim: PostgreSQL's rules alone
CREATE FOREIGN TABLE "Fern Sché"."Eigene" (id integer)
	SERVER splitdb_fern_svc OPTIONS (table_name 'Notiz');
ALTER FOREIGN TABLE "Fern Sché"."Eigene" OPTIONS (SET table_name 'Kunde');
DROP FOREIGN TABLE "Fern Sché"."Eigene";
RESET ROLE;
REVOKE USAGE ON FOREIGN SERVER splitdb_fern_svc FROM "regress Shim Owner";
\set VERBOSITY terse

-- unchanged but for batch_size
SELECT * FROM shim_options;

-- the reference is still enforced through the shim, by its owner
SET ROLE "regress Shim Owner";
DELETE FROM "Fern Sché"."Kunde" WHERE id = 1;
RESET ROLE;
SELECT id, "Code" FROM "Fern Sché"."Kunde" ORDER BY id;

-- a superuser may change them
ALTER FOREIGN TABLE "Fern Sché"."Notiz" OPTIONS (ADD fetch_size '7');
ALTER FOREIGN TABLE "Fern Sché"."Notiz" OPTIONS (SET table_name 'Notiz');
SELECT * FROM shim_options;

-- clean up
DROP VIEW shim_options;
DROP FOREIGN TABLE "Fern Sché"."Kunde", "Fern Sché"."Notiz" CASCADE;
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
DROP SCHEMA "Fern Sché" CASCADE;
DROP USER MAPPING FOR "regress Shim Owner" SERVER splitdb_fern_svc;
\c fern_svc
DROP USER MAPPING FOR "regress Shim Owner" SERVER splitdb_source;
\c splitdb_regression
SET client_min_messages = warning;
SELECT splitdb_drop_service('fern_svc');
DROP DATABASE fern_svc WITH (FORCE);
DROP ROLE "regress Shim Owner";
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
