--
-- privileges: who may call what
--
CREATE EXTENSION splitdb CASCADE;
SELECT splitdb_add_service('priv_svc');
CREATE TABLE priv_t (id int PRIMARY KEY);
SELECT splitdb_assign('priv_svc', 'priv_t');

CREATE ROLE splitdb_priv_app LOGIN;
GRANT SELECT ON priv_t TO splitdb_priv_app;
GRANT CREATE ON SCHEMA public TO splitdb_priv_app;
SET ROLE splitdb_priv_app;
\set VERBOSITY default

-- fails: the functions that change services and ownership need a superuser
SELECT splitdb_add_service('priv_other', dbname => 'postgres', create_database => false);
SELECT splitdb_drop_service('priv_svc');
SELECT splitdb_assign('priv_svc', 'priv_t');
SELECT splitdb_unassign('priv_svc', 'priv_t');
-- fails: the catalog tables are read-only for everyone else
INSERT INTO splitdb.service (service, dbname, server, server_created, database_created)
	VALUES ('x', 'x', 'x', false, false);
DELETE FROM splitdb.owned_table;

-- the plan and the catalog are readable by anyone
SELECT step, action, object FROM splitdb_plan('priv_svc') ORDER BY step;
SELECT splitdb_plan_dot('priv_svc') LIKE 'digraph%' AS is_dot;
SELECT service, dbname, server FROM splitdb.service;
SELECT relid, service FROM splitdb.owned_table;
-- fails: splitdb's internal functions, which only splitdb calls as its own
-- role, are not PUBLIC's to execute
SELECT splitdb.install_reference_ends('[]');
SELECT splitdb.drop_reference_ends(ARRAY[1::bigint]);
SELECT splitdb.ensure_server('x', '{host=localhost}', 'source');
SELECT splitdb.ensure_user_mapping('splitdb_priv_app', 'splitdb_priv_svc', '{}');
SELECT splitdb.ensure_preloaded();
SELECT splitdb.origin_key_make('x', NULL, 'y');
SELECT splitdb.partition_route('priv_t', 'new');
-- splitdb.reference_relay() is called from another database as the role of
-- a user mapping, so any role may call it: it runs the statement with the
-- caller's own rights (and search_path pg_catalog, pg_temp)
SELECT * FROM splitdb.reference_relay('SELECT count(*) FROM public.priv_t', '{}');
-- fails: the role may not delete from priv_t
SELECT * FROM splitdb.reference_relay('DELETE FROM public.priv_t', '{}');
-- a role that is no superuser can still create and drop its own tables:
-- the event trigger that forgets dropped tables runs with its owner's rights
CREATE TABLE priv_own (id int);
DROP TABLE priv_own;
RESET ROLE;

-- an owned table dropped by its owner, who is no superuser, loses its row
CREATE TABLE priv_app_t (id int PRIMARY KEY);
ALTER TABLE priv_app_t OWNER TO splitdb_priv_app;
SELECT splitdb_assign('priv_svc', 'priv_app_t');
SET ROLE splitdb_priv_app;
DROP TABLE priv_app_t;
RESET ROLE;

-- nothing changed
SELECT service, dbname, server FROM splitdb.service;
SELECT relid, service FROM splitdb.owned_table;
SELECT srvname FROM pg_foreign_server ORDER BY srvname;
SELECT count(*) AS reference_ends FROM splitdb.reference_end;
SELECT count(*) AS origin_keys FROM splitdb.origin_key;

-- the functions of the extension that PUBLIC may execute: the API (whose
-- functions that change or read data check for superuser themselves), the
-- origin proofs and the relay (called from another database as the role of
-- a user mapping), what the views that anyone may read call, and the row
-- hashes of the checksums (a value's hash, as hash_record_extended() is)
SELECT p.oid::regprocedure AS executable_by_public
  FROM pg_proc p
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
 WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'splitdb')
   AND has_function_privilege('public', p.oid, 'EXECUTE')
 ORDER BY p.oid::regprocedure::text COLLATE "C";
-- no grant restates PostgreSQL's default: a function PUBLIC may execute
-- carries no privileges of its own (a REVOKE undone by a GRANT would)
SELECT p.oid::regprocedure AS explicit_grant_to_public
  FROM pg_proc p
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
 WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'splitdb')
   AND p.proacl IS NOT NULL
   AND has_function_privilege('public', p.oid, 'EXECUTE');

