--
-- splitdb_rollback() drops the sibling's tables once the source has them
-- back.  Objects made in the sibling since that depend on them, which
-- DROP TABLE without CASCADE refuses to drop, make the rollback refuse
-- first (55000), naming up to three of them, having changed nothing: a
-- view, a foreign key of a table the service added, a column of a table's
-- row type, a default that takes its values from a sequence one of the
-- tables owns.  Once they are dropped, the rollback completes; what the
-- tables' own constraints, rules, triggers and defaults need is no matter.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;
CREATE TABLE "Lager Ort" (id serial PRIMARY KEY, name text NOT NULL);
CREATE TABLE "Lager Bestand" (id integer PRIMARY KEY, ort integer NOT NULL REFERENCES "Lager Ort",
	menge integer NOT NULL CHECK (menge >= 0));
CREATE VIEW "Lager Übersicht" AS SELECT o.name, sum(b.menge) AS menge
  FROM "Lager Ort" o JOIN "Lager Bestand" b ON b.ort = o.id GROUP BY o.name;
INSERT INTO "Lager Ort" (name) SELECT 'ort ' || g FROM generate_series(1, 5) g;
INSERT INTO "Lager Bestand" SELECT g, 1 + g % 5, g FROM generate_series(1, 20) g;
SELECT splitdb_add_service('lager');
SELECT splitdb_assign('lager', '"Lager Ort"', '"Lager Bestand"');
SELECT splitdb_migrate('lager', mode => 'offline', wait => true) > 0 AS migrated;

-- what the service makes in its own database since the cutover
\c lager
CREATE VIEW "Lager leer" AS SELECT id FROM "Lager Bestand" WHERE menge = 0;
CREATE TABLE "Lager Notiz" (id integer PRIMARY KEY, ort integer REFERENCES "Lager Ort", text text);
CREATE TABLE "Lager Archiv" (eintrag "Lager Bestand", nummer integer DEFAULT nextval('"Lager Ort_id_seq"'));
INSERT INTO "Lager Notiz" VALUES (1, 2, 'neu');
INSERT INTO "Lager Bestand" VALUES (21, 3, 0);
\c splitdb_regression
SET client_min_messages = warning;

-- fails: 55000, naming three of the four (in name order)
SELECT splitdb_rollback('lager');
\set VERBOSITY terse
-- nothing changed: the job done, the shims in place, no rollback begun
SELECT state FROM splitdb_status WHERE service = 'lager';
SELECT c.relname, c.relkind, n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relname IN ('Lager Ort', 'Lager Bestand') ORDER BY 1, 3;
SELECT count(*) AS rollbacks FROM splitdb.rollback;
SELECT count(*) AS through_the_shim FROM "Lager Bestand";
\set VERBOSITY default

-- with three of them gone, the fourth is named alone
\c lager
DROP VIEW "Lager leer";
DROP TABLE "Lager Archiv";
ALTER TABLE "Lager Notiz" DROP CONSTRAINT "Lager Notiz_ort_fkey";
CREATE VIEW "Lager voll" AS SELECT id FROM "Lager Bestand" WHERE menge > 10;
\c splitdb_regression
SET client_min_messages = warning;
SELECT splitdb_rollback('lager');

-- with none left, the rollback completes: every row back, the sibling's
-- moved tables gone, the service's own table there kept
\c lager
DROP VIEW "Lager voll";
\c splitdb_regression
SET client_min_messages = warning;
SELECT splitdb_rollback('lager');
SELECT state FROM splitdb_status WHERE service = 'lager';
SELECT step, last_error FROM splitdb.rollback;
SELECT count(*) AS bestand, sum(menge) AS menge FROM "Lager Bestand";
SELECT * FROM "Lager Übersicht" ORDER BY name;
\c lager
SELECT to_regclass('"Lager Bestand"') AS moved, to_regclass('"Lager Notiz"') AS own;
\c splitdb_regression

-- clean up
SET client_min_messages = warning;
DROP VIEW "Lager Übersicht";
DROP TABLE "Lager Bestand", "Lager Ort";
DELETE FROM splitdb.job;
SELECT splitdb_drop_service('lager');
DROP DATABASE lager WITH (FORCE);
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
