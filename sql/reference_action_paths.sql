--
-- A referential action across the split (ON DELETE SET NULL, ON UPDATE
-- CASCADE) fires the referencing table's triggers, as PostgreSQL's own
-- foreign keys do, with the search_path they would see there:
-- - the writer's session's path, when the source applies the action for a
--   write through a shim;
-- - the path a session of the acting role starts with in the source, when
--   the sibling's enforcement applies it there (splitdb.reference_relay).
-- splitdb's own statements stay fully qualified, with pg_catalog first and
-- pg_temp last.  A trigger function without a search_path setting of its
-- own that names its tables unqualified works in both cases.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;
\set SHOW_CONTEXT never

CREATE SCHEMA "Geo";
CREATE TABLE "Geo".region (
	id   integer PRIMARY KEY,
	name text
);
CREATE TABLE "Geo".shop (
	id        integer PRIMARY KEY,
	region_id integer REFERENCES "Geo".region ON DELETE SET NULL ON UPDATE CASCADE
);
CREATE TABLE "Geo".shop_log (
	shop_id   integer,
	region_id integer,
	seen_path text
);
-- no search_path setting of its own: shop_log resolves with the caller's
CREATE FUNCTION "Geo".log_shop() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO shop_log VALUES (NEW.id, NEW.region_id, current_setting('search_path'));
	RETURN NEW;
END
$$;
CREATE TRIGGER shop_log BEFORE UPDATE ON "Geo".shop
	FOR EACH ROW EXECUTE FUNCTION "Geo".log_shop();
INSERT INTO "Geo".region VALUES (1, 'north'), (2, 'south'), (3, 'east'), (4, 'west');
INSERT INTO "Geo".shop VALUES (10, 1), (20, 2), (30, 3), (40, 4);

SELECT splitdb_add_service('act_svc');
SELECT splitdb_assign('act_svc', '"Geo".region');
SELECT splitdb_migrate('act_svc', mode => 'offline', wait => true) > 0 AS migrated;
SELECT state FROM splitdb_status WHERE service = 'act_svc';

-- through the shim: the source applies the actions, with this session's path
SET search_path = "Geo", public;
UPDATE region SET id = 11 WHERE id = 1;
DELETE FROM region WHERE id = 2;
RESET search_path;
SELECT * FROM "Geo".shop ORDER BY id;
SELECT * FROM "Geo".shop_log ORDER BY shop_id;
-- without "Geo" on the path the trigger cannot find its table, as with a
-- local foreign key
UPDATE "Geo".region SET id = 12 WHERE id = 11;
\echo :LAST_ERROR_SQLSTATE

-- in the sibling: the source applies them through splitdb.reference_relay,
-- with the path the role's sessions start with in the source
DO $$
BEGIN
	EXECUTE format('ALTER DATABASE %I SET search_path = "Geo", public', current_database());
END
$$;
\c act_svc
SET client_min_messages = warning;
UPDATE "Geo".region SET id = 33 WHERE id = 3;
DELETE FROM "Geo".region WHERE id = 4;
\c splitdb_regression
SET client_min_messages = warning;
DO $$
BEGIN
	EXECUTE format('ALTER DATABASE %I RESET search_path', current_database());
END
$$;
SELECT * FROM "Geo".shop ORDER BY id;
SELECT * FROM "Geo".shop_log ORDER BY shop_id, region_id NULLS LAST;

-- clean up
SELECT splitdb_rollback('act_svc');
SELECT splitdb_unassign('act_svc', '"Geo".region');
SELECT splitdb_drop_service('act_svc');
DROP DATABASE act_svc WITH (FORCE);
DROP SCHEMA "Geo" CASCADE;
DROP SCHEMA splitdb_archive CASCADE;
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
