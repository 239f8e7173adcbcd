--
-- The keys a referential action leaves in the referencing rows of another
-- database are checked, as PostgreSQL checks them.
--
-- PostgreSQL's ON UPDATE CASCADE and SET NULL write the referencing rows
-- like any UPDATE, and its check of the referencing row then runs on what
-- they hold: a column of another scale rounds the new key (numeric(4,1)
-- takes 1.25 as 1.3), and a BEFORE UPDATE trigger of the referencing table
-- may change the key again.  When such a key is missing from the
-- referenced table, the statement fails (23503).  Across databases the
-- referencing end skips the rows that the other end's action writes, and
-- only SET DEFAULT's keys were checked: both statements below succeeded
-- and left orphans.  Now the action returns every referencing row's new
-- key and the referenced end looks up those it did not give.
-- Names with spaces, mixed case and non-ASCII letters.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

CREATE SCHEMA "Akt Sché";
CREATE TABLE "Akt Sché"."Preis" ("Betrag" numeric PRIMARY KEY);
INSERT INTO "Akt Sché"."Preis" VALUES (1), (2), (3.5), (7);
-- a referencing column of another scale
CREATE TABLE "Akt Sché"."Posten" (id integer PRIMARY KEY, "Betrag" numeric(4,1)
	CONSTRAINT "posten's preis" REFERENCES "Akt Sché"."Preis" ON UPDATE CASCADE);
-- a referencing column of another type
CREATE TABLE "Akt Sché"."Ganz" (id integer PRIMARY KEY, "Betrag" integer
	CONSTRAINT "ganz's preis" REFERENCES "Akt Sché"."Preis" ON UPDATE CASCADE);
INSERT INTO "Akt Sché"."Posten" VALUES (1, 1), (2, 2), (3, 3.5);
INSERT INTO "Akt Sché"."Ganz" VALUES (1, 7);

CREATE TABLE "Akt Sché"."Kunde" (id integer PRIMARY KEY);
INSERT INTO "Akt Sché"."Kunde" VALUES (1), (2), (3), (999);
-- a BEFORE UPDATE trigger that fills in a NULL key
CREATE TABLE "Akt Sché"."Auftrag" (id integer PRIMARY KEY, kunde_id integer
	CONSTRAINT "auftrag's kunde" REFERENCES "Akt Sché"."Kunde" ON DELETE SET NULL);
CREATE FUNCTION "Akt Sché"."Füllen"() RETURNS trigger LANGUAGE plpgsql AS
$$BEGIN NEW.kunde_id := coalesce(NEW.kunde_id, 999); RETURN NEW; END$$;
CREATE TRIGGER "Füllen" BEFORE UPDATE ON "Akt Sché"."Auftrag"
	FOR EACH ROW EXECUTE FUNCTION "Akt Sché"."Füllen"();
INSERT INTO "Akt Sché"."Auftrag" VALUES (1, 1), (2, 2);

SELECT splitdb_add_service('akt_svc');
SELECT splitdb_assign('akt_svc', '"Akt Sché"."Posten"', '"Akt Sché"."Ganz"',
					  '"Akt Sché"."Auftrag"');
SELECT splitdb_migrate('akt_svc', mode => 'offline', wait => true) > 0 AS migrated;

\set VERBOSITY default
-- the cascade rounds 1.25 to 1.3, which "Preis" lacks: refused
UPDATE "Akt Sché"."Preis" SET "Betrag" = 1.25 WHERE "Betrag" = 1;
-- to 1.3 it needs no rounding, but 1.3 is the new key itself: accepted
UPDATE "Akt Sché"."Preis" SET "Betrag" = 1.3 WHERE "Betrag" = 1;
-- an integer column: 7.4 rounds to 7, which is gone by then: refused
UPDATE "Akt Sché"."Preis" SET "Betrag" = 7.4 WHERE "Betrag" = 7;
-- 8.0 is 8 there: accepted
UPDATE "Akt Sché"."Preis" SET "Betrag" = 8.0 WHERE "Betrag" = 7;
-- several keys in one statement, each followed
UPDATE "Akt Sché"."Preis" SET "Betrag" = "Betrag" * 10 WHERE "Betrag" IN (2, 3.5);
-- the trigger turns SET NULL into 999, which is there: accepted
DELETE FROM "Akt Sché"."Kunde" WHERE id = 1;
-- and once 999 is gone too (SET NULL again gives 999): refused
DELETE FROM "Akt Sché"."Kunde" WHERE id IN (2, 999);
\set VERBOSITY terse

SELECT * FROM "Akt Sché"."Preis" ORDER BY 1;
SELECT * FROM "Akt Sché"."Kunde" ORDER BY 1;
\c akt_svc
SELECT 'Posten' AS tbl, id, "Betrag"::text AS key FROM "Akt Sché"."Posten"
UNION ALL SELECT 'Ganz', id, "Betrag"::text FROM "Akt Sché"."Ganz"
UNION ALL SELECT 'Auftrag', id, kunde_id::text FROM "Akt Sché"."Auftrag"
 ORDER BY 1, 2;
\c splitdb_regression
SET client_min_messages = warning;
SELECT * FROM splitdb_orphans('akt_svc');

-- clean up
DROP FOREIGN TABLE "Akt Sché"."Posten", "Akt Sché"."Ganz", "Akt Sché"."Auftrag" CASCADE;
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
DROP SCHEMA "Akt Sché" CASCADE;
SELECT splitdb_drop_service('akt_svc');
DROP DATABASE akt_svc WITH (FORCE);
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
