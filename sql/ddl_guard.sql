--
-- DDL on a table that a job is moving, and on its archived original, is
-- refused (src/migrate/ddlguard.c).  Checked here:
-- - while the job is failed (it resumes from what the sibling holds):
--   ALTER TABLE, CREATE INDEX, a partition created or attached, a rule, a
--   policy, DROP TABLE, DROP TRIGGER of a capture trigger, ALTER SCHEMA
--   of the table's schema, and DROP FUNCTION ... CASCADE of the function of
--   an expression index or of a trigger on it are refused with 55006 and a
--   hint to cancel, and each refused command changes nothing; DROP INDEX
--   too, by an unqualified name, and under a search_path whose first
--   schema shadows the operators of the guard's own queries; and DROP
--   OWNED ... CASCADE of the owner of an expression index's function;
-- - the same for the table's owner, who is no superuser;
-- - COMMENT is refused too (the sibling has the table's comments); GRANT
--   stays allowed, and so does DDL on tables no job moves (a DROP
--   FUNCTION ... CASCADE that drops an index of one);
-- - the plan names the way out: cancel while the job is failed, rollback
--   or finalize once it is done;
-- - once the job is done the archived original refuses the same, and so
--   does DROP SCHEMA splitdb_archive CASCADE, and DROP TRIGGER of the
--   trigger that refuses writes to it; it refuses INSERT, UPDATE,
--   DELETE and TRUNCATE as well;
-- - a cancelled or finalized job's tables are no longer guarded (shown by
--   the clean-up at the end, which drops what the job left).
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

