--
-- splitdb_migrate: the whole job, offline mode, on a sibling database of
-- this cluster.  Checked here:
-- - every refusal (a bad mode, an unknown service, a service
--   with no tables, a plan with blockers, a table already in the sibling,
--   a second migration), each leaving splitdb.job empty or unchanged;
-- - the job's rows and the status views once it is done;
-- - the sibling's tables, rows, sequences and constraints;
-- - the source after cutover: originals in splitdb_archive, shims under the
--   old names, a view re-pointed, materialized views created anew over the
--   shims (rows, indexes, options, owner, grants, comments, populated or
--   not), cross-service foreign keys recorded and dropped;
-- - reads and writes through the shims, RETURNING, and identity and serial
--   values drawn from the sibling, never colliding with rows inserted there;
-- - tables of the same name in two schemas, archived side by side;
-- - names with quotes, spaces, mixed case and non-ASCII letters.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

CREATE TYPE room_kind AS ENUM ('single', 'double', 'suite');
CREATE DOMAIN positive_int AS integer CHECK (VALUE > 0);

CREATE TABLE guest (
	guest_id serial PRIMARY KEY,
	name     text NOT NULL
);

CREATE TABLE "Booking" (
	id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	guest_id   integer NOT NULL REFERENCES guest,
	kind       room_kind NOT NULL DEFAULT 'single',
	nights     positive_int,
	price      numeric(10,2) CHECK (price >= 0),
	total      numeric GENERATED ALWAYS AS (price * nights) STORED,
	note       text COLLATE "C",
	booked_at  timestamptz NOT NULL DEFAULT '2026-01-01 00:00:00+00'
);
CREATE INDEX booking_guest_idx ON "Booking" (guest_id);
CREATE INDEX booking_long_idx ON "Booking" (nights) WHERE nights > 7;
COMMENT ON TABLE "Booking" IS 'room bookings';
COMMENT ON COLUMN "Booking".note IS 'free text';

CREATE TABLE "Zimmer ""Extra"" Größe" (
	"Extra-ID" serial PRIMARY KEY,
	booking_id bigint NOT NULL REFERENCES "Booking" ON DELETE CASCADE,
	"Was"      text NOT NULL UNIQUE
);

-- stays in the source, but refers to a table that moves
CREATE TABLE invoice (
	invoice_id integer PRIMARY KEY,
	booking_id bigint REFERENCES "Booking"
);

CREATE VIEW long_stays AS
	SELECT b.id, g.name, b.nights FROM "Booking" b JOIN guest g USING (guest_id)
	 WHERE b.nights > 7;

-- materialized views over a moving table, one populated and one not
CREATE MATERIALIZED VIEW "Nächte je Art" WITH (fillfactor = 90) AS
	SELECT kind, count(*) AS bookings, sum(nights) AS "Nächte" FROM "Booking" GROUP BY kind;
CREATE MATERIALIZED VIEW pending_notes AS
	SELECT id, note FROM "Booking" WHERE note LIKE 'via%' WITH NO DATA;
CREATE UNIQUE INDEX "Nächte je Art_kind" ON "Nächte je Art" (kind);
CREATE INDEX nights_idx ON "Nächte je Art" ("Nächte") WHERE "Nächte" > 0;
CLUSTER "Nächte je Art" USING "Nächte je Art_kind";
ALTER MATERIALIZED VIEW "Nächte je Art" ALTER COLUMN bookings SET STATISTICS 300;
COMMENT ON MATERIALIZED VIEW "Nächte je Art" IS 'nights per kind';
COMMENT ON COLUMN "Nächte je Art"."Nächte" IS 'sum of nights';
COMMENT ON INDEX "Nächte je Art_kind" IS 'one row per kind';
-- one over a table of this service and one of the next
CREATE SCHEMA nord;
CREATE TABLE nord."Booking" (id serial PRIMARY KEY, note text);
CREATE INDEX "Booking_note_idx" ON nord."Booking" (note);
INSERT INTO nord."Booking" (note) VALUES ('nord 1');
CREATE MATERIALIZED VIEW beide AS
	SELECT b.id, n.note FROM "Booking" b JOIN nord."Booking" n ON n.id = b.id;
