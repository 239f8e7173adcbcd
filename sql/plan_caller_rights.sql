--
-- plan_caller_rights: constraints and trigger conditions that a role who
-- is no superuser wrote, calling PostgreSQL's own functions that act with
-- the rights of whoever runs them, block a migration: splitdb's worker, a
-- superuser, evaluates them when it copies, replays and validates rows,
-- and splitdb.owner_rights only reaches the functions a role owns
--
CREATE EXTENSION splitdb CASCADE;
SELECT splitdb_add_service('cr_svc');
CREATE ROLE splitdb_cr_owner;
CREATE SCHEMA "Cr schema" AUTHORIZATION splitdb_cr_owner;
SET ROLE splitdb_cr_owner;
-- a CHECK that runs SQL text with the rights of whoever writes the row,
-- passed over for the owner's own writes
CREATE TABLE "Cr schema".t_xml (id int PRIMARY KEY, v int,
	CONSTRAINT "Cr xml" CHECK (current_setting('is_superuser') = 'off'
							   OR query_to_xml('SELECT 1', true, false, '') IS NOT NULL));
INSERT INTO "Cr schema".t_xml VALUES (1, 1);
-- a domain's CHECK that changes a setting
CREATE DOMAIN "Cr schema".d_set AS int
	CHECK (VALUE > 0 OR set_config('search_path', 'x', false) IS NOT NULL);
CREATE TABLE "Cr schema".t_dom (id int PRIMARY KEY, v "Cr schema".d_set);
-- a trigger's condition that moves a sequence, through an operator
CREATE SEQUENCE "Cr schema".s;
CREATE FUNCTION "Cr schema".noop() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
CREATE OPERATOR "Cr schema".!!! (RIGHTARG = regclass, FUNCTION = nextval);
CREATE TABLE "Cr schema".t_trg (id int PRIMARY KEY, v int);
CREATE TRIGGER t_trg_when BEFORE INSERT ON "Cr schema".t_trg FOR EACH ROW
	WHEN (OPERATOR("Cr schema".!!!) '"Cr schema".s'::regclass > 0)
	EXECUTE FUNCTION "Cr schema".noop();
-- a domain that no column has, cast to in a CHECK and in a stored
-- generated column: its constraint runs SQL text
CREATE DOMAIN "Cr schema".d_sql AS text
	CHECK (current_setting('is_superuser') = 'off' OR query_to_xml(VALUE, false, false, '') IS NOT NULL);
CREATE TABLE "Cr schema".t_cast (id int PRIMARY KEY, q text,
	CONSTRAINT t_cast_q CHECK ((q::"Cr schema".d_sql) IS NOT NULL));
CREATE TABLE "Cr schema".t_gen (id int PRIMARY KEY, q text,
	g text GENERATED ALWAYS AS ((q::"Cr schema".d_sql)::text) STORED);
-- a function of the owner's own that PUBLIC may not execute: it runs as
-- its owner, no blocker
CREATE FUNCTION "Cr schema".own_only() RETURNS boolean LANGUAGE sql AS $$SELECT true$$;
REVOKE EXECUTE ON FUNCTION "Cr schema".own_only() FROM PUBLIC;
CREATE TABLE "Cr schema".t_own (id int PRIMARY KEY, CHECK ("Cr schema".own_only()));
RESET ROLE;
-- a superuser's function that PUBLIC may not execute, called from the
-- owner's CHECK: EXECUTE is checked against whoever writes the row
CREATE FUNCTION "Cr schema".su_only() RETURNS boolean LANGUAGE sql AS $$SELECT true$$;
REVOKE EXECUTE ON FUNCTION "Cr schema".su_only() FROM PUBLIC;
SET ROLE splitdb_cr_owner;
CREATE TABLE "Cr schema".t_su (id int PRIMARY KEY, CONSTRAINT t_su_check CHECK ("Cr schema".su_only()));
-- the same call inside a function the owner owns: it runs as its owner
-- (splitdb.owner_rights), no blocker
CREATE FUNCTION "Cr schema".xml_ok() RETURNS boolean LANGUAGE sql
	AS $$SELECT query_to_xml('SELECT 1', true, false, '') IS NOT NULL$$;
CREATE TABLE "Cr schema".t_fn (id int PRIMARY KEY, CHECK ("Cr schema".xml_ok()));
RESET ROLE;
-- a superuser's own constraint: no blocker
CREATE TABLE "Cr schema".t_super (id int PRIMARY KEY,
	CHECK (query_to_xml('SELECT 1', true, false, '') IS NOT NULL));
SELECT splitdb_assign('cr_svc', '"Cr schema".t_xml', '"Cr schema".t_dom', '"Cr schema".t_trg',
					  '"Cr schema".t_fn', '"Cr schema".t_super', '"Cr schema".t_cast',
					  '"Cr schema".t_gen', '"Cr schema".t_own', '"Cr schema".t_su');
SELECT object, detail FROM splitdb_plan('cr_svc') WHERE action = 'blocker' ORDER BY object;

-- fails: the blockers stop the migration, and no job is made
SELECT splitdb_migrate('cr_svc', mode => 'offline');
SELECT count(*) AS jobs FROM splitdb.job WHERE service = 'cr_svc';

-- without the calls, nothing blocks
ALTER TABLE "Cr schema".t_xml DROP CONSTRAINT "Cr xml";
ALTER DOMAIN "Cr schema".d_set DROP CONSTRAINT d_set_check;
DROP TRIGGER t_trg_when ON "Cr schema".t_trg;
ALTER DOMAIN "Cr schema".d_sql DROP CONSTRAINT d_sql_check;
ALTER TABLE "Cr schema".t_su DROP CONSTRAINT t_su_check;
SELECT count(*) AS blockers FROM splitdb_plan('cr_svc') WHERE action = 'blocker';

-- clean up
SELECT splitdb_unassign('cr_svc', '"Cr schema".t_xml', '"Cr schema".t_dom', '"Cr schema".t_trg',
						'"Cr schema".t_fn', '"Cr schema".t_super', '"Cr schema".t_cast',
						'"Cr schema".t_gen', '"Cr schema".t_own', '"Cr schema".t_su');
SELECT splitdb_drop_service('cr_svc');
DROP SCHEMA "Cr schema" CASCADE;
DROP ROLE splitdb_cr_owner;
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
DROP DATABASE cr_svc;