CREATE TYPE guard_mood AS ENUM ('calm', 'busy');
CREATE TABLE "Guard Tab" (id integer PRIMARY KEY, "Wert ü" text NOT NULL, mood guard_mood);
INSERT INTO "Guard Tab" SELECT g, 'row ' || g, 'calm' FROM generate_series(1, 20) g;
-- an index and a trigger that a DROP FUNCTION ... CASCADE would take along
CREATE FUNCTION guard_fold(text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT lower($1) $$;
CREATE INDEX guard_fold_idx ON "Guard Tab" (guard_fold("Wert ü"));
CREATE FUNCTION guard_stamp() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER guard_stamp BEFORE UPDATE ON "Guard Tab" FOR EACH ROW EXECUTE FUNCTION guard_stamp();
-- and one that DROP OWNED ... CASCADE of its function's owner would
CREATE ROLE regress_guard_fn_owner;
CREATE FUNCTION guard_neg(integer) RETURNS integer LANGUAGE sql IMMUTABLE AS $$ SELECT -$1 $$;
ALTER FUNCTION guard_neg(integer) OWNER TO regress_guard_fn_owner;
CREATE INDEX guard_neg_idx ON "Guard Tab" (guard_neg(id));
CREATE TABLE guard_parts (id integer, k integer, PRIMARY KEY (id, k)) PARTITION BY LIST (k);
CREATE TABLE guard_parts_1 PARTITION OF guard_parts FOR VALUES IN (1);
INSERT INTO guard_parts SELECT g, 1 FROM generate_series(1, 5) g;
CREATE TABLE guard_loose (id integer PRIMARY KEY);
CREATE FUNCTION guard_loose_key(integer) RETURNS integer LANGUAGE sql IMMUTABLE AS $$ SELECT -$1 $$;
CREATE INDEX guard_loose_key_idx ON guard_loose (guard_loose_key(id));
CREATE TABLE guard_attach (id integer, k integer, PRIMARY KEY (id, k));
CREATE ROLE regress_guard_owner;
ALTER TABLE guard_loose OWNER TO regress_guard_owner;
ALTER TABLE guard_parts_1 OWNER TO regress_guard_owner;

SELECT splitdb_add_service('guard_svc');
SELECT splitdb_assign('guard_svc', '"Guard Tab"', 'guard_parts');

-- the sibling changes every row it receives, so the job fails to verify
\c guard_svc
CREATE FUNCTION public.sabotage() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN NEW."Wert ü" := upper(NEW."Wert ü"); RETURN NEW; END $$;
CREATE FUNCTION public.add_sabotage() RETURNS event_trigger LANGUAGE plpgsql AS
$$
BEGIN
	IF pg_catalog.to_regclass('public."Guard Tab"') IS NOT NULL
	   AND NOT EXISTS (SELECT FROM pg_catalog.pg_trigger WHERE tgname = 'sabotage') THEN
		CREATE TRIGGER sabotage BEFORE INSERT ON public."Guard Tab"
			FOR EACH ROW EXECUTE FUNCTION public.sabotage();
	END IF;
END
$$;
CREATE EVENT TRIGGER add_sabotage ON ddl_command_end EXECUTE FUNCTION public.add_sabotage();
\c splitdb_regression
SET client_min_messages = warning;

SELECT splitdb_migrate('guard_svc', wait => true);
SELECT state FROM splitdb.job;
-- the plan names the way out: a cancel
SELECT action, object, detail FROM splitdb_plan('guard_svc') WHERE action = 'warning';

-- what the refused commands must leave as it is
CREATE VIEW guard_shape AS
SELECT c.oid::regclass AS rel, c.relnamespace::regnamespace AS nsp,
       (SELECT count(*) FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns,
       (SELECT count(*) FROM pg_index i WHERE i.indrelid = c.oid) AS indexes,
       (SELECT count(*) FROM pg_inherits i WHERE i.inhparent = c.oid) AS partitions,
       (SELECT count(*) FROM pg_rewrite r WHERE r.ev_class = c.oid) AS rules,
       (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies,
       (SELECT count(*) FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal) AS triggers
  FROM pg_class c
 WHERE c.relname IN ('Guard Tab', 'guard_parts', 'guard_parts_1')
 ORDER BY c.relname, c.relnamespace::regnamespace::text;
SELECT * FROM guard_shape;

-- a failed job: refused, with a hint to cancel first
ALTER TABLE "Guard Tab" ADD COLUMN extra integer;
ALTER TABLE "Guard Tab" RENAME TO "Guard Tab 2";
CREATE INDEX ON "Guard Tab" ("Wert ü");
CREATE TABLE guard_parts_2 PARTITION OF guard_parts FOR VALUES IN (2);
ALTER TABLE guard_parts ATTACH PARTITION guard_attach FOR VALUES IN (3);
ALTER TABLE guard_parts DETACH PARTITION guard_parts_1;
CREATE INDEX ON guard_parts_1 (k);
CREATE RULE guard_rule AS ON INSERT TO "Guard Tab" DO ALSO NOTHING;
CREATE POLICY guard_policy ON "Guard Tab" USING (true);
DROP TABLE "Guard Tab";
DROP TABLE guard_parts_1;
DROP TYPE guard_mood CASCADE;
DROP TRIGGER splitdb_capture_insert ON "Guard Tab";
ALTER SCHEMA public RENAME TO guard_public;
-- a CASCADE that would take an index (refused before it runs) or a trigger
-- of the table along
DROP FUNCTION guard_fold(text) CASCADE;
DROP FUNCTION guard_stamp() CASCADE;
-- names are found as the command finds them: unqualified, and under a
-- search_path whose first schema shadows the operators of the guard's
-- queries (they run under pg_catalog, pg_temp)
DROP INDEX guard_fold_idx;
CREATE SCHEMA guard_evil;
CREATE FUNCTION guard_evil.never(oid, oid) RETURNS boolean LANGUAGE sql AS $$ SELECT false $$;
CREATE OPERATOR guard_evil.= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = guard_evil.never);
CREATE FUNCTION guard_evil.never(text, text) RETURNS boolean LANGUAGE sql AS $$ SELECT false $$;
CREATE OPERATOR guard_evil.<> (LEFTARG = text, RIGHTARG = text, FUNCTION = guard_evil.never);
SET search_path = guard_evil, pg_catalog, public;
DROP INDEX guard_fold_idx;
DROP FUNCTION guard_fold(text) CASCADE;
RESET search_path;
DROP SCHEMA guard_evil CASCADE;
DROP OWNED BY regress_guard_fn_owner CASCADE;
SELECT to_regclass('guard_fold_idx') IS NOT NULL AS index_kept,
       to_regprocedure('guard_fold(text)') IS NOT NULL AS function_kept,
       to_regprocedure('guard_stamp()') IS NOT NULL AS trigger_function_kept,
       to_regclass('guard_neg_idx') IS NOT NULL AS owned_index_kept;
-- the table's owner, no superuser, is refused the same
SET ROLE regress_guard_owner;
ALTER TABLE guard_parts_1 ADD CONSTRAINT guard_k CHECK (k > 0);
DROP TABLE guard_parts_1;
DROP TRIGGER splitdb_capture_delete ON guard_parts_1;
ALTER TABLE guard_loose ADD COLUMN owner_note text;
RESET ROLE;
SELECT * FROM guard_shape;
SELECT to_regclass('guard_parts_2') AS no_new_partition;

-- refused: a comment, which the sibling's copy would not have
COMMENT ON TABLE "Guard Tab" IS 'moving to guard_svc';
SELECT obj_description('"Guard Tab"'::regclass, 'pg_class') AS comment;
-- allowed: GRANT, and tables no job moves
GRANT SELECT ON "Guard Tab" TO PUBLIC;
ALTER TABLE guard_loose ADD COLUMN note text;
DROP FUNCTION guard_loose_key(integer) CASCADE;
SELECT to_regclass('guard_loose_key_idx') IS NULL AS loose_index_dropped;

-- resume without the sabotage: the job ends done
\c guard_svc
DROP EVENT TRIGGER add_sabotage;
DROP TRIGGER sabotage ON "Guard Tab";
\c splitdb_regression
SET client_min_messages = warning;
SELECT splitdb_migrate('guard_svc', wait => true) > 0 AS resumed;
SELECT state FROM splitdb.job;
-- now: rollback or finalize
SELECT action, object, detail FROM splitdb_plan('guard_svc');

-- the archived original: refused, with a hint to finalize
ALTER TABLE splitdb_archive."Guard Tab" ADD COLUMN extra integer;
CREATE INDEX ON splitdb_archive."Guard Tab" ("Wert ü");
CREATE TRIGGER guard_trigger BEFORE INSERT ON splitdb_archive."Guard Tab"
	FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger();
DROP TABLE splitdb_archive.guard_parts_1;
DROP SCHEMA splitdb_archive CASCADE;
DROP FUNCTION guard_fold(text) CASCADE;
DROP TYPE guard_mood CASCADE;
DROP TRIGGER splitdb_archive_guard ON splitdb_archive."Guard Tab";
SELECT * FROM guard_shape;
-- writes to the archived original are refused too; the rows live in the sibling
INSERT INTO splitdb_archive."Guard Tab" VALUES (100, 'new', 'busy');
UPDATE splitdb_archive."Guard Tab" SET "Wert ü" = 'changed';
DELETE FROM splitdb_archive.guard_parts;
DELETE FROM splitdb_archive.guard_parts_1;
TRUNCATE splitdb_archive."Guard Tab";
SELECT count(*), min("Wert ü"), max("Wert ü") FROM splitdb_archive."Guard Tab";
SELECT count(*) FROM splitdb_archive.guard_parts;
-- through the shim they land in the sibling
INSERT INTO "Guard Tab" VALUES (100, 'new', 'busy');
SELECT count(*) FROM "Guard Tab";
-- the shim is no original: it may change
COMMENT ON FOREIGN TABLE "Guard Tab" IS 'the shim';

-- clean up: a job that is over no longer guards its tables
UPDATE splitdb.job SET state = 'finalized';
DROP SCHEMA splitdb_archive CASCADE;
DROP FOREIGN TABLE "Guard Tab", guard_parts;
DROP VIEW guard_shape;
DROP TABLE guard_loose, guard_attach;
DROP TYPE guard_mood;
DELETE FROM splitdb.job;
SELECT splitdb_drop_service('guard_svc');
DROP DATABASE guard_svc WITH (FORCE);
DROP ROLE regress_guard_owner;
DROP OWNED BY regress_guard_fn_owner;
DROP ROLE regress_guard_fn_owner;
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