CREATE ROLE regress_mv_reader;
CREATE ROLE regress_mv_kind_reader;
-- a grantee whose name holds the dollar quote of the cutover's DO block
CREATE ROLE "regress $splitdb$ reader";
GRANT SELECT ("Was") ON "Zimmer ""Extra"" Größe" TO "regress $splitdb$ reader";
GRANT SELECT ON "Nächte je Art" TO regress_mv_reader;
GRANT SELECT (kind) ON "Nächte je Art" TO regress_mv_kind_reader;

INSERT INTO guest (name) SELECT 'guest ' || g FROM generate_series(1, 5) g;
INSERT INTO "Booking" (guest_id, kind, nights, price, note)
	SELECT 1 + g % 5, (ARRAY['single', 'double', 'suite'])[1 + g % 3]::room_kind,
		   1 + g % 10, g * 10, E'line\tone\nline two ' || g
	  FROM generate_series(1, 250) g;
INSERT INTO "Zimmer ""Extra"" Größe" (booking_id, "Was")
	SELECT g, 'extra ' || g FROM generate_series(1, 30) g;
INSERT INTO invoice VALUES (1, 10), (2, 20);

REFRESH MATERIALIZED VIEW "Nächte je Art";
SELECT * FROM "Nächte je Art" ORDER BY kind;

SELECT splitdb_add_service('mig_svc');

-- a service that owns nothing is refused, and nothing is written
SELECT splitdb_migrate('mig_svc');
SELECT count(*) AS jobs FROM splitdb.job;

SELECT splitdb_assign('mig_svc', '"Booking"', '"Zimmer ""Extra"" Größe"');
-- the plan warns that OVERRIDING SYSTEM VALUE will be refused through the shim
SELECT action, object, detail FROM splitdb_plan('mig_svc') WHERE detail LIKE '%OVERRIDING%';
SELECT service, job_id, state, tables_total FROM splitdb_status WHERE service = 'mig_svc';
SELECT table_name, job_id, phase FROM splitdb_table_status WHERE service = 'mig_svc' ORDER BY 1;

-- modes: online (the default) and offline; anything else is a typo
SELECT splitdb_migrate('mig_svc', mode => 'fast');
SELECT splitdb_migrate('no_such_service');
SELECT count(*) AS jobs FROM splitdb.job;

-- a blocker in the plan stops it before anything starts
CREATE RULE booking_audit AS ON DELETE TO "Booking" DO ALSO NOTHING;
SELECT splitdb_migrate('mig_svc');
DROP RULE booking_audit ON "Booking";
-- so does a materialized view over it that a view reads
CREATE VIEW nights_total AS SELECT sum("Nächte") FROM "Nächte je Art";
SELECT splitdb_migrate('mig_svc');
DROP VIEW nights_total;
SELECT count(*) AS jobs FROM splitdb.job;

-- a table that is already in the sibling, with rows or without
\c mig_svc
CREATE TABLE "Booking" (id bigint);
INSERT INTO "Booking" VALUES (1);
\c splitdb_regression
SET client_min_messages = warning;
SELECT splitdb_migrate('mig_svc');
\c mig_svc
TRUNCATE "Booking";
\c splitdb_regression
SET client_min_messages = warning;
SELECT splitdb_migrate('mig_svc');
\c mig_svc
DROP TABLE "Booking";
\c splitdb_regression
SET client_min_messages = warning;
SELECT count(*) AS jobs FROM splitdb.job;

-- an unreachable sibling: refused with libpq's message, never the password
CREATE TEMP TABLE saved_server AS
	SELECT srvoptions FROM pg_foreign_server WHERE srvname = 'splitdb_mig_svc';
ALTER SERVER splitdb_mig_svc OPTIONS (SET host '/nonexistent');
ALTER USER MAPPING FOR CURRENT_USER SERVER splitdb_mig_svc OPTIONS (ADD password 'Secret-pw-1');
DO $$
DECLARE
	st text;
	msg text;
	det text;
	hint text;
BEGIN
	PERFORM splitdb_migrate('mig_svc');
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
							det = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
	RAISE WARNING 'SQLSTATE %: %', st, msg;
	RAISE WARNING 'the detail is libpq''s: %; it shows the password: %',
		det LIKE '%/nonexistent/.s.PGSQL.%', det LIKE '%Secret-pw-1%' OR hint LIKE '%Secret-pw-1%';
	RAISE WARNING 'hint: %', hint;
