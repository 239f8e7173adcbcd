--
-- Cross-service references: the foreign keys that cross databases after a
-- migration become triggers on both ends, with PostgreSQL's semantics.
-- Checked here, in the source (local tables and shims) and in the siblings:
-- - the child side: missing keys refused with 23503, MATCH SIMPLE and MATCH
--   FULL with NULLs, composite keys, deferred checks at commit;
-- - the parent side: NO ACTION, RESTRICT, CASCADE, SET NULL (with a column
--   list) and SET DEFAULT, on delete and on update of the key;
-- - a self-reference that moves with its table stays a foreign key;
-- - TRUNCATE of a referenced table refused; mode off and splitdb_orphans;
-- - a second service moving the other end: the reference then joins two
--   siblings;
-- - batches of a few keys, with equal keys written differently; date keys
--   under another DateStyle;
-- - an application role with and without a user mapping of its own;
-- - names with quotes, spaces, mixed case and non-ASCII letters.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

-- stay in the source
CREATE TABLE customer (
	id   integer PRIMARY KEY,
	name text
);
CREATE TABLE region (
	country text,
	code    integer,
	PRIMARY KEY (country, code)
);

-- move to service ref_svc
CREATE TABLE "Order" (
	id          integer PRIMARY KEY,
	customer_id integer REFERENCES customer,
	country     text,
	code        integer,
	parent_id   integer REFERENCES "Order",
	FOREIGN KEY (country, code) REFERENCES region MATCH FULL
		ON DELETE SET NULL ON UPDATE CASCADE
);
CREATE TABLE note (
	id          integer PRIMARY KEY,
	customer_id integer DEFAULT 1 REFERENCES customer ON DELETE SET DEFAULT,
	backup_id   integer REFERENCES customer ON DELETE RESTRICT ON UPDATE RESTRICT
);
CREATE TABLE "Zimmer ""Ä""" (
	hotel integer,
	room  integer,
	PRIMARY KEY (hotel, room)
);

