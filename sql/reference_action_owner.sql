--
-- A referential action that one database applies in another (CASCADE, SET
-- NULL, SET DEFAULT, ON DELETE and ON UPDATE) runs there as the owner of the
-- referencing table, as PostgreSQL's foreign keys run it: the table's
-- triggers see current_user = its owner and read what only the owner may
-- read, its row-level security does not apply (forced or not, as under
-- PostgreSQL's foreign keys), and the writer needs no right on the table.
-- Four copies of the same schema: ac_loc keeps its foreign keys (the
-- reference result), ac_pm's referenced table moves (the sibling applies
-- the actions in the source), ac_cm's referencing tables move (the source
-- applies them in the sibling), ac_sh's referenced table moves and is
-- written through its shim (the source applies the actions itself).
--
-- splitdb.reference_relay_action() applies such an action only for
-- splitdb in the other database: a session that proved its origin, with a
-- MAC per request; and only for a reference whose referencing table is
-- here.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;
\set SHOW_CONTEXT never

CREATE ROLE ac_owner LOGIN;
CREATE ROLE ac_writer LOGIN;
CREATE SCHEMA ac_test;
GRANT USAGE ON SCHEMA ac_test TO ac_writer;

CREATE FUNCTION ac_test.make_schema(s text) RETURNS void LANGUAGE plpgsql AS $f$
BEGIN
	EXECUTE format('CREATE SCHEMA %I', s);
	EXECUTE format('CREATE TABLE %I.p (id integer PRIMARY KEY)', s);
	EXECUTE format('INSERT INTO %I.p VALUES (0), (1), (2)', s);
	EXECUTE format('CREATE TABLE %I.c_cascade (id integer PRIMARY KEY,'
				   ' pid integer REFERENCES %I.p ON DELETE CASCADE ON UPDATE CASCADE)', s, s);
	EXECUTE format('CREATE TABLE %I.c_null (id integer PRIMARY KEY,'
				   ' pid integer REFERENCES %I.p ON DELETE SET NULL ON UPDATE SET NULL)', s, s);
	EXECUTE format('CREATE TABLE %I.c_default (id integer PRIMARY KEY,'
				   ' pid integer DEFAULT 0 REFERENCES %I.p ON DELETE SET DEFAULT ON UPDATE SET DEFAULT)', s, s);
	EXECUTE format('INSERT INTO %I.%I VALUES (10, 1), (20, 2)', s, 'c_cascade');
	EXECUTE format('INSERT INTO %I.%I VALUES (10, 1), (20, 2)', s, 'c_null');
	EXECUTE format('INSERT INTO %I.%I VALUES (10, 1), (20, 2)', s, 'c_default');
	EXECUTE format('ALTER TABLE %I.c_cascade OWNER TO ac_owner', s);
	EXECUTE format('ALTER TABLE %I.c_null OWNER TO ac_owner', s);
	EXECUTE format('ALTER TABLE %I.c_default OWNER TO ac_owner', s);
	EXECUTE format('GRANT USAGE ON SCHEMA %I TO ac_owner, ac_writer', s);
	EXECUTE format('GRANT SELECT, UPDATE, DELETE ON %I.p TO ac_writer', s);
END
$f$;

