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
	FOREIGN KEY ("Kü_id") REFERENCES "Kunde";
INSERT INTO "Kasse"."Zahlung" VALUES (1, 1, '2022-01-10'), (2, 2, '2022-02-10'), (3, 99, '2022-05-01');

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
-- lands in its new partition (an update through the shim is not checked
-- against a partition's keys, docs/operations.md)
UPDATE "Kasse"."Zahlung" SET tag = '2022-02-06' WHERE id = 20;
SELECT id, "Kü_id", tag FROM "Kasse"."Zahlung" WHERE id = 20;
\c rp_svc
SELECT tableoid::regclass AS part, id FROM "Kasse"."Zahlung" WHERE id = 20;
\c splitdb_regression
SET client_min_messages = warning;
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
DROP FOREIGN TABLE "Kasse"."Zahlung";
DROP SCHEMA "Kasse";
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
DELETE FROM splitdb.job;
SELECT splitdb_drop_service('rp_svc');
DROP DATABASE rp_svc WITH (FORCE);
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