-- stay in the source, refer to tables that move
CREATE TABLE invoice (
	id       integer PRIMARY KEY,
	order_id integer REFERENCES "Order" ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE TABLE shipment (
	id       integer PRIMARY KEY,
	order_id integer REFERENCES "Order" DEFERRABLE INITIALLY DEFERRED
);
CREATE TABLE "Buchung" (
	id    integer PRIMARY KEY,
	hotel integer,
	room  integer,
	CONSTRAINT "Buchung → Zimmer" FOREIGN KEY (hotel, room)
		REFERENCES "Zimmer ""Ä""" ON DELETE SET NULL (room)
);

INSERT INTO customer SELECT g, 'customer ' || g FROM generate_series(1, 6) g;
INSERT INTO region VALUES ('ch', 1), ('ch', 2), ('de', 1);
INSERT INTO "Order" VALUES (1, 1, 'ch', 1, NULL), (2, 2, 'ch', 2, NULL), (3, 3, 'de', 1, NULL),
	(4, NULL, NULL, NULL, NULL), (5, 5, 'ch', 1, 4);
INSERT INTO note VALUES (1, 2, 3), (2, 4, NULL);
INSERT INTO "Zimmer ""Ä""" VALUES (1, 101), (1, 102), (2, 201);
INSERT INTO invoice VALUES (1, 1), (2, 1), (3, 2);
INSERT INTO shipment VALUES (1, 3);
INSERT INTO "Buchung" VALUES (1, 1, 101), (2, 2, 201);

SELECT splitdb_add_service('ref_svc');
SELECT splitdb_assign('ref_svc', '"Order"', 'note', '"Zimmer ""Ä"""');
SELECT splitdb_migrate('ref_svc', wait => true) > 0 AS migrated;

-- every cross-service key is enforced; the self-reference is not one
SELECT reference_id, constraint_name, child_table, child_location, child_columns,
	   parent_table, parent_location, match_type, on_delete, on_update,
	   delete_set_columns, is_deferrable, initially_deferred, mode, enforced
  FROM splitdb_references ORDER BY reference_id;
-- the source enforces both ends: the tables that stay and the shims
SELECT e.reference_id, e.side, e.relid, c.relkind, e.own_server, e.other_server,
	   e.other_table, e.other_database
  FROM splitdb.reference_end e JOIN pg_class c ON c.oid = e.relid
 ORDER BY 1, 2;
SELECT tgrelid::regclass, tgname, tgconstraint <> 0 AS is_constraint_trigger,
	   tgdeferrable, tginitdeferred, tgenabled
  FROM pg_trigger
 WHERE tgfoid IN ('splitdb.reference_row()'::regprocedure, 'splitdb.reference_flush()'::regprocedure)
 ORDER BY 1, 2;

--
-- The child side, written in the source
--
-- a missing customer, through the shim; nothing reaches the sibling
INSERT INTO "Order" (id, customer_id) VALUES (10, 99);
-- the key is checked where the row is written: a customer of this transaction counts
BEGIN;
INSERT INTO customer VALUES (7, 'customer 7');
INSERT INTO "Order" (id, customer_id) VALUES (10, 7);
COMMIT;
-- MATCH SIMPLE: a NULL key is not checked
INSERT INTO "Order" (id, customer_id) VALUES (11, NULL);
-- MATCH FULL: all NULL passes, a mix is refused, a missing pair is refused
INSERT INTO "Order" (id, country, code) VALUES (12, NULL, NULL);
INSERT INTO "Order" (id, country, code) VALUES (13, 'ch', NULL);
INSERT INTO "Order" (id, country, code) VALUES (13, 'ch', 9);
INSERT INTO "Order" (id, country, code) VALUES (13, 'de', 1);
-- an update that changes the key is checked, one that keeps it is not
UPDATE "Order" SET customer_id = 98 WHERE id = 1;
UPDATE "Order" SET parent_id = 4 WHERE id = 3;
-- many rows, one statement: the first missing key is reported
INSERT INTO "Order" (id, customer_id) SELECT 100 + g, g FROM generate_series(1, 9) g;
SELECT count(*) FROM "Order" WHERE id > 100;
-- a local child of a moved parent
INSERT INTO invoice VALUES (10, 77);
INSERT INTO invoice VALUES (10, 10);
-- deferred: a missing order is fine until commit ...
BEGIN;
INSERT INTO shipment VALUES (10, 50);
SELECT count(*) FROM shipment WHERE id = 10;
COMMIT;
SELECT count(*) FROM shipment WHERE id = 10;
-- ... and fine at commit once it exists, here written through the shim
BEGIN;
INSERT INTO shipment VALUES (10, 50);
INSERT INTO "Order" (id, customer_id) VALUES (50, 1);
COMMIT;
SELECT s.id, s.order_id, o.customer_id FROM shipment s JOIN "Order" o ON o.id = s.order_id
 WHERE s.id = 10;
-- ... and SET CONSTRAINTS works on it: the check then runs at once
BEGIN;
SET CONSTRAINTS shipment_order_id_fkey IMMEDIATE;
INSERT INTO shipment VALUES (11, 51);
SELECT 1;
ROLLBACK;
-- a row changed again before a deferred check is judged as it is at commit
BEGIN;
INSERT INTO shipment VALUES (12, 52);
UPDATE shipment SET order_id = 50 WHERE id = 12;
COMMIT;
SELECT id, order_id FROM shipment WHERE id = 12;
-- a rolled-back savepoint takes its keys with it
BEGIN;
SAVEPOINT s;
INSERT INTO invoice VALUES (20, 1);
INSERT INTO invoice VALUES (21, 404);
ROLLBACK TO SAVEPOINT s;
INSERT INTO invoice VALUES (20, 1);
COMMIT;
SELECT id, order_id FROM invoice WHERE id >= 20;

--
-- The parent side, written in the source
--
-- NO ACTION: a customer that orders refer to stays, by delete or by key update
DELETE FROM customer WHERE id = 3;
UPDATE customer SET id = 30 WHERE id = 3;
-- an unreferenced one goes, and so does a non-key update of a referenced one
DELETE FROM customer WHERE id = 6;
UPDATE customer SET name = 'renamed' WHERE id = 3;
-- RESTRICT (note.backup_id), once no order refers to customer 3
UPDATE "Order" SET customer_id = 5 WHERE customer_id = 3;
DELETE FROM customer WHERE id = 3;
UPDATE customer SET id = 33 WHERE id = 3;
-- SET DEFAULT: note 2 referred to customer 4 and now refers to the default 1
DELETE FROM customer WHERE id = 4;
SELECT id, customer_id, backup_id FROM note ORDER BY id;
-- SET DEFAULT refuses when the default key itself goes
UPDATE "Order" SET customer_id = 5 WHERE customer_id = 1;
DELETE FROM customer WHERE id = 1;
SELECT id, customer_id FROM note ORDER BY id;
SELECT count(*) AS customer_1 FROM customer WHERE id = 1;
-- MATCH FULL ON DELETE SET NULL: every column of the key
DELETE FROM region WHERE country = 'de';
SELECT id, country, code FROM "Order" WHERE id IN (3, 13) ORDER BY id;
-- ON UPDATE CASCADE into the sibling
UPDATE region SET code = 20 WHERE country = 'ch' AND code = 2;
SELECT id, country, code FROM "Order" WHERE id = 2;
-- a moved parent: ON DELETE CASCADE and ON UPDATE CASCADE reach the source
SELECT id, order_id FROM invoice ORDER BY id;
UPDATE "Order" SET id = 200 WHERE id = 2;
DELETE FROM "Order" WHERE id = 1;
SELECT id, order_id FROM invoice ORDER BY id;
-- SET CONSTRAINTS ... IMMEDIATE checks at once what was deferred before it:
-- on a table (PostgreSQL fires the constraint triggers) ...
BEGIN;
INSERT INTO shipment VALUES (13, 53);
SET CONSTRAINTS shipment_order_id_fkey IMMEDIATE;
ROLLBACK;
-- ... and on a shim, whose deferred checks wait in splitdb's queue
BEGIN;
DELETE FROM "Order" WHERE id = 50;
SET CONSTRAINTS shipment_order_id_fkey IMMEDIATE;
ROLLBACK;
-- after SET CONSTRAINTS ALL IMMEDIATE the shim's check runs with the statement
BEGIN;
SET CONSTRAINTS ALL IMMEDIATE;
DELETE FROM "Order" WHERE id = 50;
ROLLBACK;
-- ... until SET CONSTRAINTS ... DEFERRED defers it again
BEGIN;
SET CONSTRAINTS ALL IMMEDIATE;
SET CONSTRAINTS public.shipment_order_id_fkey DEFERRED;
DELETE FROM "Order" WHERE id = 50;
SELECT count(*) AS orders_50_in_transaction FROM "Order" WHERE id = 50;
ROLLBACK;
-- a SET CONSTRAINTS goes with the savepoint it ran in, and stays with one
-- that was released
BEGIN;
SAVEPOINT a;
SET CONSTRAINTS ALL IMMEDIATE;
ROLLBACK TO SAVEPOINT a;
DELETE FROM "Order" WHERE id = 50;
SELECT count(*) AS orders_50_in_transaction FROM "Order" WHERE id = 50;
ROLLBACK;
BEGIN;
SAVEPOINT a;
SET CONSTRAINTS ALL IMMEDIATE;
RELEASE SAVEPOINT a;
DELETE FROM "Order" WHERE id = 50;
ROLLBACK;
-- nothing of the refused transactions stayed
SELECT count(*) AS orders_50 FROM "Order" WHERE id = 50;
SELECT count(*) AS shipments_13 FROM shipment WHERE id = 13;
-- deferred NO ACTION: an order that a shipment refers to goes only with it
BEGIN;
DELETE FROM "Order" WHERE id = 50;
COMMIT;
BEGIN;
DELETE FROM "Order" WHERE id = 50;
DELETE FROM shipment WHERE order_id = 50;
COMMIT;
SELECT count(*) AS orders_50 FROM "Order" WHERE id = 50;
-- SET NULL with a column list: only room
DELETE FROM "Zimmer ""Ä""" WHERE hotel = 1 AND room = 101;
SELECT id, hotel, room FROM "Buchung" ORDER BY id;
INSERT INTO "Buchung" VALUES (3, 2, 999);
-- TRUNCATE of a referenced table is refused, and changes nothing
TRUNCATE customer;
TRUNCATE customer CASCADE;
SELECT count(*) AS customers FROM customer;
-- customers for the bulk insert in the sibling below
INSERT INTO customer SELECT g, 'bulk' FROM generate_series(100001, 200000) g;

--
-- In the sibling: the same references, enforced against the source
--
\c ref_svc
SET client_min_messages = warning;
-- a statement's 100,000 distinct keys, checked, and what their queue holds
-- until the transaction ends: a key is one small chunk (it was more than
-- 1 kB: over 100 MB here)
BEGIN;
INSERT INTO "Order" (id, customer_id) SELECT g, g FROM generate_series(100001, 200000) g;
SELECT count(*) > 0 AS queued, sum(total_bytes) < 40 * 1024 * 1024 AS under_40_mb
  FROM pg_backend_memory_contexts
 WHERE name = 'splitdb queued keys' OR parent = 'splitdb queued keys';
ROLLBACK;
SELECT reference_id, side, relid, own_server, other_location, other_server, other_table
  FROM splitdb.reference_end ORDER BY 1, 2;
-- the self-reference moved with its table and is a foreign key there
SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
 WHERE conrelid = '"Order"'::regclass AND contype = 'f';
INSERT INTO "Order" (id, customer_id) VALUES (60, 404);
INSERT INTO "Order" (id, customer_id, country, code) VALUES (60, 2, 'ch', 20);
INSERT INTO "Order" (id, country, code) VALUES (61, 'xx', 1);
-- an order that invoices in the source refer to: they go with it
DELETE FROM "Order" WHERE id = 200;
\c splitdb_regression
SET client_min_messages = warning;
DELETE FROM customer WHERE id > 100000;
SELECT id, order_id FROM invoice ORDER BY id;
-- a customer that a sibling row refers to stays
DELETE FROM customer WHERE id = 2;

--
-- Enforcement runs as the table's owner: an application role needs no user
-- mapping and no rights on the servers
--
CREATE ROLE regress_ref_app LOGIN;
GRANT SELECT, INSERT ON invoice TO regress_ref_app;
SET ROLE regress_ref_app;
INSERT INTO invoice VALUES (30, 77);
INSERT INTO invoice VALUES (30, 10);
RESET ROLE;
SELECT count(*) AS app_mappings FROM pg_user_mappings WHERE usename = 'regress_ref_app';
SELECT has_server_privilege('regress_ref_app', 'splitdb_ref_svc', 'USAGE') AS app_uses_server;
\c ref_svc
SET client_min_messages = warning;
GRANT SELECT, INSERT ON "Order" TO regress_ref_app;
SET ROLE regress_ref_app;
INSERT INTO "Order" (id, customer_id) VALUES (62, 404);
INSERT INTO "Order" (id, customer_id) VALUES (62, 2);
RESET ROLE;
\c splitdb_regression
SET client_min_messages = warning;
-- through a shim the role needs a user mapping, for the shim itself; the
-- check sees the row it wrote, in its own remote transaction
CREATE USER MAPPING FOR regress_ref_app SERVER splitdb_ref_svc
	OPTIONS (user 'regress_ref_app', password_required 'false');
GRANT SELECT, INSERT ON "Order" TO regress_ref_app;
GRANT INSERT ON customer TO regress_ref_app;
SET ROLE regress_ref_app;
INSERT INTO "Order" (id, customer_id) VALUES (63, 404);
BEGIN;
INSERT INTO customer VALUES (8, 'customer 8');
INSERT INTO "Order" (id, customer_id) VALUES (63, 8);
ROLLBACK;
INSERT INTO "Order" (id, customer_id) VALUES (63, 2);
RESET ROLE;
SELECT id, customer_id FROM "Order" WHERE id IN (62, 63) ORDER BY id;
-- with a mapping, enforcement runs in the role's own remote transaction, like
-- PostgreSQL's foreign keys in the writing session: it sees what the role
-- wrote through shims and does not wait for the locks of those writes (the
-- owner's remote transaction would refuse the invoice and wait forever for
-- the deleted order); the role then needs the rights the checks use there:
-- UPDATE for the FOR KEY SHARE locks, and the rights of the actions
\c ref_svc
GRANT UPDATE, DELETE ON "Order" TO regress_ref_app;
GRANT SELECT, UPDATE ON note TO regress_ref_app;
\c splitdb_regression
SET client_min_messages = warning;
GRANT SELECT, DELETE ON "Order", customer TO regress_ref_app;
SET ROLE regress_ref_app;
SET statement_timeout = '30s';
BEGIN;
INSERT INTO "Order" (id, customer_id) VALUES (64, 2);
INSERT INTO invoice VALUES (64, 64);
COMMIT;
INSERT INTO customer VALUES (9, 'customer 9');
INSERT INTO "Order" (id, customer_id) VALUES (65, 9);
BEGIN;
DELETE FROM "Order" WHERE id = 65;
DELETE FROM customer WHERE id = 9;
COMMIT;
RESET statement_timeout;
RESET ROLE;
SELECT (SELECT count(*) FROM invoice WHERE id = 64) AS invoice_64,
	   (SELECT count(*) FROM "Order" WHERE id IN (64, 65)) AS orders_64_65,
	   (SELECT count(*) FROM customer WHERE id = 9) AS customer_9;
-- without UPDATE on the referenced table there, the check still locks its
-- row: it runs there as the table's owner, as PostgreSQL's foreign keys do
\c ref_svc
REVOKE UPDATE ON "Order" FROM regress_ref_app;
\c splitdb_regression
SET client_min_messages = warning;
SET ROLE regress_ref_app;
INSERT INTO invoice VALUES (66, 64);
RESET ROLE;
DELETE FROM invoice WHERE id = 66;
-- a transaction that read another foreign table of that server first
-- proves nothing on postgres_fdw's connection there (the check takes that
-- connection when splitdb.check_connection is off, or after a write
-- through postgres_fdw): its check falls back to the mapped role's rights,
-- and the refusal is the other database's, relayed: its SQLSTATE (42501),
-- its message, and no part of it names the connection or the user
-- mapping's password (a password the server never asks for here, so that
-- only a leak could show it)
CREATE FOREIGN TABLE ref_svc_databases (datname name) SERVER splitdb_ref_svc
	OPTIONS (schema_name 'pg_catalog', table_name 'pg_database');
