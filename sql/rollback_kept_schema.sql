--
-- rollback_kept_schema: a schema that a job made in the sibling and that
-- holds objects the job did not make since (a table the application added
-- there) stays, with a WARNING, instead of failing the rollback (or
-- the cancel) that would drop it once the source is back; so do the
-- service's enum type, domain, collation and function that a table the
-- application made elsewhere in the sibling uses
--
CREATE EXTENSION splitdb CASCADE;
SELECT splitdb_add_service('ks_svc');
CREATE SCHEMA ks_app;
CREATE TYPE ks_app."Stufe" AS ENUM ('niedrig', 'hoch');
CREATE DOMAIN ks_app.menge AS integer CHECK (VALUE >= 0);
CREATE COLLATION ks_app."sortierung ä" (provider = libc, locale = 'C');
CREATE FUNCTION ks_app.standard() RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT 7';
CREATE TABLE ks_app.item (id int PRIMARY KEY, note text COLLATE ks_app."sortierung ä",
	stufe ks_app."Stufe" NOT NULL DEFAULT 'niedrig', menge ks_app.menge DEFAULT ks_app.standard());
INSERT INTO ks_app.item SELECT g, 'n' || g FROM generate_series(1, 5) g;
SELECT splitdb_assign('ks_svc', 'ks_app.item');
SET client_min_messages = warning;
SELECT splitdb_migrate('ks_svc', mode => 'offline', wait => true) > 0 AS migrated;
RESET client_min_messages;

-- the application adds a table and a function to the schema in the sibling
\c ks_svc
CREATE TABLE ks_app.added (id int);
CREATE FUNCTION ks_app.added_fn() RETURNS int LANGUAGE sql AS 'SELECT 1';
-- and, in a schema of its own, a table with the service's types, collation
-- and function
CREATE TABLE public.ks_added (stufen ks_app."Stufe"[], m ks_app.menge,
	n text COLLATE ks_app."sortierung ä", s integer DEFAULT ks_app.standard());
INSERT INTO public.ks_added VALUES ('{hoch}', 3, 'x', DEFAULT);
INSERT INTO ks_app.item VALUES (6, 'written in the sibling', 'hoch', 2);
\c splitdb_regression

-- the rollback brings every row back and ends well; the schema, the type,
-- the domain, the collation and the function stay, each with a WARNING
SELECT splitdb_rollback('ks_svc');
SELECT step, last_error FROM splitdb.rollback;
SELECT state FROM splitdb_status WHERE service = 'ks_svc';
SELECT count(*) AS rows_back FROM ks_app.item;
SELECT * FROM ks_app.item WHERE id = 6;
\c ks_svc
SELECT to_regclass('ks_app.item') AS moved_table, to_regclass('ks_app.added') AS added_table;
SELECT * FROM public.ks_added;
\c splitdb_regression

-- once they are gone, the next migration's rollback drops its schema as before
\c ks_svc
DROP TABLE ks_app.added, public.ks_added;
DROP FUNCTION ks_app.added_fn(), ks_app.standard();
DROP DOMAIN ks_app.menge;
DROP TYPE ks_app."Stufe";
DROP COLLATION ks_app."sortierung ä";
DROP SCHEMA ks_app;
\c splitdb_regression
SET client_min_messages = warning;
SELECT splitdb_migrate('ks_svc', mode => 'offline', wait => true) > 0 AS migrated_again;
RESET client_min_messages;
SELECT splitdb_rollback('ks_svc');
\c ks_svc
SELECT to_regnamespace('ks_app') AS schema_left;
\c splitdb_regression

-- clean up
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
SELECT splitdb_unassign('ks_svc', 'ks_app.item');
SELECT splitdb_drop_service('ks_svc');
DROP DATABASE ks_svc WITH (FORCE);
DROP SCHEMA ks_app CASCADE;
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
