--
-- Cross-service references whose keys are character(n) or bit(n).  The
-- looked-up value is cast to the type the key compares as, without a type
-- modifier; written "character" or "bit", that type means character(1) or
-- bit(1), which would truncate 'AAA' to 'A' (every key missing, and the
-- re-check of the local row then missing too, so nothing was refused) or
-- reject '1010'.  The type must be named bpchar and "bit".
-- - the referenced tables move (to crk_svc), the referencing one stays;
-- - a second referencing table moves (to crk_kid) and references a table
--   that stays;
-- - a third service (crk_late) takes the tables that stayed: its plan lists
--   the references of the earlier jobs, and they join two siblings;
-- - single and multi-row writes, on splitdb's connection and on
--   postgres_fdw's, deletes of referenced rows, and the orphans check.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

-- move to service crk_svc
CREATE TABLE "Flughäfen" ("Kürzel" character(3) PRIMARY KEY, name text);
CREATE TABLE "Maske" (bits bit(4) PRIMARY KEY);
-- stays
CREATE TABLE "Flüge" (
	id       integer PRIMARY KEY,
	"Von"    character(3) REFERENCES "Flughäfen",
	"Maske"  bit(4) REFERENCES "Maske"
);
-- stays, referenced by a table that moves to crk_kid
CREATE TABLE "Tarif" ("Klasse" character(2) PRIMARY KEY);
CREATE TABLE "Ticket" (id integer PRIMARY KEY, "Klasse" character(2) REFERENCES "Tarif");
INSERT INTO "Flughäfen" VALUES ('AAA', 'Aa'), ('BBB', 'Bb');
INSERT INTO "Maske" VALUES (B'1010'), (B'0001');
INSERT INTO "Tarif" VALUES ('Y'), ('CX');

SELECT splitdb_add_service('crk_svc');
SELECT splitdb_assign('crk_svc', '"Flughäfen"', '"Maske"');
SELECT splitdb_migrate('crk_svc', wait => true) > 0 AS migrated;
SELECT splitdb_add_service('crk_kid');
SELECT splitdb_assign('crk_kid', '"Ticket"');
SELECT splitdb_migrate('crk_kid', wait => true) > 0 AS migrated;
SELECT constraint_name, child_types, parent_types
  FROM splitdb.reference_placement ORDER BY 1;

-- present keys are found
INSERT INTO "Flüge" VALUES (1, 'AAA', B'1010');
INSERT INTO "Flüge" VALUES (2, 'BBB', B'0001'), (3, 'AAA', NULL), (4, 'BBB', B'1010');
INSERT INTO "Ticket" VALUES (1, 'CX'), (2, 'Y ');

-- missing keys are refused (23503), one row or several, on both connections
\set VERBOSITY sqlstate
INSERT INTO "Flüge" VALUES (10, 'ZZZ', NULL);
INSERT INTO "Flüge" VALUES (10, 'AZZ', NULL);
INSERT INTO "Flüge" VALUES (10, NULL, B'1000');
INSERT INTO "Flüge" VALUES (10, 'AAA', NULL), (11, 'ZZZ', NULL);
UPDATE "Flüge" SET "Von" = 'BZZ' WHERE id = 2;
INSERT INTO "Ticket" VALUES (10, 'CZ');
INSERT INTO "Ticket" VALUES (10, 'CX'), (11, 'C');
SET splitdb.check_connection = off;
INSERT INTO "Flüge" VALUES (10, 'ZZZ', NULL);
INSERT INTO "Flüge" VALUES (10, NULL, B'1000');
INSERT INTO "Ticket" VALUES (10, 'CZ');
RESET splitdb.check_connection;
\set VERBOSITY default
-- nothing of the refused statements was written
SELECT * FROM "Flüge" ORDER BY id;
SELECT * FROM "Ticket" ORDER BY id;

-- the referenced side: a key that is referenced stays, one that is not goes
\set VERBOSITY sqlstate
DELETE FROM "Flughäfen" WHERE "Kürzel" = 'AAA';
DELETE FROM "Maske" WHERE bits = B'0001';
DELETE FROM "Tarif" WHERE "Klasse" = 'CX';
\set VERBOSITY default
INSERT INTO "Flughäfen" VALUES ('CCC', 'Cc');
DELETE FROM "Flughäfen" WHERE "Kürzel" = 'CCC';
SELECT "Kürzel", name FROM "Flughäfen" ORDER BY 1;
SELECT * FROM "Tarif" ORDER BY 1;

-- the orphans check compares the same way: nothing is orphaned
SELECT * FROM splitdb_orphans('crk_svc');
SELECT * FROM splitdb_orphans('crk_kid');

-- a third service takes the tables that stayed: the plan lists the
-- references the earlier jobs made, whose end in the source it moves, and
-- after its cutover they join two siblings, still compared as bpchar and
-- "bit"
SELECT splitdb_add_service('crk_late');
SELECT splitdb_assign('crk_late', '"Flüge"', '"Tarif"');
SELECT step, action, object, detail FROM splitdb_plan('crk_late')
 WHERE action = 'convert_reference' ORDER BY step;
SELECT splitdb_migrate('crk_late', wait => true) > 0 AS migrated;
SELECT constraint_name, child_service, parent_service, child_types
  FROM splitdb.reference_placement ORDER BY 1;
\set VERBOSITY sqlstate
INSERT INTO "Flüge" VALUES (10, 'ZZZ', NULL);
INSERT INTO "Flüge" VALUES (10, NULL, B'1000');
INSERT INTO "Ticket" VALUES (10, 'CZ');
DELETE FROM "Flughäfen" WHERE "Kürzel" = 'BBB';
DELETE FROM "Tarif" WHERE "Klasse" = 'CX';
\set VERBOSITY default
INSERT INTO "Flüge" VALUES (10, 'BBB', B'0001');
INSERT INTO "Ticket" VALUES (10, 'Y');
SELECT * FROM "Flüge" ORDER BY id;
SELECT * FROM "Ticket" ORDER BY id;
SELECT * FROM splitdb_orphans('crk_late');

-- clean up
DROP FOREIGN TABLE "Flughäfen", "Maske", "Ticket", "Flüge", "Tarif";
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
DELETE FROM splitdb.job;
SELECT splitdb_drop_service('crk_svc');
SELECT splitdb_drop_service('crk_kid');
SELECT splitdb_drop_service('crk_late');
DROP DATABASE crk_svc WITH (FORCE);
DROP DATABASE crk_kid WITH (FORCE);
DROP DATABASE crk_late WITH (FORCE);
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
