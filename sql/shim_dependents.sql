--
-- SET CONSTRAINTS by name for a deferrable reference whose referencing
-- table moved and whose referenced table stays.  In the monolith the
-- foreign key's name is a constraint of the database; after the split the
-- referencing end is a shim, which can have no constraint trigger, and the
-- referenced end's triggers, for ON DELETE RESTRICT and ON UPDATE CASCADE,
-- are not deferrable (as PostgreSQL's own for those actions): the name must
-- still be found, and defer the shim's checks.
-- - deferred by name: the referencing row goes in before its referenced row;
-- - deferred by name, still missing at commit: 23503 at COMMIT;
-- - IMMEDIATE by name checks what was deferred, at once;
-- - the actions stay immediate: RESTRICT refuses at once, CASCADE reaches
--   the sibling at once.
-- Then a rollback with a view, a materialized view and a function made
-- over the shim since the cutover; last, the cancel of a job that failed
-- early.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

CREATE SCHEMA hx;
CREATE TABLE hx.owner (id integer PRIMARY KEY);
CREATE TABLE hx.pet (id integer PRIMARY KEY,
                     owner integer NOT NULL CONSTRAINT pet_owner_ref REFERENCES hx.owner
                         ON DELETE RESTRICT ON UPDATE CASCADE
                         DEFERRABLE INITIALLY IMMEDIATE);
INSERT INTO hx.owner VALUES (1), (2);
INSERT INTO hx.pet VALUES (1, 1), (2, 2);

SELECT splitdb_add_service('hx_svc');
SELECT splitdb_assign('hx_svc', 'hx.pet');
SELECT splitdb_migrate('hx_svc', wait => true) > 0 AS migrated;
SELECT relkind FROM pg_class WHERE oid = 'hx.pet'::regclass;

\set VERBOSITY terse
-- deferred by name: the pet goes in before its owner
BEGIN;
SET CONSTRAINTS hx.pet_owner_ref DEFERRED;
INSERT INTO hx.pet VALUES (3, 3);
INSERT INTO hx.owner VALUES (3);
COMMIT;
-- the same without a schema, the name found on the search_path
SET search_path = hx, public;
BEGIN;
SET CONSTRAINTS pet_owner_ref DEFERRED;
INSERT INTO hx.pet VALUES (4, 4);
INSERT INTO hx.owner VALUES (4);
COMMIT;
RESET search_path;
-- deferred by name, and still missing at commit
BEGIN;
SET CONSTRAINTS hx.pet_owner_ref DEFERRED;
INSERT INTO hx.pet VALUES (5, 5);
COMMIT;
-- IMMEDIATE by name checks what was deferred: the error is its own
BEGIN;
SET CONSTRAINTS hx.pet_owner_ref DEFERRED;
INSERT INTO hx.pet VALUES (6, 6);
SET CONSTRAINTS hx.pet_owner_ref IMMEDIATE;
ROLLBACK;
-- RESTRICT is not deferred by the name
BEGIN;
SET CONSTRAINTS hx.pet_owner_ref DEFERRED;
DELETE FROM hx.owner WHERE id = 1;
ROLLBACK;
-- nor is CASCADE: the sibling's row follows at once
BEGIN;
SET CONSTRAINTS hx.pet_owner_ref DEFERRED;
UPDATE hx.owner SET id = 20 WHERE id = 2;
SELECT id, owner FROM hx.pet WHERE id = 2;
COMMIT;
-- without SET CONSTRAINTS: checked at once, as declared
INSERT INTO hx.pet VALUES (7, 7);
\set VERBOSITY default
SELECT id, owner FROM hx.pet ORDER BY id;
SELECT * FROM splitdb_orphans('hx_svc');
-- the doctor knows the trigger that keeps the name
SELECT severity, object, problem FROM splitdb_doctor();
SELECT tgname, tgdeferrable FROM pg_trigger WHERE tgrelid = 'hx.owner'::regclass AND tgconstraint <> 0;

-- A view made over a shim after the cutover (one the cutover did not
-- re-point) does not stop the rollback, which dropped the shims under it
-- (2BP01 at every run): it reads the original again, with its options.
CREATE VIEW hx.pet_owners WITH (security_barrier) AS
  SELECT p.id, p.owner FROM hx.pet p JOIN hx.owner o ON o.id = p.owner;
CREATE VIEW hx.pet_count AS SELECT count(*) AS pets FROM hx.pet_owners;
-- A materialized view or a function with a SQL-standard body made over it
-- since cannot follow: the rollback refuses before it changes anything.
CREATE MATERIALIZED VIEW hx.pet_totals AS SELECT owner, count(*) FROM hx.pet GROUP BY 1;
CREATE FUNCTION hx.pet_total() RETURNS bigint LANGUAGE sql
  BEGIN ATOMIC SELECT count(*) FROM hx.pet; END;
SELECT splitdb_rollback('hx_svc');
DROP FUNCTION hx.pet_total();
SELECT splitdb_rollback('hx_svc');
-- nothing changed: the service is migrated still, and takes writes
SELECT state FROM splitdb_status WHERE service = 'hx_svc';
INSERT INTO hx.pet VALUES (8, 1);
DROP MATERIALIZED VIEW hx.pet_totals;
SELECT splitdb_rollback('hx_svc');
SELECT state FROM splitdb_status WHERE service = 'hx_svc';
SELECT DISTINCT c.relname, c.relkind FROM pg_depend d
  JOIN pg_rewrite r ON r.oid = d.objid JOIN pg_class c ON c.oid = d.refobjid
 WHERE r.ev_class = 'hx.pet_owners'::regclass AND d.refobjid <> r.ev_class
 ORDER BY 1;
SELECT reloptions FROM pg_class WHERE oid = 'hx.pet_owners'::regclass;
SELECT * FROM hx.pet_count;
SELECT id, owner FROM hx.pet ORDER BY id;
-- the foreign key is back, deferrable as declared
SELECT conname, condeferrable, condeferred, convalidated FROM pg_constraint
 WHERE conrelid = 'hx.pet'::regclass AND contype = 'f';

-- The cancel of a job that stopped early drops what its registry names
-- with IF EXISTS, some of it never made: PostgreSQL's notices for those
-- ("does not exist, skipping") do not reach the caller.  A job that fails
-- in the sibling as its table is made there, and a trigger it recorded
-- before making it.
\c hx_svc
CREATE FUNCTION public.refuse_pet() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
	IF pg_catalog.to_regclass('hx.pet') IS NOT NULL THEN
		RAISE EXCEPTION 'no pets here';
	END IF;
END $$;
CREATE EVENT TRIGGER refuse_pet ON ddl_command_end EXECUTE FUNCTION public.refuse_pet();
\c splitdb_regression
SET client_min_messages = warning;
SELECT splitdb_migrate('hx_svc', wait => true);
SELECT state FROM splitdb_status WHERE service = 'hx_svc';
INSERT INTO splitdb.artifact (job_id, service, kind, identity, parent, drop_on)
SELECT max(job_id), NULL, 'trigger', 'hx_never_made', 'hx.owner', '{cancel}' FROM splitdb.job;
SET client_min_messages = notice;
SELECT splitdb_cancel('hx_svc');
SET client_min_messages = warning;
SELECT state FROM splitdb_status WHERE service = 'hx_svc';
\c hx_svc
DROP EVENT TRIGGER refuse_pet;
DROP FUNCTION public.refuse_pet();
\c splitdb_regression
SET client_min_messages = warning;

-- clean up
DROP SCHEMA IF EXISTS splitdb_archive CASCADE;
DELETE FROM splitdb.job;
DROP SCHEMA hx CASCADE;
SELECT splitdb_drop_service('hx_svc');
DROP DATABASE hx_svc WITH (FORCE);
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
