--
-- Keys whose type compares with operators of its own, outside pg_catalog:
-- citext, whose = and < ignore case.
--
-- splitdb's statements resolve =, < and > under search_path pg_catalog,
-- where citext compares as the text it casts to, case-sensitively, while
-- its unique index and ORDER BY use citext's own operators.  So the copy's
-- batches, which go on after the last key of the one before, skipped some
-- rows and sent others twice (the job failed at its unique index), and an
-- online job's replay deleted a row whose key changed case and copied
-- nothing in its place: a committed row lost, with the job done.  Now such
-- a key is not used: an offline copy takes the table in one pass, an online
-- job is refused (0A000) naming the key and its type (the plan warns of
-- it), and the sibling's
-- capture logs such a table without a key, so a rollback replaces it whole.
-- Names with spaces, mixed case and non-ASCII letters.
--
CREATE EXTENSION splitdb CASCADE;
CREATE EXTENSION citext;
SET client_min_messages = warning;

CREATE SCHEMA "Groß Klein";
CREATE TABLE "Groß Klein"."Wörter" (k citext PRIMARY KEY, v text NOT NULL);
INSERT INTO "Groß Klein"."Wörter"
SELECT k, 'row ' || k FROM unnest('{a,B,c,D,e,F,g,H,i,J}'::text[]) k;
-- a table whose unique key is of a built-in type, beside a citext column
CREATE TABLE "Groß Klein"."Namen" (id integer PRIMARY KEY, name citext UNIQUE);
INSERT INTO "Groß Klein"."Namen" SELECT g, 'Name ' || g FROM generate_series(1, 10) g;

SELECT splitdb_add_service('gk_svc');
SELECT splitdb_assign('gk_svc', '"Groß Klein"."Wörter"', '"Groß Klein"."Namen"');

-- the plan warns of it
SELECT action, object, detail FROM splitdb_plan('gk_svc')
 WHERE action = 'warning' AND detail LIKE '%operator of its own%';

-- online: refused, nothing made
\set VERBOSITY default
SELECT splitdb_migrate('gk_svc');
\set VERBOSITY terse
SELECT count(*) AS jobs FROM splitdb.job WHERE service = 'gk_svc';

-- offline, in batches of 2 rows: the citext table in one pass, every row once
SET splitdb.batch_rows = 2;
SELECT splitdb_migrate('gk_svc', mode => 'offline', wait => true) > 0 AS migrated;
RESET splitdb.batch_rows;
SELECT t.table_name, t.key_columns, t.rows_copied
  FROM splitdb.job_table t JOIN splitdb.job j USING (job_id)
 WHERE j.service = 'gk_svc' ORDER BY 1;
SELECT table_name, source_rows, target_rows, ok FROM splitdb_verify('gk_svc') ORDER BY 1;

-- in the sibling a key changes case; the rollback brings it back
\c gk_svc
UPDATE "Groß Klein"."Wörter" SET k = 'ABC' WHERE k = 'a';
INSERT INTO "Groß Klein"."Wörter" VALUES ('k', 'new');
SELECT c.relname, array_agg(a.attname ORDER BY a.attnum) FILTER (WHERE a.attname NOT LIKE 'splitdb%') AS key
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
 WHERE c.relnamespace = 'splitdb_capture'::regnamespace AND c.relkind = 'r'
 GROUP BY 1 ORDER BY 1;
\c splitdb_regression
SET client_min_messages = warning;
SELECT splitdb_rollback('gk_svc');
SELECT k, v FROM "Groß Klein"."Wörter" ORDER BY k;

-- clean up
DELETE FROM splitdb.job;
DROP SCHEMA IF EXISTS splitdb_archive CASCADE;
DROP SCHEMA "Groß Klein" CASCADE;
SELECT splitdb_drop_service('gk_svc');
DROP DATABASE gk_svc WITH (FORCE);
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
DROP EXTENSION citext;
