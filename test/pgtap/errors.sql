-- test/pgtap/errors.sql
-- Every refusal of the service and ownership API: SQLSTATE and exact message,
-- and after each one the catalog (services, owned tables, servers, user
-- mappings) exactly as it was before.
--
-- The services made here use the database "postgres" as their sibling with
-- create_database => false: that database always exists and is not the one
-- pg_prove runs in, so splitdb_add_service() creates no database (which a
-- ROLLBACK could not undo) and everything below rolls back.

BEGIN;
SET LOCAL client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS splitdb CASCADE;

SELECT plan(80);

-- ===== fixtures
CREATE SCHEMA pgtap_err;
CREATE TABLE pgtap_err.t1 (id int PRIMARY KEY);
CREATE TABLE pgtap_err.t2 (id int PRIMARY KEY);
CREATE VIEW pgtap_err.v AS SELECT id FROM pgtap_err.t1;
CREATE MATERIALIZED VIEW pgtap_err.mv AS SELECT id FROM pgtap_err.t1;
CREATE SEQUENCE pgtap_err.seq;
CREATE TABLE pgtap_err.p (id int PRIMARY KEY) PARTITION BY RANGE (id);
CREATE TABLE pgtap_err.p1 PARTITION OF pgtap_err.p FOR VALUES FROM (0) TO (100);
CREATE TEMP TABLE pgtap_tmp (id int PRIMARY KEY);

-- a foreign-data wrapper that is not postgres_fdw, and servers for the
-- server => ... refusals
CREATE FOREIGN DATA WRAPPER pgtap_other_fdw;
CREATE SERVER pgtap_other_srv FOREIGN DATA WRAPPER pgtap_other_fdw;
CREATE SERVER pgtap_nomap_srv FOREIGN DATA WRAPPER postgres_fdw
	OPTIONS (dbname 'postgres');
CREATE SERVER splitdb_pgtap_taken FOREIGN DATA WRAPPER postgres_fdw
	OPTIONS (dbname 'postgres');

CREATE ROLE pgtap_err_nobody NOLOGIN;
-- it may name the tables (regclass input needs USAGE), not more
GRANT USAGE ON SCHEMA pgtap_err TO pgtap_err_nobody;

SELECT lives_ok(
	$$SELECT splitdb_add_service('pgtap_s', dbname => 'postgres', create_database => false)$$,
	'fixture: service pgtap_s, sibling "postgres"');
SELECT lives_ok(
	$$SELECT splitdb_add_service('pgtap_t', dbname => 'postgres', create_database => false)$$,
	'fixture: service pgtap_t, sibling "postgres"');
SELECT is(splitdb_assign('pgtap_s', 'pgtap_err.t1', 'pgtap_err.p'), 3,
		  'fixture: pgtap_s owns t1, p and its partition p1');

-- The catalog as one sorted list of text rows; compared after every refusal.
\set state 'SELECT * FROM pgtap_state ORDER BY 1'
-- (format() of name columns yields collation "C"; the expected values use the default)
CREATE TEMP VIEW pgtap_state (item) AS
SELECT item COLLATE "default" FROM (
	SELECT format('service %s db=%s server=%s server_created=%s database_created=%s mapping_role=%s',
				  service, dbname, server, server_created, database_created,
				  mapping_role = current_user)
	  FROM splitdb.service
	UNION ALL
	SELECT format('owned %s by %s root=%s', relid, service, partition_root)
	  FROM splitdb.owned_table
	UNION ALL
	SELECT format('server %s', srvname) FROM pg_foreign_server
	UNION ALL
	SELECT format('mapping %s for %s', srvname, usename = current_user)
	  FROM pg_user_mappings
) AS s (item);

SELECT results_eq(:'state',
	$$VALUES ('mapping splitdb_pgtap_s for t'),
			 ('mapping splitdb_pgtap_t for t'),
			 ('owned pgtap_err.p by pgtap_s root='),
			 ('owned pgtap_err.p1 by pgtap_s root=pgtap_err.p'),
			 ('owned pgtap_err.t1 by pgtap_s root='),
			 ('server pgtap_nomap_srv'),
			 ('server pgtap_other_srv'),
			 ('server splitdb_pgtap_s'),
			 ('server splitdb_pgtap_t'),
			 ('server splitdb_pgtap_taken'),
			 ('service pgtap_s db=postgres server=splitdb_pgtap_s server_created=t database_created=f mapping_role=t'),
			 ('service pgtap_t db=postgres server=splitdb_pgtap_t server_created=t database_created=f mapping_role=t')$$,
	'fixture: the catalog every refusal below must leave as it is');

-- pgtap_before: the state every later check compares with
CREATE TEMP TABLE pgtap_before AS SELECT * FROM pgtap_state;
\set before 'SELECT * FROM pgtap_before ORDER BY 1'

