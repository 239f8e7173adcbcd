--
-- A service some of whose tables were dropped in the sibling since the
-- cutover: a referencing table (as an application's down migration drops
-- it), and a referenced one dropped there with CASCADE.
-- - splitdb_orphans(): such a reference keeps its row, and the function
--   read the dropped table and failed (42P01, relayed from the sibling) for
--   the whole service; it now skips the reference with a NOTICE naming the
--   table, and still reports the orphans of the others.
-- - splitdb_doctor(): each dropped table is one row that says it was
--   dropped and what to do (splitdb_rollback() refuses); the indexes,
--   triggers and constraints that went with it were one critical row each,
--   whose action said to roll the job back.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

CREATE SCHEMA od;
CREATE TABLE od.par (id integer PRIMARY KEY);
CREATE TABLE od.kid1 (id integer PRIMARY KEY, par_id integer CONSTRAINT kid1_par_ref REFERENCES od.par);
CREATE TABLE od.kid2 (id integer PRIMARY KEY, par_id integer CONSTRAINT kid2_par_ref REFERENCES od.par);
CREATE TABLE od.par2 (id integer PRIMARY KEY);
CREATE TABLE od.kid3 (id integer PRIMARY KEY, par2_id integer CONSTRAINT kid3_par2_ref REFERENCES od.par2);
INSERT INTO od.par VALUES (1), (2);
INSERT INTO od.par2 VALUES (1);
INSERT INTO od.kid1 VALUES (1, 1);
INSERT INTO od.kid2 VALUES (1, 2);
INSERT INTO od.kid3 VALUES (1, 1);

SELECT splitdb_add_service('od_svc');
SELECT splitdb_assign('od_svc', 'od.kid1', 'od.kid2', 'od.par2');
SELECT splitdb_migrate('od_svc', wait => true) > 0 AS migrated;
SELECT constraint_name, child_table, parent_table FROM splitdb_references ORDER BY 1;

-- an orphan in kid1, written while its reference is off
SELECT splitdb_reference_mode(reference_id, 'off') FROM splitdb_references
 WHERE constraint_name = 'kid1_par_ref';
INSERT INTO od.kid1 VALUES (2, 9);

-- in the sibling: kid2 dropped, par2 dropped with CASCADE
\c od_svc
SET client_min_messages = warning;
DROP TABLE od.kid2;
DROP TABLE od.par2 CASCADE;
\c splitdb_regression
SET client_min_messages = notice;
\set VERBOSITY default
SELECT r.constraint_name, o.child_table, o.parent_table, o.child_key
  FROM splitdb_orphans('od_svc') o JOIN splitdb_references r USING (reference_id)
 ORDER BY 1, 4;
SET client_min_messages = warning;
SELECT severity, location, object, problem, action FROM splitdb_doctor()
 ORDER BY severity, object;
SELECT splitdb_rollback('od_svc');

-- clean up
DROP FOREIGN TABLE od.kid1, od.kid2, od.par2;
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
DROP SCHEMA od CASCADE;
SELECT splitdb_drop_service('od_svc');
DROP DATABASE od_svc WITH (FORCE);
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
