--
-- Checks of referenced keys on splitdb's own connection
-- (splitdb.check_connection, on by default):
-- - a check holds its lock in a remote transaction of splitdb's own, which
--   ends after the local commit; both references of a row that point into
--   one database take one round trip; so does a statement of many keys;
-- - before the transaction writes to that database through postgres_fdw (a
--   shim, a view over a shim, SELECT ... FOR UPDATE, COPY), the locks move
--   to postgres_fdw's remote transaction, so the write does not wait for
--   them, and the actions and refusals are PostgreSQL's;
-- - after such a write, checks use postgres_fdw's connection, which sees it;
-- - a refused key inside a savepoint, PREPARE TRANSACTION, and the setting
--   turned off;
-- - postgres_fdw's password rule for a role that is not a superuser;
-- - the lookup of a row's key sent ahead, before the row is written.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

-- move to service cc_svc
CREATE TABLE "Kunde Ä" (
	"Nr ""x""" integer PRIMARY KEY,
	name       text
);
CREATE TABLE product (id integer PRIMARY KEY);
-- stays, and refers to both
CREATE TABLE line (
	id         integer PRIMARY KEY,
	kunde      integer REFERENCES "Kunde Ä" ON DELETE CASCADE,
	product_id integer REFERENCES product
);
INSERT INTO "Kunde Ä" SELECT g, 'k' || g FROM generate_series(1, 20) g;
INSERT INTO product SELECT g FROM generate_series(1, 20) g;

SELECT splitdb_add_service('cc_svc');
SELECT splitdb_assign('cc_svc', '"Kunde Ä"', 'product');
SELECT splitdb_migrate('cc_svc', wait => true) > 0 AS migrated;
SHOW splitdb.check_connection;

-- splitdb's sessions in the sibling, read through postgres_fdw (reading
-- hands nothing over); the function drops the statistics snapshot that
-- would otherwise last for the remote transaction
SELECT current_database() AS source_db \gset
\c cc_svc
CREATE FUNCTION splitdb_sessions() RETURNS TABLE (state text, query text)
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_catalog.pg_stat_clear_snapshot();
	RETURN QUERY SELECT a.state, a.query FROM pg_catalog.pg_stat_activity a
				  WHERE a.datname = current_database() AND a.application_name = 'splitdb';
END
$$;
CREATE VIEW check_session AS
	SELECT state, query LIKE '%FOR KEY SHARE OF t' OR query LIKE '%splitdb.reference_lookup(%' AS last_query_locks FROM splitdb_sessions();
\c :source_db
SET client_min_messages = warning;
CREATE FOREIGN TABLE check_session (state text, last_query_locks boolean)
	SERVER splitdb_cc_svc OPTIONS (table_name 'check_session');

--
-- A check holds its lock on splitdb's connection until the local commit
--
BEGIN;
INSERT INTO line VALUES (1, 1, 1);
SELECT * FROM check_session;
COMMIT;
-- the two references of a row are checked in one round trip
CREATE TEMP TABLE before AS SELECT reference_id, round_trips FROM splitdb_references;
INSERT INTO line VALUES (2, 2, 2);
SELECT r.constraint_name, r.round_trips - b.round_trips AS round_trips
  FROM splitdb_references r JOIN before b USING (reference_id)
 ORDER BY 1;
-- a statement of more keys than one small lookup takes (100 customers) is
-- checked there too, its locks held until the commit (the key of its first
-- row went ahead: a round trip of its own in the counters)
INSERT INTO "Kunde Ä" SELECT g, 'k' || g FROM generate_series(1001, 1100) g;
CREATE TEMP TABLE before_bulk AS SELECT reference_id, round_trips FROM splitdb_references;
BEGIN;
INSERT INTO line SELECT g, g, 1 FROM generate_series(1001, 1100) g;
SELECT * FROM check_session;
COMMIT;
SELECT r.constraint_name, r.round_trips - b.round_trips AS round_trips
  FROM splitdb_references r JOIN before_bulk b USING (reference_id)
 ORDER BY 1;
