--
-- Foreign keys declared on the partitions of a moved partitioned table, not
-- on the table itself (as pagila's payment_p2022_0N -> customer): the
-- source has one shim for the whole table, and the partitions' references
-- are checked for the rows that land in each partition:
-- - through the shim, an insert of a missing key routed to a partition that
--   declares the key is refused (23503), one routed to a partition that
--   does not is accepted, as with the original keys;
-- - directly in the sibling, the same answers;
-- - the shim's triggers carry the partition's constraint as WHEN clause;
-- - an update through the shim that changes a key, or moves a row into a
--   partition that declares it, is checked as the original key would be
--   (23503 for a missing key, the statement changes nothing), at commit
--   for a key that is INITIALLY DEFERRED;
-- - a row of a partition that a table of the source references (a key
--   declared to reference the partition) is deleted, moved out or changed
--   through the shim only as that key allows;
-- - splitdb_orphans() reads date keys back whatever the session's DateStyle;
-- - an update or delete that postgres_fdw would apply row by row through
--   the shim is refused (0A000): the remote partitions repeat ctids.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

CREATE SCHEMA "Kasse";
-- stays
CREATE TABLE "Kunde" ("Kü_id" integer PRIMARY KEY);
INSERT INTO "Kunde" VALUES (1), (2);
-- moves, with keys on two partitions only
CREATE TABLE "Kasse"."Zahlung" (id integer, "Kü_id" integer, tag date NOT NULL,
	PRIMARY KEY (id, tag)) PARTITION BY RANGE (tag);
CREATE TABLE "Kasse"."Zahlung Jan" PARTITION OF "Kasse"."Zahlung"
	FOR VALUES FROM ('2022-01-01') TO ('2022-02-01');
CREATE TABLE "Kasse"."zahlung_FEB" PARTITION OF "Kasse"."Zahlung"
	FOR VALUES FROM ('2022-02-01') TO ('2022-03-01');
CREATE TABLE "Kasse"."Zahlung übrig" PARTITION OF "Kasse"."Zahlung" DEFAULT;
ALTER TABLE "Kasse"."Zahlung Jan" ADD CONSTRAINT "Jan→Kunde"
	FOREIGN KEY ("Kü_id") REFERENCES "Kunde";
ALTER TABLE "Kasse"."zahlung_FEB" ADD CONSTRAINT "feb_Kunde"
	FOREIGN KEY ("Kü_id") REFERENCES "Kunde" DEFERRABLE INITIALLY DEFERRED;
INSERT INTO "Kasse"."Zahlung" VALUES (1, 1, '2022-01-10'), (2, 2, '2022-02-10'), (3, 99, '2022-05-01');
-- stays, and references one partition of the moved table
CREATE TABLE "Beleg" (nr integer PRIMARY KEY, zahlung integer, tag date,
	FOREIGN KEY (zahlung, tag) REFERENCES "Kasse"."Zahlung Jan");
INSERT INTO "Kasse"."Zahlung" VALUES (4, 1, '2022-01-11');
INSERT INTO "Beleg" VALUES (1, 4, '2022-01-11');

SELECT splitdb_add_service('rp_svc');
SELECT splitdb_assign('rp_svc', '"Kasse"."Zahlung"');
SELECT splitdb_migrate('rp_svc', wait => true) > 0 AS migrated;
SELECT constraint_name, child_table, parent_table FROM splitdb_references ORDER BY 1;
-- the shim's triggers for them: inserts routed to the partition
SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger
 WHERE tgrelid = '"Kasse"."Zahlung"'::regclass AND tgname LIKE 'splitdb\_ref\_%' ORDER BY 1;

-- through the shim: a missing key in January and in February is refused
\set VERBOSITY sqlstate
INSERT INTO "Kasse"."Zahlung" VALUES (10, -5, '2022-01-20');
INSERT INTO "Kasse"."Zahlung" VALUES (11, -5, '2022-02-20');
INSERT INTO "Kasse"."Zahlung" VALUES (12, 1, '2022-01-21'), (13, -5, '2022-02-21');
\set VERBOSITY default
-- a present key is accepted; a missing one where no partition declares it too
INSERT INTO "Kasse"."Zahlung" VALUES (20, 2, '2022-01-20'), (21, 1, '2022-02-20'), (22, -5, '2022-09-01');
SELECT id, "Kü_id", tag FROM "Kasse"."Zahlung" ORDER BY id;

\c rp_svc
SET client_min_messages = warning;
-- in the sibling: what came through the shim, in its partitions
SELECT tableoid::regclass AS part, id, "Kü_id" FROM "Kasse"."Zahlung" ORDER BY id;
-- directly in the sibling: the same answers
\set VERBOSITY sqlstate
INSERT INTO "Kasse"."Zahlung" VALUES (30, -5, '2022-01-20');
INSERT INTO "Kasse"."zahlung_FEB" VALUES (31, -5, '2022-02-20');
\set VERBOSITY default
INSERT INTO "Kasse"."Zahlung" VALUES (32, 2, '2022-02-02'), (33, -6, '2023-01-01');
SELECT tableoid::regclass AS part, id, "Kü_id" FROM "Kasse"."Zahlung" WHERE id >= 30 ORDER BY id;
-- updates that move a row into a partition that declares the key: refused
-- for a missing key, with the key changed or not
\set VERBOSITY sqlstate
UPDATE "Kasse"."Zahlung" SET tag = '2022-01-05' WHERE id = 33;
UPDATE "Kasse"."Zahlung" SET tag = '2022-02-05', "Kü_id" = -7 WHERE id = 32;
\set VERBOSITY default
UPDATE "Kasse"."Zahlung" SET tag = '2022-01-05' WHERE id = 32;
SELECT tableoid::regclass AS part, id, "Kü_id", tag FROM "Kasse"."Zahlung" WHERE id >= 30 ORDER BY id;
\c splitdb_regression
SET client_min_messages = warning;
-- through the shim, an update that moves a row with a present key: the row
-- lands in its new partition
UPDATE "Kasse"."Zahlung" SET tag = '2022-02-06' WHERE id = 20;
SELECT id, "Kü_id", tag FROM "Kasse"."Zahlung" WHERE id = 20;
\c rp_svc
SELECT tableoid::regclass AS part, id FROM "Kasse"."Zahlung" WHERE id = 20;
\c splitdb_regression
SET client_min_messages = warning;
-- updates through the shim are checked against the partitions' keys as the
-- original keys would: the sibling hands the rows back, the source checks
-- them.  The same statements on a local copy with the same keys first.
CREATE TABLE zahlung_lokal (LIKE "Kasse"."Zahlung") PARTITION BY RANGE (tag);
CREATE TABLE zahlung_lokal_jan PARTITION OF zahlung_lokal
	FOR VALUES FROM ('2022-01-01') TO ('2022-02-01');
CREATE TABLE zahlung_lokal_rest PARTITION OF zahlung_lokal DEFAULT;
ALTER TABLE zahlung_lokal_jan ADD CONSTRAINT "Jan→Kunde"
	FOREIGN KEY ("Kü_id") REFERENCES "Kunde";
INSERT INTO zahlung_lokal SELECT * FROM "Kasse"."Zahlung" WHERE id IN (21, 22, 32);
SELECT id, "Kü_id", tag FROM zahlung_lokal ORDER BY id;
-- a changed key that is missing, in a partition that declares the key
UPDATE zahlung_lokal SET "Kü_id" = -5 WHERE id = 32;
UPDATE "Kasse"."Zahlung" SET "Kü_id" = -5 WHERE id = 32;
-- a row with a missing key moved into such a partition
UPDATE zahlung_lokal SET tag = '2022-01-07' WHERE id = 22;
UPDATE "Kasse"."Zahlung" SET tag = '2022-01-07' WHERE id = 22;
-- moved in with its key changed to a missing one
UPDATE zahlung_lokal SET tag = '2022-01-08', "Kü_id" = -8 WHERE id = 21;
UPDATE "Kasse"."Zahlung" SET tag = '2022-01-08', "Kü_id" = -8 WHERE id = 21;
-- the refused statements changed nothing, here or in the sibling
SELECT id, "Kü_id", tag FROM "Kasse"."Zahlung" WHERE id IN (21, 22, 32) ORDER BY id;
\c rp_svc
SELECT tableoid::regclass AS part, id, "Kü_id", tag FROM "Kasse"."Zahlung"
 WHERE id IN (21, 22, 32) ORDER BY id;
\c splitdb_regression
SET client_min_messages = warning;
-- accepted: a missing key where no partition declares one, a present key
-- moved in, and a key that this transaction inserts in the source first
UPDATE "Kasse"."Zahlung" SET "Kü_id" = -9 WHERE id = 22;
UPDATE "Kasse"."Zahlung" SET tag = '2022-01-09' WHERE id = 21;
BEGIN;
INSERT INTO "Kunde" VALUES (3);
UPDATE "Kasse"."Zahlung" SET "Kü_id" = 3 WHERE id = 32;
COMMIT;
SELECT id, "Kü_id", tag FROM "Kasse"."Zahlung" WHERE id IN (21, 22, 32) ORDER BY id;
-- the checked key is locked as a foreign key locks it: the customer stays
\set VERBOSITY sqlstate
DELETE FROM "Kunde" WHERE "Kü_id" = 3;
\set VERBOSITY default
DROP TABLE zahlung_lokal;
-- the February key is DEFERRABLE INITIALLY DEFERRED: its triggers in the
-- sibling fire at the sibling's commit, too late to hand rows back, so a
-- trigger of its own hands them back at once; the source checks them at
-- its commit, as the deferred key would
\c rp_svc
SELECT tgname, tgdeferrable, tginitdeferred, tgenabled FROM pg_trigger
 WHERE tgrelid = '"Kasse"."zahlung_FEB"'::regclass
   AND (tgname LIKE 'splitdb\_ref\_%' OR tgname = 'feb_Kunde') ORDER BY 1;
\c splitdb_regression
SET client_min_messages = warning;
BEGIN;
UPDATE "Kasse"."Zahlung" SET tag = '2022-02-15' WHERE id = 22;
SELECT 'the statement passed, the check waits for the commit' AS deferred;
\set VERBOSITY sqlstate
COMMIT;
\set VERBOSITY default
BEGIN;
UPDATE "Kasse"."Zahlung" SET tag = '2022-02-15' WHERE id = 22;
INSERT INTO "Kunde" VALUES (-9);
COMMIT;
SELECT id, "Kü_id", tag FROM "Kasse"."Zahlung" WHERE id = 22;
-- a referenced row of a partition, deleted, moved out or with its key
-- changed through the shim: refused, as the original key refuses it (the
-- sibling hands the keys back, the source acts on them)
\set VERBOSITY sqlstate
DELETE FROM "Kasse"."Zahlung" WHERE id = 4;
UPDATE "Kasse"."Zahlung" SET tag = '2022-02-11' WHERE id = 4;
UPDATE "Kasse"."Zahlung" SET id = 5 WHERE id = 4;
\set VERBOSITY default
SELECT id, "Kü_id", tag FROM "Kasse"."Zahlung" WHERE id IN (4, 5);
-- another column changes; and once the document is gone, the row goes
UPDATE "Kasse"."Zahlung" SET "Kü_id" = 2 WHERE id = 4;
DELETE FROM "Beleg";
DELETE FROM "Kasse"."Zahlung" WHERE id = 4;
-- the date keys of the reference are read back in any DateStyle
SELECT splitdb_reference_mode(reference_id, 'off') FROM splitdb_references
 WHERE constraint_name = 'Beleg_zahlung_tag_fkey';
INSERT INTO "Beleg" VALUES (3, 77, '2022-01-13');
SELECT constraint_name, child_key FROM splitdb_orphans('rp_svc');
DELETE FROM "Beleg";
SELECT splitdb_reference_mode(reference_id, 'strict') FROM splitdb_references
 WHERE constraint_name = 'Beleg_zahlung_tag_fkey';
-- an update or delete that postgres_fdw would apply row by row ("WHERE ctid
-- = $1") is refused on the shim of a partitioned table: each partition has
-- its own ctids, so rows of other partitions would change too.  Rows 1 and
-- 2 are the first rows of their partitions, both at ctid (0,1).
\c rp_svc
SELECT tableoid::regclass AS part, ctid, id FROM "Kasse"."Zahlung" WHERE id IN (1, 2) ORDER BY id;
\c splitdb_regression
SET client_min_messages = warning;
UPDATE "Kasse"."Zahlung" SET id = id + 100 WHERE id = 1 AND random() >= 0;
DELETE FROM "Kasse"."Zahlung" WHERE id = 1 AND random() >= 0;
WITH gone AS (DELETE FROM "Kasse"."Zahlung" WHERE id = 2 AND random() >= 0 RETURNING id)
SELECT count(*) FROM gone;
-- nothing changed, in any partition
\c rp_svc
SELECT tableoid::regclass AS part, id, "Kü_id" FROM "Kasse"."Zahlung" WHERE id IN (1, 2) ORDER BY id;
\c splitdb_regression
SET client_min_messages = warning;
-- sent whole, the same update changes its one row
UPDATE "Kasse"."Zahlung" SET id = id + 100 WHERE id = 1;
\c rp_svc
SELECT tableoid::regclass AS part, id, "Kü_id" FROM "Kasse"."Zahlung" WHERE id IN (2, 101) ORDER BY id;
\c splitdb_regression
SET client_min_messages = warning;
-- a referenced customer stays
\set VERBOSITY sqlstate
DELETE FROM "Kunde" WHERE "Kü_id" = 2;
\set VERBOSITY default
SELECT * FROM splitdb_orphans('rp_svc');

-- clean up
DROP TABLE "Kunde" CASCADE;
DROP TABLE "Beleg";
DROP FOREIGN TABLE "Kasse"."Zahlung";
DROP SCHEMA "Kasse";
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
DELETE FROM splitdb.job;
SELECT splitdb_drop_service('rp_svc');
DROP DATABASE rp_svc WITH (FORCE);
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