END
$$;
DO $$
BEGIN
	EXECUTE format('ALTER SERVER splitdb_mig_svc OPTIONS (SET host %L)',
				   (SELECT substr(o, 6) FROM saved_server, unnest(srvoptions) o WHERE o LIKE 'host=%'));
END
$$;
ALTER USER MAPPING FOR CURRENT_USER SERVER splitdb_mig_svc OPTIONS (DROP password);
SELECT count(*) AS jobs FROM splitdb.job;

-- the job, small batches so the copy takes several checkpoints
SET splitdb.batch_rows = 40;
SELECT splitdb_migrate('mig_svc', wait => true) > 0 AS started;

SELECT service, state, phase, current_table, tables_done, tables_total,
	   rows_copied, rows_total, bytes_copied > 0 AS bytes, eta, last_error,
	   worker_pid, finished_at IS NOT NULL AS finished
  FROM splitdb_status WHERE service = 'mig_svc';
SELECT table_name, phase, rows_copied, rows_total, key_columns, copy_format,
	   source_rows, target_rows, counts_match, checksums_match, verified, error
  FROM splitdb_table_status WHERE service = 'mig_svc' ORDER BY table_name;
SELECT state, phase, runs, last_error, last_sqlstate FROM splitdb.job;
-- 40 rows a batch: the last checkpoint of the big table is its last key
SELECT table_name, last_key FROM splitdb.job_table ORDER BY 1;

-- the cross-service foreign keys, recorded with their definition
SELECT constraint_name, child_table, child_service, child_columns, parent_table,
	   parent_service, parent_columns, match_type, on_delete, on_update,
	   is_deferrable, definition, dropped_at IS NOT NULL AS dropped
  FROM splitdb.reference ORDER BY child_table, constraint_name;

-- the source: originals archived, shims under the old names, keys dropped
SELECT c.relname, c.relkind, n.nspname
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relname IN ('Booking', 'Zimmer "Extra" Größe', 'Booking_id_seq',
					 'Zimmer "Extra" Größe_Extra-ID_seq')
 ORDER BY 1, 3;
SELECT conname FROM pg_constraint WHERE conrelid = 'invoice'::regclass ORDER BY 1;
\d "Booking"
\d "Zimmer ""Extra"" Größe"

-- the sibling: same rows, same constraints, sequences where the source stood
\c mig_svc
SELECT count(*), sum(id), min(note), max(total) FROM "Booking";
SELECT count(*), max("Extra-ID") FROM "Zimmer ""Extra"" Größe";
SELECT conrelid::regclass, conname, pg_get_constraintdef(oid)
  FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2;
SELECT indexrelid::regclass, pg_get_indexdef(indexrelid)
  FROM pg_index WHERE indrelid IN ('"Booking"'::regclass, '"Zimmer ""Extra"" Größe"'::regclass)
 ORDER BY indexrelid::regclass::text COLLATE "C";
SELECT last_value, is_called FROM "Booking_id_seq";
SELECT last_value, is_called FROM "Zimmer ""Extra"" Größe_Extra-ID_seq";
-- the copies' owners and grants, given at the cutover
SELECT c.relname, pg_get_userbyid(c.relowner) AS owner,
	   has_column_privilege('regress $splitdb$ reader', c.oid, 'Was', 'SELECT') AS reader_was,
	   has_column_privilege('regress $splitdb$ reader', c.oid, 'booking_id', 'SELECT') AS reader_booking
  FROM pg_class c WHERE c.oid = '"Zimmer ""Extra"" Größe"'::regclass;
SELECT format_type(atttypid, atttypmod), attname FROM pg_attribute
 WHERE attrelid = '"Booking"'::regclass AND attnum > 0 ORDER BY attnum;
-- a row written directly in the sibling takes the next values there
INSERT INTO "Booking" (guest_id, nights, price) VALUES (3, 2, 50) RETURNING id, total;
INSERT INTO "Zimmer ""Extra"" Größe" (booking_id, "Was") VALUES (251, 'direct')
	RETURNING "Extra-ID";
\c splitdb_regression
SET client_min_messages = warning;

-- through the shims: reads, the re-pointed view, writes with RETURNING
SELECT count(*), sum(id) FROM "Booking";
SELECT * FROM long_stays ORDER BY id LIMIT 3;
SELECT pg_get_viewdef('long_stays'::regclass) LIKE '%"Booking"%' AS view_uses_shim,
	   EXISTS (SELECT FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
				WHERE r.ev_class = 'long_stays'::regclass
				  AND d.refobjid = 'splitdb_archive."Booking"'::regclass) AS view_uses_archive;
