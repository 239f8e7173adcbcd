--
-- Change capture's trigger (src/migrate/capture.c, capturelog.c), in the
-- database that captures, without a migration:
-- - each write logs its keys, the same through the direct writer
--   (splitdb.capture_direct = on, the default) and through SPI (off):
--   INSERT I, DELETE D, an UPDATE that keeps a row's key U once, one that
--   changes it U with the old and the new key, TRUNCATE T, a table without
--   a key T, a statement that writes no row nothing, partitions into their
--   root's log;
-- - a capture row changed or deleted in the middle of a session is seen by
--   the next statement, and so is a key column's new attribute number;
-- - a log with a column of its own or a trigger is written as an INSERT
--   would (its default filled, its trigger fired);
-- - the log is written as its owner: a role without rights on it still
--   writes the table, and an owner without INSERT on its log is refused;
-- - a trigger that is not one of splitdb's capture triggers refuses to run.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

CREATE SCHEMA "Erfassung";
CREATE TABLE "Erfassung"."Konto" (id integer PRIMARY KEY, "Name" text NOT NULL, saldo integer);
CREATE TABLE "Erfassung".paar (a text, b integer, v text, PRIMARY KEY (a, b));
CREATE TABLE "Erfassung".ohne (label text);
CREATE TABLE "Erfassung".teil (id integer, am date, PRIMARY KEY (id, am)) PARTITION BY RANGE (am);
CREATE TABLE "Erfassung".teil_1 PARTITION OF "Erfassung".teil FOR VALUES FROM ('2026-01-01') TO ('2026-07-01');
CREATE TABLE "Erfassung".teil_2 PARTITION OF "Erfassung".teil FOR VALUES FROM ('2026-07-01') TO ('2027-01-01');
SELECT splitdb.install_capture(7, '{"\"Erfassung\".\"Konto\"","\"Erfassung\".paar","\"Erfassung\".ohne","\"Erfassung\".teil"}');
SELECT relid, log, key_columns FROM splitdb.capture ORDER BY relid::text;

-- the direct writer
SHOW splitdb.capture_direct;
INSERT INTO "Erfassung"."Konto" SELECT g, 'k' || g, 0 FROM generate_series(1, 4) g;
UPDATE "Erfassung"."Konto" SET saldo = 10 WHERE id = 1;
UPDATE "Erfassung"."Konto" SET id = 10 WHERE id = 2;
UPDATE "Erfassung"."Konto" SET saldo = 20 WHERE id IN (3, 4);
UPDATE "Erfassung"."Konto" SET saldo = 30 WHERE id = 99;
DELETE FROM "Erfassung"."Konto" WHERE id = 10;
INSERT INTO "Erfassung".paar VALUES ('x', 1, 'eins'), ('y', 2, 'zwei');
UPDATE "Erfassung".paar SET b = 3 WHERE a = 'x';
UPDATE "Erfassung".paar SET v = 'drei' WHERE a = 'x';
INSERT INTO "Erfassung".ohne VALUES ('a'), ('b');
UPDATE "Erfassung".ohne SET label = 'c' WHERE label = 'nothing';
DELETE FROM "Erfassung".ohne WHERE label = 'a';
INSERT INTO "Erfassung".teil VALUES (1, '2026-02-02'), (2, '2026-08-08');
INSERT INTO "Erfassung".teil_1 VALUES (3, '2026-03-03');
UPDATE "Erfassung".teil SET am = '2026-09-09' WHERE id = 1;
TRUNCATE "Erfassung".paar;
SELECT splitdb_op, id FROM splitdb_capture.log_7_1 ORDER BY splitdb_id;
SELECT splitdb_op, a, b FROM splitdb_capture.log_7_2 ORDER BY splitdb_id;
SELECT splitdb_op FROM splitdb_capture.log_7_3 ORDER BY splitdb_id;
SELECT splitdb_op, id, am FROM splitdb_capture.log_7_4 ORDER BY splitdb_id;
-- several keys changed in one statement: the old and the new of each
INSERT INTO "Erfassung"."Konto" VALUES (5, 'k5', 0), (6, 'k6', 0);
TRUNCATE splitdb_capture.log_7_1;
UPDATE "Erfassung"."Konto" SET id = id + 100 WHERE id IN (5, 6);
SELECT splitdb_op, id FROM splitdb_capture.log_7_1 ORDER BY id;