-- ===== unknown service (42704), in every function that takes one
SELECT throws_ok($$SELECT splitdb_assign('pgtap_nosuch', 'pgtap_err.t2')$$,
	'42704', 'service "pgtap_nosuch" does not exist',
	'assign: unknown service');
SELECT results_eq(:'state', :'before', 'assign to an unknown service changed nothing');

SELECT throws_ok($$SELECT splitdb_unassign('pgtap_nosuch', 'pgtap_err.t1')$$,
	'42704', 'service "pgtap_nosuch" does not exist',
	'unassign: unknown service');
SELECT results_eq(:'state', :'before', 'unassign from an unknown service changed nothing');

SELECT throws_ok($$SELECT * FROM splitdb_plan('pgtap_nosuch')$$,
	'42704', 'service "pgtap_nosuch" does not exist',
	'plan: unknown service');

SELECT throws_ok($$SELECT splitdb_plan_dot('pgtap_nosuch')$$,
	'42704', 'service "pgtap_nosuch" does not exist',
	'plan_dot: unknown service');

SELECT throws_ok($$SELECT splitdb_drop_service('pgtap_nosuch')$$,
	'42704', 'service "pgtap_nosuch" does not exist',
	'drop_service: unknown service');
SELECT results_eq(:'state', :'before', 'dropping an unknown service changed nothing');

-- ===== assign: things that are not user tables (42809)
SELECT throws_ok($$SELECT splitdb_assign('pgtap_s', 'pg_catalog.pg_class')$$,
	'42809', 'cannot assign system table "pg_catalog.pg_class"',
	'assign: a system catalog is refused');
SELECT results_eq(:'state', :'before', 'refused system catalog: nothing changed');

SELECT throws_ok($$SELECT splitdb_assign('pgtap_s', 'information_schema.sql_features')$$,
	'42809', 'cannot assign system table "information_schema.sql_features"',
	'assign: an information_schema table is refused');

SELECT throws_ok($$SELECT splitdb_assign('pgtap_s', 'pgtap_err.v')$$,
	'42809', 'cannot assign "pgtap_err.v" because it is not a table',
	'assign: a view is refused');
SELECT results_eq(:'state', :'before', 'refused view: nothing changed');

SELECT throws_ok($$SELECT splitdb_assign('pgtap_s', 'pgtap_err.mv')$$,
	'42809', 'cannot assign "pgtap_err.mv" because it is not a table',
	'assign: a materialized view is refused');

SELECT throws_ok($$SELECT splitdb_assign('pgtap_s', 'pgtap_err.seq')$$,
	'42809', 'cannot assign "pgtap_err.seq" because it is not a table',
	'assign: a sequence is refused');

SELECT throws_ok($$SELECT splitdb_assign('pgtap_t', 'pgtap_err.p1')$$,
	'42809', 'cannot assign partition "pgtap_err.p1" on its own',
	'assign: a partition named on its own is refused');
SELECT results_eq(:'state', :'before', 'refused partition: nothing changed');

SELECT throws_ok($$SELECT splitdb_assign('pgtap_s', 'pgtap_tmp')$$,
	'42809', NULL,
	'assign: a temporary table is refused (SQLSTATE)');
-- the temporary schema is named pg_temp or pg_temp_N: N varies per backend
SELECT throws_matching($$SELECT splitdb_assign('pgtap_s', 'pgtap_tmp')$$,
	'^cannot assign temporary table "pg_temp(_[0-9]+)?\.pgtap_tmp"$',
	'assign: a temporary table is refused (message)');

SELECT throws_ok($$SELECT splitdb_assign('pgtap_s', 'splitdb.service')$$,
	'42809', 'cannot assign table "splitdb.service" because it belongs to extension "splitdb"',
	'assign: a table of an extension is refused');
SELECT results_eq(:'state', :'before', 'refused extension table: nothing changed');

-- one bad table in the list: the good ones before it are not assigned either
SELECT throws_ok($$SELECT splitdb_assign('pgtap_s', 'pgtap_err.t2', 'pgtap_err.v')$$,
	'42809', 'cannot assign "pgtap_err.v" because it is not a table',
	'assign: a list with one bad table is refused as a whole');
SELECT results_eq(:'state', :'before', 'refused list: t2 was not assigned');

-- ===== assign: bad arguments
SELECT throws_ok($$SELECT splitdb_assign('pgtap_s', VARIADIC ARRAY[]::regclass[])$$,
	'22023', 'no tables given',
	'assign: an empty list is refused');
SELECT throws_ok($$SELECT splitdb_assign('pgtap_s', 'pgtap_err.t2', NULL)$$,
	'22004', 'table name cannot be null',
	'assign: a NULL table is refused');