INSERT INTO "Booking" (guest_id, nights, price, note) VALUES (2, 3, 70, 'via shim')
	RETURNING id, kind, total, note;
INSERT INTO "Zimmer ""Extra"" Größe" (booking_id, "Was") VALUES (252, 'via shim')
	RETURNING *;
-- an identity column that is GENERATED ALWAYS takes no value, as before
INSERT INTO "Booking" (id, guest_id, nights, price) VALUES (9999, 1, 1, 1);
-- and, unlike before, not with OVERRIDING SYSTEM VALUE either (428C9), as
-- the plan warned: nothing is written
\set VERBOSITY sqlstate
INSERT INTO "Booking" (id, guest_id, nights, price) OVERRIDING SYSTEM VALUE
	VALUES (9999, 1, 1, 1);
\set VERBOSITY default
SELECT count(*) AS rows_9999 FROM "Booking" WHERE id = 9999;
UPDATE "Booking" SET price = 80 WHERE note = 'via shim' RETURNING id, price, total;
DELETE FROM "Zimmer ""Extra"" Größe" WHERE "Was" = 'via shim' RETURNING "Extra-ID";
SELECT id, guest_id, nights, price, total, note FROM "Booking" WHERE id > 250 ORDER BY id;
-- an INSERT through a shim goes 100 rows to a statement (the batch_size of
-- the server splitdb_add_service() made), unless the shim has row triggers
-- for INSERT: "Booking" references guest, which stays, so its rows go one
-- at a time
SELECT option_value AS batch_size
  FROM pg_foreign_server s, pg_options_to_table(s.srvoptions)
 WHERE s.srvname = 'splitdb_mig_svc' AND option_name = 'batch_size';
CREATE FUNCTION batch_size_of(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	l text;
BEGIN
	FOR l IN EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) ' || q LOOP
		IF l ~ 'Batch Size' THEN
			RETURN trim(l);
		END IF;
	END LOOP;
	RETURN NULL;
END $$;
SELECT batch_size_of($$INSERT INTO "Zimmer ""Extra"" Größe" (booking_id, "Was") VALUES (252, 'x')$$) AS plain_shim,
	   batch_size_of($$INSERT INTO "Booking" (guest_id, nights, price) VALUES (2, 3, 70)$$) AS shim_with_reference;
DROP FUNCTION batch_size_of(text);
-- the shims carry the originals' grants, the columns' too: a role granted
-- one column only reads that column through the shim
SELECT has_column_privilege('regress $splitdb$ reader', '"Zimmer ""Extra"" Größe"', 'Was', 'SELECT') AS reader_was,
	   has_column_privilege('regress $splitdb$ reader', '"Zimmer ""Extra"" Größe"', 'booking_id', 'SELECT') AS reader_booking,
	   has_table_privilege('regress $splitdb$ reader', '"Zimmer ""Extra"" Größe"', 'SELECT') AS reader_table;
-- and their comments, the columns' too
SELECT obj_description('"Booking"'::regclass, 'pg_class') AS table_comment,
	   col_description('"Booking"'::regclass,
					   (SELECT attnum FROM pg_attribute
						 WHERE attrelid = '"Booking"'::regclass AND attname = 'note')) AS note_comment;

-- the materialized views: created anew under their names, over the shim,
-- with what they had; the originals went to the archive
SELECT c.oid::regclass AS matview, c.relnamespace::regnamespace AS schema,
	   c.relispopulated, c.reloptions, obj_description(c.oid, 'pg_class') AS comment,
	   EXISTS (SELECT FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
				WHERE r.ev_class = c.oid AND d.refobjid = 'public."Booking"'::regclass) AS reads_shim
  FROM pg_class c WHERE c.relkind = 'm' ORDER BY 2, 1;
SELECT indexrelid::regclass, indisclustered, pg_get_indexdef(indexrelid),
	   obj_description(indexrelid, 'pg_class') AS comment
  FROM pg_index WHERE indrelid = '"Nächte je Art"'::regclass ORDER BY 1;
SELECT attname, attstattarget, col_description(attrelid, attnum) AS comment,
	   has_column_privilege('regress_mv_kind_reader', attrelid, attnum, 'SELECT') AS kind_reader
  FROM pg_attribute WHERE attrelid = '"Nächte je Art"'::regclass AND attnum > 0 ORDER BY attnum;
