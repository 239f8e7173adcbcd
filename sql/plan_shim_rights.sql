--
-- The plan warns of roles that may write a moving table without reading
-- every column of it, when the table's shim will carry the row triggers of
-- a cross-service reference: postgres_fdw then reads back the rows written
-- through the shim, which takes SELECT on the whole table in the sibling,
-- so those writes would fail there after the cutover (shown at the end).
-- - a table that references a table that stays: INSERT and UPDATE;
-- - a table that a table staying references: UPDATE and DELETE;
-- - a table with no foreign key across the split: no warning, whatever
--   the grants (postgres_fdw sends its writes as they are);
-- - roles with SELECT on the table, or on each of its columns, the owner,
--   superusers and roles that cannot log in are not named.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

CREATE SCHEMA "Sr";
CREATE TABLE "Sr".member (id integer PRIMARY KEY, name text);
-- moves, references a table that stays
CREATE TABLE "Sr"."audit log" (id integer PRIMARY KEY, member integer REFERENCES "Sr".member, note text);
-- moves, referenced by a table that stays
CREATE TABLE "Sr".plan (id integer PRIMARY KEY, label text);
CREATE TABLE "Sr".subscription (id integer PRIMARY KEY, plan integer REFERENCES "Sr".plan);
-- moves, no key across the split
CREATE TABLE "Sr".scratch (id integer PRIMARY KEY, v text);
INSERT INTO "Sr".member VALUES (1, 'a');

CREATE ROLE "regress_sr writer" LOGIN;
CREATE ROLE regress_sr_reader LOGIN;
CREATE ROLE regress_sr_columns LOGIN;
CREATE ROLE regress_sr_group NOLOGIN;
GRANT USAGE ON SCHEMA "Sr" TO "regress_sr writer", regress_sr_reader, regress_sr_columns;
GRANT INSERT ON "Sr"."audit log" TO "regress_sr writer", regress_sr_group;
GRANT INSERT, SELECT ON "Sr"."audit log" TO regress_sr_reader;
GRANT INSERT, SELECT (id, member, note) ON "Sr"."audit log" TO regress_sr_columns;
GRANT SELECT (id), UPDATE, DELETE ON "Sr".plan TO "regress_sr writer";
GRANT INSERT, UPDATE, DELETE ON "Sr".scratch TO "regress_sr writer";

SELECT splitdb_add_service('sr_svc');
SELECT splitdb_assign('sr_svc', '"Sr"."audit log"', '"Sr".plan', '"Sr".scratch');
SELECT object, detail FROM splitdb_plan('sr_svc')
 WHERE action = 'warning' AND detail LIKE '%SELECT on each of its columns%'
 ORDER BY object;

-- with SELECT granted, the role is no longer named
GRANT SELECT ON "Sr".plan TO "regress_sr writer";
SELECT object, detail FROM splitdb_plan('sr_svc')
 WHERE action = 'warning' AND detail LIKE '%SELECT on each of its columns%'
 ORDER BY object;
REVOKE SELECT ON "Sr".plan FROM "regress_sr writer";
GRANT SELECT (id) ON "Sr".plan TO "regress_sr writer";

-- what the warning says happens, after the migration
SELECT splitdb_migrate('sr_svc', wait => true) > 0 AS migrated;
CREATE USER MAPPING FOR "regress_sr writer" SERVER splitdb_sr_svc
	OPTIONS (user 'regress_sr writer', password_required 'false');
SET ROLE "regress_sr writer";
INSERT INTO "Sr"."audit log" VALUES (1, 1, 'x');
DELETE FROM "Sr".plan WHERE id = 1;
-- the table without a key across the split takes the writes
INSERT INTO "Sr".scratch VALUES (1, 'x');
DELETE FROM "Sr".scratch;
RESET ROLE;

-- clean up
DROP USER MAPPING FOR "regress_sr writer" SERVER splitdb_sr_svc;
DROP FOREIGN TABLE "Sr"."audit log", "Sr".plan, "Sr".scratch;
DROP SCHEMA "Sr" CASCADE;
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
SELECT splitdb_drop_service('sr_svc');
DROP DATABASE sr_svc WITH (FORCE);
DROP ROLE "regress_sr writer", regress_sr_reader, regress_sr_columns, regress_sr_group;
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