-- where the referencing tables are, after the split: what their owner
-- alone may read, a log, and a trigger function (SECURITY INVOKER) that
-- logs each row with current_user, BEFORE (with what it reads) and AFTER;
-- row-level security that hides every row (c_default: forced on the owner
-- too).  PostgreSQL runs an action's statement as the owner: the BEFORE
-- triggers too; its AFTER triggers fire at the end of the writer's
-- statement, as the writer.
CREATE FUNCTION ac_test.add_triggers(s text) RETURNS void LANGUAGE plpgsql AS $f$
BEGIN
	EXECUTE format('CREATE TABLE %I.secret (v integer)', s);
	EXECUTE format('INSERT INTO %I.secret VALUES (1), (2), (3)', s);
	EXECUTE format('CREATE TABLE %I.log (tbl text, op text, who name, secrets bigint,'
				   ' id integer, pid integer)', s);
	EXECUTE format('ALTER TABLE %I.secret OWNER TO ac_owner', s);
	EXECUTE format('ALTER TABLE %I.log OWNER TO ac_owner', s);
	EXECUTE format('GRANT INSERT ON %I.log TO PUBLIC', s);
	EXECUTE format($b$CREATE FUNCTION %I.log_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_WHEN = 'BEFORE' THEN
		INSERT INTO %I.log VALUES (TG_TABLE_NAME, TG_WHEN || ' ' || TG_OP, current_user,
			(SELECT count(*) FROM %I.secret),
			CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END,
			CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE NEW.pid END);
		IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
		RETURN NEW;
	END IF;
	INSERT INTO %I.log VALUES (TG_TABLE_NAME, TG_WHEN || ' ' || TG_OP, current_user, NULL,
		CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END,
		CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE NEW.pid END);
	RETURN NULL;
END
$$$b$, s, s, s, s);
	EXECUTE format('ALTER FUNCTION %I.log_row() OWNER TO ac_owner', s);
	FOR t IN 1..3 LOOP
		EXECUTE format('CREATE TRIGGER log_before BEFORE UPDATE OR DELETE ON %I.%I'
					   ' FOR EACH ROW EXECUTE FUNCTION %I.log_row()',
					   s, (ARRAY['c_cascade', 'c_null', 'c_default'])[t], s);
		EXECUTE format('CREATE TRIGGER log_after AFTER UPDATE OR DELETE ON %I.%I'
					   ' FOR EACH ROW EXECUTE FUNCTION %I.log_row()',
					   s, (ARRAY['c_cascade', 'c_null', 'c_default'])[t], s);
	END LOOP;
	EXECUTE format('CREATE POLICY none ON %I.c_null USING (false)', s);
	EXECUTE format('ALTER TABLE %I.c_null ENABLE ROW LEVEL SECURITY', s);
	EXECUTE format('CREATE POLICY none ON %I.c_default USING (false)', s);
	EXECUTE format('ALTER TABLE %I.c_default ENABLE ROW LEVEL SECURITY', s);
	EXECUTE format('ALTER TABLE %I.c_default FORCE ROW LEVEL SECURITY', s);
END
$f$;

-- the writes: the same in each copy, as ac_writer, who may change the
-- referenced table and nothing else
CREATE FUNCTION ac_test.write(s text) RETURNS void LANGUAGE plpgsql AS $f$
BEGIN
	EXECUTE format('DELETE FROM %I.p WHERE id = 1', s);
	EXECUTE format('UPDATE %I.p SET id = 12 WHERE id = 2', s);
END
$f$;

-- what the actions did, as the superuser sees it
CREATE FUNCTION ac_test.show(s text) RETURNS TABLE (what text, id integer, pid integer)
LANGUAGE plpgsql AS $f$
BEGIN
	RETURN QUERY EXECUTE format('SELECT %L, id, pid FROM %I.c_cascade UNION ALL'
								' SELECT %L, id, pid FROM %I.c_null UNION ALL'
								' SELECT %L, id, pid FROM %I.c_default ORDER BY 1, 2',
								'c_cascade', s, 'c_null', s, 'c_default', s);
END
$f$;
CREATE FUNCTION ac_test.show_log(s text) RETURNS TABLE (tbl text, op text, who name,
	secrets bigint, id integer, pid integer)
LANGUAGE plpgsql AS $f$
BEGIN
	RETURN QUERY EXECUTE format('SELECT * FROM %I.log ORDER BY 1, 5, 2', s);
END
$f$;

SELECT ac_test.make_schema('ac_loc'), ac_test.make_schema('ac_pm'),
	   ac_test.make_schema('ac_cm'), ac_test.make_schema('ac_sh');

SELECT splitdb_add_service('ac_svc');
CREATE USER MAPPING FOR ac_owner SERVER splitdb_ac_svc
	OPTIONS (user 'ac_owner', password_required 'false');
SELECT splitdb_assign('ac_svc', 'ac_pm.p', 'ac_sh.p');
SELECT splitdb_assign('ac_svc', 'ac_cm.c_cascade', 'ac_cm.c_null', 'ac_cm.c_default');
-- the cutover stops for ac_owner's mapping in the sibling, made by hand
\set VERBOSITY terse
SELECT splitdb_migrate('ac_svc', mode => 'offline', wait => true);
\set VERBOSITY default
\c ac_svc
CREATE USER MAPPING FOR ac_owner SERVER splitdb_source
	OPTIONS (user 'ac_owner', password_required 'false');
