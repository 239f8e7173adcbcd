--
-- The references of a finalized service.  splitdb_finalize() drops the
-- archived originals, which the catalog's reference rows name by OID; the
-- shim of the same name then stands for the moved end in the source (its
-- owner, its key types), so splitdb_reference_mode() can turn the
-- reference off and on again.  Once the shim is gone too (drop_shim),
-- nothing is left to read the types from (so for a moved partition, which
-- has no shim of its own), and installing the ends again is
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
-- stays, referenced by a partition of a table that moves (below)
CREATE TABLE "Shop".store_region (code "Shop".code PRIMARY KEY);
INSERT INTO "Shop".store_region VALUES ('N');
INSERT INTO "Shop"."Region" VALUES ('N', 'north'), ('S', 'south');
INSERT INTO "Shop".store VALUES (1, 'N'), (2, 'S');

SELECT splitdb_add_service('fin_svc');
SELECT splitdb_assign('fin_svc', '"Shop"."Region"');
SELECT splitdb_migrate('fin_svc', mode => 'offline', wait => true) > 0 AS migrated;
SELECT splitdb_finalize('fin_svc');
-- in a transaction block, a finalize that would do nothing is refused for
-- what it is (splitdb_finalize() refuses a block only where it would drop)
BEGIN;
SELECT splitdb_finalize('fin_svc');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
-- the plan of a finalized service says so, and plans nothing
SELECT step, action, object, detail FROM splitdb_plan('fin_svc');

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

-- a reference declared on a partition that moved: no shim of its own, so
-- it is refused after a plain finalize, and its route stays as installed
CREATE TABLE "Shop".sale (
	k      integer PRIMARY KEY,
	region "Shop".code
) PARTITION BY RANGE (k);
CREATE TABLE "Shop".sale_low PARTITION OF "Shop".sale FOR VALUES FROM (0) TO (100);
CREATE TABLE "Shop".sale_high PARTITION OF "Shop".sale FOR VALUES FROM (100) TO (200);
ALTER TABLE "Shop".sale_low ADD FOREIGN KEY (region) REFERENCES "Shop".store_region;
SELECT splitdb_add_service('fin_part');
SELECT splitdb_assign('fin_part', '"Shop".sale');
SELECT splitdb_migrate('fin_part', mode => 'offline', wait => true) > 0 AS migrated;
SELECT splitdb_finalize('fin_part');
SELECT splitdb_reference_mode(r.reference_id, 'off') AS was
  FROM splitdb.reference r WHERE r.child_service = 'fin_part';
\echo :LAST_ERROR_SQLSTATE
SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t
 WHERE t.tgrelid = '"Shop".sale'::regclass AND t.tgname LIKE 'splitdb\_ref\_%';
INSERT INTO "Shop".sale VALUES (150, 'Z');
INSERT INTO "Shop".sale VALUES (50, 'Z');
\echo :LAST_ERROR_SQLSTATE

-- clean up
DROP SCHEMA "Shop" CASCADE;
DELETE FROM splitdb.reference;
DELETE FROM splitdb.job;
SELECT splitdb_drop_service('fin_svc');
SELECT splitdb_drop_service('fin_part');
DROP DATABASE fin_svc WITH (FORCE);
DROP DATABASE fin_part WITH (FORCE);
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