-- splitdb.owner_rights: with it on, a function that no superuser owns runs
-- as its owner when a superuser calls it, in a security-restricted
-- operation (its SET ROLE fails), also from a CHECK constraint, an index
-- expression and a domain check, and inside a function of its own; a
-- superuser's function and a call by another role are left alone
SET ROLE splitdb_priv_app;
CREATE FUNCTION priv_who(i int) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN RAISE NOTICE 'priv_who(%) runs as %', i, current_user; RETURN true; END $$;
CREATE FUNCTION priv_who_sql() RETURNS name LANGUAGE sql AS 'SELECT current_user';
CREATE FUNCTION priv_set_role() RETURNS void LANGUAGE plpgsql AS $$
BEGIN EXECUTE 'SET ROLE NONE'; END $$;
CREATE FUNCTION priv_nested() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN RETURN priv_who(4); END $$;
CREATE FUNCTION priv_sets() RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	PERFORM set_config('search_path', 'public, pg_catalog', false);
	PERFORM set_config('datestyle', 'SQL, DMY', false);
	RETURN current_setting('datestyle');
END $$;
CREATE DOMAIN priv_checked AS int CHECK (priv_who(VALUE));
CREATE TABLE priv_checked_t (id int CHECK (priv_who(id)), d priv_checked);
CREATE INDEX ON priv_checked_t ((priv_who(id + 100)));
-- fails: only a superuser may set it
SET splitdb.owner_rights = on;
RESET ROLE;
SHOW splitdb.owner_rights;
CREATE FUNCTION priv_super_who() RETURNS name LANGUAGE sql AS 'SELECT current_user';
SELECT priv_who_sql() = session_user AS off_runs_as_caller;
SET splitdb.owner_rights = on;
SELECT priv_who_sql() AS on_runs_as;
SELECT priv_super_who() = session_user AS superusers_function_runs_as_caller;
-- so is a function in a language that is not trusted, whose body a
-- superuser wrote, whoever owns it now (a trusted extension's C functions)
CREATE FUNCTION priv_c_who() RETURNS name LANGUAGE internal STABLE AS 'current_user';
ALTER FUNCTION priv_c_who() OWNER TO splitdb_priv_app;
SELECT priv_c_who() = session_user AS c_function_runs_as_caller;
SELECT priv_who(1);
INSERT INTO priv_checked_t VALUES (2, 3);
SELECT priv_nested();
-- what such a function sets is undone when it returns
SET search_path = pg_catalog;
SET datestyle = 'ISO, YMD';
SELECT public.priv_sets() AS inside;
SELECT current_setting('search_path') AS search_path, current_setting('datestyle') AS datestyle;
RESET search_path;
RESET datestyle;
-- fails: SET ROLE inside a security-restricted operation
SELECT priv_set_role();
-- a call by the function's owner itself, or by another role, is its own
SET ROLE splitdb_priv_app;
SELECT priv_who_sql() AS app_runs_as;
RESET ROLE;
RESET splitdb.owner_rights;
DROP TABLE priv_checked_t;
DROP DOMAIN priv_checked;
DROP FUNCTION priv_who(int), priv_who_sql(), priv_set_role(), priv_nested(), priv_super_who(), priv_sets(),
	priv_c_who();

-- a failed job's error can quote row values, which PostgreSQL shows only to
-- roles that may read the columns: splitdb_status shows it to superusers and
-- members of pg_read_all_stats, and the catalog does not grant it to PUBLIC
INSERT INTO splitdb.job (job_id, service, mode, state, phase, started_by, last_error, last_sqlstate)
	VALUES (1000, 'priv_svc', 'offline', 'failed', 'copying', 10,
			'duplicate key value violates unique constraint "priv_t_pkey" (Key (id)=(42) already exists.)',
			'23505');
INSERT INTO splitdb.rollback (job_id, step, last_error) VALUES (1000, 'replaying', 'Key (id)=(42)');
SELECT state, last_error FROM splitdb_status WHERE service = 'priv_svc';
SET ROLE splitdb_priv_app;
SELECT state, last_error FROM splitdb_status WHERE service = 'priv_svc';
SELECT job_id, state, last_sqlstate FROM splitdb.job;
SELECT job_id, step FROM splitdb.rollback;
-- fails: the column is not granted
SELECT last_error FROM splitdb.job;
SELECT last_error FROM splitdb.rollback;
RESET ROLE;
GRANT pg_read_all_stats TO splitdb_priv_app;
SET ROLE splitdb_priv_app;
SELECT state, last_error FROM splitdb_status WHERE service = 'priv_svc';
RESET ROLE;
REVOKE pg_read_all_stats FROM splitdb_priv_app;
DELETE FROM splitdb.job WHERE job_id = 1000;

-- clean up
SELECT splitdb_unassign('priv_svc', 'priv_t');
SELECT splitdb_drop_service('priv_svc');
DROP TABLE priv_t;
REVOKE CREATE ON SCHEMA public FROM splitdb_priv_app;
DROP ROLE splitdb_priv_app;
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
DROP DATABASE priv_svc;