\c splitdb_regression
SET client_min_messages = warning;
\set SHOW_CONTEXT never
SELECT splitdb_migrate('ac_svc', wait => true) > 0 AS migrated;
SELECT state FROM splitdb_status WHERE service = 'ac_svc';
SELECT ac_test.add_triggers('ac_loc'), ac_test.add_triggers('ac_pm'),
	   ac_test.add_triggers('ac_sh');
-- ac_writer's own user mapping: the actions go through it
CREATE USER MAPPING FOR ac_writer SERVER splitdb_ac_svc
	OPTIONS (user 'ac_writer', password_required 'false');

--
-- The local foreign keys: PostgreSQL runs the actions as ac_owner
--
SET ROLE ac_writer;
SELECT ac_test.write('ac_loc');
RESET ROLE;
SELECT * FROM ac_test.show('ac_loc');
SELECT * FROM ac_test.show_log('ac_loc');

--
-- Through the shim of the referenced table: the source applies the actions
-- here, as ac_owner
--
SET ROLE ac_writer;
SELECT ac_test.write('ac_sh');
RESET ROLE;
SELECT * FROM ac_test.show('ac_sh');
SELECT * FROM ac_test.show_log('ac_sh');

--
-- The referencing tables moved: the source applies the actions in the
-- sibling, through ac_writer's mapping, as ac_owner there
--
\c ac_svc
SET client_min_messages = warning;
\set SHOW_CONTEXT never
CREATE SCHEMA ac_test;
GRANT USAGE ON SCHEMA ac_test TO ac_writer;
CREATE FUNCTION ac_test.add_triggers(s text) RETURNS void LANGUAGE plpgsql AS $f$
BEGIN
	EXECUTE format('CREATE TABLE %I.secret (v integer)', s);
	EXECUTE format('INSERT INTO %I.secret VALUES (1), (2), (3)', s);
	EXECUTE format('CREATE TABLE %I.log (tbl text, op text, who name, secrets bigint,'
				   ' id integer, pid integer)', s);
	EXECUTE format('ALTER TABLE %I.secret OWNER TO ac_owner', s);
	EXECUTE format('ALTER TABLE %I.log OWNER TO ac_owner', s);
	EXECUTE format('GRANT INSERT ON %I.log TO PUBLIC', s);
	EXECUTE format($b$CREATE FUNCTION %I.log_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_WHEN = 'BEFORE' THEN
		INSERT INTO %I.log VALUES (TG_TABLE_NAME, TG_WHEN || ' ' || TG_OP, current_user,
			(SELECT count(*) FROM %I.secret),
			CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END,
			CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE NEW.pid END);
		IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
		RETURN NEW;
	END IF;
	INSERT INTO %I.log VALUES (TG_TABLE_NAME, TG_WHEN || ' ' || TG_OP, current_user, NULL,
		CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END,
		CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE NEW.pid END);
	RETURN NULL;
END
$$$b$, s, s, s, s);
	EXECUTE format('ALTER FUNCTION %I.log_row() OWNER TO ac_owner', s);
	FOR t IN 1..3 LOOP
		EXECUTE format('CREATE TRIGGER log_before BEFORE UPDATE OR DELETE ON %I.%I'
					   ' FOR EACH ROW EXECUTE FUNCTION %I.log_row()',
					   s, (ARRAY['c_cascade', 'c_null', 'c_default'])[t], s);
		EXECUTE format('CREATE TRIGGER log_after AFTER UPDATE OR DELETE ON %I.%I'
					   ' FOR EACH ROW EXECUTE FUNCTION %I.log_row()',
					   s, (ARRAY['c_cascade', 'c_null', 'c_default'])[t], s);
	END LOOP;
	EXECUTE format('CREATE POLICY none ON %I.c_null USING (false)', s);
	EXECUTE format('ALTER TABLE %I.c_null ENABLE ROW LEVEL SECURITY', s);
	EXECUTE format('CREATE POLICY none ON %I.c_default USING (false)', s);
	EXECUTE format('ALTER TABLE %I.c_default ENABLE ROW LEVEL SECURITY', s);
	EXECUTE format('ALTER TABLE %I.c_default FORCE ROW LEVEL SECURITY', s);
