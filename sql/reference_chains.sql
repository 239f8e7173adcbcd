--
-- Chains of referential actions across databases.  An action that one
-- database applies in another (CASCADE, SET NULL) changes rows there that
-- other references point at, from the source or from the first database;
-- the chain goes on as with PostgreSQL's foreign keys, whichever database
-- the first write was made in:
-- - from the source: the sibling hands the rows its triggers leave to the
--   source back to it, the rows a foreign key over there deleted in turn
--   included, after an action (splitdb.reference_relay) or after a write
--   through a shim (splitdb.reference_relayed);
-- - deletes and key updates, CASCADE, SET NULL and NO ACTION at the end of
--   the chain, which refuses the whole statement and changes nothing;
-- - from the sibling itself, where each database enforces its own ends.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;
\set SHOW_CONTEXT never

-- moves to service chain_a
CREATE TABLE account (
	id   integer PRIMARY KEY,
	name text
);
-- move to service chain_b; a milestone is a plain foreign key there
CREATE TABLE "Projekt ä" (
	account_id integer REFERENCES account ON DELETE CASCADE ON UPDATE CASCADE,
	no         integer,
	PRIMARY KEY (account_id, no)
);
CREATE TABLE milestone (
	id         integer PRIMARY KEY,
	account_id integer,
	project_no integer,
	FOREIGN KEY (account_id, project_no) REFERENCES "Projekt ä"
		ON DELETE CASCADE ON UPDATE CASCADE
);
-- stay in the source
CREATE TABLE task (
	id         integer PRIMARY KEY,
	account_id integer,
	project_no integer,
	FOREIGN KEY (account_id, project_no) REFERENCES "Projekt ä"
		ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE TABLE step (
	id      integer PRIMARY KEY,
	task_id integer REFERENCES task ON DELETE CASCADE
);
CREATE TABLE member (
	id         integer PRIMARY KEY,
	account_id integer,
	project_no integer,
	FOREIGN KEY (account_id, project_no) REFERENCES "Projekt ä"
		ON DELETE SET NULL ON UPDATE SET NULL
);
CREATE TABLE ticket (
	id         integer PRIMARY KEY,
	account_id integer,
	project_no integer,
	FOREIGN KEY (account_id, project_no) REFERENCES "Projekt ä"
);
CREATE TABLE review (
	id           integer PRIMARY KEY,
	milestone_id integer REFERENCES milestone ON DELETE CASCADE
);

INSERT INTO account VALUES (1, 'one'), (2, 'two'), (3, 'three'), (4, 'four');
INSERT INTO "Projekt ä" VALUES (1, 1), (1, 2), (2, 1), (3, 1), (4, 1);
INSERT INTO milestone VALUES (1, 1, 1), (2, 1, 2), (3, 2, 1);
INSERT INTO task VALUES (1, 1, 1), (2, 1, 2), (3, 2, 1), (4, 4, 1);
INSERT INTO step VALUES (1, 1), (2, 1), (3, 3), (4, 4);
INSERT INTO member VALUES (1, 1, 1), (2, 2, 1);
INSERT INTO ticket VALUES (1, 3, 1);
INSERT INTO review VALUES (1, 1), (2, 2), (3, 3);

SELECT splitdb_add_service('chain_a');
SELECT splitdb_assign('chain_a', 'account');
SELECT splitdb_add_service('chain_b');
SELECT splitdb_assign('chain_b', '"Projekt ä"', 'milestone');
SELECT splitdb_migrate('chain_a', wait => true) > 0 AS migrated;
SELECT splitdb_migrate('chain_b', wait => true) > 0 AS migrated;
SELECT constraint_name, child_table, child_location, parent_table, parent_location,
	   on_delete, on_update
  FROM splitdb_references ORDER BY reference_id;

-- a view of every table of the chain, wherever it is
CREATE VIEW chain AS
SELECT 'account' AS t, format('%s', id) AS r FROM account
UNION ALL SELECT 'project', format('%s/%s', account_id, no) FROM "Projekt ä"
UNION ALL SELECT 'milestone', format('%s %s/%s', id, account_id, project_no) FROM milestone
UNION ALL SELECT 'task', format('%s %s/%s', id, account_id, project_no) FROM task
UNION ALL SELECT 'step', format('%s %s', id, task_id) FROM step
UNION ALL SELECT 'member', format('%s %s/%s', id, account_id, project_no) FROM member
UNION ALL SELECT 'ticket', format('%s %s/%s', id, account_id, project_no) FROM ticket
UNION ALL SELECT 'review', format('%s %s', id, milestone_id) FROM review;

-- from the source: account 1 goes, with its projects in chain_b; their
-- tasks here go (and their steps, by a foreign key here), their members
-- lose the project, and the reviews of the milestones that the foreign key
-- in chain_b deleted go too
DELETE FROM account WHERE id = 1;
SELECT t, string_agg(r, ', ' ORDER BY r) FROM chain GROUP BY t ORDER BY t;
SELECT * FROM splitdb_orphans('chain_b');

-- a key update travels the same way: account 2 becomes 20, so does its
-- project over there, and so do its milestone there and its task here;
-- its member loses it
UPDATE account SET id = 20 WHERE id = 2;
SELECT t, string_agg(r, ', ' ORDER BY r) FROM chain GROUP BY t ORDER BY t;

-- NO ACTION at the end of the chain: a ticket refers to account 3's
-- project, so the delete is refused, and nothing changed anywhere
\set VERBOSITY default
DELETE FROM account WHERE id = 3;
\set VERBOSITY terse
SELECT t, string_agg(r, ', ' ORDER BY r) FROM chain GROUP BY t ORDER BY t;

-- in one transaction with writes through the shims: a new project of
-- account 4 and its task go with the account
BEGIN;
INSERT INTO "Projekt ä" VALUES (4, 2);
INSERT INTO task VALUES (5, 4, 2);
DELETE FROM account WHERE id = 4;
COMMIT;
SELECT t, string_agg(r, ', ' ORDER BY r) FROM chain GROUP BY t ORDER BY t;

-- through the shim of the project itself: its milestone goes by the
-- foreign key in chain_b, and the milestone's review here, which chain_b
-- hands back after the statement (splitdb.reference_relayed)
INSERT INTO "Projekt ä" VALUES (3, 2);
INSERT INTO milestone VALUES (9, 3, 2);
INSERT INTO review VALUES (9, 9);
DELETE FROM "Projekt ä" WHERE account_id = 3 AND no = 2;
SELECT t, string_agg(r, ', ' ORDER BY r) FROM chain GROUP BY t ORDER BY t;

-- from chain_a itself: account 20 goes; chain_b enforces its own ends
\c chain_a
SET client_min_messages = warning;
DELETE FROM account WHERE id = 20;
\c chain_b
SET client_min_messages = warning;
-- and from chain_b: project 3/1 is still referenced by the ticket
\set VERBOSITY default
DELETE FROM "Projekt ä" WHERE account_id = 3;
\set VERBOSITY terse
\c splitdb_regression
SET client_min_messages = warning;
SELECT t, string_agg(r, ', ' ORDER BY r) FROM chain GROUP BY t ORDER BY t;

-- the relay is a function of its own: it returns the statement's rows,
-- runs it with the caller's rights and refuses a null parameter
SELECT * FROM splitdb.reference_relay('SELECT $1::text[], 2', ARRAY['{a,NULL}']);
CREATE ROLE regress_chain_app;
SET ROLE regress_chain_app;
SELECT * FROM splitdb.reference_relay('DELETE FROM public.ticket', '{}');
RESET ROLE;
DROP ROLE regress_chain_app;
SELECT * FROM splitdb.reference_relay('SELECT $1::text[]', ARRAY[NULL]);
SELECT count(*) AS tickets FROM ticket;
-- the shims' statement trigger belongs on a shim, the reference triggers
-- fire for the row or the statement they are made for: each wrong kind is
-- refused (39P01) with its hint, and the refused statement wrote nothing
CREATE TABLE lone (id integer);
INSERT INTO lone VALUES (1);
\set VERBOSITY default
CREATE TRIGGER lone_shim AFTER DELETE ON lone
	FOR EACH STATEMENT EXECUTE FUNCTION splitdb.shim_statement();
-- fails: not a foreign table
DELETE FROM lone;
\echo :LAST_ERROR_SQLSTATE
DROP TRIGGER lone_shim ON lone;
CREATE TRIGGER lone_row BEFORE DELETE ON lone
	FOR EACH ROW EXECUTE FUNCTION splitdb.reference_row();
-- fails: BEFORE DELETE
DELETE FROM lone;
\echo :LAST_ERROR_SQLSTATE
DROP TRIGGER lone_row ON lone;
CREATE TRIGGER lone_flush AFTER DELETE ON lone
	FOR EACH ROW EXECUTE FUNCTION splitdb.reference_flush();
-- fails: FOR EACH ROW
DELETE FROM lone;
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY terse
SELECT count(*) AS lone_rows FROM lone;
DROP TABLE lone;

-- clean up
DROP VIEW chain;
DROP TABLE task, step, member, ticket, review;
DROP FOREIGN TABLE account, "Projekt ä", milestone;
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
DELETE FROM splitdb.job;
SELECT splitdb_drop_service('chain_a');
SELECT splitdb_drop_service('chain_b');
DROP DATABASE chain_a WITH (FORCE);
DROP DATABASE chain_b WITH (FORCE);
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
