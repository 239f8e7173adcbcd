--
-- Functions bound to the row type of a table that moves.  A function that
-- takes or returns a table's row type (or an array of it) depends on that
-- type by OID; the cutover archives the table with its type, so the
-- function stays bound to the archived original: a call with a row read
-- through the shim finds no such function (42883), and splitdb_finalize()
-- cannot drop the archive while the function uses its type.  The plan
-- warns about each such function.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;
\set SHOW_CONTEXT never

CREATE SCHEMA "Catalog";
CREATE TABLE "Catalog"."Item" (
	id    integer PRIMARY KEY,
	label text
);
INSERT INTO "Catalog"."Item" VALUES (1, 'one'), (2, 'two');
-- takes the row type
CREATE FUNCTION "Catalog".item_caption(i "Catalog"."Item") RETURNS text
	LANGUAGE sql AS $$ SELECT i.id || ': ' || i.label $$;
-- returns a set of it
CREATE FUNCTION "Catalog".items_from(low integer) RETURNS SETOF "Catalog"."Item"
	LANGUAGE sql AS $$ SELECT * FROM "Catalog"."Item" WHERE id >= low $$;
-- an array of it
CREATE FUNCTION "Catalog".item_count(items "Catalog"."Item"[]) RETURNS integer
	LANGUAGE sql AS $$ SELECT cardinality(items) $$;
-- a table that stays: no warning
CREATE TABLE "Catalog".note (id integer PRIMARY KEY);
CREATE FUNCTION "Catalog".note_id(n "Catalog".note) RETURNS integer
	LANGUAGE sql AS $$ SELECT n.id $$;

SELECT splitdb_add_service('row_svc');
SELECT splitdb_assign('row_svc', '"Catalog"."Item"');
SELECT action, object, detail FROM splitdb_plan('row_svc')
 WHERE action IN ('warning', 'blocker') ORDER BY step;

SELECT splitdb_migrate('row_svc', mode => 'offline', wait => true) > 0 AS migrated;
-- bound to the archived type
SELECT pg_get_function_result('"Catalog".items_from(integer)'::regprocedure);
SELECT "Catalog".item_caption(i) FROM "Catalog"."Item" i ORDER BY id;
\echo :LAST_ERROR_SQLSTATE
SELECT splitdb_finalize('row_svc');
\echo :LAST_ERROR_SQLSTATE
-- recreated over the shim's row type, the functions work and the archive goes
-- (they are named with the archived type now)
DROP FUNCTION "Catalog".item_caption(splitdb_archive."Item"), "Catalog".items_from(integer),
	"Catalog".item_count(splitdb_archive."Item"[]);
CREATE FUNCTION "Catalog".item_caption(i "Catalog"."Item") RETURNS text
	LANGUAGE sql AS $$ SELECT i.id || ': ' || i.label $$;
SELECT "Catalog".item_caption(i) FROM "Catalog"."Item" i ORDER BY id;
SELECT splitdb_finalize('row_svc');
SELECT state FROM splitdb_status WHERE service = 'row_svc';

-- clean up
DROP SCHEMA "Catalog" CASCADE;
DELETE FROM splitdb.job;
SELECT splitdb_drop_service('row_svc');
DROP DATABASE row_svc WITH (FORCE);
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
