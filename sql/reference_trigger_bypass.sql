--
-- Ways around the guards of splitdb's triggers, for a role that is no
-- superuser.
--
-- CREATE OR REPLACE TRIGGER with the name of one of splitdb's triggers, by
-- the owner (no superuser) of the table it is on.  PostgreSQL lets a
-- table's owner replace any trigger on it but a constraint trigger, an
-- internal one and a partition's copy, so the owner put a function of its
-- own in place of a reference's check and wrote rows whose keys the other
-- database lacks, or in place of a sibling's capture, which a rollback
-- replays.  Now refused (42501), as DROP TRIGGER and DISABLE TRIGGER are:
-- - the referencing end's AFTER and BEFORE triggers, and its statement
--   trigger, on a table and on a partitioned table: refused, the triggers
--   unchanged, and the rows they check still refused (23503);
-- - a trigger of the owner's own: replaced, as without splitdb;
-- - in the sibling, the capture trigger of a moved table: refused.
--
-- CREATE SCHEMA ... CREATE TABLE ... CREATE TRIGGER fires no CREATE
-- TRIGGER, so a trigger on splitdb.reference_row(), which PUBLIC may
-- execute for the copies on new partitions, was made all the same: now
-- refused (42501), nothing created; one on a function of the role's own is
-- made.
-- Names with spaces, mixed case and non-ASCII letters.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;
CREATE ROLE "regress Replace Owner" LOGIN;

CREATE SCHEMA "Rep Sché";
GRANT USAGE, CREATE ON SCHEMA "Rep Sché" TO "regress Replace Owner";
CREATE TABLE "Rep Sché"."Kunde" (id integer PRIMARY KEY);
GRANT REFERENCES, SELECT ON "Rep Sché"."Kunde" TO "regress Replace Owner";
INSERT INTO "Rep Sché"."Kunde" VALUES (1);
SET ROLE "regress Replace Owner";
CREATE TABLE "Rep Sché"."Bestellung" (id integer PRIMARY KEY, kunde_id integer
	CONSTRAINT "bestellung's kunde" REFERENCES "Rep Sché"."Kunde");
CREATE TABLE "Rep Sché"."Posten" (id integer NOT NULL, kunde_id integer
	CONSTRAINT "posten's kunde" REFERENCES "Rep Sché"."Kunde") PARTITION BY RANGE (id);
CREATE TABLE "Rep Sché"."Posten 1" PARTITION OF "Rep Sché"."Posten" FOR VALUES FROM (0) TO (100);
CREATE TABLE "Rep Sché"."Notiz" (id integer PRIMARY KEY, body text);
CREATE FUNCTION "Rep Sché"."Nichts"() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$;
CREATE TRIGGER "Mein Trigger" AFTER INSERT ON "Rep Sché"."Bestellung"
	FOR EACH ROW EXECUTE FUNCTION "Rep Sché"."Nichts"();
RESET ROLE;

SELECT splitdb_add_service('replace_svc');
CREATE USER MAPPING FOR "regress Replace Owner" SERVER splitdb_replace_svc
	OPTIONS (user 'regress Replace Owner', password_required 'false');
SELECT splitdb_assign('replace_svc', '"Rep Sché"."Kunde"', '"Rep Sché"."Notiz"');
SELECT splitdb_migrate('replace_svc', mode => 'offline', wait => true) > 0 AS migrated;
SELECT child_table, parent_table FROM splitdb_references ORDER BY 1;
SELECT format('splitdb_ref_%s_c', reference_id) AS b_c,
	   format('splitdb_ref_%s_ahead', reference_id) AS b_ahead
  FROM splitdb.reference WHERE constraint_name = 'bestellung''s kunde' \gset
SELECT format('splitdb_ref_%s_c', reference_id) AS p_c
  FROM splitdb.reference WHERE constraint_name = 'posten''s kunde' \gset

SET ROLE "regress Replace Owner";
-- the check of the table's rows
CREATE OR REPLACE TRIGGER :"b_c" AFTER INSERT OR UPDATE ON "Rep Sché"."Bestellung"
	FOR EACH ROW EXECUTE FUNCTION "Rep Sché"."Nichts"();
\set VERBOSITY terse
-- its lookup sent ahead, and its statement trigger
CREATE OR REPLACE TRIGGER :"b_ahead" BEFORE INSERT OR UPDATE ON "Rep Sché"."Bestellung"
	FOR EACH ROW EXECUTE FUNCTION "Rep Sché"."Nichts"();