GRANT SELECT ON ref_svc_databases TO regress_ref_app;
ALTER USER MAPPING FOR regress_ref_app SERVER splitdb_ref_svc
	OPTIONS (ADD password 'Regress-Pw-42');
CREATE FUNCTION ref_relayed(stmt text)
RETURNS TABLE (sqlstate text, message text, context_names_statement boolean,
			   leaks_connection boolean)
LANGUAGE plpgsql AS $$
DECLARE
	st text;
	msg text;
	det text;
	hnt text;
	ctx text;
BEGIN
	SET LOCAL splitdb.check_connection = off;
	PERFORM count(*) FROM ref_svc_databases;
	EXECUTE stmt;
	RAISE EXCEPTION 'not refused: %', stmt;
EXCEPTION WHEN insufficient_privilege THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
		det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT,
		ctx = PG_EXCEPTION_CONTEXT;
	RETURN QUERY SELECT st, msg,
		ctx LIKE '%remote statement: SELECT 1 FROM public."Order" t WHERE %',
		concat_ws(' ', msg, det, hnt, ctx) ~* '(Regress-Pw-42|password|host=|port=|dbname=|user=)';
END
$$;
SET ROLE regress_ref_app;
SELECT * FROM ref_relayed('INSERT INTO invoice VALUES (66, 64)');
RESET ROLE;
DROP FUNCTION ref_relayed(text);
DROP FOREIGN TABLE ref_svc_databases;
SELECT count(*) AS invoice_66 FROM invoice WHERE id = 66;
REVOKE ALL ON invoice, "Order", customer FROM regress_ref_app;
DROP USER MAPPING FOR regress_ref_app SERVER splitdb_ref_svc;
\c ref_svc
REVOKE ALL ON "Order", note FROM regress_ref_app;
\c splitdb_regression
SET client_min_messages = warning;
DROP ROLE regress_ref_app;

