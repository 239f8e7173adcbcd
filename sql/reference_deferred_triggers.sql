--
-- Rows that a deferred trigger of the sibling writes when a transaction
-- that wrote through a shim commits.  The sibling leaves the keys of the
-- rows that its triggers write in turn to the writer, which takes them
-- after each statement through the shim; a constraint trigger INITIALLY
-- DEFERRED fires only at the commit, after the last statement, so its rows
-- were checked by no database: an orphan, or a referenced row deleted
-- while still referenced, went in unnoticed.  The writer now fires the
-- sibling's deferred triggers before its commit (SET CONSTRAINTS ALL
-- IMMEDIATE over there) and checks their rows' keys in its own
-- transaction, as PostgreSQL checks them in the monolith:
-- - a history row with a key that exists, then one that does not (23503 at
--   COMMIT, nothing written);
-- - a key whose referenced row the same transaction inserted here;
-- - a clean-up that deletes a referenced row: ON DELETE CASCADE in the
--   source, NO ACTION refused, and accepted when the transaction deleted
--   the referencing row first;
-- - a deferred event undone with its savepoint; SET CONSTRAINTS ALL
--   IMMEDIATE, which fires the trigger at the statement;
-- - the row that an immediate trigger writes into a table whose reference
--   is INITIALLY DEFERRED over there (its check fires at the sibling's
--   commit too).
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

CREATE SCHEMA dt;
CREATE TABLE dt.p (id integer PRIMARY KEY);
CREATE TABLE dt.t (id integer PRIMARY KEY, p_id integer);
CREATE TABLE dt.h (id serial PRIMARY KEY, t_id integer,
                   p_id integer CONSTRAINT h_p_ref REFERENCES dt.p);
CREATE TABLE dt.g (id serial PRIMARY KEY, t_id integer,
                   p_id integer CONSTRAINT g_p_ref REFERENCES dt.p DEFERRABLE INITIALLY DEFERRED);
CREATE TABLE dt.q (id integer PRIMARY KEY);
CREATE TABLE dt.rc (id integer PRIMARY KEY,
                    q_id integer CONSTRAINT rc_q_ref REFERENCES dt.q ON DELETE CASCADE);
CREATE TABLE dt.rn (id integer PRIMARY KEY,
                    q_id integer CONSTRAINT rn_q_ref REFERENCES dt.q);
-- a history row for each row written, at commit
CREATE FUNCTION dt.t_hist() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO dt.h (t_id, p_id) VALUES (NEW.id, NEW.p_id);
	RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER t_hist AFTER INSERT OR UPDATE ON dt.t
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION dt.t_hist();
-- the q row of a deleted t row goes too, at commit
CREATE FUNCTION dt.t_gc() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM dt.q WHERE id = OLD.id;
	RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER t_gc AFTER DELETE ON dt.t
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION dt.t_gc();
-- from row 7 on, a g row too, at once, whose key is 100 above
CREATE FUNCTION dt.t_g() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.id >= 7 THEN
		INSERT INTO dt.g (t_id, p_id) VALUES (NEW.id, NEW.p_id + 100);
	END IF;
	RETURN NULL;
END $$;
CREATE TRIGGER t_g AFTER INSERT ON dt.t FOR EACH ROW EXECUTE FUNCTION dt.t_g();
INSERT INTO dt.p SELECT generate_series(1, 6);
INSERT INTO dt.q SELECT generate_series(1, 6);
INSERT INTO dt.t SELECT g, 1 FROM generate_series(4, 6) g;
DELETE FROM dt.h;
INSERT INTO dt.rc VALUES (4, 4);
INSERT INTO dt.rn VALUES (5, 5), (6, 6);

SELECT splitdb_add_service('dt_svc');
SELECT splitdb_assign('dt_svc', 'dt.t', 'dt.h', 'dt.g', 'dt.q');
SELECT splitdb_migrate('dt_svc', wait => true) > 0 AS migrated;
SELECT child_table, parent_table, on_delete FROM splitdb_references ORDER BY 1, 2;

\set VERBOSITY terse
-- the history row's key exists
INSERT INTO dt.t VALUES (1, 1);
-- it does not: refused at commit, nothing written
UPDATE dt.t SET p_id = 99 WHERE id = 1;
SELECT id, p_id FROM dt.t WHERE id = 1;
-- its referenced row inserted by the same transaction, in the source
BEGIN;
INSERT INTO dt.p VALUES (50);
INSERT INTO dt.t VALUES (2, 50);
COMMIT;
-- fired at the statement
BEGIN;
SET CONSTRAINTS ALL IMMEDIATE;
INSERT INTO dt.t VALUES (3, 98);
ROLLBACK;
-- undone with its savepoint
BEGIN;
SAVEPOINT a;
UPDATE dt.t SET p_id = 97 WHERE id = 2;
ROLLBACK TO a;
COMMIT;
-- the clean-up's delete: cascaded to rc
DELETE FROM dt.t WHERE id = 4;
-- refused by rn at commit, nothing deleted
DELETE FROM dt.t WHERE id = 5;
-- accepted once the transaction deleted the referencing row
BEGIN;
DELETE FROM dt.rn WHERE id = 6;
DELETE FROM dt.t WHERE id = 6;
COMMIT;
-- the g row's deferred reference: refused at commit, then accepted
INSERT INTO dt.t VALUES (7, 1);
BEGIN;
INSERT INTO dt.p VALUES (8), (108);
INSERT INTO dt.t VALUES (8, 8);
COMMIT;
\set VERBOSITY default
SELECT id, p_id FROM dt.t ORDER BY id;
SELECT t_id, p_id FROM dt.h ORDER BY t_id, p_id;
SELECT t_id, p_id FROM dt.g ORDER BY t_id, p_id;
SELECT id FROM dt.q ORDER BY id;
SELECT id, q_id FROM dt.rc ORDER BY id;
SELECT id, q_id FROM dt.rn ORDER BY id;
SELECT count(*) AS orphans FROM splitdb_orphans('dt_svc');

-- clean up
DROP FOREIGN TABLE dt.t, dt.h, dt.g, dt.q;
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
DROP SCHEMA dt CASCADE;
SELECT splitdb_drop_service('dt_svc');
DROP DATABASE dt_svc WITH (FORCE);
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