SELECT results_eq(:'state', :'before', 'refused NULL table: t2 was not assigned');
SELECT throws_ok($$SELECT splitdb_unassign('pgtap_s', VARIADIC ARRAY[]::regclass[])$$,
	'22023', 'no tables given',
	'unassign: an empty list is refused');
SELECT throws_ok($$SELECT splitdb_assign('pgtap_s', 'pgtap_err.no_such_table')$$,
	'42P01', 'relation "pgtap_err.no_such_table" does not exist',
	'assign: a table that does not exist is refused');

-- ===== a table belongs to one service at most (42710)
SELECT throws_ok($$SELECT splitdb_assign('pgtap_t', 'pgtap_err.t1')$$,
	'42710', 'table "pgtap_err.t1" is already owned by service "pgtap_s"',
	'assign: a table owned by another service is refused');
SELECT results_eq(:'state', :'before', 'refused second owner: nothing changed');

SELECT throws_ok($$SELECT splitdb_assign('pgtap_t', 'pgtap_err.t2', 'pgtap_err.t1')$$,
	'42710', 'table "pgtap_err.t1" is already owned by service "pgtap_s"',
	'assign: a list with a table owned elsewhere is refused as a whole');
SELECT results_eq(:'state', :'before', 'refused list with an owned table: t2 was not assigned');

-- ===== unassign refusals
SELECT throws_ok($$SELECT splitdb_unassign('pgtap_s', 'pgtap_err.t2')$$,
	'42704', 'table "pgtap_err.t2" is not owned by service "pgtap_s"',
	'unassign: a table nobody owns is refused');
SELECT throws_ok($$SELECT splitdb_unassign('pgtap_t', 'pgtap_err.t1')$$,
	'42704', 'table "pgtap_err.t1" is not owned by service "pgtap_t"',
	'unassign: a table another service owns is refused');
SELECT results_eq(:'state', :'before', 'refused unassign from the wrong service: nothing changed');
SELECT throws_ok($$SELECT splitdb_unassign('pgtap_s', 'pgtap_err.p1')$$,
	'42809', 'cannot unassign partition "pgtap_err.p1" on its own',
	'unassign: a partition on its own is refused');
SELECT results_eq(:'state', :'before', 'refused partition unassign: p1 is still owned');
SELECT throws_ok($$SELECT splitdb_unassign('pgtap_s', 'pgtap_err.t1', 'pgtap_err.t2')$$,
	'42704', 'table "pgtap_err.t2" is not owned by service "pgtap_s"',
	'unassign: a list with one table not owned is refused as a whole');
SELECT results_eq(:'state', :'before', 'refused unassign list: t1 is still owned');

-- ===== drop_service: a service that owns tables (2BP01)
SELECT throws_ok($$SELECT splitdb_drop_service('pgtap_s')$$,
	'2BP01', 'cannot drop service "pgtap_s" because it owns tables',
	'drop_service: a service that owns tables is refused');
SELECT results_eq(:'state', :'before', 'refused drop: service, server and mapping are still there');

-- ===== add_service refusals
SELECT throws_ok(
	$$SELECT splitdb_add_service('pgtap_s', dbname => 'postgres', create_database => false)$$,
	'42710', 'service "pgtap_s" already exists',
	'add_service: a duplicate name is refused');
SELECT results_eq(:'state', :'before', 'refused duplicate: nothing changed');

SELECT throws_ok(
	$$SELECT splitdb_add_service('pgtap_u', dbname => 'pgtap_no_such_db', create_database => false)$$,
	'3D000', 'database "pgtap_no_such_db" does not exist',
	'add_service: create_database => false and a missing database is refused');
SELECT results_eq(:'state', :'before', 'refused missing database: no service, server or mapping');
SELECT is((SELECT count(*) FROM pg_database WHERE datname = 'pgtap_no_such_db'), 0::bigint,
		  'refused missing database: it was not created either');

SELECT throws_ok(
	format($$SELECT splitdb_add_service('pgtap_u', dbname => %L)$$, current_database()),
	'22023',
	format('cannot use the source database "%s" as the sibling of service "pgtap_u"', current_database()),
	'add_service: the source database as sibling is refused');
SELECT results_eq(:'state', :'before', 'refused source database: nothing changed');

SELECT throws_ok($$SELECT splitdb_add_service('pgtap_taken', dbname => 'postgres', create_database => false)$$,
	'42710', 'server "splitdb_pgtap_taken" already exists',
	'add_service: the server splitdb would make already exists');
SELECT results_eq(:'state', :'before', 'refused existing server name: nothing changed');

SELECT throws_ok(
	$$SELECT splitdb_add_service(repeat('x', 60), dbname => 'postgres', create_database => false)$$,
	'42622', format('service name "%s" is too long for a server name', repeat('x', 60)),
	'add_service: a service name too long for a server name is refused');

