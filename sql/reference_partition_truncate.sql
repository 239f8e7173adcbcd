--
-- TRUNCATE of a partition of a partitioned table that a table in another
-- database references.  The referenced end's BEFORE TRUNCATE trigger is a
-- statement trigger on the partitioned table: PostgreSQL fires it for the
-- relations a TRUNCATE empties, not for their ancestors, and does not copy
-- it onto a partition, so a partition truncated alone (one the cutover
-- found, one its owner added since) lost rows that the other database
-- still referred to.  PostgreSQL refuses that under a foreign key (0A000);
-- now so does splitdb:
-- - a partition from before the cutover, one created and one attached
--   since, a leaf under a partitioned partition and that partition,
--   TRUNCATE ONLY too, by the owner (no superuser): refused, the rows kept;
-- - the partitioned table itself: refused, as before;
-- - with the reference off: truncated;
-- - a partition of a table without an end: truncated;
-- - a role that may not truncate: PostgreSQL's refusal.
-- Names with spaces, mixed case and non-ASCII letters.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;
CREATE ROLE "regress Trunc Owner" LOGIN;
CREATE ROLE "regress Trunc Other" LOGIN;

CREATE SCHEMA "Trunc Sché";
GRANT USAGE, CREATE ON SCHEMA "Trunc Sché" TO "regress Trunc Owner";
GRANT USAGE ON SCHEMA "Trunc Sché" TO "regress Trunc Other";
SET ROLE "regress Trunc Owner";
CREATE TABLE "Trunc Sché"."Kunde" (id integer PRIMARY KEY) PARTITION BY RANGE (id);
CREATE TABLE "Trunc Sché"."Kunde 1" PARTITION OF "Trunc Sché"."Kunde" FOR VALUES FROM (0) TO (100);
CREATE TABLE "Trunc Sché"."Ohne" (id integer PRIMARY KEY) PARTITION BY RANGE (id);
CREATE TABLE "Trunc Sché"."Ohne 1" PARTITION OF "Trunc Sché"."Ohne" FOR VALUES FROM (0) TO (100);
INSERT INTO "Trunc Sché"."Kunde" VALUES (1), (2);
INSERT INTO "Trunc Sché"."Ohne" VALUES (1);
GRANT SELECT, REFERENCES ON "Trunc Sché"."Kunde" TO PUBLIC;
RESET ROLE;
CREATE TABLE "Trunc Sché"."Bestellung" (id integer PRIMARY KEY, kunde_id integer
	CONSTRAINT "bestellung's kunde" REFERENCES "Trunc Sché"."Kunde");
INSERT INTO "Trunc Sché"."Bestellung" VALUES (1, 1);

SELECT splitdb_add_service('trunc_svc');
CREATE USER MAPPING FOR "regress Trunc Owner" SERVER splitdb_trunc_svc
	OPTIONS (user 'regress Trunc Owner', password_required 'false');
SELECT splitdb_assign('trunc_svc', '"Trunc Sché"."Bestellung"');
SELECT splitdb_migrate('trunc_svc', mode => 'offline', wait => true) > 0 AS migrated;
SELECT child_table, parent_table FROM splitdb_references;

-- partitions added by the owner, and rows in each
SET ROLE "regress Trunc Owner";
CREATE TABLE "Trunc Sché"."Kunde 2" PARTITION OF "Trunc Sché"."Kunde" FOR VALUES FROM (100) TO (200);
CREATE TABLE "Trunc Sché"."Kunde 3" (id integer NOT NULL);
INSERT INTO "Trunc Sché"."Kunde 3" VALUES (250);
ALTER TABLE "Trunc Sché"."Kunde" ATTACH PARTITION "Trunc Sché"."Kunde 3" FOR VALUES FROM (200) TO (300);
CREATE TABLE "Trunc Sché"."Kunde 4" PARTITION OF "Trunc Sché"."Kunde"
	FOR VALUES FROM (300) TO (400) PARTITION BY RANGE (id);
CREATE TABLE "Trunc Sché"."Kunde 4a" PARTITION OF "Trunc Sché"."Kunde 4" FOR VALUES FROM (300) TO (400);
INSERT INTO "Trunc Sché"."Kunde" VALUES (150), (350);
RESET ROLE;
INSERT INTO "Trunc Sché"."Bestellung" VALUES (2, 150), (3, 250), (4, 350);

SET ROLE "regress Trunc Owner";
-- the cutover's partition
TRUNCATE "Trunc Sché"."Kunde 1";
\set VERBOSITY terse
-- the partitions added since
TRUNCATE "Trunc Sché"."Kunde 2";
TRUNCATE ONLY "Trunc Sché"."Kunde 2";
TRUNCATE "Trunc Sché"."Kunde 3";
TRUNCATE "Trunc Sché"."Kunde 4a";
TRUNCATE "Trunc Sché"."Kunde 4";
-- among other tables, in a transaction block
BEGIN;
TRUNCATE "Trunc Sché"."Ohne 1", "Trunc Sché"."Kunde 2";
ROLLBACK;
-- the partitioned table itself
TRUNCATE "Trunc Sché"."Kunde";
\set VERBOSITY default
-- a partition of a table without an end
TRUNCATE "Trunc Sché"."Ohne 1";
RESET ROLE;
SELECT tableoid::regclass AS partition, id FROM "Trunc Sché"."Kunde" ORDER BY id;
SELECT count(*) AS rows FROM "Trunc Sché"."Ohne";
SELECT count(*) AS orphans FROM splitdb_orphans('trunc_svc');

-- a role that may not truncate gets PostgreSQL's refusal
SET ROLE "regress Trunc Other";
TRUNCATE "Trunc Sché"."Kunde 2";
RESET ROLE;

-- with the reference off, a partition is truncated
SELECT splitdb_reference_mode(reference_id, 'off') FROM splitdb.reference
 WHERE constraint_name = 'bestellung''s kunde';
SET ROLE "regress Trunc Owner";
TRUNCATE "Trunc Sché"."Kunde 2";
RESET ROLE;
SELECT count(*) AS orphans FROM splitdb_orphans('trunc_svc');
SELECT tableoid::regclass AS partition, id FROM "Trunc Sché"."Kunde" ORDER BY id;

-- clean up
DROP FOREIGN TABLE "Trunc Sché"."Bestellung";
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
DROP SCHEMA "Trunc Sché" CASCADE;
DROP USER MAPPING FOR "regress Trunc Owner" SERVER splitdb_trunc_svc;
SELECT splitdb_drop_service('trunc_svc');
DROP DATABASE trunc_svc WITH (FORCE);
DROP ROLE "regress Trunc Owner";
DROP ROLE "regress Trunc Other";
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
