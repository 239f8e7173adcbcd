--
-- Cross-service references between columns of different types, compared as
-- PostgreSQL's own foreign keys compare them: by the base type's equality,
-- never by casting the referencing value to the referenced column's type.
-- A domain's CHECK, a length limit or a numeric scale of the referenced
-- column must not change the answer (a cast would raise 23514, truncate the
-- value or round it):
-- - a domain over integer with a CHECK, referenced by a plain integer;
-- - varchar(5) referenced by text; numeric(5,2) referenced by numeric;
-- - the same answers with the original foreign keys, before the move.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

CREATE DOMAIN "pos Int" AS integer CHECK (VALUE > 0);
CREATE DOMAIN small_pos AS "pos Int" CHECK (VALUE < 1000);
-- move to service ty_svc
CREATE TABLE kind (id small_pos PRIMARY KEY);
CREATE TABLE code (c varchar(5) PRIMARY KEY);
CREATE TABLE price (p numeric(5,2) PRIMARY KEY);
-- stay
CREATE TABLE item (
	id     integer PRIMARY KEY,
	kind   integer REFERENCES kind,
	code   text REFERENCES code ON UPDATE CASCADE,
	price  numeric REFERENCES price
);
INSERT INTO kind VALUES (1), (2);
INSERT INTO code VALUES ('abcde'), ('xy');
INSERT INTO price VALUES (1.23), (4.5);

-- the original foreign keys' answers, for comparison
INSERT INTO item VALUES (1, -5, NULL, NULL);
INSERT INTO item VALUES (1, NULL, 'abcdefgh', NULL);
INSERT INTO item VALUES (1, NULL, NULL, 1.234);
INSERT INTO item VALUES (1, 2, 'xy', 1.230);

SELECT splitdb_add_service('ty_svc');
SELECT splitdb_assign('ty_svc', 'kind', 'code', 'price');
SELECT splitdb_migrate('ty_svc', wait => true) > 0 AS migrated;
SELECT constraint_name, child_columns, parent_columns
  FROM splitdb_references ORDER BY 1;

-- after the move: the same refusals, with the same SQLSTATE (23503)
\set VERBOSITY sqlstate
INSERT INTO item VALUES (2, -5, NULL, NULL);
INSERT INTO item VALUES (2, 5000, NULL, NULL);
INSERT INTO item VALUES (2, NULL, 'abcdefgh', NULL);
INSERT INTO item VALUES (2, NULL, NULL, 1.234);
-- and on postgres_fdw's connection
SET splitdb.check_connection = off;
INSERT INTO item VALUES (2, -5, NULL, NULL);
INSERT INTO item VALUES (2, NULL, 'abcdefgh', NULL);
INSERT INTO item VALUES (2, NULL, NULL, 1.234);
RESET splitdb.check_connection;
-- several keys in one statement
INSERT INTO item VALUES (2, 1, 'xy', 4.5), (3, -1, 'xy', 4.5);
INSERT INTO item VALUES (2, 1, 'xy', 4.5), (3, 1, 'abcdefgh', 4.5);
INSERT INTO item VALUES (2, 1, 'xy', 4.5), (3, 1, 'xy', 4.501);
\set VERBOSITY default
-- nothing of the refused statements was written
SELECT * FROM item ORDER BY id;
-- keys equal by the type's equality are accepted
INSERT INTO item VALUES (2, 1, 'abcde', 1.2300), (3, 2, 'xy', 4.50);
SELECT * FROM item ORDER BY id;

-- the referenced side: a key that is referenced stays, one that is not goes
\set VERBOSITY sqlstate
DELETE FROM kind WHERE id = 1;
DELETE FROM price WHERE p = 4.5;
\set VERBOSITY default
INSERT INTO price VALUES (9.99);
DELETE FROM price WHERE p = 9.99;
-- ON UPDATE CASCADE reaches the text column through the cast-free match
UPDATE code SET c = 'abc' WHERE c = 'abcde';
SELECT id, code FROM item ORDER BY id;

-- the orphans check compares the same way
SELECT * FROM splitdb_orphans('ty_svc');

-- clean up
DROP TABLE item;
DROP FOREIGN TABLE kind, code, price;
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
DELETE FROM splitdb.job;
SELECT splitdb_drop_service('ty_svc');
DROP DATABASE ty_svc WITH (FORCE);
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
DROP DOMAIN small_pos, "pos Int";
