--
-- splitdb_rollback: a migrated service brought back into the source, with
-- every row written since the cutover.  Checked here:
-- - the sibling's capture after cutover: one log per table, four triggers
--   per table, enabled ALWAYS, and writes with session_replication_role =
--   replica captured too; a capture trigger made by hand refuses to run; a
--   role that may write a table but not its log writes all the same;
-- - every refusal, each changing nothing: a service never migrated, a job
--   that is not done, a finalized job, a capture trigger dropped or
--   disabled by hand, an archived original gone, a table of the sibling
--   whose columns changed since the cutover;
-- - writes through the shims, directly in the sibling, through a
--   cross-database cascade, and in a table without a key (an enum column
--   among them, which comes back in COPY's text format); then the rollback:
--   the rows are the sibling's last ones, the originals are back under
--   their names with their indexes, the foreign keys are back and valid,
--   the view and the materialized view read the originals, the sequences
--   are past every value used, the shims, reference ends and capture are
--   gone on both sides, the sibling's tables are dropped, the job is
--   rolled_back; a second rollback is refused;
-- - the registry afterwards: no row of the job stands (the archived
--   originals given back are marked too), and splitdb_doctor() finds
--   nothing; a second migration of the service starts clean, and its
--   rollback leaves the same.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

CREATE TABLE "Kunde ""Ä""" (kunde_id integer PRIMARY KEY, name text NOT NULL);
INSERT INTO "Kunde ""Ä""" SELECT g, 'kunde ' || g FROM generate_series(1, 5) g;

CREATE SCHEMA "Rück Weg";
CREATE TABLE "Rück Weg"."Auftrag" (
	id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	kunde_id integer NOT NULL REFERENCES "Kunde ""Ä""" ON DELETE CASCADE,
	note     text UNIQUE,
	qty      integer NOT NULL DEFAULT 1,
	total    integer GENERATED ALWAYS AS (qty * 10) STORED
);
-- an enum: its rows come back in COPY's text format (its binary form
-- carries the sibling's OIDs)
CREATE TYPE "Rück Weg".zustand AS ENUM ('offen', 'fertig');
CREATE TABLE "Rück Weg"."Line Item" (
	line_id    serial PRIMARY KEY,
	auftrag_id bigint NOT NULL REFERENCES "Rück Weg"."Auftrag" ON DELETE CASCADE,
	item       text NOT NULL,
	zustand    "Rück Weg".zustand NOT NULL DEFAULT 'offen'
);
CREATE INDEX "Line Item_item" ON "Rück Weg"."Line Item" (item);
-- no key: any write replays the whole table
CREATE TABLE "Rück Weg".tag (label text, n integer, z "Rück Weg".zustand);
-- partitioned: writes through the root and straight into a partition
CREATE TABLE "Rück Weg".messung (id integer, am date, v text, PRIMARY KEY (id, am))
	PARTITION BY RANGE (am);
CREATE TABLE "Rück Weg".messung_1 PARTITION OF "Rück Weg".messung
	FOR VALUES FROM ('2026-01-01') TO ('2026-07-01');
CREATE TABLE "Rück Weg".messung_2 PARTITION OF "Rück Weg".messung
	FOR VALUES FROM ('2026-07-01') TO ('2027-01-01');
INSERT INTO "Rück Weg".messung SELECT g, date '2026-01-01' + g * 30, 'm' || g FROM generate_series(1, 10) g;

INSERT INTO "Rück Weg"."Auftrag" (kunde_id, note, qty)
	SELECT 1 + g % 5, 'a' || g, 1 + g % 3 FROM generate_series(1, 20) g;
INSERT INTO "Rück Weg"."Line Item" (auftrag_id, item)
	SELECT 1 + g % 20, 'item ' || g FROM generate_series(1, 40) g;
INSERT INTO "Rück Weg".tag VALUES ('eins', 1), ('zwei', 2);

CREATE VIEW "Rück Weg".big AS SELECT id, note, total FROM "Rück Weg"."Auftrag" WHERE qty > 1;
CREATE MATERIALIZED VIEW "Rück Weg"."per Kunde" AS
	SELECT kunde_id, count(*) AS n FROM "Rück Weg"."Auftrag" GROUP BY kunde_id;

SELECT splitdb_add_service('rb_svc');
SELECT splitdb_assign('rb_svc', '"Rück Weg"."Auftrag"', '"Rück Weg"."Line Item"', '"Rück Weg".tag',
					  '"Rück Weg".messung');

-- never migrated: refused
SELECT splitdb_rollback('rb_svc');
SELECT count(*) AS rollbacks FROM splitdb.rollback;

-- offline: tag has no key an online replay could find its rows by
SELECT splitdb_migrate('rb_svc', mode => 'offline', wait => true) > 0 AS started;
SELECT state FROM splitdb.job;

-- what the cutover recorded for the way back
SELECT relkind, schema_name, rel_name, populated FROM splitdb.cutover_relation ORDER BY 2, 3;
SELECT view_name FROM splitdb.cutover_view;
-- the capture objects, in the registry
SELECT service, kind, identity, parent, drop_on FROM splitdb.artifact
 WHERE kind IN ('capture log', 'schema') OR identity LIKE '%capture%' ORDER BY artifact_id;

\c rb_svc
SET client_min_messages = warning;
SELECT relid, log, key_columns FROM splitdb.capture ORDER BY relid::text;
SELECT tgrelid::regclass, tgname, tgenabled, tgtype FROM pg_trigger
 WHERE tgfoid = 'splitdb.capture_changes()'::regprocedure ORDER BY 1, 2;
-- writes straight into the sibling
INSERT INTO "Rück Weg"."Auftrag" (kunde_id, note, qty) VALUES (1, 'direct', 3);
UPDATE "Rück Weg"."Auftrag" SET qty = 3 WHERE note = 'a2';
-- a key changes
UPDATE "Rück Weg"."Line Item" SET line_id = 1000 WHERE line_id = 2;
UPDATE "Rück Weg"."Line Item" SET zustand = 'fertig' WHERE line_id = 4;
DELETE FROM "Rück Weg"."Line Item" WHERE line_id = 1;
INSERT INTO "Rück Weg".tag VALUES ('im Geschwister', 3, 'fertig');
INSERT INTO "Rück Weg".messung_1 VALUES (100, '2026-02-02', 'straight into a partition');
INSERT INTO "Rück Weg".messung VALUES (101, '2026-08-08', 'through the root');
-- a row moves to the other partition
UPDATE "Rück Weg".messung SET am = '2026-12-12' WHERE id = 1;
DELETE FROM "Rück Weg".messung_2 WHERE id = 9;
-- writes applied as a replica are captured too
SET session_replication_role = replica;
INSERT INTO "Rück Weg"."Line Item" (line_id, auftrag_id, item) VALUES (2000, 2, 'as replica');
RESET session_replication_role;
-- a role that may write the table, not the log
CREATE ROLE regress_rb_writer;
GRANT USAGE ON SCHEMA "Rück Weg" TO regress_rb_writer;
GRANT INSERT, SELECT ON "Rück Weg"."Line Item" TO regress_rb_writer;
GRANT USAGE ON SEQUENCE "Rück Weg"."Line Item_line_id_seq" TO regress_rb_writer;
SET ROLE regress_rb_writer;
INSERT INTO "Rück Weg"."Line Item" (auftrag_id, item) VALUES (3, 'by the writer');
SELECT count(*) FROM splitdb_capture.log_1_2;
RESET ROLE;
SELECT splitdb_op, count(*) FROM splitdb_capture.log_1_1 GROUP BY 1 ORDER BY 1;
SELECT splitdb_op, count(*) FROM splitdb_capture.log_1_2 GROUP BY 1 ORDER BY 1;
SELECT splitdb_op, count(*) FROM splitdb_capture.log_1_3 GROUP BY 1 ORDER BY 1;
SELECT splitdb_op, count(*) FROM splitdb_capture.log_1_4 GROUP BY 1 ORDER BY 1;
-- a capture trigger made by hand on another table refuses to run
CREATE TABLE public.elsewhere (id integer PRIMARY KEY);
CREATE TRIGGER fake AFTER INSERT ON public.elsewhere REFERENCING NEW TABLE AS n
	FOR EACH STATEMENT EXECUTE FUNCTION splitdb.capture_changes();
INSERT INTO public.elsewhere VALUES (1);
DROP TABLE public.elsewhere;

\c splitdb_regression
SET client_min_messages = warning;
-- writes through the shims
INSERT INTO "Rück Weg"."Auftrag" (kunde_id, note) VALUES (2, 'through the shim');
UPDATE "Rück Weg"."Line Item" SET item = 'changed' WHERE line_id = 3;
DELETE FROM "Rück Weg".tag WHERE label = 'eins';
UPDATE "Rück Weg".messung SET v = 'through the shim' WHERE id = 2;
-- a cascade from the source into the sibling
DELETE FROM "Kunde ""Ä""" WHERE kunde_id = 3;
-- with the reference off, the sibling takes a row whose customer is missing
SELECT splitdb_reference_mode(reference_id, 'off') FROM splitdb.reference;
\c rb_svc
INSERT INTO "Rück Weg"."Auftrag" (kunde_id, note) VALUES (42, 'orphan');
\c splitdb_regression
SET client_min_messages = warning;

-- the refusals, each changing nothing
CREATE TEMP TABLE job_before AS SELECT job_id, state FROM splitdb.job;
UPDATE splitdb.job SET state = 'failed';
SELECT splitdb_rollback('rb_svc');
UPDATE splitdb.job SET state = 'finalized';
SELECT splitdb_rollback('rb_svc');
UPDATE splitdb.job j SET state = b.state FROM job_before b WHERE b.job_id = j.job_id;
-- an archived original gone: the DDL guard refuses to move it, and when a
-- superuser has disabled the guard, the rollback refuses
ALTER TABLE splitdb_archive.tag SET SCHEMA public;
ALTER EVENT TRIGGER splitdb_guard_ddl DISABLE;
ALTER TABLE splitdb_archive.tag SET SCHEMA public;
SELECT splitdb_rollback('rb_svc');
ALTER TABLE public.tag SET SCHEMA splitdb_archive;
ALTER EVENT TRIGGER splitdb_guard_ddl ENABLE;
-- the capture tampered with
\c rb_svc
DROP TRIGGER splitdb_capture_delete ON "Rück Weg"."Line Item";
\c splitdb_regression
SET client_min_messages = warning;
SELECT splitdb_rollback('rb_svc');
\c rb_svc
SELECT splitdb.install_capture(1, '{"\"Rück Weg\".\"Auftrag\"","\"Rück Weg\".\"Line Item\"","\"Rück Weg\".messung","\"Rück Weg\".tag"}');
ALTER TABLE "Rück Weg".tag DISABLE TRIGGER splitdb_capture_insert;
\c splitdb_regression
SET client_min_messages = warning;
SELECT splitdb_rollback('rb_svc');
\c rb_svc
ALTER TABLE "Rück Weg".tag ENABLE ALWAYS TRIGGER splitdb_capture_insert;
-- the sibling's tables changed since the cutover: a column added there
-- (the replay would drop its values without a word), a column retyped
ALTER TABLE "Rück Weg"."Auftrag" ADD COLUMN "Neu ""Spalte""" integer DEFAULT 7;
\c splitdb_regression
SET client_min_messages = warning;
SELECT splitdb_rollback('rb_svc');
\c rb_svc
ALTER TABLE "Rück Weg"."Auftrag" DROP COLUMN "Neu ""Spalte""";
ALTER TABLE "Rück Weg".messung ALTER COLUMN v TYPE varchar(200);
\c splitdb_regression
SET client_min_messages = warning;
SELECT splitdb_rollback('rb_svc');
\c rb_svc
ALTER TABLE "Rück Weg".messung ALTER COLUMN v TYPE text;
\c splitdb_regression
SET client_min_messages = warning;
SELECT count(*) AS rollbacks FROM splitdb.rollback;
SELECT state FROM splitdb.job;
SELECT count(*) AS shims FROM pg_class WHERE relkind = 'f';

-- the sibling's last state
\c rb_svc
SELECT id, kunde_id, note, qty, total FROM "Rück Weg"."Auftrag" ORDER BY id;
SELECT md5(string_agg(format('%s|%s|%s|%s', line_id, auftrag_id, item, zustand), ',' ORDER BY line_id)),
	   count(*) FROM "Rück Weg"."Line Item";
SELECT label, n, z FROM "Rück Weg".tag ORDER BY label;
SELECT tableoid::regclass, id, am, v FROM "Rück Weg".messung ORDER BY id;

\c splitdb_regression
-- the registry's source objects that go on rollback, as the cutover records
-- them: by the names the originals take back, so dropped by OID
INSERT INTO splitdb.artifact (job_id, service, kind, identity, parent, drop_on)
VALUES (1, NULL, 'foreign table', '"Rück Weg"."Auftrag"', NULL, '{rollback}'),
	   (1, NULL, 'materialized view', '"Rück Weg"."per Kunde"', NULL, '{rollback}');
-- the orphan keeps its foreign key NOT VALID, with a warning
SELECT splitdb_rollback('rb_svc');
SET client_min_messages = warning;
SELECT state FROM splitdb.job;
SELECT step, rounds >= 2 AS rounds, rows_replayed > 0 AS replayed, lock_attempts, runs, last_error
  FROM splitdb.rollback;

-- the rows are the sibling's last ones
SELECT id, kunde_id, note, qty, total FROM "Rück Weg"."Auftrag" ORDER BY id;
SELECT md5(string_agg(format('%s|%s|%s|%s', line_id, auftrag_id, item, zustand), ',' ORDER BY line_id)),
	   count(*) FROM "Rück Weg"."Line Item";
SELECT label, n, z FROM "Rück Weg".tag ORDER BY label;
SELECT tableoid::regclass, id, am, v FROM "Rück Weg".messung ORDER BY id;

-- the originals, back under their names, with their indexes and sequences
SELECT n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname IN ('Rück Weg', 'splitdb_archive') ORDER BY 1, 2;
SELECT conrelid::regclass, conname, contype, convalidated FROM pg_constraint
 WHERE connamespace = '"Rück Weg"'::regnamespace ORDER BY 1, 2;
-- the view and the materialized view read the originals
SELECT DISTINCT d.refobjid::regclass, c.relkind
  FROM pg_rewrite r JOIN pg_depend d ON d.objid = r.oid AND d.classid = 'pg_rewrite'::regclass
  JOIN pg_class c ON c.oid = d.refobjid
 WHERE r.ev_class IN ('"Rück Weg".big'::regclass, '"Rück Weg"."per Kunde"'::regclass)
   AND d.refobjid NOT IN (r.ev_class) ORDER BY 1;
SELECT * FROM "Rück Weg".big ORDER BY id;
SELECT * FROM "Rück Weg"."per Kunde" ORDER BY kunde_id;
-- new rows take ids past every one used
INSERT INTO "Rück Weg"."Auftrag" (kunde_id, note) VALUES (4, 'after the rollback') RETURNING id > 21 AS fresh_id;
INSERT INTO "Rück Weg"."Line Item" (auftrag_id, item) VALUES (4, 'after') RETURNING line_id > 41 AS fresh_id;
-- the foreign keys hold again, the cascade is local
DELETE FROM "Kunde ""Ä""" WHERE kunde_id = 4;
SELECT count(*) FROM "Rück Weg"."Auftrag" WHERE kunde_id = 4;
INSERT INTO "Rück Weg"."Auftrag" (kunde_id) VALUES (99);
-- no shim, no reference end, no reference trigger is left
SELECT count(*) AS foreign_tables FROM pg_class WHERE relkind = 'f';
SELECT count(*) AS reference_ends FROM splitdb.reference_end;
SELECT count(*) AS splitdb_triggers FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
 WHERE p.pronamespace = 'splitdb'::regnamespace;
SELECT constraint_name, dropped_at FROM splitdb.reference;

-- the sibling: no table, no capture, no reference end, and none of the
-- extensions and schemas the job installed there (the registry lists them)
\c rb_svc
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname IN ('Rück Weg', 'splitdb_capture') ORDER BY 1, 2;
SELECT extname FROM pg_extension WHERE extname IN ('splitdb', 'postgres_fdw') ORDER BY 1;
SELECT nspname FROM pg_namespace WHERE nspname IN ('splitdb', 'splitdb_capture', 'Rück Weg') ORDER BY 1;
DROP OWNED BY regress_rb_writer;
DROP ROLE regress_rb_writer;

\c splitdb_regression
SET client_min_messages = warning;
SELECT kind, identity, dropped_at IS NOT NULL AS dropped FROM splitdb.artifact
 WHERE kind IN ('capture log', 'foreign table', 'materialized view') ORDER BY artifact_id;
-- no row of the registry stands: what the rollback dropped is marked, and
-- so are the archived originals it gave back under their names
SELECT service IS NULL AS in_source, drop_on, count(*) AS objects,
	   count(*) FILTER (WHERE dropped_at IS NULL) AS standing
  FROM splitdb.artifact GROUP BY 1, 2 ORDER BY 1, 2;
SELECT * FROM splitdb_doctor();
-- once is enough
SELECT splitdb_rollback('rb_svc');

-- a second migration of the service starts clean, and goes back again
DELETE FROM "Rück Weg"."Auftrag" WHERE kunde_id = 42;
ALTER TABLE "Rück Weg"."Auftrag" VALIDATE CONSTRAINT "Auftrag_kunde_id_fkey";
SELECT splitdb_migrate('rb_svc', mode => 'offline', wait => true) > 0 AS started;
SELECT job_id, state FROM splitdb.job ORDER BY job_id;
-- the references of the rolled-back job are history: the view shows the
-- second job's alone, and their mode cannot change
SELECT r.job_id, v.constraint_name, v.mode, v.enforced
  FROM splitdb_references v JOIN splitdb.reference r USING (reference_id) ORDER BY 1, 2;
SELECT splitdb_reference_mode(reference_id, 'off') FROM splitdb.reference
 WHERE job_id = (SELECT min(job_id) FROM splitdb.job) ORDER BY reference_id LIMIT 1;
SELECT job_id, mode, count(*) FROM splitdb.reference GROUP BY 1, 2 ORDER BY 1, 2;
SELECT job_id, count(*) FILTER (WHERE dropped_at IS NULL) AS standing FROM splitdb.artifact
 GROUP BY 1 ORDER BY 1;
SELECT * FROM splitdb_doctor();
SELECT splitdb_rollback('rb_svc');
SET client_min_messages = warning;
SELECT job_id, state FROM splitdb.job ORDER BY job_id;
SELECT count(*) FILTER (WHERE dropped_at IS NULL) AS standing FROM splitdb.artifact;
SELECT * FROM splitdb_doctor();
SELECT count(*) AS rows_back FROM "Rück Weg"."Auftrag";
SELECT count(*) AS references_in_force FROM splitdb_references;

-- clean up
DROP SCHEMA "Rück Weg" CASCADE;
DROP TABLE "Kunde ""Ä""";
DROP SCHEMA IF EXISTS splitdb_archive CASCADE;
DELETE FROM splitdb.job;
SELECT splitdb_drop_service('rb_svc');
DROP DATABASE rb_svc WITH (FORCE);
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
