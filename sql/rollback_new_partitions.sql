--
-- Partitions that a moved partitioned table gets in the sibling between the
-- cutover and splitdb_finalize() (an application's new range, a table
-- loaded apart and attached, a partition partitioned in turn): each gets
-- the capture of its parent in the command's transaction (four triggers,
-- the same log), the rows an attached table brings are logged as inserted,
-- (a T for a table without a key), and a foreign table is refused as such
-- a partition (0A000).  The rollback makes each one in the archived
-- original before its first replay (its bound, its partition key, the
-- parent's owner), replays the rows into it, and moves it out with the
-- rest: the source then has every partition and every row as the sibling
-- had them.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;
CREATE ROLE regress_np_owner;
CREATE TABLE "Buchung" (
	id    integer NOT NULL,
	tag   date    NOT NULL,
	art   text    NOT NULL,
	summe numeric(10,2) NOT NULL,
	PRIMARY KEY (id, tag)
) PARTITION BY RANGE (tag);
CREATE TABLE "Buchung 2026a" PARTITION OF "Buchung" FOR VALUES FROM ('2026-01-01') TO ('2026-07-01');
CREATE TABLE "Buchung 2026b" PARTITION OF "Buchung" FOR VALUES FROM ('2026-07-01') TO ('2027-01-01');
ALTER TABLE "Buchung" OWNER TO regress_np_owner;
ALTER TABLE "Buchung 2026a" OWNER TO regress_np_owner;
ALTER TABLE "Buchung 2026b" OWNER TO regress_np_owner;
CREATE INDEX ON "Buchung" (art);
INSERT INTO "Buchung" SELECT g, date '2026-01-01' + g, CASE WHEN g % 2 = 0 THEN 'x' ELSE 'y' END, g
  FROM generate_series(1, 300) g;
SELECT splitdb_add_service('np_svc');
-- and one without a key: offline mode moves it
CREATE TABLE "Protokoll" (am date NOT NULL, eintrag text) PARTITION BY RANGE (am);
CREATE TABLE "Protokoll 2026" PARTITION OF "Protokoll" FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO "Protokoll" VALUES ('2026-03-03', 'alt');
SELECT splitdb_assign('np_svc', '"Buchung"', '"Protokoll"');
SELECT splitdb_migrate('np_svc', mode => 'offline', wait => true) > 0 AS migrated;

\c np_svc
SET client_min_messages = warning;
-- a new range: captured from its first statement on
CREATE TABLE "Buchung 2027a" PARTITION OF "Buchung" FOR VALUES FROM ('2027-01-01') TO ('2027-07-01');
-- a table loaded apart, then attached with its rows
CREATE TABLE "Buchung 2027b" (LIKE "Buchung");
INSERT INTO "Buchung 2027b" SELECT g, date '2027-07-01' + (g - 1000), 'y', g FROM generate_series(1001, 1020) g;
ALTER TABLE "Buchung" ATTACH PARTITION "Buchung 2027b" FOR VALUES FROM ('2027-07-01') TO ('2028-01-01');
-- a partition partitioned in turn, and its partitions, in one transaction
-- (as a migration script makes them)
BEGIN;
CREATE TABLE "Buchung 2028" PARTITION OF "Buchung" FOR VALUES FROM ('2028-01-01') TO ('2029-01-01')
	PARTITION BY RANGE (tag);
CREATE TABLE "Buchung 2028 h1" PARTITION OF "Buchung 2028" FOR VALUES FROM ('2028-01-01') TO ('2028-07-01');
CREATE TABLE "Buchung 2028 rest" PARTITION OF "Buchung 2028" DEFAULT;
COMMIT;
-- a partition partitioned in turn and its partition, made by one call of a
-- function (as a partition manager makes them)
DO $$
BEGIN
	EXECUTE 'CREATE TABLE "Buchung 2030" PARTITION OF "Buchung" FOR VALUES FROM (''2030-01-01'') TO (''2031-01-01'') PARTITION BY RANGE (tag)';
	EXECUTE 'CREATE TABLE "Buchung 2030 h1" PARTITION OF "Buchung 2030" FOR VALUES FROM (''2030-01-01'') TO (''2030-07-01'')';
END
$$;
-- one in a schema of its own
CREATE SCHEMA "Teile";
CREATE TABLE "Teile"."Buchung 2029" PARTITION OF "Buchung" FOR VALUES FROM ('2029-01-01') TO ('2030-01-01');
SELECT tgrelid::regclass AS "table", count(*) AS capture_triggers, bool_and(tgenabled = 'A') AS always
  FROM pg_trigger WHERE tgname LIKE 'splitdb\_capture\_%' GROUP BY 1 ORDER BY 1;
SELECT relid::regclass AS "table", log FROM splitdb.capture ORDER BY 1;
-- the attached table's rows, logged as inserted
SELECT splitdb_op, count(*) FROM splitdb_capture.log_1_1 GROUP BY 1 ORDER BY 1;

-- the keyless table: an attached table's rows make its log say T
CREATE TABLE "Protokoll 2027" (LIKE "Protokoll");
INSERT INTO "Protokoll 2027" VALUES ('2027-02-02', 'neu');
ALTER TABLE "Protokoll" ATTACH PARTITION "Protokoll 2027" FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
SELECT splitdb_op, count(*) FROM splitdb_capture.log_1_2 GROUP BY 1 ORDER BY 1;

-- a foreign table is refused as such a partition (0A000), changing nothing
CREATE SERVER np_elsewhere FOREIGN DATA WRAPPER postgres_fdw;
\set VERBOSITY terse
CREATE FOREIGN TABLE "Protokoll 2030" PARTITION OF "Protokoll" FOR VALUES FROM ('2030-01-01') TO ('2031-01-01')
	SERVER np_elsewhere;
CREATE FOREIGN TABLE "Protokoll fremd" (am date NOT NULL, eintrag text) SERVER np_elsewhere;
ALTER TABLE "Protokoll" ATTACH PARTITION "Protokoll fremd" FOR VALUES FROM ('2031-01-01') TO ('2032-01-01');
-- or under a partitioned table attached
CREATE TABLE "Protokoll 2031" (am date NOT NULL, eintrag text) PARTITION BY RANGE (am);
ALTER TABLE "Protokoll 2031" ATTACH PARTITION "Protokoll fremd" FOR VALUES FROM ('2031-01-01') TO ('2031-07-01');
ALTER TABLE "Protokoll" ATTACH PARTITION "Protokoll 2031" FOR VALUES FROM ('2031-01-01') TO ('2032-01-01');
\set VERBOSITY default
SELECT count(*) AS partitions FROM pg_inherits WHERE inhparent = '"Protokoll"'::regclass;
DROP TABLE "Protokoll 2031";
DROP SERVER np_elsewhere;

-- writes: through the parent, straight into the new partitions, rows moved
-- between old and new ranges both ways
INSERT INTO "Buchung" SELECT g, date '2027-01-01' + (g - 2000), 'x', g FROM generate_series(2001, 2030) g;
INSERT INTO "Buchung 2027a" VALUES (2100, '2027-03-03', 'y', 1);
INSERT INTO "Buchung" VALUES (3001, '2028-02-01', 'x', 5), (3002, '2028-03-01', 'z', 6);
INSERT INTO "Buchung 2028 h1" VALUES (3003, '2028-04-01', 'x', 7);
INSERT INTO "Teile"."Buchung 2029" VALUES (4001, '2029-04-01', 'y', 8);
UPDATE "Buchung" SET tag = tag + 365 WHERE id IN (10, 20);
UPDATE "Buchung" SET tag = date '2026-05-05' WHERE id = 1005;
DELETE FROM "Buchung 2027a" WHERE id = 2005;
UPDATE "Buchung 2027b" SET summe = summe + 100 WHERE id = 1010;
UPDATE "Buchung 2028" SET art = 'z', tag = '2028-09-09' WHERE id = 3001;
INSERT INTO "Protokoll" VALUES ('2027-03-03', 'auch neu');
-- what the sibling holds, partition by partition
SELECT tableoid::regclass AS partition, count(*), sum(summe), sum(hashtext(t::text)) AS checksum
  FROM "Buchung" t GROUP BY 1 ORDER BY 1;
SELECT tableoid::regclass AS partition, * FROM "Protokoll" ORDER BY am;
\c splitdb_regression
SET client_min_messages = warning;

-- fails: the source has no schema "Teile" for the partition made there
-- (3F000); nothing is made in the archive
SELECT splitdb_rollback('np_svc');
-- the job is still done; the way out left is to finish the rollback
SELECT state, way_out FROM splitdb_status WHERE service = 'np_svc';
SELECT action, detail FROM splitdb_plan('np_svc') WHERE action = 'blocker';
SELECT count(*) AS archived_tables FROM pg_class
 WHERE relnamespace = 'splitdb_archive'::regnamespace AND relkind IN ('r', 'p');
CREATE SCHEMA "Teile";
ALTER SCHEMA "Teile" OWNER TO regress_np_owner;
SELECT splitdb_rollback('np_svc');
SELECT state, way_out FROM splitdb_status WHERE service = 'np_svc';
SELECT step, last_error FROM splitdb.rollback;
-- the source: every partition, under its name, with the sibling's rows
SELECT tableoid::regclass AS partition, count(*), sum(summe), sum(hashtext(t::text)) AS checksum
  FROM "Buchung" t GROUP BY 1 ORDER BY 1;
SELECT tableoid::regclass AS partition, * FROM "Protokoll" ORDER BY am;
SELECT c.oid::regclass AS "table", c.relkind, pg_get_expr(c.relpartbound, c.oid) AS bound,
	   pg_get_userbyid(c.relowner) AS owner
  FROM pg_class c
 WHERE c.relname LIKE 'Buchung%' AND c.relkind IN ('r', 'p') ORDER BY 1;
SELECT count(*) AS archived FROM pg_class WHERE relnamespace = 'splitdb_archive'::regnamespace;
-- new rows go to the new partitions, and the index is on them
INSERT INTO "Buchung" VALUES (5000, '2028-06-01', 'x', 1) RETURNING tableoid::regclass;
SELECT count(*) AS indexes FROM pg_index WHERE indrelid = '"Buchung 2028 h1"'::regclass;
SELECT * FROM splitdb_doctor();

-- clean up
SELECT splitdb_unassign('np_svc', '"Buchung"', '"Protokoll"');
DROP TABLE "Buchung", "Protokoll";
DELETE FROM splitdb.job;
DROP SCHEMA IF EXISTS splitdb_archive CASCADE;
SELECT splitdb_drop_service('np_svc');
DROP DATABASE np_svc WITH (FORCE);
DROP SCHEMA "Teile";
DROP ROLE regress_np_owner;
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