SELECT throws_ok($$SELECT splitdb_add_service('')$$,
	'22023', 'service name cannot be empty',
	'add_service: an empty service name is refused');
SELECT throws_ok($$SELECT splitdb_add_service(NULL)$$,
	'22004', 'service name cannot be null',
	'add_service: a NULL service name is refused');
SELECT throws_ok($$SELECT splitdb_add_service('pgtap_u', dbname => '')$$,
	'22023', 'database name cannot be empty',
	'add_service: an empty database name is refused');
SELECT throws_ok($$SELECT splitdb_add_service('pgtap_u', server => '')$$,
	'22023', 'server name cannot be empty',
	'add_service: an empty server name is refused');
SELECT results_eq(:'state', :'before', 'refused empty names: nothing changed');

-- server => ...: the server must exist, be postgres_fdw, have a user mapping,
-- and serve no other service
SELECT throws_ok($$SELECT splitdb_add_service('pgtap_u', server => 'pgtap_no_such_srv')$$,
	'42704', 'server "pgtap_no_such_srv" does not exist',
	'add_service: a server that does not exist is refused');
SELECT throws_ok($$SELECT splitdb_add_service('pgtap_u', server => 'pgtap_other_srv')$$,
	'42809', 'server "pgtap_other_srv" is not a postgres_fdw server',
	'add_service: a server of another foreign-data wrapper is refused');
SELECT throws_ok($$SELECT splitdb_add_service('pgtap_u', server => 'pgtap_nomap_srv')$$,
	'42704',
	format('user mapping not found for user "%s", server "pgtap_nomap_srv"', current_user),
	'add_service: a server without a user mapping is refused');
SELECT throws_ok($$SELECT splitdb_add_service('pgtap_u', server => 'splitdb_pgtap_s')$$,
	'42710', 'server "splitdb_pgtap_s" is already used by service "pgtap_s"',
	'add_service: a server another service uses is refused');
SELECT results_eq(:'state', :'before', 'refused servers: nothing changed');

-- ===== only superusers change services and ownership (42501)
SET LOCAL ROLE pgtap_err_nobody;
SELECT throws_ok(
	$$SELECT splitdb_add_service('pgtap_u', dbname => 'postgres', create_database => false)$$,
	'42501', 'permission denied for function splitdb_add_service',
	'add_service: refused to a non-superuser');
SELECT throws_ok($$SELECT splitdb_drop_service('pgtap_t')$$,
	'42501', 'permission denied for function splitdb_drop_service',
	'drop_service: refused to a non-superuser');
SELECT throws_ok($$SELECT splitdb_assign('pgtap_t', 'pgtap_err.t2')$$,
	'42501', 'permission denied for function splitdb_assign',
	'assign: refused to a non-superuser');
SELECT throws_ok($$SELECT splitdb_unassign('pgtap_s', 'pgtap_err.t1')$$,
	'42501', 'permission denied for function splitdb_unassign',
	'unassign: refused to a non-superuser');
SELECT throws_ok($$DELETE FROM splitdb.owned_table$$,
	'42501', 'permission denied for table owned_table',
	'the catalog cannot be written directly by a non-superuser');
SELECT results_eq(
	$$SELECT count(*) FROM splitdb.service$$, ARRAY[2::bigint],
	'a non-superuser can still read splitdb.service');
RESET ROLE;
SELECT results_eq(:'state', :'before', 'refused non-superuser: nothing changed');

-- ===== the calls that succeed leave exactly the expected change
SELECT is(splitdb_assign('pgtap_s', 'pgtap_err.t1'), 0,
		  'assign of a table the service already owns adds nothing');
SELECT results_eq(:'state', :'before', 'repeated assign: nothing changed');
SELECT is(splitdb_unassign('pgtap_s', 'pgtap_err.p'), 2,
		  'unassign of the partitioned table takes its partition with it');
SELECT results_eq(:'state',
	$$SELECT * FROM pgtap_before WHERE item NOT LIKE 'owned pgtap_err.p%' ORDER BY 1$$,
	'after unassign: p and p1 are gone, nothing else changed');
SELECT lives_ok($$DROP TABLE pgtap_err.t1 CASCADE$$, 'an owned table can be dropped');
SELECT is_empty($$SELECT * FROM splitdb.owned_table$$,
				'the dropped table left no ownership row');
SELECT lives_ok($$SELECT splitdb_drop_service('pgtap_s')$$,
				'a service that owns nothing can be dropped');
SELECT results_eq(:'state',
	$$SELECT * FROM pgtap_before
	   WHERE item NOT LIKE 'owned %' AND item NOT LIKE '%pgtap_s%' ORDER BY 1$$,
	'after drop_service: the service, its server and its mapping are gone');

SELECT * FROM finish();
ROLLBACK;