CREATE OR REPLACE TRIGGER splitdb_reference_flush AFTER INSERT ON "Rep Sché"."Bestellung"
	FOR EACH STATEMENT EXECUTE FUNCTION "Rep Sché"."Nichts"();
-- on the partitioned table, whose partitions have copies
CREATE OR REPLACE TRIGGER :"p_c" AFTER INSERT OR UPDATE ON "Rep Sché"."Posten"
	FOR EACH ROW EXECUTE FUNCTION "Rep Sché"."Nichts"();
-- in a transaction block with a write after it: nothing replaced
BEGIN;
CREATE OR REPLACE TRIGGER :"b_c" AFTER INSERT OR UPDATE ON "Rep Sché"."Bestellung"
	FOR EACH ROW EXECUTE FUNCTION "Rep Sché"."Nichts"();
INSERT INTO "Rep Sché"."Bestellung" VALUES (1, 9);
COMMIT;
-- the rows are still checked
INSERT INTO "Rep Sché"."Bestellung" VALUES (2, 9);
INSERT INTO "Rep Sché"."Posten" VALUES (3, 9);
-- a trigger of the owner's own is replaced
CREATE OR REPLACE TRIGGER "Mein Trigger" AFTER INSERT OR UPDATE ON "Rep Sché"."Bestellung"
	FOR EACH ROW EXECUTE FUNCTION "Rep Sché"."Nichts"();
\set VERBOSITY default
RESET ROLE;
SELECT tgrelid::regclass AS rel, regexp_replace(tgname, '[0-9]+', 'N') AS trigger,
	   tgfoid::regproc AS function, tgtype
  FROM pg_trigger
 WHERE tgrelid IN ('"Rep Sché"."Bestellung"'::regclass, '"Rep Sché"."Posten"'::regclass,
				   '"Rep Sché"."Posten 1"'::regclass) AND NOT tgisinternal
 ORDER BY 1, 2;
SELECT count(*) AS rows FROM "Rep Sché"."Bestellung";
SELECT count(*) AS rows FROM "Rep Sché"."Posten";

-- a trigger on splitdb's function among the elements of CREATE SCHEMA
GRANT CREATE ON DATABASE splitdb_regression TO "regress Replace Owner";
SET ROLE "regress Replace Owner";
CREATE SCHEMA "Eigenes Schéma"
	CREATE TABLE "Posten 9" (id integer NOT NULL, kunde_id integer)
	CREATE TRIGGER "Von Hand" AFTER INSERT ON "Posten 9"
		FOR EACH ROW EXECUTE FUNCTION splitdb.reference_row('1', 'c');
SELECT count(*) AS schemas FROM pg_namespace WHERE nspname = 'Eigenes Schéma';
CREATE SCHEMA "Eigenes Schéma"
	CREATE TABLE "Posten 9" (id integer NOT NULL, kunde_id integer)
	CREATE TRIGGER "Von Hand" AFTER INSERT ON "Posten 9"
		FOR EACH ROW EXECUTE FUNCTION "Rep Sché"."Nichts"();
SELECT tgname, tgfoid::regproc AS function FROM pg_trigger
 WHERE tgrelid = '"Eigenes Schéma"."Posten 9"'::regclass;
DROP SCHEMA "Eigenes Schéma" CASCADE;
RESET ROLE;
REVOKE CREATE ON DATABASE splitdb_regression FROM "regress Replace Owner";

-- in the sibling, the capture of the moved table that the role owns
\c replace_svc
SET client_min_messages = warning;
SET ROLE "regress Replace Owner";
CREATE OR REPLACE TRIGGER splitdb_capture_insert BEFORE INSERT ON "Rep Sché"."Notiz"
	FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger();
RESET ROLE;
SELECT tgname, tgfoid::regproc AS function, tgenabled
  FROM pg_trigger WHERE tgrelid = '"Rep Sché"."Notiz"'::regclass AND NOT tgisinternal
 ORDER BY 1;
\c splitdb_regression
SET client_min_messages = warning;

-- clean up
DROP FOREIGN TABLE "Rep Sché"."Kunde", "Rep Sché"."Notiz" CASCADE;
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
DROP SCHEMA "Rep Sché" CASCADE;
DROP USER MAPPING FOR "regress Replace Owner" SERVER splitdb_replace_svc;
SELECT splitdb_drop_service('replace_svc');
DROP DATABASE replace_svc WITH (FORCE);
DROP ROLE "regress Replace Owner";
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
