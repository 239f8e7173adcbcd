--
-- Partitions added by the owner of a partitioned table that references a
-- moved table.  CREATE TABLE ... PARTITION OF and ALTER TABLE ... ATTACH
-- PARTITION clone the parent's row triggers, splitdb's among them, which
-- needs EXECUTE on their functions: a role that is no superuser got
-- "permission denied for function" (42501) and could add no partition,
-- which it may without splitdb.  And the rows that an attached partition
-- brings fire no trigger: PostgreSQL checks them against the parent's
-- foreign keys, and splitdb now checks them in the other database too.
-- - the owner (no superuser) creates a partition; rows with a missing key,
--   through the parent and into the partition, are refused (23503);
-- - attaching a table with a missing key is refused (23503) and changes
--   nothing; so is one whose missing key is in a leaf of a partitioned
--   table attached whole; a NULL key is no reference;
-- - attaching rows whose keys exist is accepted, and the referenced row
--   is then kept from being deleted;
-- - a partition detached keeps no check, and a NOTICE says so; attached
--   again, its rows are checked; a deferrable reference's rows are checked
--   once, and its NOTICE is given once;
-- - a foreign table under it (CREATE FOREIGN TABLE ... PARTITION OF, or
--   attached) is refused, as PostgreSQL refuses it under a foreign key.
-- Names with spaces, mixed case and non-ASCII letters.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;
CREATE ROLE "regress Attach Owner" LOGIN;

CREATE SCHEMA "Att Sché";
GRANT USAGE ON SCHEMA "Att Sché" TO "regress Attach Owner";
CREATE TABLE "Att Sché"."Cust" (id integer PRIMARY KEY);
GRANT REFERENCES, SELECT ON "Att Sché"."Cust" TO "regress Attach Owner";
GRANT CREATE ON SCHEMA "Att Sché" TO "regress Attach Owner";
INSERT INTO "Att Sché"."Cust" VALUES (1), (2);
SET ROLE "regress Attach Owner";
CREATE TABLE "Att Sché"."Ordér" (id integer NOT NULL, cust_id integer
	CONSTRAINT "ordér's cust" REFERENCES "Att Sché"."Cust") PARTITION BY RANGE (id);
CREATE TABLE "Att Sché"."Ordér 1" PARTITION OF "Att Sché"."Ordér" FOR VALUES FROM (0) TO (100);
CREATE TABLE "Att Sché"."Lot" (id integer NOT NULL, cust_id integer
	CONSTRAINT "lot's cust" REFERENCES "Att Sché"."Cust" DEFERRABLE INITIALLY DEFERRED) PARTITION BY RANGE (id);
CREATE TABLE "Att Sché"."Lot 1" PARTITION OF "Att Sché"."Lot" FOR VALUES FROM (0) TO (100);
INSERT INTO "Att Sché"."Ordér" VALUES (1, 1);
RESET ROLE;

SELECT splitdb_add_service('attach_svc');
CREATE USER MAPPING FOR "regress Attach Owner" SERVER splitdb_attach_svc
	OPTIONS (user 'regress Attach Owner', password_required 'false');
SELECT splitdb_assign('attach_svc', '"Att Sché"."Cust"');
SELECT splitdb_migrate('attach_svc', wait => true) > 0 AS migrated;
SELECT child_table, parent_table FROM splitdb_references;