--
-- Mode off, for a backfill, and the orphans it can leave
--
SELECT splitdb_reference_mode(r.reference_id, 'off')
  FROM splitdb_references r WHERE r.constraint_name = 'Order_customer_id_fkey';
INSERT INTO "Order" (id, customer_id) VALUES (70, 700), (71, 701);
SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = '"Order"'::regclass
   AND tgname LIKE 'splitdb_ref%' ORDER BY 1;
SELECT constraint_name, child_table, parent_table, child_key FROM splitdb_orphans('ref_svc')
 ORDER BY 1, 4;
SELECT splitdb_reference_mode(r.reference_id, 'strict')
  FROM splitdb_references r WHERE r.constraint_name = 'Order_customer_id_fkey';
INSERT INTO "Order" (id, customer_id) VALUES (72, 702);
DELETE FROM "Order" WHERE id IN (70, 71);
SELECT count(*) AS orphans FROM splitdb_orphans('ref_svc');
-- refused: a bad mode, an unknown reference, an unknown service
SELECT splitdb_reference_mode(1, 'lenient');
SELECT splitdb_reference_mode(9999, 'off');
SELECT * FROM splitdb_orphans('no_such_service');
SELECT mode, count(*) FROM splitdb.reference GROUP BY mode;
-- refused inside a transaction block (25001): the sibling's triggers would
-- have been switched off for good there, committed at once, while the
-- ROLLBACK kept the source's and the catalog's mode strict
BEGIN;
SELECT splitdb_reference_mode(r.reference_id, 'off')
  FROM splitdb_references r WHERE r.constraint_name = 'Order_customer_id_fkey';
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
SELECT mode, count(*) FROM splitdb.reference GROUP BY mode;
-- a call that changes nothing is no trouble there
BEGIN;
SELECT splitdb_reference_mode(r.reference_id, 'strict') AS was
  FROM splitdb_references r WHERE r.constraint_name = 'Order_customer_id_fkey';
