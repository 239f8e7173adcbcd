--
-- An UPDATE that moves a row of a referenced partitioned table to another
-- partition.
--
-- PostgreSQL runs it as a DELETE from the old partition and an INSERT into
-- the new one, and fires a row trigger's DELETE there; only a foreign
-- key's own triggers see it as the UPDATE it is.  The end of a
-- cross-service reference took it for a delete, and applied the ON DELETE
-- action: the referencing rows in the other database were deleted (ON
-- DELETE CASCADE) or set to NULL (ON DELETE SET NULL) where PostgreSQL
-- refuses the UPDATE (ON UPDATE NO ACTION) or carries the new key over (ON
-- UPDATE CASCADE).  Now such a row is checked as ON UPDATE NO ACTION (or
-- RESTRICT) would check it: refused (23503) while a row refers to its old
-- key, whatever the reference's actions, and moved when none does.  The
-- new key is not known to the trigger, so an ON UPDATE CASCADE is not
-- applied across databases: the UPDATE is refused instead.
-- Names with spaces, mixed case and non-ASCII letters.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

CREATE SCHEMA "Teil Sché";
CREATE TABLE "Teil Sché"."Ort" ("Region" text, id integer, PRIMARY KEY ("Region", id))
	PARTITION BY LIST ("Region");
CREATE TABLE "Teil Sché"."Ort a" PARTITION OF "Teil Sché"."Ort" FOR VALUES IN ('a');
CREATE TABLE "Teil Sché"."Ort b" PARTITION OF "Teil Sché"."Ort" FOR VALUES IN ('b');
INSERT INTO "Teil Sché"."Ort" VALUES ('a', 1), ('a', 2), ('a', 3), ('a', 4), ('a', 5);
-- ON DELETE CASCADE, ON UPDATE NO ACTION
CREATE TABLE "Teil Sché"."Kaskade" (id integer PRIMARY KEY, "Region" text, ort_id integer,
	CONSTRAINT "kaskade's ort" FOREIGN KEY ("Region", ort_id)
		REFERENCES "Teil Sché"."Ort" ON DELETE CASCADE);
-- ON DELETE SET NULL, ON UPDATE CASCADE
CREATE TABLE "Teil Sché"."Null" (id integer PRIMARY KEY, "Region" text, ort_id integer,
	CONSTRAINT "null's ort" FOREIGN KEY ("Region", ort_id)
		REFERENCES "Teil Sché"."Ort" ON DELETE SET NULL ON UPDATE CASCADE);
-- ON DELETE CASCADE, ON UPDATE RESTRICT
CREATE TABLE "Teil Sché"."Streng" (id integer PRIMARY KEY, "Region" text, ort_id integer,
	CONSTRAINT "streng's ort" FOREIGN KEY ("Region", ort_id)
		REFERENCES "Teil Sché"."Ort" ON DELETE CASCADE ON UPDATE RESTRICT);
INSERT INTO "Teil Sché"."Kaskade" VALUES (1, 'a', 1);
INSERT INTO "Teil Sché"."Null" VALUES (1, 'a', 2);
INSERT INTO "Teil Sché"."Streng" VALUES (1, 'a', 3);

SELECT splitdb_add_service('teil_svc');
SELECT splitdb_assign('teil_svc', '"Teil Sché"."Kaskade"', '"Teil Sché"."Null"',
					  '"Teil Sché"."Streng"');
SELECT splitdb_migrate('teil_svc', mode => 'offline', wait => true) > 0 AS migrated;

\set VERBOSITY terse
-- referenced rows moved: refused, as PostgreSQL refuses the first and the
-- third; nothing deleted or set to NULL in the sibling
UPDATE "Teil Sché"."Ort" SET "Region" = 'b' WHERE id = 1;
UPDATE "Teil Sché"."Ort" SET "Region" = 'b' WHERE id = 2;
UPDATE "Teil Sché"."Ort" SET "Region" = 'b' WHERE id = 3;
UPDATE "Teil Sché"."Ort" SET "Region" = 'b' WHERE id IN (3, 4);
-- a row no one refers to moves
UPDATE "Teil Sché"."Ort" SET "Region" = 'b' WHERE id = 4;
-- moved and moved back in one transaction: the old key is there again
BEGIN;
UPDATE "Teil Sché"."Ort" SET "Region" = 'b' WHERE id = 5;
UPDATE "Teil Sché"."Ort" SET "Region" = 'a' WHERE id = 5;
COMMIT;
-- a delete still takes the ON DELETE action
DELETE FROM "Teil Sché"."Ort" WHERE id = 1;
\set VERBOSITY default

SELECT tableoid::regclass AS partition, * FROM "Teil Sché"."Ort" ORDER BY id;
\c teil_svc
SELECT 'Kaskade' AS tbl, * FROM "Teil Sché"."Kaskade"
UNION ALL SELECT 'Null', * FROM "Teil Sché"."Null"
UNION ALL SELECT 'Streng', * FROM "Teil Sché"."Streng"
 ORDER BY 1, 2;
\c splitdb_regression
SET client_min_messages = warning;
SELECT * FROM splitdb_orphans('teil_svc');

-- clean up
DROP FOREIGN TABLE "Teil Sché"."Kaskade", "Teil Sché"."Null", "Teil Sché"."Streng" CASCADE;
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
DROP SCHEMA "Teil Sché" CASCADE;
SELECT splitdb_drop_service('teil_svc');
DROP DATABASE teil_svc WITH (FORCE);
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