SET ROLE "regress Attach Owner";
\set VERBOSITY terse
-- a new partition, and the checks of its rows
CREATE TABLE "Att Sché"."Ordér 2" PARTITION OF "Att Sché"."Ordér" FOR VALUES FROM (100) TO (200);
INSERT INTO "Att Sché"."Ordér" VALUES (150, 9);
INSERT INTO "Att Sché"."Ordér 2" VALUES (151, 9);
INSERT INTO "Att Sché"."Ordér 2" VALUES (152, 2);
-- a table with a missing key: refused, not attached
CREATE TABLE "Att Sché"."Ordér 3" (id integer NOT NULL, cust_id integer);
INSERT INTO "Att Sché"."Ordér 3" VALUES (250, 1), (251, 9), (252, NULL);
ALTER TABLE "Att Sché"."Ordér" ATTACH PARTITION "Att Sché"."Ordér 3" FOR VALUES FROM (200) TO (300);
-- a partitioned table whose leaf has one
CREATE TABLE "Att Sché"."Ordér 4" (id integer NOT NULL, cust_id integer) PARTITION BY RANGE (id);
CREATE TABLE "Att Sché"."Ordér 4a" PARTITION OF "Att Sché"."Ordér 4" FOR VALUES FROM (300) TO (350);
CREATE TABLE "Att Sché"."Ordér 4b" PARTITION OF "Att Sché"."Ordér 4" FOR VALUES FROM (350) TO (400);
INSERT INTO "Att Sché"."Ordér 4" VALUES (301, 1), (351, 8);
ALTER TABLE "Att Sché"."Ordér" ATTACH PARTITION "Att Sché"."Ordér 4" FOR VALUES FROM (300) TO (400);
\set VERBOSITY default
SELECT c.relname, c.relispartition FROM pg_class c
 WHERE c.relnamespace = '"Att Sché"'::regnamespace AND c.relkind IN ('r', 'p')
 ORDER BY 1;
-- without the missing keys: attached
DELETE FROM "Att Sché"."Ordér 3" WHERE id = 251;
DELETE FROM "Att Sché"."Ordér 4" WHERE id = 351;
ALTER TABLE "Att Sché"."Ordér" ATTACH PARTITION "Att Sché"."Ordér 3" FOR VALUES FROM (200) TO (300);
ALTER TABLE "Att Sché"."Ordér" ATTACH PARTITION "Att Sché"."Ordér 4" FOR VALUES FROM (300) TO (400);
SELECT tableoid::regclass AS partition, id, cust_id FROM "Att Sché"."Ordér" ORDER BY id;
DELETE FROM "Att Sché"."Ordér" WHERE id = 1;
RESET ROLE;
-- the attached rows alone keep their referenced row
\set VERBOSITY terse
DELETE FROM "Att Sché"."Cust" WHERE id = 1;
\set VERBOSITY default
SELECT id FROM "Att Sché"."Cust" ORDER BY id;
-- detached, a partition keeps no check (PostgreSQL would keep the foreign
-- key on it as its own): a NOTICE says so; attached again, its rows are
-- checked
SET client_min_messages = notice;
ALTER TABLE "Att Sché"."Ordér" DETACH PARTITION "Att Sché"."Ordér 3";
SET client_min_messages = warning;
INSERT INTO "Att Sché"."Ordér 3" VALUES (253, 9);
\set VERBOSITY terse
ALTER TABLE "Att Sché"."Ordér" ATTACH PARTITION "Att Sché"."Ordér 3" FOR VALUES FROM (200) TO (300);
\set VERBOSITY default
DELETE FROM "Att Sché"."Ordér 3" WHERE id = 253;
ALTER TABLE "Att Sché"."Ordér" ATTACH PARTITION "Att Sché"."Ordér 3" FOR VALUES FROM (200) TO (300);
SELECT count(*) AS rows FROM "Att Sché"."Ordér";
-- a deferrable reference: its rows checked once at the attachment, and
-- one NOTICE at the detachment
SET ROLE "regress Attach Owner";
\set VERBOSITY terse
INSERT INTO "Att Sché"."Lot 1" VALUES (1, 9);
\set VERBOSITY default
CREATE TABLE "Att Sché"."Lot 2" (id integer NOT NULL, cust_id integer);
INSERT INTO "Att Sché"."Lot 2" VALUES (150, 2), (151, 2), (152, 9);
\set VERBOSITY terse
ALTER TABLE "Att Sché"."Lot" ATTACH PARTITION "Att Sché"."Lot 2" FOR VALUES FROM (100) TO (200);
\set VERBOSITY default
DELETE FROM "Att Sché"."Lot 2" WHERE id = 152;
ALTER TABLE "Att Sché"."Lot" ATTACH PARTITION "Att Sché"."Lot 2" FOR VALUES FROM (100) TO (200);
SELECT count(*) AS lots FROM "Att Sché"."Lot";
SET client_min_messages = notice;
ALTER TABLE "Att Sché"."Lot" DETACH PARTITION "Att Sché"."Lot 2";
SET client_min_messages = warning;
RESET ROLE;
-- a foreign table as a partition, made one or attached: its rows are in
-- another database that no check reaches; refused, as PostgreSQL refuses it
-- under a foreign key
CREATE FOREIGN TABLE "Att Sché"."Ordér f" PARTITION OF "Att Sché"."Ordér"
	FOR VALUES FROM (500) TO (600) SERVER splitdb_attach_svc;