DELETE FROM line WHERE id > 1000;
DELETE FROM "Kunde Ä" WHERE "Nr ""x""" > 1000;
-- a missing key is refused, naming the remote table
INSERT INTO line VALUES (3, 99, 3);
INSERT INTO line VALUES (3, 3, 99);
SELECT count(*) FROM line WHERE id = 3;

--
-- A write through postgres_fdw after a check: the locks move first
--
-- ON DELETE CASCADE through the shim: applied, no wait for splitdb's lock
BEGIN;
INSERT INTO line VALUES (3, 3, 3);
SELECT * FROM check_session;
DELETE FROM "Kunde Ä" WHERE "Nr ""x""" = 3;
SELECT * FROM check_session;
SELECT count(*) FROM line WHERE id = 3;
COMMIT;
SELECT count(*) FROM line WHERE id = 3;
-- NO ACTION: refused, nothing changed
BEGIN;
INSERT INTO line VALUES (4, 4, 4);
DELETE FROM product WHERE id = 4;
ROLLBACK;
SELECT (SELECT count(*) FROM product WHERE id = 4) AS products,
	   (SELECT count(*) FROM line WHERE id = 4) AS lines;
-- SELECT ... FOR UPDATE through the shim, then a delete through a view
CREATE VIEW product_v AS SELECT * FROM product;
BEGIN;
INSERT INTO line VALUES (5, 5, 5);
SELECT id FROM product WHERE id = 5 FOR UPDATE;
SELECT * FROM check_session;
DELETE FROM product_v WHERE id = 5;
ROLLBACK;

--
-- A check after a write through postgres_fdw sees the write
--
BEGIN;
INSERT INTO product VALUES (100);
INSERT INTO line VALUES (6, 6, 100);
SELECT count(*) AS splitdb_in_transaction FROM check_session WHERE state = 'idle in transaction';
COMMIT;
BEGIN;
COPY product FROM stdin;
101
\.
INSERT INTO line VALUES (7, 7, 101);
COMMIT;
SELECT id, kunde, product_id FROM line WHERE id IN (6, 7) ORDER BY id;

--
-- A refused key inside a savepoint; the transaction goes on
--
BEGIN;
INSERT INTO line VALUES (8, 8, 8);
SAVEPOINT s;
INSERT INTO line VALUES (9, 99, 8);
ROLLBACK TO SAVEPOINT s;
INSERT INTO line VALUES (9, 9, 9);
COMMIT;
SELECT id, kunde, product_id FROM line ORDER BY id;

--
-- PREPARE TRANSACTION cannot keep the remote locks: refused, nothing kept
--
BEGIN;
INSERT INTO line VALUES (10, 10, 10);
PREPARE TRANSACTION 'splitdb_cc';
SELECT count(*) FROM line WHERE id = 10;
SELECT count(*) FROM pg_prepared_xacts;
-- turned off, checks use postgres_fdw's connection, and postgres_fdw refuses
SET splitdb.check_connection = off;
BEGIN;
INSERT INTO line VALUES (10, 10, 10);
PREPARE TRANSACTION 'splitdb_cc';
INSERT INTO line VALUES (10, 10, 10);
INSERT INTO line VALUES (11, 10, 99);
RESET splitdb.check_connection;
SELECT id, kunde, product_id FROM line WHERE id >= 10 ORDER BY id;


--
-- Statement forms that postgres_fdw cannot apply to a shim are refused
-- with a message that says the table moved (not PostgreSQL's, which names
-- a missing unique index or "this table type"), in a WITH clause too;
-- nothing is written.  On a table that stays they are checked as before.
--
INSERT INTO product VALUES (1) ON CONFLICT (id) DO UPDATE SET id = 21;
INSERT INTO product VALUES (1), (21) ON CONFLICT (id) DO NOTHING;
WITH i AS (INSERT INTO product VALUES (1) ON CONFLICT (id) DO UPDATE SET id = 21 RETURNING id)
SELECT * FROM i;
BEGIN;
DECLARE c CURSOR FOR SELECT id FROM product WHERE id = 2 FOR UPDATE;
FETCH c;
UPDATE product SET id = 22 WHERE CURRENT OF c;
ROLLBACK;
BEGIN;
DECLARE c CURSOR FOR SELECT id FROM product WHERE id = 2 FOR UPDATE;
FETCH c;
DELETE FROM product WHERE CURRENT OF c;
ROLLBACK;
-- PostgreSQL's own refusal
MERGE INTO product p USING (VALUES (23)) v(id) ON p.id = v.id
	WHEN NOT MATCHED THEN INSERT VALUES (v.id);