SELECT has_table_privilege('regress_mv_reader', '"Nächte je Art"', 'SELECT') AS reader,
	   has_table_privilege('regress_mv_kind_reader', '"Nächte je Art"', 'SELECT') AS kind_reader,
	   pg_get_userbyid(relowner) = current_user AS same_owner
  FROM pg_class WHERE oid = '"Nächte je Art"'::regclass;
-- the rows of the cutover (two rows were added in the sibling since)
SELECT * FROM "Nächte je Art" ORDER BY kind;
-- and refreshed through it, concurrently too
REFRESH MATERIALIZED VIEW CONCURRENTLY "Nächte je Art";
SELECT * FROM "Nächte je Art" ORDER BY kind;
SELECT * FROM pending_notes;
REFRESH MATERIALIZED VIEW pending_notes;
SELECT * FROM pending_notes;

-- the archive still holds the originals, untouched
SELECT count(*), sum(id) FROM splitdb_archive."Booking";
SELECT table_name, source_rows, target_rows, ok FROM splitdb_verify('mig_svc') ORDER BY 1;

-- migrated is migrated; the service's tables are fixed now
SELECT splitdb_migrate('mig_svc');
-- and its plan says so, instead of planning the archived originals
SELECT * FROM splitdb_plan('mig_svc');
SELECT splitdb_assign('mig_svc', 'invoice');
SELECT splitdb_unassign('mig_svc', '"Booking"');
SELECT splitdb_drop_service('mig_svc');
SELECT count(*) AS jobs, min(state) AS state FROM splitdb.job;

-- tables of the same name in two schemas, and a name the archive holds
-- already: the originals, their indexes and their sequences all fit in
-- splitdb_archive, those whose name is taken with a number
-- (nord."Booking" is there since the start: matview beide reads it)
CREATE SCHEMA "Süd";
CREATE TABLE "Süd"."Booking" (id serial PRIMARY KEY, note text);
INSERT INTO "Süd"."Booking" (note) VALUES ('süd 1'), ('süd 2');
-- a default that is more than nextval(), over a sequence its column owns
CREATE SEQUENCE "Süd"."Zähler Nr";
CREATE TABLE "Süd"."Zähler" (
	nr    bigint PRIMARY KEY DEFAULT nextval('"Süd"."Zähler Nr"') * 10,
	label text DEFAULT 'o''clock'
);
ALTER SEQUENCE "Süd"."Zähler Nr" OWNED BY "Süd"."Zähler".nr;
INSERT INTO "Süd"."Zähler" DEFAULT VALUES;
-- a table that stays and draws from the same sequence
CREATE TABLE "Süd".bleibt (id integer PRIMARY KEY, nr bigint DEFAULT nextval('"Süd"."Zähler Nr"'));
INSERT INTO "Süd".bleibt (id) VALUES (1);
SELECT splitdb_add_service('mig_svc2');
SELECT splitdb_assign('mig_svc2', '"Süd"."Booking"', 'nord."Booking"', '"Süd"."Zähler"');
-- the plan re-points beide, not the copy of it the first job archived
SELECT action, object FROM splitdb_plan('mig_svc2') WHERE action IN ('repoint_view', 'blocker');
SELECT splitdb_migrate('mig_svc2', wait => true) > 0 AS migrated;
SELECT c.relname, c.relkind FROM pg_class c
 WHERE c.relnamespace = 'splitdb_archive'::regnamespace ORDER BY 1;
SELECT table_name, source_rows, target_rows, ok FROM splitdb_verify('mig_svc2') ORDER BY 1;
SELECT relkind, count(*) FROM pg_class
 WHERE relnamespace IN ('"Süd"'::regnamespace, 'nord'::regnamespace) GROUP BY 1;
SELECT * FROM "Süd"."Booking" UNION ALL SELECT * FROM nord."Booking" ORDER BY 2;
-- beide: archived by each job, the one in public reads both shims
SELECT c.oid::regclass AS matview,
	   (SELECT string_agg(DISTINCT d.refobjid::regclass::text, ', ')
		  FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
		 WHERE r.ev_class = c.oid AND d.refclassid = 'pg_class'::regclass
		   AND d.refobjid <> c.oid) AS reads
  FROM pg_class c WHERE c.relname LIKE 'beide%' ORDER BY 1;
