--
-- Names that the servers' own connection strings must carry: a service
-- named with white space and a backslash.  The servers that the cutover
-- makes in the sibling carry options '-c splitdb.origin=<service>', which
-- libpq splits at white space and unescapes at backslashes; unescaped, every
-- connection from the sibling back to the source (a reference check of a
-- row written there) failed with "invalid command-line argument for server
-- process".
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

CREATE TABLE "Kunde L" ("Ïd" integer PRIMARY KEY);
CREATE TABLE "Bestell L" (
	"Ïd"  integer PRIMARY KEY,
	kunde integer CONSTRAINT "Fk ""L"" ü" REFERENCES "Kunde L"
);
INSERT INTO "Kunde L" SELECT generate_series(1, 5);
INSERT INTO "Bestell L" VALUES (1, 1);

SELECT splitdb_add_service(E'lg svc\\ ö', dbname => 'lg_svc_db');
SELECT splitdb_assign(E'lg svc\\ ö', '"Bestell L"');
SELECT splitdb_migrate(E'lg svc\\ ö', mode => 'offline', wait => true) > 0 AS migrated;

SELECT current_database() AS source_db \gset
\c lg_svc_db
SET client_min_messages = warning;
-- the option as libpq reads it: one argument, its space and backslash escaped
SELECT o FROM pg_foreign_server s, unnest(s.srvoptions) o
 WHERE s.srvname = 'splitdb_source' AND o LIKE 'options=%';
-- checked in the source, over that server: accepted, then refused
INSERT INTO "Bestell L" VALUES (2, 2);
\set VERBOSITY terse
INSERT INTO "Bestell L" VALUES (3, 99);
\set VERBOSITY default
-- the rows the sibling holds: the one accepted, not the refused one
SELECT count(*) FROM "Bestell L";
-- a check that cannot reach the source says so: the hint names the
-- server's database, not "the sibling" (which this database is)
ALTER SERVER splitdb_source OPTIONS (SET dbname 'lg_no_such_db');
DO $$
DECLARE
	h text;
BEGIN
	INSERT INTO "Bestell L" VALUES (5, 5);
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS h = PG_EXCEPTION_HINT;
	RAISE WARNING '%: %', SQLSTATE, h;
END
$$;
ALTER SERVER splitdb_source OPTIONS (SET dbname :'source_db');
-- the DBA's user mapping on the server that the cutover made, with a
-- password (splitdb makes none): the rollback keeps the server with it,
-- and postgres_fdw under it, with a WARNING each, rather than dropping the
-- mapping with the server (the next migration would fail at its cutover
-- for want of it)
CREATE ROLE regress_lg_app;
CREATE USER MAPPING FOR regress_lg_app SERVER splitdb_source
	OPTIONS (user 'regress_lg_app', password 'not-a-secret');
\c :source_db
SET client_min_messages = warning;
SELECT splitdb_rollback(E'lg svc\\ ö');
SELECT * FROM "Bestell L" ORDER BY 1;
\c lg_svc_db
SELECT s.srvname, count(m.*) AS mappings,
       bool_or(m.usename = 'regress_lg_app' AND m.umoptions @> '{password=not-a-secret}') AS dba_mapping
  FROM pg_foreign_server s LEFT JOIN pg_user_mappings m ON m.srvid = s.oid
 GROUP BY 1 ORDER BY 1;
SELECT extname FROM pg_extension ORDER BY 1;
\c :source_db
SET client_min_messages = warning;
-- nothing of the job stands in the registry; the service migrates again,
-- over the server kept
SELECT * FROM splitdb_doctor();
SELECT splitdb_migrate(E'lg svc\\ ö', mode => 'offline', wait => true) > 0 AS migrated;
INSERT INTO "Bestell L" VALUES (4, 4);
SELECT splitdb_rollback(E'lg svc\\ ö');
SELECT * FROM "Bestell L" ORDER BY 1;
DROP TABLE "Bestell L", "Kunde L";
SELECT splitdb_drop_service(E'lg svc\\ ö');
DROP DATABASE lg_svc_db;
DROP ROLE regress_lg_app;
DROP SCHEMA splitdb_archive;
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