SELECT count(*) FROM product WHERE id BETWEEN 21 AND 23;
-- without a conflict target the shim takes it
INSERT INTO product VALUES (1), (21) ON CONFLICT DO NOTHING;
SELECT id FROM product WHERE id BETWEEN 21 AND 23;
DELETE FROM product WHERE id = 21;
-- on the table that stays, the changed key is checked
INSERT INTO line VALUES (9, 9, 9) ON CONFLICT (id) DO UPDATE SET product_id = 99;
BEGIN;
DECLARE c CURSOR FOR SELECT id FROM line WHERE id = 9 FOR UPDATE;
FETCH c;
UPDATE line SET product_id = 98 WHERE CURRENT OF c;
ROLLBACK;
SELECT id, kunde, product_id FROM line WHERE id = 9;

--
-- An owner that is not a superuser: postgres_fdw's password rule, the same
-- refusal with the setting on or off
--
CREATE ROLE cc_owner;
CREATE ROLE cc_writer;
ALTER TABLE line OWNER TO cc_owner;
GRANT INSERT ON line TO cc_writer;
CREATE USER MAPPING FOR cc_owner SERVER splitdb_cc_svc OPTIONS (user 'cc_owner');
SET ROLE cc_writer;
INSERT INTO line VALUES (12, 12, 12);
SET splitdb.check_connection = off;
INSERT INTO line VALUES (12, 12, 12);
RESET splitdb.check_connection;
RESET ROLE;
SELECT count(*) FROM line WHERE id = 12;

--
-- Lookups sent ahead: a BEFORE trigger of each referencing end sends the
-- row's lookup before the row is written; the check at the end of the
-- statement takes its answer only for the key it queued, and only when
-- the row was found
--
SELECT tgname, tgtype & 2 <> 0 AS before, tgenabled
  FROM pg_trigger WHERE tgrelid = 'line'::regclass AND NOT tgisinternal
 ORDER BY 1;
-- a BEFORE trigger that fires after splitdb's changes or drops the row
CREATE FUNCTION line_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.id = 21 THEN NEW.product_id := 99; END IF;	-- sent 14, 99 is missing
	IF NEW.id = 28 THEN NEW.product_id := 19; END IF;	-- sent 13, 19 exists
	IF NEW.id = 22 THEN NEW.product_id := 14; END IF;	-- sent 99, 14 exists
	IF NEW.id = 23 THEN RETURN NULL; END IF;			-- sent 99, row dropped
	RETURN NEW;
END
$$;
CREATE TRIGGER zz_rewrite BEFORE INSERT OR UPDATE ON line
	FOR EACH ROW EXECUTE FUNCTION line_rewrite();
INSERT INTO line VALUES (21, 14, 14);
INSERT INTO line VALUES (22, 14, 99);
INSERT INTO line VALUES (23, 14, 99);
SELECT id, kunde, product_id FROM line WHERE id BETWEEN 21 AND 23 ORDER BY id;
-- the guess went out before the row was written: it locked product 13,
-- which the row no longer names, until the end of the transaction (seen
-- from the sibling, after a later check read past its answer)
\c cc_svc
CREATE FUNCTION product_locked(integer) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	PERFORM FROM public.product WHERE id = $1 FOR UPDATE NOWAIT;
	RETURN false;
EXCEPTION WHEN lock_not_available THEN
	RETURN true;
END
$$;
CREATE VIEW product_lock AS SELECT id, product_locked(id) AS locked FROM product;
\c :source_db
SET client_min_messages = warning;
CREATE FOREIGN TABLE product_lock (id integer, locked boolean)
	SERVER splitdb_cc_svc OPTIONS (table_name 'product_lock');
