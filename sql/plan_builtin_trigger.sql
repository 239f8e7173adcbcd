--
-- plan_builtin_trigger: a moved trigger that calls a built-in function
-- (tsvector_update_trigger) fires in the sibling, which has that function;
-- the plan says so, and says that it creates a function of the
-- application's in the sibling
--
CREATE EXTENSION splitdb CASCADE;
SELECT splitdb_add_service('bt_svc');
CREATE TABLE bt_doc (id int PRIMARY KEY, body text, words tsvector, touched timestamptz);
CREATE FUNCTION bt_touch() RETURNS trigger LANGUAGE plpgsql AS
$$BEGIN NEW.touched := pg_catalog.now(); RETURN NEW; END$$;
CREATE TRIGGER bt_words BEFORE INSERT OR UPDATE ON bt_doc
	FOR EACH ROW EXECUTE FUNCTION tsvector_update_trigger('words', 'pg_catalog.english', 'body');
CREATE TRIGGER bt_touched BEFORE UPDATE ON bt_doc FOR EACH ROW EXECUTE FUNCTION bt_touch();
SELECT splitdb_assign('bt_svc', 'bt_doc');
SELECT object, detail FROM splitdb_plan('bt_svc') WHERE action = 'warning' AND object LIKE 'public.bt_doc.%' ORDER BY 1;

-- clean up
SELECT splitdb_unassign('bt_svc', 'bt_doc');
SELECT splitdb_drop_service('bt_svc');
DROP DATABASE bt_svc;
DROP TABLE bt_doc;
DROP FUNCTION bt_touch();
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