-- the same writes through SPI log the same keys
TRUNCATE "Erfassung"."Konto", "Erfassung".ohne, "Erfassung".teil;
TRUNCATE splitdb_capture.log_7_1, splitdb_capture.log_7_2, splitdb_capture.log_7_3,
	splitdb_capture.log_7_4;
SET splitdb.capture_direct = off;
INSERT INTO "Erfassung"."Konto" SELECT g, 'k' || g, 0 FROM generate_series(1, 4) g;
UPDATE "Erfassung"."Konto" SET saldo = 10 WHERE id = 1;
UPDATE "Erfassung"."Konto" SET id = 10 WHERE id = 2;
UPDATE "Erfassung"."Konto" SET saldo = 20 WHERE id IN (3, 4);
UPDATE "Erfassung"."Konto" SET saldo = 30 WHERE id = 99;
DELETE FROM "Erfassung"."Konto" WHERE id = 10;
INSERT INTO "Erfassung".paar VALUES ('x', 1, 'eins'), ('y', 2, 'zwei');
UPDATE "Erfassung".paar SET b = 3 WHERE a = 'x';
UPDATE "Erfassung".paar SET v = 'drei' WHERE a = 'x';
INSERT INTO "Erfassung".ohne VALUES ('a'), ('b');
UPDATE "Erfassung".ohne SET label = 'c' WHERE label = 'nothing';
DELETE FROM "Erfassung".ohne WHERE label = 'a';
INSERT INTO "Erfassung".teil VALUES (1, '2026-02-02'), (2, '2026-08-08');
INSERT INTO "Erfassung".teil_1 VALUES (3, '2026-03-03');
UPDATE "Erfassung".teil SET am = '2026-09-09' WHERE id = 1;
TRUNCATE "Erfassung".paar;
SELECT splitdb_op, id FROM splitdb_capture.log_7_1 ORDER BY splitdb_id;
SELECT splitdb_op, a, b FROM splitdb_capture.log_7_2 ORDER BY splitdb_id;
SELECT splitdb_op FROM splitdb_capture.log_7_3 ORDER BY splitdb_id;
SELECT splitdb_op, id, am FROM splitdb_capture.log_7_4 ORDER BY splitdb_id;
RESET splitdb.capture_direct;

-- a capture row changed in the middle of the session: the next statement
-- follows it (no key: T), then back
TRUNCATE splitdb_capture.log_7_1;
INSERT INTO "Erfassung"."Konto" VALUES (20, 'k20', 0);
UPDATE splitdb.capture SET key_columns = '{}' WHERE relid = '"Erfassung"."Konto"'::regclass;
INSERT INTO "Erfassung"."Konto" VALUES (21, 'k21', 0);
UPDATE splitdb.capture SET key_columns = '{id}' WHERE relid = '"Erfassung"."Konto"'::regclass;
INSERT INTO "Erfassung"."Konto" VALUES (22, 'k22', 0);
SELECT splitdb_op, id FROM splitdb_capture.log_7_1 ORDER BY splitdb_id;
-- the relation's row gone: its writes are refused, and change nothing
BEGIN;
DELETE FROM splitdb.capture WHERE relid = '"Erfassung"."Konto"'::regclass;
INSERT INTO "Erfassung"."Konto" VALUES (23, 'k23', 0);
ROLLBACK;
SELECT count(*) AS k23 FROM "Erfassung"."Konto" WHERE id = 23;
SELECT count(*) AS entries FROM splitdb_capture.log_7_1;

-- a key column dropped and added again, under a new attribute number: the
-- next write reads the new one
INSERT INTO "Erfassung".paar VALUES ('w', 1, 'vorher');
ALTER TABLE "Erfassung".paar DROP COLUMN b CASCADE;
ALTER TABLE "Erfassung".paar ADD COLUMN b integer;
INSERT INTO "Erfassung".paar VALUES ('z', 'nachher', 7);
SELECT splitdb_op, a, b FROM splitdb_capture.log_7_2 WHERE a IN ('w', 'z') ORDER BY splitdb_id;