END
$f$;
SELECT ac_test.add_triggers('ac_cm');
-- the sibling's owners: the originals'; ac_writer has no right on them
SELECT c.relname, pg_get_userbyid(c.relowner) AS owner,
	   has_table_privilege('ac_writer', c.oid, 'UPDATE, DELETE') AS writer_may
  FROM pg_class c WHERE c.relnamespace = 'ac_cm'::regnamespace AND c.relkind = 'r'
 ORDER BY 1;
-- a schema of ac_writer's first on the path its sessions start with here,
-- whose unnest(text[]) would win over pg_catalog's for an unqualified name:
-- the action's statement names pg_catalog's functions and operators
CREATE SCHEMA ac_evil AUTHORIZATION ac_writer;
SET ROLE ac_writer;
CREATE FUNCTION ac_evil.unnest(text[]) RETURNS SETOF text LANGUAGE plpgsql
	AS $$ BEGIN RAISE EXCEPTION 'ac_evil.unnest() ran'; END $$;
CREATE FUNCTION ac_evil.eq(integer, integer) RETURNS boolean LANGUAGE plpgsql
	AS $$ BEGIN RAISE EXCEPTION 'ac_evil.= ran'; END $$;
CREATE OPERATOR ac_evil.= (LEFTARG = integer, RIGHTARG = integer, FUNCTION = ac_evil.eq);
RESET ROLE;
ALTER ROLE ac_writer IN DATABASE ac_svc SET search_path = ac_evil, public;
-- (an unqualified unnest() would find it, even behind pg_catalog)
SET search_path = pg_catalog, ac_evil;
SELECT * FROM unnest('{1}'::text[]);
RESET search_path;
-- ac_writer's mapping to the source, for the actions this database applies there
CREATE USER MAPPING FOR ac_writer SERVER splitdb_source
	OPTIONS (user 'ac_writer', password_required 'false');

--
-- The referenced table moved: the sibling applies the actions in the
-- source, through ac_writer's mapping, as ac_owner there
--
SET ROLE ac_writer;
DELETE FROM ac_pm.p WHERE id = 1;
UPDATE ac_pm.p SET id = 12 WHERE id = 2;
RESET ROLE;

\c splitdb_regression
SET client_min_messages = warning;
\set SHOW_CONTEXT never
SET ROLE ac_writer;
SELECT ac_test.write('ac_cm');
RESET ROLE;

-- the same rows and the same log as the local foreign keys'
SELECT * FROM ac_test.show('ac_pm');
SELECT * FROM ac_test.show_log('ac_pm');
\c ac_svc
SET client_min_messages = warning;
\set SHOW_CONTEXT never
SELECT c, id, pid FROM (
	SELECT 'c_cascade' AS c, id, pid FROM ac_cm.c_cascade UNION ALL
	SELECT 'c_null', id, pid FROM ac_cm.c_null UNION ALL
	SELECT 'c_default', id, pid FROM ac_cm.c_default) r ORDER BY 1, 2;
SELECT * FROM ac_cm.log ORDER BY 1, 5, 2;

--
-- Code that runs inside the session the source proved (here a BEFORE
-- trigger of ac_owner's, which the source's next action fires as ac_owner)
-- cannot ask for an action of another reference: it has no MAC (42501),
-- and c_null keeps its row
--
CREATE FUNCTION ac_cm.try_relay() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	BEGIN
		PERFORM * FROM splitdb.reference_relay_action(
			(SELECT reference_id FROM splitdb.reference_end
			  WHERE side = 'c' AND own_table = 'ac_cm.c_null'),
			'd', '{NULL}', '{"{0}"}', 1000000, repeat('0', 64));
		INSERT INTO ac_cm.log VALUES ('try_relay', 'applied', current_user, NULL, OLD.id, NULL);
	EXCEPTION WHEN insufficient_privilege THEN
		INSERT INTO ac_cm.log VALUES ('try_relay', SQLSTATE, current_user, NULL, OLD.id, NULL);
	END;
	RETURN OLD;
END
$$;
ALTER FUNCTION ac_cm.try_relay() OWNER TO ac_owner;
CREATE TRIGGER try_relay BEFORE DELETE ON ac_cm.c_cascade
	FOR EACH ROW EXECUTE FUNCTION ac_cm.try_relay();