BEGIN;
INSERT INTO line VALUES (28, 13, 13);
INSERT INTO line VALUES (29, 16, 16);
SELECT id, locked FROM product_lock WHERE id IN (12, 13, 19) ORDER BY id;
ROLLBACK;
-- the next check reads past the ROLLBACK
INSERT INTO line VALUES (30, 17, 17);
SELECT id, locked FROM product_lock WHERE id IN (13, 19) ORDER BY id;
DROP FOREIGN TABLE product_lock;
DROP TRIGGER zz_rewrite ON line;
-- an update of the key goes ahead too; one to a missing key is refused
UPDATE line SET product_id = 99 WHERE id = 22;
UPDATE line SET product_id = 15 WHERE id = 22;
SELECT id, kunde, product_id FROM line WHERE id = 22;
-- many rows: the first goes ahead, the rest in one batch; the missing key
-- of the third row is reported
INSERT INTO line VALUES (24, 16, 16), (25, 16, 17), (26, 16, 99);
SELECT count(*) FROM line WHERE id BETWEEN 24 AND 26;
-- the row fails here after its lookup went out: the next transactions
-- read past the answer
INSERT INTO line VALUES (22, 16, 16);
INSERT INTO line VALUES (24, 16, 16);
INSERT INTO line VALUES (25, 16, 99);
-- and inside a savepoint, the transaction going on
BEGIN;
INSERT INTO line VALUES (26, 17, 17);
SAVEPOINT s;
INSERT INTO line VALUES (26, 17, 17);
ROLLBACK TO SAVEPOINT s;
INSERT INTO line VALUES (27, 17, 18);
SELECT * FROM check_session;
COMMIT;
SELECT id, kunde, product_id FROM line WHERE id BETWEEN 21 AND 27 ORDER BY id;

-- postgres_fdw deallocates the prepared statements of its connection at the
-- commit of a transaction in which a subtransaction failed after writing
-- through it: the lookups splitdb prepared there (a deleted product's key
-- looked up again in the sibling, on postgres_fdw's connection, which the
-- delete through the shim wrote) are prepared again in the next
-- transaction, which failed with 26000 (prepared statement "splitdb_<n>"
-- does not exist)
INSERT INTO product VALUES (201), (202), (203);
DO $$
BEGIN
	BEGIN
		DELETE FROM product WHERE id = 201;
		RAISE EXCEPTION 'undone';
	EXCEPTION WHEN raise_exception THEN
		NULL;
	END;
	DELETE FROM product WHERE id = 202;
END
$$;
DELETE FROM product WHERE id = 203;
BEGIN;
SAVEPOINT s;
DELETE FROM product WHERE id = 201;
ROLLBACK TO SAVEPOINT s;
DELETE FROM product WHERE id = 201;
COMMIT;
INSERT INTO product VALUES (204);
DELETE FROM product WHERE id = 204;
SELECT id FROM product WHERE id > 200 ORDER BY id;

-- an error of the other database while splitdb proves a write's origin is
-- relayed with the context of a reference's statement, which names no
-- service (the server splitdb_cc_svc is no service's name); the delete
-- changes nothing
\c cc_svc
ALTER FUNCTION splitdb.origin_challenge() RENAME TO origin_challenge_away;
\c :source_db
SET client_min_messages = warning;
DELETE FROM product WHERE id = 20;
SELECT count(*) AS kept FROM product WHERE id = 20;
\c cc_svc
ALTER FUNCTION splitdb.origin_challenge_away() RENAME TO origin_challenge;
\c :source_db
SET client_min_messages = warning;

-- clean up
DROP FUNCTION line_rewrite();
DROP USER MAPPING FOR cc_owner SERVER splitdb_cc_svc;
ALTER TABLE line OWNER TO CURRENT_USER;
REVOKE ALL ON line FROM cc_writer;
DROP ROLE cc_writer;
DROP ROLE cc_owner;
DROP VIEW product_v;
DROP FOREIGN TABLE check_session;
DROP TABLE line;
DROP FOREIGN TABLE "Kunde Ä", product;
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
DELETE FROM splitdb.job;
SELECT splitdb_drop_service('cc_svc');
DROP DATABASE cc_svc WITH (FORCE);
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
