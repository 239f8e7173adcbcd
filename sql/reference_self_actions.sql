--
-- Rows that a moved table's foreign key on itself changes in turn, when a
-- write through its shim reaches them.  The sibling skips the checks of
-- the rows that the shim's statement wrote (the source checked them), and
-- hands every other row's keys back to the source.  The action of a
-- foreign key of a table on itself (ON DELETE CASCADE to the rows below a
-- deleted one, ON UPDATE CASCADE to their copies of its key) runs after the
-- statement, and PostgreSQL fires its rows' triggers on that statement's
-- list: they were taken for the shim's own rows, and nothing checked them.
-- A delete through the shim left rows of the monolith pointing at the rows
-- below the deleted one, and their own ON DELETE actions did not run.  Now
-- only the rows that the statement wrote itself (its command id) are its
-- own:
-- - a cascade to a row that a kept table references (NO ACTION): 23503,
--   nothing deleted; through a chain of three; in a subtransaction, rolled
--   back and the transaction going on;
-- - a cascade to a row with ON DELETE CASCADE and SET NULL references
--   there: their actions run in the monolith;
-- - accepted once the transaction deleted the referencing row first;
-- - ON UPDATE CASCADE of a composite key (a tenant's key moved to another
--   tenant) that changes the keys of the rows below: refused, as the key
--   the monolith references goes;
-- - the shim's own rows still checked once, by the source.
-- Names with spaces, mixed case, quotes and non-ASCII letters.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

CREATE SCHEMA "Self Réf";
SET search_path = "Self Réf", public;
CREATE TABLE "Staff" (id integer PRIMARY KEY,
                      "Boss" integer CONSTRAINT "staff's boss" REFERENCES "Staff" ON DELETE CASCADE);
CREATE TABLE "Team" (org text, id integer, boss integer,
                     PRIMARY KEY (org, id),
                     FOREIGN KEY (org, boss) REFERENCES "Team" ON UPDATE CASCADE);
-- kept in the monolith
CREATE TABLE "Orders" (id integer PRIMARY KEY,
                       staff_id integer CONSTRAINT "orders' staff" REFERENCES "Staff");
CREATE TABLE "Badge" (id integer PRIMARY KEY,
                      staff_id integer REFERENCES "Staff" ON DELETE CASCADE);
CREATE TABLE "Desk" (id integer PRIMARY KEY,
                     staff_id integer REFERENCES "Staff" ON DELETE SET NULL);
CREATE TABLE "Shift" (id integer PRIMARY KEY, org text, team_id integer,
                      FOREIGN KEY (org, team_id) REFERENCES "Team");
-- 1 > 2; 3 > 4; 5 > 6 > 7; 8 > 9
INSERT INTO "Staff" VALUES (1, NULL), (2, 1), (3, NULL), (4, 3),
	(5, NULL), (6, 5), (7, 6), (8, NULL), (9, 8);
INSERT INTO "Orders" VALUES (10, 2), (11, 7), (12, 9);
INSERT INTO "Badge" VALUES (20, 4);
INSERT INTO "Desk" VALUES (30, 4), (31, 1);
INSERT INTO "Team" VALUES ('a', 1, NULL), ('a', 2, 1), ('c', 1, NULL), ('c', 2, 1);
INSERT INTO "Shift" VALUES (40, 'a', 2), (41, 'c', 1);

SELECT splitdb_add_service('self réf "svc"');
SELECT splitdb_assign('self réf "svc"', '"Self Réf"."Staff"', '"Self Réf"."Team"');
SELECT splitdb_migrate('self réf "svc"', wait => true) > 0 AS migrated;
SELECT child_table, parent_table, on_delete, on_update FROM splitdb_references ORDER BY 1, 2;

\set VERBOSITY terse
-- the cascade reaches 2, which order 10 references
DELETE FROM "Staff" WHERE id = 1;
-- through a chain: 5 > 6 > 7, which order 11 references
DELETE FROM "Staff" WHERE id = 5;
-- in a subtransaction, and the transaction goes on
BEGIN;
SAVEPOINT s;
DELETE FROM "Staff" WHERE id = 8;
ROLLBACK TO SAVEPOINT s;
DELETE FROM "Orders" WHERE id = 12;
DELETE FROM "Staff" WHERE id = 8;
COMMIT;
-- the cascade reaches 4: badge 20 deleted, desk 30 without its staff
DELETE FROM "Staff" WHERE id = 3;
-- the shim's own row: 7 is referenced by order 11
DELETE FROM "Staff" WHERE id = 7;
-- tenant a's root moves to b: the cascade moves (a, 2), which shift 40 references
UPDATE "Team" SET org = 'b' WHERE org = 'a' AND id = 1;
-- tenant c's root moves to d: (c, 1) itself is referenced by shift 41
UPDATE "Team" SET org = 'd' WHERE org = 'c' AND id = 1;
-- accepted once the shifts are gone
BEGIN;
DELETE FROM "Shift";
UPDATE "Team" SET org = 'b' WHERE org = 'a' AND id = 1;
COMMIT;
\set VERBOSITY default
SELECT id, "Boss" FROM "Staff" ORDER BY id;
SELECT id, staff_id FROM "Orders" ORDER BY id;
SELECT id, staff_id FROM "Badge" ORDER BY id;
SELECT id, staff_id FROM "Desk" ORDER BY id;
SELECT org, id, boss FROM "Team" ORDER BY org, id;
SELECT count(*) AS orphans FROM splitdb_orphans('self réf "svc"');

-- clean up
RESET search_path;
DROP FOREIGN TABLE "Self Réf"."Staff", "Self Réf"."Team";
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
DROP SCHEMA "Self Réf" CASCADE;
SELECT splitdb_drop_service('self réf "svc"');
DROP DATABASE "self réf ""svc""" WITH (FORCE);
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
