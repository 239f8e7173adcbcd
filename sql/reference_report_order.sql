--
-- Which violation is reported when a statement or a commit has several:
-- PostgreSQL fires its checks in the order their events were queued, row
-- by row, and reports the first that fails, whichever foreign key it
-- belongs to.  Each case runs on a copy with local foreign keys (schema
-- lokal) and on the copy whose references cross the split (public):
-- - one statement whose rows break two references, the first row the
--   second reference;
-- - deferred references whose violations were queued by two statements;
-- - a delete of referenced keys that two references still use.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

CREATE SCHEMA lokal;
CREATE FUNCTION make_tables(s text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE format('CREATE TABLE %I."Farbe" (id int PRIMARY KEY)', s);
	EXECUTE format('CREATE TABLE %I."Form" (id int PRIMARY KEY)', s);
	EXECUTE format('CREATE TABLE %1$I."Teil" (id int PRIMARY KEY,
		farbe int REFERENCES %1$I."Farbe", form int REFERENCES %1$I."Form")', s);
	EXECUTE format('CREATE TABLE %1$I."Später" (id int PRIMARY KEY,
		farbe int REFERENCES %1$I."Farbe" DEFERRABLE INITIALLY DEFERRED,
		form int REFERENCES %1$I."Form" DEFERRABLE INITIALLY DEFERRED)', s);
	EXECUTE format('CREATE TABLE %1$I."Halter" (id int PRIMARY KEY,
		farbe int REFERENCES %1$I."Farbe" ON DELETE RESTRICT)', s);
	EXECUTE format('INSERT INTO %I."Farbe" SELECT generate_series(1, 9)', s);
	EXECUTE format('INSERT INTO %I."Form" SELECT generate_series(1, 9)', s);
	EXECUTE format('INSERT INTO %I."Teil" VALUES (1, 3, 1), (2, 5, 2)', s);
	EXECUTE format('INSERT INTO %I."Halter" VALUES (1, 4), (2, 6)', s);
END $$;
SELECT make_tables('public'), make_tables('lokal');

SELECT splitdb_add_service('rro_svc');
SELECT splitdb_assign('rro_svc', '"Farbe"', '"Form"');
SELECT splitdb_migrate('rro_svc', wait => true) > 0 AS migrated;

-- one statement, rows that break either reference
INSERT INTO lokal."Teil" VALUES (3, 1, 90), (4, 91, 1);
INSERT INTO public."Teil" VALUES (3, 1, 90), (4, 91, 1);
INSERT INTO lokal."Teil" VALUES (3, 92, 1), (4, 1, 93);
INSERT INTO public."Teil" VALUES (3, 92, 1), (4, 1, 93);
-- deferred: the first statement's violation is reported at commit
BEGIN;
INSERT INTO lokal."Später" VALUES (1, 1, 80);
INSERT INTO lokal."Später" VALUES (2, 81, 1);
COMMIT;
BEGIN;
INSERT INTO public."Später" VALUES (1, 1, 80);
INSERT INTO public."Später" VALUES (2, 81, 1);
COMMIT;
BEGIN;
INSERT INTO lokal."Später" VALUES (3, 82, 1);
INSERT INTO lokal."Später" VALUES (4, 1, 83);
COMMIT;
BEGIN;
INSERT INTO public."Später" VALUES (3, 82, 1);
INSERT INTO public."Später" VALUES (4, 1, 83);
COMMIT;
-- referenced keys still used by two references, in the order of the rows
DELETE FROM lokal."Farbe" WHERE id IN (4, 5);
DELETE FROM public."Farbe" WHERE id IN (4, 5);
DELETE FROM lokal."Farbe" WHERE id IN (3, 6);
DELETE FROM public."Farbe" WHERE id IN (3, 6);
SELECT (SELECT count(*) FROM lokal."Teil") AS lokal_teil,
	   (SELECT count(*) FROM public."Teil") AS public_teil,
	   (SELECT count(*) FROM lokal."Später") AS lokal_spaeter,
	   (SELECT count(*) FROM public."Später") AS public_spaeter;

-- clean up
DROP FOREIGN TABLE "Farbe", "Form";
DROP TABLE "Teil", "Später", "Halter";
DROP SCHEMA lokal CASCADE;
DROP FUNCTION make_tables(text);
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
SELECT splitdb_drop_service('rro_svc');
DROP DATABASE rro_svc WITH (FORCE);
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
