--
-- The sibling's sequences after the cutover, from the source's sequences in
-- every state.
--
-- The cutover read each source sequence with pg_sequence_last_value(),
-- which is NULL for a sequence set with setval(..., false) (the usual
-- idiom after a bulk load with explicit ids: the next nextval() returns
-- that value), and took NULL for a sequence never used: the sibling's
-- sequence stayed behind, and the first inserts through the shim drew ids
-- the copied rows had (23505).  Now the sibling's sequence takes the
-- source's last_value and is_called wherever the source would hand out a
-- further value next; a rollback sets the source's from the sibling's the
-- same way.
-- Names with spaces, mixed case and non-ASCII letters.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

CREATE SCHEMA "Folge Sché";
-- loaded with explicit ids, then set to hand out 601 next
CREATE TABLE "Folge Sché"."Geladen" (id serial PRIMARY KEY, v text);
INSERT INTO "Folge Sché"."Geladen" SELECT g, 'x' FROM generate_series(1, 600) g;
SELECT setval('"Folge Sché"."Geladen_id_seq"', 601, false);
-- used the usual way
CREATE TABLE "Folge Sché"."Benutzt" (id serial PRIMARY KEY, v text);
INSERT INTO "Folge Sché"."Benutzt" (v) SELECT 'x' FROM generate_series(1, 5);
-- never used
CREATE TABLE "Folge Sché"."Leer" (id serial PRIMARY KEY, v text);

SELECT splitdb_add_service('folge_svc');
SELECT splitdb_assign('folge_svc', '"Folge Sché"."Geladen"', '"Folge Sché"."Benutzt"',
					  '"Folge Sché"."Leer"');
SELECT splitdb_migrate('folge_svc', mode => 'offline', wait => true) > 0 AS migrated;

\c folge_svc
SELECT sequencename, last_value FROM pg_sequences
 WHERE schemaname = 'Folge Sché' ORDER BY 1;
\c splitdb_regression
SET client_min_messages = warning;

-- inserts through the shims draw ids no copied row has
INSERT INTO "Folge Sché"."Geladen" (v) VALUES ('neu') RETURNING id;
INSERT INTO "Folge Sché"."Benutzt" (v) VALUES ('neu') RETURNING id;
INSERT INTO "Folge Sché"."Leer" (v) VALUES ('neu') RETURNING id;

-- the other way: loaded in the sibling, set to hand out 801 next there,
-- then rolled back: the source's sequence follows
\c folge_svc
INSERT INTO "Folge Sché"."Geladen" SELECT g, 'y' FROM generate_series(700, 800) g;
SELECT setval('"Folge Sché"."Geladen_id_seq"', 801, false);
\c splitdb_regression
SET client_min_messages = warning;
SELECT splitdb_rollback('folge_svc');
INSERT INTO "Folge Sché"."Geladen" (v) VALUES ('zurück') RETURNING id;

-- clean up
DELETE FROM splitdb.job;
DROP SCHEMA IF EXISTS splitdb_archive CASCADE;
DROP SCHEMA "Folge Sché" CASCADE;
SELECT splitdb_drop_service('folge_svc');
DROP DATABASE folge_svc WITH (FORCE);
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
