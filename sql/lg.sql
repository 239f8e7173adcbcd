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
\c :source_db
SET client_min_messages = warning;
SELECT splitdb_rollback(E'lg svc\\ ö');
SELECT * FROM "Bestell L" ORDER BY 1;
DROP TABLE "Bestell L", "Kunde L";
SELECT splitdb_drop_service(E'lg svc\\ ö');
DROP DATABASE lg_svc_db;
DROP EXTENSION splitdb CASCADE;
