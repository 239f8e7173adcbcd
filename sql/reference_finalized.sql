--
-- The references of a finalized service.  splitdb_finalize() drops the
-- archived originals, which the catalog's reference rows name by OID; the
-- shim of the same name then stands for the moved end in the source (its
-- owner, its key types), so splitdb_reference_mode() can turn the
-- reference off and on again.  Once the shim is gone too (drop_shim),
-- nothing is left to read the types from, and installing the ends again is
-- refused (55000); the triggers installed at the cutover keep enforcing it.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;
\set SHOW_CONTEXT never

CREATE SCHEMA "Shop";
CREATE DOMAIN "Shop".code AS varchar(8) CHECK (VALUE <> '');
-- moves to service fin_svc
CREATE TABLE "Shop"."Region" (
	code "Shop".code PRIMARY KEY,
	name text
);
-- stays
CREATE TABLE "Shop".store (
	id     integer PRIMARY KEY,
	region "Shop".code REFERENCES "Shop"."Region" ON DELETE SET NULL
);
INSERT INTO "Shop"."Region" VALUES ('N', 'north'), ('S', 'south');
INSERT INTO "Shop".store VALUES (1, 'N'), (2, 'S');

SELECT splitdb_add_service('fin_svc');
SELECT splitdb_assign('fin_svc', '"Shop"."Region"');
SELECT splitdb_migrate('fin_svc', mode => 'offline', wait => true) > 0 AS migrated;
SELECT splitdb_finalize('fin_svc');

-- the shim stands for the moved end
SELECT reference_id, child_types, parent_types FROM splitdb.reference_placement;
SELECT splitdb_reference_mode(reference_id, 'off') AS was FROM splitdb.reference;
INSERT INTO "Shop".store VALUES (3, 'W');
SELECT splitdb_reference_mode(reference_id, 'strict') AS was FROM splitdb.reference;
DELETE FROM "Shop".store WHERE id = 3;
-- enforced again
INSERT INTO "Shop".store VALUES (4, 'E');
\echo :LAST_ERROR_SQLSTATE
DELETE FROM "Shop"."Region" WHERE code = 'S';
SELECT * FROM "Shop".store ORDER BY id;

-- without the shim, the ends cannot be installed again
SELECT splitdb_finalize('fin_svc', drop_shim => true);
SELECT reference_id, child_types, parent_types FROM splitdb.reference_placement;
SELECT splitdb_reference_mode(reference_id, 'off') AS was FROM splitdb.reference;
\echo :LAST_ERROR_SQLSTATE
-- the cutover's triggers still enforce it
INSERT INTO "Shop".store VALUES (5, 'E');
\echo :LAST_ERROR_SQLSTATE

-- clean up
DROP SCHEMA "Shop" CASCADE;
DELETE FROM splitdb.reference;
DELETE FROM splitdb.job;
SELECT splitdb_drop_service('fin_svc');
DROP DATABASE fin_svc WITH (FORCE);
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
