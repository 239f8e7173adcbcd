--
-- Moved code resolves names in the sibling as it did in the source.  A
-- trigger function without a search_path of its own names a table without
-- its schema; the source's database setting finds it there.  In the
-- sibling the function gets SET search_path with the path it resolved
-- names with in the source, so an insert works through the shim (whose
-- postgres_fdw session runs with search_path = pg_catalog) and directly in
-- the sibling, and the trigger's effect is visible.  The types it names
-- only in its body (a variable's enum, a cast to a domain) are created in
-- the sibling, and so is a function it calls that takes such an enum, which
-- no column uses; a function it calls that the sibling cannot have (it
-- takes a staying table's row type) is a plan warning, as is the
-- search_path the copy gets.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

CREATE SCHEMA "Wérk zeug";
CREATE TABLE "Wérk zeug"."Tool_configs" (name text PRIMARY KEY, uses integer NOT NULL DEFAULT 0);
CREATE TABLE "Wérk zeug".tool (id integer PRIMARY KEY, name text NOT NULL);
-- types that the function names only in its body: a variable's enum, a
-- cast to a domain
CREATE TYPE "Wérk zeug"."Stimmung" AS ENUM ('gut', 'schlecht');
CREATE DOMAIN "kurz Name" AS text CHECK (length(VALUE) < 20);
-- a function it calls that takes that enum, which no column uses: the
-- sibling gets it, with the enum
CREATE FUNCTION "Wérk zeug".gewicht(s "Wérk zeug"."Stimmung") RETURNS integer
	LANGUAGE sql AS $$SELECT CASE s WHEN 'gut' THEN 1 ELSE 0 END$$;
-- a function it calls that the sibling cannot have: it takes the row type
-- of a table that stays
CREATE TABLE "Wérk zeug".bleibt (id integer);
CREATE FUNCTION "Wérk zeug".braucht_bleibt(b "Wérk zeug".bleibt) RETURNS integer
	LANGUAGE sql AS 'SELECT 1';
SELECT format('ALTER DATABASE %I SET search_path = %I, public', current_database(), 'Wérk zeug') \gexec
\c
SET client_min_messages = warning;
SHOW search_path;
CREATE FUNCTION "Wérk zeug"."count Use"() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	laune "Stimmung" := 'gut';
	n text;
BEGIN
	n := NEW.name::"kurz Name";
	IF laune = 'schlecht' THEN
		PERFORM braucht_bleibt(NULL);
	END IF;
	INSERT INTO "Tool_configs" AS c (name, uses) VALUES (n, gewicht(laune))
	ON CONFLICT (name) DO UPDATE SET uses = c.uses + gewicht(laune);
	RETURN NEW;
END $$;
CREATE TRIGGER "count Use" AFTER INSERT ON "Wérk zeug".tool
	FOR EACH ROW EXECUTE FUNCTION "Wérk zeug"."count Use"();
INSERT INTO "Wérk zeug".tool VALUES (1, 'hammer');

SELECT splitdb_add_service('fp_svc');
SELECT splitdb_assign('fp_svc', '"Wérk zeug".tool', '"Wérk zeug"."Tool_configs"');
-- the plan names the search_path the copy gets, and the function it cannot
-- carry
SELECT action, object, detail FROM splitdb_plan('fp_svc')
 WHERE action IN ('warning', 'blocker') ORDER BY step;
SELECT splitdb_migrate('fp_svc', wait => true) > 0 AS migrated;
-- through the shim
INSERT INTO "Wérk zeug".tool VALUES (2, 'hammer'), (3, 'saw');
SELECT * FROM "Wérk zeug"."Tool_configs" ORDER BY name;

\c fp_svc
SET client_min_messages = warning;
-- the copy's setting: the source database's search_path
SELECT proconfig FROM pg_proc WHERE oid = '"Wérk zeug"."count Use"()'::regprocedure;
-- the types named in its body are here, the function it cannot have not
SELECT t.oid::regtype AS type, t.typtype FROM pg_type t
 WHERE t.typname IN ('Stimmung', 'kurz Name') ORDER BY 1;
SELECT count(*) AS braucht_bleibt FROM pg_proc WHERE proname = 'braucht_bleibt';
SELECT p.oid::regprocedure AS function FROM pg_proc p WHERE p.proname = 'gewicht';
-- directly in the sibling, with the default search_path
SHOW search_path;
INSERT INTO "Wérk zeug".tool VALUES (4, 'saw');
-- the domain's check, in the sibling too
INSERT INTO "Wérk zeug".tool VALUES (5, 'a name far too long for the domain');
SELECT * FROM "Wérk zeug"."Tool_configs" ORDER BY name;
\c splitdb_regression
SET client_min_messages = warning;

-- clean up
SELECT format('ALTER DATABASE %I RESET search_path', current_database()) \gexec
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
DROP FOREIGN TABLE "Wérk zeug".tool, "Wérk zeug"."Tool_configs";
DROP FUNCTION "Wérk zeug"."count Use"(), "Wérk zeug".braucht_bleibt("Wérk zeug".bleibt),
	"Wérk zeug".gewicht("Wérk zeug"."Stimmung");
DROP TABLE "Wérk zeug".bleibt;
DROP TYPE "Wérk zeug"."Stimmung";
DROP DOMAIN "kurz Name";
DROP SCHEMA "Wérk zeug";
DELETE FROM splitdb.job;
SELECT splitdb_drop_service('fp_svc');
DROP DATABASE fp_svc WITH (FORCE);
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