ROLLBACK;
\c ref_svc
SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = '"Order"'::regclass
   AND tgname LIKE 'splitdb_ref%' ORDER BY 1;
-- still enforced in the sibling
INSERT INTO "Order" (id, customer_id) VALUES (73, 703);
\echo :LAST_ERROR_SQLSTATE
\c splitdb_regression
SET client_min_messages = warning;

-- the counters of this cluster
SELECT constraint_name, checks > 0 AS checked, violations > 0 AS refused,
	   round_trips > 0 AS went_remote
  FROM splitdb_references ORDER BY reference_id;
-- a refused statement counts its keys as checked, on either end
SELECT checks AS c0, violations AS v0 FROM splitdb_references
 WHERE constraint_name = 'Order_customer_id_fkey' \gset
DELETE FROM customer WHERE id = 5;
INSERT INTO "Order" (id, customer_id) VALUES (73, 703);
SELECT checks - :c0 AS checks, violations - :v0 AS violations FROM splitdb_references
 WHERE constraint_name = 'Order_customer_id_fkey';

--
-- A second service takes the customers: "Order" -> customer now joins two
-- siblings, and is enforced in both
--
CREATE TABLE price (amount numeric PRIMARY KEY);
CREATE TABLE quote (id integer PRIMARY KEY, amount numeric REFERENCES price);
INSERT INTO price VALUES (1), (2.5);
CREATE TABLE holiday (day date PRIMARY KEY);
CREATE TABLE shift (id integer PRIMARY KEY, day date REFERENCES holiday);
INSERT INTO holiday VALUES ('2026-03-04');
SELECT splitdb_add_service('ref_svc2');
SELECT splitdb_assign('ref_svc2', 'customer', 'price', 'holiday');
SELECT splitdb_migrate('ref_svc2', wait => true) > 0 AS migrated;
SELECT constraint_name, child_location, parent_location, enforced
  FROM splitdb_references ORDER BY reference_id;
