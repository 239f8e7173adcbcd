--
-- shim_on_conflict_views: INSERT ... ON CONFLICT with a conflict target, or
-- DO UPDATE, cannot reach a shim (postgres_fdw infers no unique key on a
-- foreign table).  Named directly, or through automatically updatable views
-- over it (a view over a view included), splitdb refuses it with 0A000 and
-- a message that names the view and the table that moved; each refusal
-- changes nothing.  A view with an INSTEAD OF trigger decides itself where
-- its rows go: PostgreSQL's own answer stands.  ON CONFLICT DO NOTHING
-- without a target goes through, and ON CONFLICT ON CONSTRAINT fails in
-- PostgreSQL's parse analysis, before any hook (documented).
--
CREATE EXTENSION splitdb CASCADE;
SELECT splitdb_add_service('oc_svc');
CREATE SCHEMA "oc App";
CREATE TABLE "oc App"."Bücher" (id int PRIMARY KEY, title text NOT NULL);
INSERT INTO "oc App"."Bücher" SELECT g, 't' || g FROM generate_series(1, 3) g;
SELECT splitdb_assign('oc_svc', '"oc App"."Bücher"');
SET client_min_messages = warning;
SELECT splitdb_migrate('oc_svc', mode => 'offline', wait => true) > 0 AS migrated;
RESET client_min_messages;
SELECT relkind FROM pg_class WHERE oid = '"oc App"."Bücher"'::regclass;

CREATE VIEW "oc App".books AS SELECT * FROM "oc App"."Bücher";
CREATE VIEW "oc App"."recent books" AS SELECT id, title FROM "oc App".books WHERE id > 0;
CREATE VIEW "oc App".books_by_trigger AS SELECT * FROM "oc App"."Bücher";
CREATE FUNCTION "oc App".put_book() RETURNS trigger LANGUAGE plpgsql AS
$$BEGIN INSERT INTO "oc App"."Bücher" VALUES (NEW.id, NEW.title); RETURN NEW; END$$;
CREATE TRIGGER put INSTEAD OF INSERT ON "oc App".books_by_trigger
	FOR EACH ROW EXECUTE FUNCTION "oc App".put_book();

\set VERBOSITY default
-- the shim itself
INSERT INTO "oc App"."Bücher" VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET title = 'x';
-- through a view, and a view over that view
INSERT INTO "oc App".books VALUES (4, 'x') ON CONFLICT (id) DO NOTHING;
INSERT INTO "oc App".books VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET title = EXCLUDED.title;
INSERT INTO "oc App"."recent books" VALUES (5, 'x') ON CONFLICT (id) DO NOTHING;
-- in a WITH clause
WITH w AS (INSERT INTO "oc App".books VALUES (6, 'x') ON CONFLICT (id) DO NOTHING RETURNING id)
SELECT count(*) FROM w;
-- PostgreSQL's own answers: a view with an INSTEAD OF trigger, and a
-- constraint name that the shim does not have
INSERT INTO "oc App".books_by_trigger VALUES (7, 'x') ON CONFLICT (id) DO NOTHING;
INSERT INTO "oc App".books VALUES (8, 'x') ON CONFLICT ON CONSTRAINT "Bücher_pkey" DO NOTHING;
-- nothing changed
SELECT id, title FROM "oc App"."Bücher" ORDER BY id;

-- what goes through: no conflict target, and the trigger's view
INSERT INTO "oc App".books VALUES (1, 'dup'), (9, 'nine') ON CONFLICT DO NOTHING;
INSERT INTO "oc App"."recent books" VALUES (10, 'ten') ON CONFLICT DO NOTHING;
INSERT INTO "oc App".books_by_trigger VALUES (11, 'eleven');
SELECT id, title FROM "oc App"."Bücher" ORDER BY id;

-- clean up
DROP SCHEMA "oc App" CASCADE;
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
SELECT splitdb_drop_service('oc_svc');
DROP DATABASE oc_svc WITH (FORCE);
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