-- a log with a column of its own, then with a trigger: written as an INSERT
-- would, its default filled and its trigger fired, by either path
ALTER TABLE splitdb_capture.log_7_1 ADD COLUMN note text NOT NULL DEFAULT 'default filled';
INSERT INTO "Erfassung"."Konto" VALUES (24, 'k24', 0);
SELECT splitdb_op, id, note FROM splitdb_capture.log_7_1 WHERE id = 24;
ALTER TABLE splitdb_capture.log_7_1 DROP COLUMN note;
CREATE FUNCTION public.log_seen() RETURNS trigger LANGUAGE plpgsql AS
$$BEGIN RAISE WARNING 'log row % %', NEW.splitdb_op, NEW.id; RETURN NEW; END$$;
CREATE TRIGGER seen BEFORE INSERT ON splitdb_capture.log_7_1 FOR EACH ROW EXECUTE FUNCTION public.log_seen();
INSERT INTO "Erfassung"."Konto" VALUES (25, 'k25', 0);
DROP TRIGGER seen ON splitdb_capture.log_7_1;
INSERT INTO "Erfassung"."Konto" VALUES (26, 'k26', 0);
SELECT splitdb_op, id FROM splitdb_capture.log_7_1 WHERE id >= 24 ORDER BY splitdb_id;

-- a role that may write the table and has no right on the log
CREATE ROLE regress_cap_writer;
GRANT USAGE ON SCHEMA "Erfassung" TO regress_cap_writer;
GRANT SELECT, INSERT, UPDATE, DELETE ON "Erfassung"."Konto" TO regress_cap_writer;
SET ROLE regress_cap_writer;
INSERT INTO "Erfassung"."Konto" VALUES (30, 'k30', 0);
UPDATE "Erfassung"."Konto" SET id = 31 WHERE id = 30;
DELETE FROM "Erfassung"."Konto" WHERE id = 31;
SELECT count(*) FROM splitdb_capture.log_7_1;
RESET ROLE;
SELECT splitdb_op, id FROM splitdb_capture.log_7_1 WHERE id >= 30 ORDER BY splitdb_id;
-- the log is written as its owner: an owner without INSERT on it is
-- refused, by either path, and the write changes nothing
CREATE ROLE regress_cap_owner;
ALTER TABLE splitdb_capture.log_7_1 OWNER TO regress_cap_owner;
GRANT USAGE ON SCHEMA splitdb_capture TO regress_cap_owner;
INSERT INTO "Erfassung"."Konto" VALUES (32, 'k32', 0);
REVOKE INSERT ON splitdb_capture.log_7_1 FROM regress_cap_owner;
INSERT INTO "Erfassung"."Konto" VALUES (33, 'k33', 0);
SET splitdb.capture_direct = off;
INSERT INTO "Erfassung"."Konto" VALUES (33, 'k33', 0);
RESET splitdb.capture_direct;
SELECT count(*) AS k33 FROM "Erfassung"."Konto" WHERE id = 33;
GRANT INSERT ON splitdb_capture.log_7_1 TO regress_cap_owner;
INSERT INTO "Erfassung"."Konto" VALUES (34, 'k34', 0);
SELECT splitdb_op, id FROM splitdb_capture.log_7_1 WHERE id >= 32 ORDER BY splitdb_id;

-- triggers that are not splitdb's capture triggers refuse to run
CREATE TABLE public.anders (id integer PRIMARY KEY);
CREATE TRIGGER fake AFTER INSERT ON public.anders REFERENCING NEW TABLE AS n
	FOR EACH STATEMENT EXECUTE FUNCTION splitdb.capture_changes();
INSERT INTO public.anders VALUES (1);
CREATE TRIGGER no_table AFTER DELETE ON "Erfassung"."Konto"
	FOR EACH STATEMENT EXECUTE FUNCTION splitdb.capture_changes();
DELETE FROM "Erfassung"."Konto" WHERE id = 1;
DROP TRIGGER no_table ON "Erfassung"."Konto";
CREATE TRIGGER per_row AFTER DELETE ON "Erfassung"."Konto"
	FOR EACH ROW EXECUTE FUNCTION splitdb.capture_changes();
DELETE FROM "Erfassung"."Konto" WHERE id = 1;
DROP TRIGGER per_row ON "Erfassung"."Konto";
SELECT count(*) AS konto_1 FROM "Erfassung"."Konto" WHERE id = 1;

DROP TABLE public.anders;
SELECT splitdb.drop_capture(7);
DROP SCHEMA "Erfassung" CASCADE;
DROP OWNED BY regress_cap_writer, regress_cap_owner;
DROP ROLE regress_cap_writer, regress_cap_owner;
DROP FUNCTION public.log_seen();
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