\c splitdb_regression
SET client_min_messages = warning;
\set SHOW_CONTEXT never
INSERT INTO ac_cm.p VALUES (5);
INSERT INTO ac_cm.c_null VALUES (50, 0);
INSERT INTO ac_cm.c_cascade VALUES (50, 5);
SET ROLE ac_writer;
DELETE FROM ac_cm.p WHERE id = 5;
RESET ROLE;
\c ac_svc
SET client_min_messages = warning;
\set SHOW_CONTEXT never
SELECT tbl, op, who, id FROM ac_cm.log WHERE tbl = 'try_relay';
SELECT id, pid FROM ac_cm.c_null WHERE id = 50;
SELECT id, pid FROM ac_cm.c_cascade WHERE id = 50;
DROP TRIGGER try_relay ON ac_cm.c_cascade;

--
-- splitdb.reference_relay_action() refuses a session that proved nothing
-- (a role's own, even a superuser's), whatever it asks: nothing changes
--
SELECT r.reference_id AS cm_ref FROM splitdb.reference_end r
 WHERE r.side = 'c' AND r.own_table = 'ac_cm.c_cascade' \gset
INSERT INTO ac_cm.c_cascade VALUES (30, 0);
SET ROLE ac_writer;
SELECT * FROM splitdb.reference_relay_action(:cm_ref, 'd', '{NULL}', '{"{0}"}', 1,
											 repeat('0', 64));
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT * FROM splitdb.reference_relay_action(:cm_ref, 'd', '{NULL}', '{"{0}"}', 1,
											 repeat('0', 64));
\echo :LAST_ERROR_SQLSTATE
SELECT id, pid FROM ac_cm.c_cascade ORDER BY id;

--
-- A proved session: here the test proves it with the secret, as splitdb in
-- the source would (HMAC-SHA256 in SQL).  A request without the MAC of its
-- action key is refused; one with it, for a reference whose referencing
-- table is not here, too; a request made again with the same counter, too
--
CREATE FUNCTION pg_temp.hmac(key bytea, msg bytea) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
	k bytea := key || decode(repeat('00', 64 - length(key)), 'hex');
	i bytea := k;
	o bytea := k;
