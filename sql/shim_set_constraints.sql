--
-- SET CONSTRAINTS ALL reaches the deferrable constraints of the moved
-- tables themselves, which fire in the sibling, inside the remote
-- transaction that writes through the shims: a foreign key between two
-- tables of the service, and a constraint trigger.  In the monolith, SET
-- CONSTRAINTS ALL DEFERRED lets a transaction write a referencing row
-- before its referenced row, and SET CONSTRAINTS ALL IMMEDIATE fires the
-- pending checks at once; through the shims the sibling checked the first
-- insert at once all the same, and kept its pending checks for its commit.
-- - a SET before the first write, and one after it;
-- - IMMEDIATE after DEFERRED: the violation is the error of SET CONSTRAINTS;
-- - undone with its savepoint, kept with a released one;
-- - a SET CONSTRAINTS that names a constraint is not passed on.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

CREATE SCHEMA sc;
CREATE TABLE sc.bin (id integer PRIMARY KEY);
CREATE TABLE sc.item (id integer PRIMARY KEY,
                      bin integer CONSTRAINT item_bin_ref REFERENCES sc.bin
                          DEFERRABLE INITIALLY IMMEDIATE,
                      weight integer NOT NULL DEFAULT 1);
-- refuses a negative weight, at commit unless told otherwise
CREATE FUNCTION sc.weight_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.weight < 0 THEN
		RAISE EXCEPTION 'item % weighs %', NEW.id, NEW.weight;
	END IF;
	RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER item_weight AFTER INSERT OR UPDATE ON sc.item
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION sc.weight_check();
INSERT INTO sc.bin VALUES (1);
INSERT INTO sc.item VALUES (1, 1);

SELECT splitdb_add_service('sc_svc');
SELECT splitdb_assign('sc_svc', 'sc.bin', 'sc.item');
SELECT splitdb_migrate('sc_svc', wait => true) > 0 AS migrated;
SELECT relkind FROM pg_class WHERE oid = 'sc.item'::regclass;

\set VERBOSITY terse
-- deferred before the first write: the item goes in before its bin
BEGIN;
SET CONSTRAINTS ALL DEFERRED;
INSERT INTO sc.item VALUES (2, 2);
INSERT INTO sc.bin VALUES (2);
COMMIT;
-- deferred after a first write on the connection
BEGIN;
INSERT INTO sc.bin VALUES (3);
SET CONSTRAINTS ALL DEFERRED;
INSERT INTO sc.item VALUES (4, 4);
INSERT INTO sc.bin VALUES (4);
COMMIT;
-- deferred, and still missing at commit
BEGIN;
SET CONSTRAINTS ALL DEFERRED;
INSERT INTO sc.item VALUES (5, 5);
COMMIT;
-- IMMEDIATE checks what was deferred: the error is SET CONSTRAINTS' own
BEGIN;
SET CONSTRAINTS ALL DEFERRED;
INSERT INTO sc.item VALUES (6, 6);
SET CONSTRAINTS ALL IMMEDIATE;
ROLLBACK;
-- IMMEDIATE fires the deferred constraint trigger
BEGIN;
INSERT INTO sc.item VALUES (7, 1, -3);
SET CONSTRAINTS ALL IMMEDIATE;
ROLLBACK;
-- a savepoint rolled back takes its SET CONSTRAINTS with it
BEGIN;
SAVEPOINT a;
SET CONSTRAINTS ALL DEFERRED;
INSERT INTO sc.item VALUES (8, 8);
ROLLBACK TO a;
INSERT INTO sc.item VALUES (9, 9);
ROLLBACK;
-- a savepoint released keeps it
BEGIN;
SAVEPOINT b;
SET CONSTRAINTS ALL DEFERRED;
RELEASE b;
INSERT INTO sc.item VALUES (10, 10);
INSERT INTO sc.bin VALUES (10);
COMMIT;
-- by name: PostgreSQL looks the name up here, where the key is gone
BEGIN;
SET CONSTRAINTS sc.item_bin_ref DEFERRED;
ROLLBACK;
-- without SET CONSTRAINTS: checked at once, as declared
INSERT INTO sc.item VALUES (11, 11);
\set VERBOSITY default
SELECT id, bin, weight FROM sc.item ORDER BY id;
SELECT id FROM sc.bin ORDER BY id;

-- clean up
DROP FOREIGN TABLE sc.bin, sc.item;
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
DROP SCHEMA sc CASCADE;
SELECT splitdb_drop_service('sc_svc');
DROP DATABASE sc_svc WITH (FORCE);
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