SELECT e.reference_id, e.side, e.relid, e.own_server, e.other_server
  FROM splitdb.reference_end e ORDER BY 1, 2;
-- from the source, through both shims
INSERT INTO "Order" (id, customer_id) VALUES (80, 808);
DELETE FROM customer WHERE id = 2;
\c ref_svc
SET client_min_messages = warning;
SELECT reference_id, side, other_location, other_server FROM splitdb.reference_end ORDER BY 1, 2;
INSERT INTO "Order" (id, customer_id) VALUES (80, 808);
INSERT INTO "Order" (id, customer_id) VALUES (80, 5);
\c ref_svc2
SET client_min_messages = warning;
SELECT reference_id, side, other_location, other_server FROM splitdb.reference_end ORDER BY 1, 2;
DELETE FROM customer WHERE id = 5;
\c splitdb_regression
SET client_min_messages = warning;

-- a small batch is one "= ANY" lookup: keys that are equal values written
-- differently (1.0 and 1.00) are all found, and a missing one is named
INSERT INTO quote VALUES (1, 1.0), (2, 1.00), (3, 2.50);
INSERT INTO quote VALUES (4, 2.5), (5, 3), (6, 1);
SELECT id, amount FROM quote ORDER BY id;
-- a date key is sent in ISO form, whatever the session's DateStyle: with
-- day-month order, 4 March is not read as 3 April over there
SET DateStyle = 'SQL, DMY';
INSERT INTO shift VALUES (1, '04/03/2026');
INSERT INTO shift VALUES (2, '03/04/2026');
RESET DateStyle;
SELECT id, day FROM shift ORDER BY id;
-- small lookups are prepared once per remote session; they survive the
-- DEALLOCATE ALL that postgres_fdw sends after an error in a transaction
-- in which it prepared statements of its own (the shim's insert)
INSERT INTO invoice VALUES (90, 64);
BEGIN;
INSERT INTO "Order" (id, customer_id) VALUES (91, 5);
SAVEPOINT s;
INSERT INTO invoice VALUES (92, 404);
ROLLBACK TO SAVEPOINT s;
COMMIT;
INSERT INTO invoice VALUES (93, 91);
INSERT INTO invoice VALUES (94, 404);
SELECT id, order_id FROM invoice WHERE id >= 90 ORDER BY id;

-- clean up
DROP TABLE invoice, shipment, "Buchung", region, quote, shift;
DROP FOREIGN TABLE "Order", note, "Zimmer ""Ä""", customer, price, holiday;
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
DELETE FROM splitdb.job;
SELECT splitdb_drop_service('ref_svc');
SELECT splitdb_drop_service('ref_svc2');
DROP DATABASE ref_svc WITH (FORCE);
DROP DATABASE ref_svc2 WITH (FORCE);
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