BEGIN
	FOR n IN 0..63 LOOP
		i := set_byte(i, n, get_byte(k, n) # 54);
		o := set_byte(o, n, get_byte(k, n) # 92);
	END LOOP;
	RETURN sha256(o || sha256(i || msg));
END
$$;
SELECT secret FROM splitdb.origin_key WHERE location = 'source' \gset
SELECT decode(splitdb.origin_challenge(), 'hex') AS nonce \gset
SELECT splitdb.origin_prove('source',
	encode(pg_temp.hmac(:'secret', :'nonce'::bytea || convert_to('source', 'UTF8')), 'hex'));
SELECT pg_temp.hmac(:'secret', :'nonce'::bytea || convert_to('source', 'UTF8') ||
					'\x00616374696f6e'::bytea) AS action_key \gset
CREATE FUNCTION pg_temp.mac(key bytea, counter bigint, ref bigint, event "char",
							colls text[], params text[]) RETURNS text
LANGUAGE sql AS $$
	SELECT encode(pg_temp.hmac(key, convert_to(format('splitdb action %s %s %s %s %s %s %s',
		counter, ref, event, octet_length(colls::text), colls::text,
		octet_length(params::text), params::text), 'UTF8')), 'hex')
$$;
-- a wrong MAC
SELECT * FROM splitdb.reference_relay_action(:cm_ref, 'd', '{NULL}', '{"{0}"}', 1,
											 repeat('0', 64));
\echo :LAST_ERROR_SQLSTATE
-- the right one, for a reference with no referencing table here
SELECT * FROM splitdb.reference_relay_action(999999, 'd', '{NULL}', '{"{0}"}', 2,
	pg_temp.mac(:'action_key', 2, 999999, 'd', '{NULL}', '{"{0}"}'));
\echo :LAST_ERROR_SQLSTATE
-- and for one whose referenced table is here, and the referencing one not
SELECT r.reference_id AS pm_ref FROM splitdb.reference_end r
 WHERE r.side = 'p' AND r.other_table = 'ac_pm.c_cascade' \gset
\set VERBOSITY sqlstate
SELECT * FROM splitdb.reference_relay_action(:pm_ref, 'd', '{NULL}', '{"{0}"}', 3,
	pg_temp.mac(:'action_key', 3, :pm_ref, 'd', '{NULL}', '{"{0}"}'));
\set VERBOSITY default
SELECT id, pid FROM ac_cm.c_cascade ORDER BY id;
-- the right MAC for this reference: applied, as the owner
SELECT * FROM splitdb.reference_relay_action(:cm_ref, 'd', '{NULL}', '{"{0}"}', 4,
	pg_temp.mac(:'action_key', 4, :cm_ref, 'd', '{NULL}', '{"{0}"}'));
SELECT id, pid FROM ac_cm.c_cascade ORDER BY id;
SELECT * FROM ac_cm.log WHERE id = 30;
-- the same request again
INSERT INTO ac_cm.c_cascade VALUES (30, 0);
SELECT * FROM splitdb.reference_relay_action(:cm_ref, 'd', '{NULL}', '{"{0}"}', 4,
	pg_temp.mac(:'action_key', 4, :cm_ref, 'd', '{NULL}', '{"{0}"}'));
\echo :LAST_ERROR_SQLSTATE
SELECT id, pid FROM ac_cm.c_cascade ORDER BY id;

--
-- splitdb.reference_lookup() on the same proved session, under the same
-- counter: the lookups of checks, as the owner of the table they read.
-- With the right MAC it reads the referencing table here as its owner
-- (for a caller with no right on it, past forced policies that hide every
-- row) and returns the positions of the keys found; a request made again,
-- one whose MAC is another reference's (42501), one for an end whose table
-- is not here (42704), one that does not fit the end (22023) are refused
--
CREATE FUNCTION pg_temp.lookup_mac(key bytea, counter bigint, ref bigint, side "char",
								   flags integer, colls text[], keys text[]) RETURNS text
LANGUAGE sql AS $$
	SELECT encode(pg_temp.hmac(key, convert_to(format('splitdb lookup %s %s %s %s %s %s %s %s',
		counter, ref, side, flags, octet_length(colls::text), colls::text,
		octet_length(keys::text), keys::text), 'UTF8')), 'hex')
$$;
SELECT pg_temp.lookup_mac(:'action_key', 5, :cm_ref, 'c', 1, '{}', '{"{424242,0}"}') AS mac5,
	   pg_temp.lookup_mac(:'action_key', 6, :pm_ref, 'c', 0, '{}', '{"{0}"}') AS mac6,
	   pg_temp.lookup_mac(:'action_key', 7, :cm_ref, 'p', 1, '{}', '{"{0}"}') AS mac7,
	   pg_temp.lookup_mac(:'action_key', 8, :cm_ref, 'c', 0, '{}', '{"{0}","{1}"}') AS mac8,
	   pg_temp.lookup_mac(:'action_key', 9, :cm_ref, 'c', 3, '{}', '{"{0,0,424242}"}') AS mac9 \gset
ALTER TABLE ac_cm.c_cascade ENABLE ROW LEVEL SECURITY;
ALTER TABLE ac_cm.c_cascade FORCE ROW LEVEL SECURITY;
CREATE POLICY hide_all ON ac_cm.c_cascade USING (false);
SET ROLE ac_writer;
\set VERBOSITY sqlstate
SELECT count(*) FROM ac_cm.c_cascade;
-- the key 0 is carried, 424242 not: position 2
SELECT * FROM splitdb.reference_lookup(:cm_ref, 'c', 1, '{}', '{"{424242,0}"}', 5, :'mac5');
-- the same request again
SELECT * FROM splitdb.reference_lookup(:cm_ref, 'c', 1, '{}', '{"{424242,0}"}', 5, :'mac5');
-- a MAC made for another reference
SELECT * FROM splitdb.reference_lookup(:cm_ref, 'c', 0, '{}', '{"{0}"}', 6, :'mac6');
-- the referenced end, which is not here
SELECT * FROM splitdb.reference_lookup(:cm_ref, 'p', 1, '{}', '{"{0}"}', 7, :'mac7');
-- two key columns for a key of one
SELECT * FROM splitdb.reference_lookup(:cm_ref, 'c', 0, '{}', '{"{0}","{1}"}', 8, :'mac8');
-- the first key found, locked: position 1 only
SELECT * FROM splitdb.reference_lookup(:cm_ref, 'c', 3, '{}', '{"{0,0,424242}"}', 9, :'mac9');
\set VERBOSITY default
RESET ROLE;
DROP POLICY hide_all ON ac_cm.c_cascade;
ALTER TABLE ac_cm.c_cascade NO FORCE ROW LEVEL SECURITY;
ALTER TABLE ac_cm.c_cascade DISABLE ROW LEVEL SECURITY;
SELECT splitdb.origin_withdraw();

--
-- A writer with no user mapping of its own for the sibling: the source
-- applies the action through the referenced table's owner's mapping (here
-- a superuser's), and ac_owner's AFTER trigger in the sibling fires as
-- ac_owner, in a security-restricted operation, not with the rights of the
-- role that mapping logs in as
--
\c splitdb_regression
INSERT INTO ac_cm.p VALUES (7);
\c ac_svc
INSERT INTO ac_cm.c_cascade VALUES (70, 7);
\c splitdb_regression
SET client_min_messages = warning;
\set SHOW_CONTEXT never
CREATE ROLE ac_nomap;
GRANT USAGE ON SCHEMA ac_cm TO ac_nomap;
GRANT SELECT, DELETE ON ac_cm.p TO ac_nomap;
SELECT count(*) AS own_mappings FROM pg_user_mappings
 WHERE srvname = 'splitdb_ac_svc' AND usename = 'ac_nomap';
SET ROLE ac_nomap;
DELETE FROM ac_cm.p WHERE id = 7;
RESET ROLE;
\c ac_svc
SET client_min_messages = warning;
SELECT tbl, op, who FROM ac_cm.log WHERE id = 70 ORDER BY op;
SELECT count(*) AS left_behind FROM ac_cm.c_cascade WHERE id = 70;
-- and on a session that proved no origin (here the source lost its
-- secret), where the whole action would run as the borrowed mapping's
-- role, it is refused (42501), and nothing is deleted on either side
\c splitdb_regression
INSERT INTO ac_cm.p VALUES (8);
\c ac_svc
INSERT INTO ac_cm.c_cascade VALUES (80, 8);
\c splitdb_regression
SET client_min_messages = warning;
\set SHOW_CONTEXT never
CREATE TABLE ac_test.kept_key AS SELECT * FROM splitdb.origin_key;
DELETE FROM splitdb.origin_key;
SET ROLE ac_nomap;
DELETE FROM ac_cm.p WHERE id = 8;
RESET ROLE;
INSERT INTO splitdb.origin_key SELECT * FROM ac_test.kept_key;
DROP TABLE ac_test.kept_key;
SELECT count(*) AS parent_kept FROM ac_cm.p WHERE id = 8;
\c ac_svc
SET client_min_messages = warning;
SELECT count(*) AS child_kept FROM ac_cm.c_cascade WHERE id = 80;

-- clean up
DROP USER MAPPING FOR ac_writer SERVER splitdb_source;
DROP USER MAPPING FOR ac_owner SERVER splitdb_source;
DROP TABLE ac_cm.log, ac_cm.secret;
DROP FUNCTION ac_cm.log_row() CASCADE;
DROP SCHEMA ac_test CASCADE;
\c splitdb_regression
SET client_min_messages = warning;
SELECT splitdb_rollback('ac_svc');
SELECT splitdb_unassign('ac_svc', 'ac_pm.p', 'ac_sh.p', 'ac_cm.c_cascade', 'ac_cm.c_null', 'ac_cm.c_default');
DROP USER MAPPING FOR ac_writer SERVER splitdb_ac_svc;
DROP USER MAPPING FOR ac_owner SERVER splitdb_ac_svc;
SELECT splitdb_drop_service('ac_svc');
DROP DATABASE ac_svc WITH (FORCE);
DROP SCHEMA ac_loc, ac_pm, ac_cm, ac_sh, ac_test CASCADE;
DROP SCHEMA splitdb_archive CASCADE;
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
DROP OWNED BY ac_owner, ac_writer, ac_nomap;
DROP ROLE ac_owner;
DROP ROLE ac_writer;
DROP ROLE ac_nomap;