SELECT * FROM beide;
INSERT INTO nord."Booking" (note) VALUES ('nord 2') RETURNING id;
-- the sequence went to the archive with its table; the shim's default
-- names it there and draws from it, as the original did
SELECT a.attname, pg_get_expr(d.adbin, d.adrelid) AS shim_default
  FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
 WHERE d.adrelid = '"Süd"."Zähler"'::regclass ORDER BY 1;
INSERT INTO "Süd"."Zähler" DEFAULT VALUES RETURNING *;
SELECT * FROM "Süd"."Zähler" ORDER BY 1;
-- finalized with the shims kept: the archived originals go, and the
-- sequence that the shim's and bleibt's defaults draw from comes back to
-- its schema, owned by the shim's column as it was by the table's
CREATE VIEW zähler_nr_owner AS
SELECT s.oid::regclass AS sequence,
	   (SELECT format('%s.%I', d.refobjid::regclass, a.attname)
		  FROM pg_depend d JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
		 WHERE d.classid = 'pg_class'::regclass AND d.objid = s.oid AND d.deptype = 'a') AS owned_by
  FROM pg_class s WHERE s.relname = 'Zähler Nr';
-- the first job first: its archived beide reads nord."Booking", which
-- the second job archived; the other order is refused, dropping nothing
CREATE VIEW jobs_left AS
SELECT j.service, j.state, count(*) FILTER (WHERE a.dropped_at IS NULL) AS artifacts_left
  FROM splitdb.job j JOIN splitdb.artifact a ON a.job_id = j.job_id
 GROUP BY 1, 2 ORDER BY 1;
SELECT * FROM jobs_left;
SELECT splitdb_finalize('mig_svc2');
SELECT * FROM jobs_left;
-- a function whose body uses an archived original: the source's drops
-- are tried first and fail, before the sibling's capture is dropped
CREATE FUNCTION archived_bookings() RETURNS bigint LANGUAGE sql
BEGIN ATOMIC SELECT count(*) FROM splitdb_archive."Booking"; END;
SELECT splitdb_finalize('mig_svc');
SELECT * FROM jobs_left;
SELECT kind, identity FROM splitdb.artifact a JOIN splitdb.job j USING (job_id)
 WHERE j.service = 'mig_svc' AND a.kind = 'capture log' AND a.service IS NOT NULL
   AND a.dropped_at IS NULL ORDER BY 2;
DROP FUNCTION archived_bookings();
SELECT splitdb_finalize('mig_svc');
SELECT splitdb_finalize('mig_svc2');
SELECT * FROM zähler_nr_owner;
SELECT count(*) AS archived_left FROM pg_class c
 JOIN splitdb.cutover_relation r ON r.relid = c.oid
 JOIN splitdb.job j ON j.job_id = r.job_id AND j.service = 'mig_svc2'
 WHERE c.relnamespace = 'splitdb_archive'::regnamespace;
INSERT INTO "Süd"."Zähler" DEFAULT VALUES RETURNING *;
INSERT INTO "Süd".bleibt (id) VALUES (2) RETURNING *;
-- the shims dropped too (beide reads them): the sequence stays for
-- bleibt, owned by nothing
DROP MATERIALIZED VIEW beide;
SELECT splitdb_finalize('mig_svc2', drop_shim => true);
SELECT * FROM zähler_nr_owner;
SELECT to_regclass('"Süd"."Zähler"') AS shim;
INSERT INTO "Süd".bleibt (id) VALUES (3) RETURNING *;
DROP VIEW zähler_nr_owner, jobs_left;

-- clean up: the shims use the service's server
DROP VIEW long_stays;
DROP MATERIALIZED VIEW "Nächte je Art", pending_notes;
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
DROP TABLE invoice, guest;
DROP FOREIGN TABLE "Booking", "Zimmer ""Extra"" Größe";
DROP SCHEMA "Süd", nord CASCADE;
DROP ROLE regress_mv_reader, regress_mv_kind_reader;
DELETE FROM splitdb.job;
SELECT splitdb_drop_service('mig_svc');
SELECT splitdb_drop_service('mig_svc2');
DROP DATABASE mig_svc WITH (FORCE);
DROP DATABASE mig_svc2 WITH (FORCE);
DROP ROLE "regress $splitdb$ reader";
DROP TYPE room_kind;
DROP DOMAIN positive_int;
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