CREATE FOREIGN TABLE "Att Sché"."Ordér g" (id integer NOT NULL, cust_id integer)
	SERVER splitdb_attach_svc;
ALTER TABLE "Att Sché"."Ordér" ATTACH PARTITION "Att Sché"."Ordér g" FOR VALUES FROM (600) TO (700);
SELECT c.relname, c.relispartition FROM pg_class c
 WHERE c.relnamespace = '"Att Sché"'::regnamespace AND c.relkind = 'f'
 ORDER BY 1;
SELECT count(*) AS orphans FROM splitdb_orphans('attach_svc');

-- the names as an application's migration script writes them, unqualified
-- and found under search_path: the check reads the partition that the
-- command attached, not one that the event trigger's own search_path finds
-- (none: the rows went unchecked, and the detachment said nothing)
SET ROLE "regress Attach Owner";
SET search_path = "Att Sché", public;
CREATE TABLE "Ordér 5" (id integer NOT NULL, cust_id integer);
INSERT INTO "Ordér 5" VALUES (701, 2), (702, 9);
\set VERBOSITY terse
ALTER TABLE "Ordér" ATTACH PARTITION "Ordér 5" FOR VALUES FROM (700) TO (800);
\set VERBOSITY default
SELECT relispartition FROM pg_class WHERE oid = '"Ordér 5"'::regclass;
DELETE FROM "Ordér 5" WHERE id = 702;
ALTER TABLE "Ordér" ATTACH PARTITION "Ordér 5" FOR VALUES FROM (700) TO (800);
SELECT tableoid::regclass AS partition, id, cust_id FROM "Ordér" WHERE id > 700;
SET client_min_messages = notice;
ALTER TABLE "Ordér" DETACH PARTITION "Ordér 5";
SET client_min_messages = warning;
RESET ROLE;
-- a foreign table made a partition by an unqualified name, with a
-- temporary table of that name in the way, and one attached: refused
CREATE TEMPORARY TABLE "Ordér h" (id integer);
CREATE FOREIGN TABLE "Ordér h" PARTITION OF "Ordér"
	FOR VALUES FROM (800) TO (900) SERVER splitdb_attach_svc;
CREATE FOREIGN TABLE "Ordér i" (id integer NOT NULL, cust_id integer)
	SERVER splitdb_attach_svc;
ALTER TABLE "Ordér" ATTACH PARTITION "Ordér i" FOR VALUES FROM (900) TO (1000);
SELECT c.relname, c.relispartition FROM pg_class c
 WHERE c.relnamespace = '"Att Sché"'::regnamespace AND c.relkind = 'f'
 ORDER BY 1;
DROP TABLE pg_temp."Ordér h";
RESET search_path;
SELECT count(*) AS orphans FROM splitdb_orphans('attach_svc');

-- clean up
DROP FOREIGN TABLE "Att Sché"."Cust" CASCADE;
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
DROP SCHEMA "Att Sché" CASCADE;
DROP USER MAPPING FOR "regress Attach Owner" SERVER splitdb_attach_svc;
SELECT splitdb_drop_service('attach_svc');
DROP DATABASE attach_svc WITH (FORCE);
DROP ROLE "regress Attach Owner";
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
