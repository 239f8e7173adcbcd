--
-- A MERGE into a captured partitioned table (src/migrate/capturemerge.c):
-- PostgreSQL 15 leaves the rows that a MERGE's UPDATE action moves to
-- another partition out of its transition tables (the UPDATE trigger sees
-- neither image, the INSERT trigger, when the MERGE has an INSERT action,
-- the new one alone), so the capture logs a T for such a MERGE, through
-- the root and through a partitioned partition, with the direct writer and
-- through SPI, from a function too: the replay then replaces the table.
-- A MERGE into a leaf, into a table that is not partitioned, or a plain
-- UPDATE that moves a row logs its keys as before; so does an UPDATE after
-- a MERGE that failed in a subtransaction.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

CREATE TABLE "Bewegung" (
	id     integer NOT NULL,
	region text    NOT NULL,
	bucket integer NOT NULL,
	val    integer NOT NULL,
	PRIMARY KEY (id, region, bucket)
) PARTITION BY LIST (region);
CREATE TABLE "Bewegung nord" PARTITION OF "Bewegung" FOR VALUES IN ('nord');
CREATE TABLE "Bewegung süd" PARTITION OF "Bewegung" FOR VALUES IN ('süd') PARTITION BY RANGE (bucket);
CREATE TABLE "Bewegung süd klein" PARTITION OF "Bewegung süd" FOR VALUES FROM (0) TO (50);
CREATE TABLE "Bewegung süd rest" PARTITION OF "Bewegung süd" DEFAULT;
CREATE TABLE merge_plain (id integer PRIMARY KEY, v integer NOT NULL);
INSERT INTO "Bewegung" VALUES (1, 'nord', 10, 1), (2, 'süd', 20, 2), (3, 'süd', 70, 3), (4, 'nord', 40, 4);
INSERT INTO merge_plain VALUES (1, 1), (2, 2);
SELECT splitdb.install_capture(31, '{"public.\"Bewegung\"",public.merge_plain}');
SELECT relid, log FROM splitdb.capture ORDER BY relid::text;

-- what the log of the tree holds, then emptied
CREATE FUNCTION merge_log() RETURNS TABLE (op text, id integer, region text, bucket integer)
LANGUAGE sql AS $$
	SELECT splitdb_op::text, id, region, bucket FROM splitdb_capture.log_31_1 ORDER BY splitdb_id
$$;

-- through the root, a matched row moved to another partition and nothing
-- else: without the T no entry at all
MERGE INTO "Bewegung" t USING (VALUES (1)) s(id) ON t.id = s.id
	WHEN MATCHED THEN UPDATE SET region = 'süd';
SELECT * FROM merge_log();
TRUNCATE splitdb_capture.log_31_1;

-- through the partitioned partition, a row moved from the range to the
-- default partition and one inserted: without the T the moved row's old
-- key would be missing
MERGE INTO "Bewegung süd" t USING (VALUES (2), (9)) s(id) ON t.id = s.id
	WHEN MATCHED THEN UPDATE SET bucket = 60
	WHEN NOT MATCHED THEN INSERT VALUES (s.id, 'süd', 5, 0);
SELECT * FROM merge_log();
TRUNCATE splitdb_capture.log_31_1;

-- the same through SPI
SET splitdb.capture_direct = off;
MERGE INTO "Bewegung" t USING (VALUES (4)) s(id) ON t.id = s.id
	WHEN MATCHED THEN UPDATE SET region = 'süd', bucket = 45;
SELECT * FROM merge_log();
TRUNCATE splitdb_capture.log_31_1;
RESET splitdb.capture_direct;

-- from a function
CREATE FUNCTION merge_move(k integer) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	MERGE INTO "Bewegung" t USING (VALUES (k)) s(id) ON t.id = s.id
		WHEN MATCHED THEN UPDATE SET region = 'nord';
END
$$;
SELECT merge_move(3);
SELECT * FROM merge_log();
TRUNCATE splitdb_capture.log_31_1;

-- into a leaf (no row can move), into a table that is not partitioned, a
-- plain UPDATE that moves a row: their keys
MERGE INTO "Bewegung nord" t USING (VALUES (3)) s(id) ON t.id = s.id
	WHEN MATCHED THEN UPDATE SET val = 30;
UPDATE "Bewegung" SET region = 'süd' WHERE id = 3;
SELECT * FROM merge_log();
TRUNCATE splitdb_capture.log_31_1;
MERGE INTO merge_plain t USING (VALUES (1), (2), (5)) s(id) ON t.id = s.id
	WHEN MATCHED AND s.id = 1 THEN UPDATE SET id = 11
	WHEN MATCHED THEN DELETE
	WHEN NOT MATCHED THEN INSERT VALUES (s.id, 0);
SELECT splitdb_op, id FROM splitdb_capture.log_31_2 ORDER BY splitdb_id;

-- a MERGE that fails in a subtransaction: the UPDATE after it in the same
-- transaction logs its keys, the MERGE nothing
BEGIN;
SAVEPOINT s;
MERGE INTO "Bewegung" t USING (VALUES (3)) s(id) ON t.id = s.id
	WHEN MATCHED THEN UPDATE SET val = 1 / 0;
ROLLBACK TO SAVEPOINT s;
UPDATE "Bewegung" SET val = 7 WHERE id = 3;
COMMIT;
SELECT * FROM merge_log();

-- the rows, where they are now
SELECT tableoid::regclass AS partition, * FROM "Bewegung" ORDER BY id;

-- clean up
DROP FUNCTION merge_move(integer), merge_log();
SELECT splitdb.drop_capture(31);
DROP TABLE "Bewegung", merge_plain;
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
