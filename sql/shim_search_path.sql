--
-- shim_search_path: a write through a shim that postgres_fdw changes row by
-- row runs splitdb's check of the shim in the writer's session; operators
-- that the writer's search_path puts before pg_catalog's capture none of it
--
CREATE EXTENSION splitdb CASCADE;
SELECT splitdb_add_service('sp_svc');
CREATE SCHEMA sp_app;
CREATE TABLE sp_app.item (id int PRIMARY KEY, note text);
INSERT INTO sp_app.item SELECT g, 'n' || g FROM generate_series(1, 5) g;
SELECT splitdb_assign('sp_svc', 'sp_app.item');
SET client_min_messages = warning;
SELECT splitdb_migrate('sp_svc', mode => 'offline', wait => true) > 0 AS migrated;
RESET client_min_messages;

-- the application's schema shadows = on "char" and on text
CREATE FUNCTION sp_app.captured_char(a "char", b "char") RETURNS boolean LANGUAGE plpgsql AS
$$BEGIN RAISE EXCEPTION 'operator =("char", "char") of schema sp_app called'; END$$;
CREATE FUNCTION sp_app.captured_text(a text, b text) RETURNS boolean LANGUAGE plpgsql AS
$$BEGIN RAISE EXCEPTION 'operator =(text, text) of schema sp_app called'; END$$;
CREATE OPERATOR sp_app.= (LEFTARG = "char", RIGHTARG = "char", FUNCTION = sp_app.captured_char);
CREATE OPERATOR sp_app.= (LEFTARG = text, RIGHTARG = text, FUNCTION = sp_app.captured_text);
SET search_path = sp_app, pg_catalog, public;
-- random() keeps the condition local: postgres_fdw updates the rows one by one
UPDATE item SET note = note || '!' WHERE random() >= 0;
DELETE FROM item WHERE id OPERATOR(pg_catalog.=) 5 AND random() >= 0;
RESET search_path;
SELECT id, note FROM sp_app.item ORDER BY id;

-- clean up
DROP FOREIGN TABLE sp_app.item;
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
SELECT splitdb_drop_service('sp_svc');
DROP DATABASE sp_svc WITH (FORCE);
DROP SCHEMA sp_app CASCADE;
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
