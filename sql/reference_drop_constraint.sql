--
-- ALTER TABLE ... DROP CONSTRAINT of a foreign key that a cutover turned
-- into a cross-service reference.  The constraint is gone from the
-- catalog; PostgreSQL alone would say only that it does not exist.  The
-- error keeps PostgreSQL's message and SQLSTATE (42704) and says what
-- became of the key, and how to stop enforcing it; with IF EXISTS a NOTICE
-- says it, and the command goes on as PostgreSQL's does.  Nothing changes:
-- the reference stays enforced.  A constraint of that name that the table
-- does have, or a name that was never a reference, gets PostgreSQL's own
-- behaviour.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = notice;
\set SHOW_CONTEXT never

CREATE TABLE "Dc parent" (id integer PRIMARY KEY);
CREATE TABLE dc_child (
	id        integer PRIMARY KEY,
	parent_id integer CONSTRAINT "dc Child→parent" REFERENCES "Dc parent",
	note      text CONSTRAINT dc_note CHECK (note <> '')
);
INSERT INTO "Dc parent" VALUES (1), (2);
INSERT INTO dc_child VALUES (1, 1, 'a');

SET client_min_messages = warning;
SELECT splitdb_add_service('dc_svc');
SELECT splitdb_assign('dc_svc', '"Dc parent"');
SELECT splitdb_migrate('dc_svc', mode => 'offline', wait => true) > 0 AS migrated;
SET client_min_messages = notice;
SELECT constraint_name FROM splitdb_references \gset
SELECT :'constraint_name' AS constraint_name;

-- the converted key: PostgreSQL's error, with what became of it
ALTER TABLE dc_child DROP CONSTRAINT "dc Child→parent";
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
-- with IF EXISTS: a NOTICE, then PostgreSQL's own, and the rest of the
-- command runs
ALTER TABLE dc_child DROP CONSTRAINT IF EXISTS "dc Child→parent", ADD COLUMN extra integer;
SELECT attname FROM pg_attribute WHERE attrelid = 'dc_child'::regclass AND attname = 'extra';

-- the reference is still enforced
INSERT INTO dc_child VALUES (2, 99, 'b');
SELECT count(*) AS children FROM dc_child;

-- a constraint the table has, and a name that was never a reference:
-- PostgreSQL's behaviour alone
ALTER TABLE dc_child DROP CONSTRAINT dc_note;
ALTER TABLE dc_child DROP CONSTRAINT no_such_constraint;
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
ALTER TABLE dc_child DROP CONSTRAINT IF EXISTS no_such_constraint;
-- a table without the reference's end: PostgreSQL's error alone
CREATE TABLE dc_other (id integer);
ALTER TABLE dc_other DROP CONSTRAINT "dc Child→parent";

-- clean up
SET client_min_messages = warning;
DROP TABLE dc_child, dc_other;
DROP FOREIGN TABLE "Dc parent";
DELETE FROM splitdb.job;
DROP SCHEMA IF EXISTS splitdb_archive CASCADE;
SELECT splitdb_drop_service('dc_svc');
DROP DATABASE dc_svc WITH (FORCE);
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
