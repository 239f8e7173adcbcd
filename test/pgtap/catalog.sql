-- test/pgtap/catalog.sql
-- The shape of splitdb's catalog and SQL API: schema, tables, columns, keys,
-- functions, privileges, settings, comments and extension membership.
--
-- Everything runs in one transaction that is rolled back, extension included.

BEGIN;
SET LOCAL client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION IF NOT EXISTS splitdb CASCADE;
-- the library defines the settings; load it even without shared_preload_libraries
LOAD 'splitdb';

SELECT plan(99);

-- ===== the extension
SELECT has_extension('splitdb', 'extension splitdb is installed');
SELECT has_extension('postgres_fdw', 'postgres_fdw came with it (requires)');
SELECT results_eq(
	$$SELECT extnamespace::regnamespace::text, extrelocatable, extversion COLLATE "default"
		FROM pg_extension WHERE extname = 'splitdb'$$,
	$$VALUES ('public', false, '0.1')$$,
	'splitdb lives in schema public (its schema in this test), not relocatable, version 0.1');

-- ===== schema and tables
SELECT has_schema('splitdb', 'schema splitdb exists');
SELECT tables_are('splitdb', ARRAY['service', 'owned_table', 'job', 'job_table', 'job_range', 'reference',
								   'reference_end', 'origin_key', 'artifact', 'capture',
								   'cutover_relation', 'cutover_view', 'rollback'],
				  'schema splitdb holds exactly the thirteen catalog tables');
SELECT is_empty(
	$$SELECT c.relname FROM pg_class c
	   WHERE c.relnamespace = 'public'::regnamespace
		 AND c.relname LIKE 'splitdb%'
		 AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
		 AND c.relname NOT IN ('splitdb_status', 'splitdb_table_status', 'splitdb_references')$$,
	'no splitdb table, view or sequence but the three views landed in schema public');
SELECT has_view('public', 'splitdb_status', 'view splitdb_status is in the extension''s schema');
SELECT has_view('public', 'splitdb_table_status', 'view splitdb_table_status is in the extension''s schema');
SELECT columns_are('public', 'splitdb_status',
	ARRAY['service', 'job_id', 'state', 'phase', 'current_table', 'tables_done', 'tables_total',
		  'rows_copied', 'rows_total', 'bytes_copied', 'rows_per_sec', 'eta', 'started_at',
		  'updated_at', 'finished_at', 'last_error', 'worker_pid', 'way_out', 'mode', 'lag_rows',
		  'lag_seconds', 'lag_trend'],
	'splitdb_status has the columns of the contract');
SELECT table_privs_are('public', 'splitdb_status', 'public', ARRAY['SELECT'], 'PUBLIC may read splitdb_status');
SELECT table_privs_are('public', 'splitdb_table_status', 'public', ARRAY['SELECT'], 'PUBLIC may read splitdb_table_status');
SELECT results_eq(
	$$SELECT pg_get_expr(c.conbin, c.conrelid) COLLATE "default" FROM pg_constraint c
	   WHERE c.conrelid = 'splitdb.job'::regclass AND c.contype = 'c'
		 AND pg_get_expr(c.conbin, c.conrelid) LIKE '%state%'$$,
	$$VALUES ('(state = ANY (ARRAY[''queued''::text, ''preparing''::text, ''copying''::text, ''indexing''::text, ''catching_up''::text, ''verifying''::text, ''cutting_over''::text, ''done''::text, ''failed''::text, ''cancelled''::text, ''rolled_back''::text, ''finalized''::text]))')$$,
	'splitdb.job.state takes exactly the states of the contract');
SELECT index_is_unique('splitdb', 'job', 'job_one_per_service', 'one job per service that is not cancelled or rolled back');

-- splitdb.service
SELECT columns_are('splitdb', 'service',
	ARRAY['service', 'dbname', 'server', 'server_created', 'database_created',
		  'mapping_role', 'created_at'],
	'splitdb.service has exactly the expected columns');
SELECT col_type_is('splitdb', 'service', 'service', 'name', 'service.service is name');
SELECT col_type_is('splitdb', 'service', 'dbname', 'text', 'service.dbname is text');
SELECT col_type_is('splitdb', 'service', 'server', 'name', 'service.server is name');
SELECT col_type_is('splitdb', 'service', 'server_created', 'boolean', 'service.server_created is boolean');
SELECT col_type_is('splitdb', 'service', 'database_created', 'boolean', 'service.database_created is boolean');
SELECT col_type_is('splitdb', 'service', 'mapping_role', 'name', 'service.mapping_role is name');
SELECT col_type_is('splitdb', 'service', 'created_at', 'timestamp with time zone', 'service.created_at is timestamptz');
SELECT col_is_pk('splitdb', 'service', 'service', 'service.service is the primary key');
SELECT col_is_unique('splitdb', 'service', ARRAY['server'], 'a server serves one service at most');
SELECT results_eq(
	$$SELECT attname::text COLLATE "default" FROM pg_attribute
	   WHERE attrelid = 'splitdb.service'::regclass AND attnum > 0
		 AND NOT attisdropped AND attnotnull ORDER BY attnum$$,
	ARRAY['service', 'dbname', 'server', 'server_created', 'database_created', 'created_at'],
	'every column of splitdb.service but mapping_role is NOT NULL');
SELECT col_default_is('splitdb', 'service', 'created_at', 'now()', 'service.created_at defaults to now()');

-- splitdb.owned_table
SELECT columns_are('splitdb', 'owned_table',
	ARRAY['relid', 'service', 'partition_root', 'assigned_at'],
	'splitdb.owned_table has exactly the expected columns');
SELECT col_type_is('splitdb', 'owned_table', 'relid', 'regclass', 'owned_table.relid is regclass');
SELECT col_type_is('splitdb', 'owned_table', 'service', 'name', 'owned_table.service is name');
SELECT col_type_is('splitdb', 'owned_table', 'partition_root', 'regclass', 'owned_table.partition_root is regclass');
SELECT col_type_is('splitdb', 'owned_table', 'assigned_at', 'timestamp with time zone', 'owned_table.assigned_at is timestamptz');
SELECT col_is_pk('splitdb', 'owned_table', 'relid', 'owned_table.relid is the primary key: one owner per table');
SELECT fk_ok('splitdb', 'owned_table', 'service', 'splitdb', 'service', 'service',
			 'owned_table.service references service.service');
SELECT results_eq(
	$$SELECT attname::text COLLATE "default" FROM pg_attribute
	   WHERE attrelid = 'splitdb.owned_table'::regclass AND attnum > 0
		 AND NOT attisdropped AND attnotnull ORDER BY attnum$$,
	ARRAY['relid', 'service', 'assigned_at'],
	'every column of splitdb.owned_table but partition_root is NOT NULL');
SELECT col_default_is('splitdb', 'owned_table', 'assigned_at', 'now()', 'owned_table.assigned_at defaults to now()');
SELECT has_index('splitdb', 'owned_table', 'owned_table_service_idx', ARRAY['service'],
				 'owned_table is indexed by service');

-- comments on the catalog
SELECT is_empty(
	$$SELECT c.relname FROM pg_class c
	   WHERE c.relnamespace = 'splitdb'::regnamespace AND c.relkind = 'r'
		 AND obj_description(c.oid, 'pg_class') IS NULL$$,
	'every catalog table has a comment');
SELECT is_empty(
	$$SELECT a.attrelid::regclass::text || '.' || a.attname FROM pg_attribute a
	   JOIN pg_class c ON c.oid = a.attrelid
	   WHERE c.relnamespace = 'splitdb'::regnamespace AND c.relkind = 'r'
		 AND a.attnum > 0 AND NOT a.attisdropped
		 AND a.attname NOT IN ('created_at', 'assigned_at')
		 AND col_description(a.attrelid, a.attnum) IS NULL$$,
	'every catalog column (timestamps aside) has a comment');
SELECT isnt(obj_description('splitdb'::regnamespace, 'pg_namespace'), NULL,
			'schema splitdb has a comment');

-- ===== extension membership and pg_dump registration
SELECT set_eq(
	$$SELECT c.oid::regclass::text FROM pg_depend d
		JOIN pg_class c ON c.oid = d.objid
	   WHERE d.classid = 'pg_class'::regclass AND d.deptype = 'e'
		 AND d.refclassid = 'pg_extension'::regclass
		 AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'splitdb')$$,
	ARRAY['splitdb.service', 'splitdb.owned_table', 'splitdb.job', 'splitdb.job_id_seq',
		  'splitdb.job_table', 'splitdb.job_range', 'splitdb.reference', 'splitdb.reference_reference_id_seq',
		  'splitdb.reference_end', 'splitdb.origin_key', 'splitdb.owned_relation', 'splitdb.reference_placement',
		  'splitdb.artifact', 'splitdb.artifact_artifact_id_seq', 'splitdb.capture',
		  'splitdb.cutover_relation', 'splitdb.cutover_view', 'splitdb.rollback',
		  'splitdb_status', 'splitdb_table_status', 'splitdb_references'],
	'the extension owns exactly the thirteen catalog tables, their three sequences and five views');
SELECT results_eq(
	$$SELECT c::regclass::text, cond COLLATE "default"
		FROM pg_extension e,
			 unnest(e.extconfig, e.extcondition) AS u(c, cond)
	   WHERE e.extname = 'splitdb' ORDER BY 1$$,
	$$VALUES ('splitdb.artifact', ''), ('splitdb.artifact_artifact_id_seq', ''), ('splitdb.capture', ''),
			 ('splitdb.cutover_relation', ''), ('splitdb.cutover_view', ''),
			 ('splitdb.job', ''), ('splitdb.job_id_seq', ''), ('splitdb.job_range', ''),
			 ('splitdb.job_table', ''),
			 ('splitdb.origin_key', ''), ('splitdb.owned_table', ''), ('splitdb.reference', ''), ('splitdb.reference_end', ''),
			 ('splitdb.reference_reference_id_seq', ''), ('splitdb.rollback', ''), ('splitdb.service', '')$$,
	'every catalog table and its sequences are registered with pg_extension_config_dump, all rows');
SELECT set_eq(
	$$SELECT d.objid::regnamespace::text FROM pg_depend d
	   WHERE d.classid = 'pg_namespace'::regclass AND d.deptype = 'e'
		 AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'splitdb')$$,
	ARRAY['splitdb'],
	'schema splitdb belongs to the extension');
SELECT results_eq(
	$$SELECT t.evtevent::text COLLATE "default", t.evtfoid::regprocedure::text, t.evtenabled::text
		FROM pg_event_trigger t
		JOIN pg_depend d ON d.classid = 'pg_event_trigger'::regclass
						AND d.objid = t.oid AND d.deptype = 'e'
	   WHERE t.evtname = 'splitdb_forget_dropped_tables'
		 AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'splitdb')$$,
	$$VALUES ('sql_drop', 'splitdb.forget_dropped_tables()', 'O')$$,
	'event trigger splitdb_forget_dropped_tables: sql_drop, enabled, part of the extension');
SELECT results_eq(
	$$SELECT t.evtevent::text COLLATE "default", t.evtfoid::regprocedure::text, t.evtenabled::text,
			 t.evttags::text COLLATE "default"
		FROM pg_event_trigger t
		JOIN pg_depend d ON d.classid = 'pg_event_trigger'::regclass
						AND d.objid = t.oid AND d.deptype = 'e'
	   WHERE t.evtname = 'splitdb_trigger_owner'
		 AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'splitdb')$$,
	$$VALUES ('ddl_command_end', 'splitdb.refuse_foreign_triggers()', 'O', '{"CREATE TRIGGER","CREATE SCHEMA"}')$$,
	'event trigger splitdb_trigger_owner: CREATE TRIGGER and CREATE SCHEMA (whose elements may create a trigger), enabled, part of the extension');
SELECT function_privs_are('splitdb', 'refuse_foreign_triggers', ARRAY[]::name[],
						  'public', ARRAY[]::text[], 'PUBLIC may not execute splitdb.refuse_foreign_triggers()');
SELECT results_eq(
	$$SELECT t.evtname::text COLLATE "default", t.evtevent::text COLLATE "default",
			 t.evtfoid::regprocedure::text, t.evtenabled::text,
			 'ALTER TABLE' = ANY (t.evttags), 'CREATE USER MAPPING' = ANY (t.evttags)
		FROM pg_event_trigger t
		JOIN pg_depend d ON d.classid = 'pg_event_trigger'::regclass
						AND d.objid = t.oid AND d.deptype = 'e'
	   WHERE t.evtname LIKE 'splitdb\_guard\_%'
		 AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'splitdb')
	   ORDER BY 1$$,
	$$VALUES ('splitdb_guard_ddl', 'ddl_command_end', 'splitdb.guard_ddl()', 'A', true, false),
			 ('splitdb_guard_drop', 'sql_drop', 'splitdb.guard_drop()', 'A', true, false),
			 ('splitdb_guard_dropped_ends', 'sql_drop', 'splitdb.guard_dropped_ends()', 'A', NULL::boolean, NULL::boolean),
			 ('splitdb_guard_start', 'ddl_command_start', 'splitdb.guard_start()', 'A', true, false),
			 ('splitdb_guard_triggers', 'ddl_command_start', 'splitdb.guard_triggers()', 'A', true, false)$$,
	'event triggers splitdb_guard_ddl, splitdb_guard_drop, splitdb_guard_start and splitdb_guard_triggers: enabled always (replica sessions too), part of the extension, for listed tags only; splitdb_guard_dropped_ends on every drop (sql_drop fires for no command that can carry a password)');
SELECT function_privs_are('splitdb', 'guard_dropped_ends', ARRAY[]::name[],
						  'public', ARRAY[]::text[], 'PUBLIC may not execute splitdb.guard_dropped_ends()');
SELECT function_privs_are('splitdb', 'guard_ddl', ARRAY[]::name[],
						  'public', ARRAY[]::text[], 'PUBLIC may not execute splitdb.guard_ddl()');
SELECT function_privs_are('splitdb', 'capture_relation', ARRAY['regclass', 'regclass', 'name[]', 'bigint'],
						  'public', ARRAY[]::text[], 'PUBLIC may not execute splitdb.capture_relation()');
SELECT function_privs_are('splitdb', 'capture_partition', ARRAY['regclass', 'regclass'],
						  'public', ARRAY[]::text[], 'PUBLIC may not execute splitdb.capture_partition()');

-- ===== functions
SELECT set_eq(
	$$SELECT p.oid::regprocedure::text FROM pg_depend d
		JOIN pg_proc p ON p.oid = d.objid
	   WHERE d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
		 AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'splitdb')$$,
	ARRAY['splitdb_add_service(name,text,name,boolean)',
		  'splitdb_drop_service(name)',
		  'splitdb_assign(name,regclass[])',
		  'splitdb_unassign(name,regclass[])',
		  'splitdb_plan(name)',
		  'splitdb_plan_dot(name)',
		  'splitdb_verify(name)',
		  'splitdb_migrate(name,text,boolean)',
		  'splitdb_remote_nextval(name,text)',
		  'splitdb_orphans(name)',
		  'splitdb_reference_mode(bigint,text)',
		  'splitdb_cancel(name)',
		  'splitdb_finalize(name,boolean)',
		  'splitdb_doctor(boolean)',
		  'splitdb.forget_dropped_tables()',
		  'splitdb.job_worker_gone(text,integer)',
		  'splitdb.reference_row()',
		  'splitdb.reference_flush()',
		  'splitdb.reference_relay(text,text[])',
		  'splitdb.reference_relayed()',
		  'splitdb.shim_statement()',
		  'splitdb.reference_counters()',
		  'splitdb.drop_reference_ends(bigint[])',
		  'splitdb.drop_reference_end(bigint,"char")',
		  'splitdb.reference_ends_off(bigint)',
		  'splitdb.install_reference_ends(jsonb)',
		  'splitdb.ensure_server(name,text[],text)',
		  'splitdb.ensure_user_mapping(name,name,text[])',
		  'splitdb.key_type(oid)',
		  'splitdb.reference_end_relid(oid,text)',
		  'splitdb.origin_challenge()',
		  'splitdb.origin_prove(text,text)',
		  'splitdb.origin_withdraw()',
		  'splitdb.origin_key_make(text,name,text)',
		  'splitdb.ensure_preloaded()',
		  'splitdb.partition_route(regclass,text)',
		  'splitdb.refuse_foreign_triggers()',
		  'splitdb.guard_ddl()',
		  'splitdb.guard_drop()',
		  'splitdb.guard_start()',
		  'splitdb.guard_triggers()',
		  'splitdb.guard_dropped_ends()',
		  'splitdb.archive_guard()',
		  'splitdb_rollback(name)',
		  'splitdb.capture_changes()',
		  'splitdb.install_capture(bigint,text[])',
		  'splitdb.capture_relation(regclass,regclass,name[],bigint)',
		  'splitdb.capture_partition(regclass,regclass)',
		  'splitdb.capture_problem(bigint,text[])',
		  'splitdb.refuse_writes()',
		  'splitdb.close_capture(bigint,text)',
		  'splitdb.drop_capture(bigint)',
		  'splitdb.reference_relay_action(bigint,"char",text[],text[],bigint,text)',
		  'splitdb.reference_lookup(bigint,"char",integer,text[],text[],bigint,text)',
		  'splitdb.row_hash("any")',
		  'splitdb.row_digest("any")'],
	'the extension has exactly these functions: fifteen in its schema, forty-one helpers in splitdb');
SELECT is_empty(
	$$SELECT proname FROM pg_proc
	   WHERE pronamespace = 'splitdb'::regnamespace AND proname LIKE 'splitdb%'$$,
	'no splitdb_ function sits in schema splitdb');
SELECT functions_are('splitdb', ARRAY['forget_dropped_tables', 'job_worker_gone',
									  'reference_row', 'reference_flush', 'reference_relay',
									  'reference_relay_action', 'reference_lookup', 'reference_relayed', 'shim_statement',
									  'reference_counters',
									  'drop_reference_ends', 'drop_reference_end', 'reference_ends_off',
									  'install_reference_ends',
									  'ensure_server', 'ensure_user_mapping', 'key_type',
									  'reference_end_relid', 'origin_challenge', 'origin_prove', 'origin_withdraw',
									  'origin_key_make', 'ensure_preloaded', 'partition_route',
									  'refuse_foreign_triggers', 'guard_ddl', 'guard_drop',
									  'guard_start', 'guard_triggers', 'guard_dropped_ends', 'archive_guard', 'capture_changes', 'install_capture',
									  'capture_relation', 'capture_partition', 'capture_problem', 'refuse_writes', 'close_capture', 'drop_capture',
									  'row_hash', 'row_digest'],
					 'schema splitdb holds only the internal helpers');

SELECT function_returns('public', 'splitdb_add_service', ARRAY['name', 'text', 'name', 'boolean'], 'void',
						'splitdb_add_service returns void');
SELECT function_returns('public', 'splitdb_drop_service', ARRAY['name'], 'void',
						'splitdb_drop_service returns void');
SELECT function_returns('public', 'splitdb_assign', ARRAY['name', 'regclass[]'], 'integer',
						'splitdb_assign returns integer');
SELECT function_returns('public', 'splitdb_unassign', ARRAY['name', 'regclass[]'], 'integer',
						'splitdb_unassign returns integer');
SELECT function_returns('public', 'splitdb_plan', ARRAY['name'], 'setof record',
						'splitdb_plan returns a set');
SELECT function_returns('public', 'splitdb_plan_dot', ARRAY['name'], 'text',
						'splitdb_plan_dot returns text');
SELECT results_eq(
	$$SELECT pg_get_function_arguments('splitdb_add_service(name,text,name,boolean)'::regprocedure)$$,
	$$VALUES ('service name, dbname text DEFAULT NULL::text, server name DEFAULT NULL::name, create_database boolean DEFAULT true')$$,
	'splitdb_add_service: argument names and defaults');
SELECT results_eq(
	$$SELECT pg_get_function_result('splitdb_plan(name)'::regprocedure)$$,
	$$VALUES ('TABLE(step integer, action text, object text, detail text)')$$,
	'splitdb_plan returns TABLE(step, action, object, detail)');
SELECT results_eq(
	$$SELECT p.proname::text COLLATE "default", p.provariadic::regtype::text
		FROM pg_proc p WHERE p.proname IN ('splitdb_assign', 'splitdb_unassign')
	   ORDER BY 1$$,
	$$VALUES ('splitdb_assign', 'regclass'), ('splitdb_unassign', 'regclass')$$,
	'assign and unassign take VARIADIC regclass');
SELECT results_eq(
	$$SELECT p.proname::text COLLATE "default", p.provolatile::text, p.proisstrict, p.proparallel::text, p.prosecdef
		FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
		 AND p.proname LIKE 'splitdb\_%' ORDER BY 1$$,
	$$VALUES ('splitdb_add_service', 'v', false, 'u', false),
			 ('splitdb_assign', 'v', true, 'u', false),
			 ('splitdb_cancel', 'v', true, 'u', false),
			 ('splitdb_doctor', 'v', true, 'u', false),
			 ('splitdb_drop_service', 'v', true, 'u', false),
			 ('splitdb_finalize', 'v', true, 'u', false),
			 ('splitdb_migrate', 'v', true, 'u', false),
			 ('splitdb_orphans', 'v', true, 'u', false),
			 ('splitdb_plan', 's', true, 'u', false),
			 ('splitdb_plan_dot', 's', true, 'u', false),
			 ('splitdb_reference_mode', 'v', true, 'u', false),
			 ('splitdb_remote_nextval', 'v', true, 'u', false),
			 ('splitdb_rollback', 'v', true, 'u', false),
			 ('splitdb_unassign', 'v', true, 'u', false),
			 ('splitdb_verify', 'v', true, 'u', false)$$,
	'volatility, strictness, parallel safety; no function is SECURITY DEFINER');

-- every function of the extension: a comment and a pinned search_path
SELECT is_empty(
	$$SELECT p.oid::regprocedure::text FROM pg_depend d
		JOIN pg_proc p ON p.oid = d.objid
	   WHERE d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
		 AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'splitdb')
		 AND obj_description(p.oid, 'pg_proc') IS NULL$$,
	'every splitdb function has a comment');
SELECT is_empty(
	$$SELECT p.oid::regprocedure::text FROM pg_depend d
		JOIN pg_proc p ON p.oid = d.objid
	   WHERE d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
		 AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'splitdb')
		 AND (p.proconfig IS NULL
			  OR NOT p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'])
		 -- the reference triggers pin it themselves, once per statement, not per row;
		 -- the capture trigger resolves no name, or pins it when it runs a statement;
		 -- the start guard finds a command's names under the session's path, as the
		 -- command does, and pins it for its own queries; the trigger guard finds
		 -- them the same way and runs no query; the end guard finds the partitions
		 -- that ALTER TABLE ... ATTACH PARTITION names the same way, and pins it for
		 -- its queries and checks; the row hashes of the checksums run once per row and
		 -- look nothing up by name
		 AND p.oid NOT IN ('splitdb.reference_row()'::regprocedure,
						   'splitdb.row_hash("any")'::regprocedure,
						   'splitdb.row_digest("any")'::regprocedure,
						   'splitdb.reference_flush()'::regprocedure,
						   'splitdb.shim_statement()'::regprocedure,
						   'splitdb.capture_changes()'::regprocedure,
						   'splitdb.guard_start()'::regprocedure,
						   'splitdb.guard_ddl()'::regprocedure,
						   'splitdb.guard_triggers()'::regprocedure)$$,
	'every splitdb function runs with search_path = pg_catalog, pg_temp (the triggers and the start guards pin it themselves or run no query, the row hashes look nothing up)');

-- ===== privileges
SELECT function_privs_are('public', 'splitdb_add_service', ARRAY['name', 'text', 'name', 'boolean'],
						  'public', ARRAY['EXECUTE'], 'PUBLIC may execute splitdb_add_service');
SELECT function_privs_are('public', 'splitdb_drop_service', ARRAY['name'],
						  'public', ARRAY['EXECUTE'], 'PUBLIC may execute splitdb_drop_service');
SELECT function_privs_are('public', 'splitdb_assign', ARRAY['name', 'regclass[]'],
						  'public', ARRAY['EXECUTE'], 'PUBLIC may execute splitdb_assign');
SELECT function_privs_are('public', 'splitdb_unassign', ARRAY['name', 'regclass[]'],
						  'public', ARRAY['EXECUTE'], 'PUBLIC may execute splitdb_unassign');
SELECT function_privs_are('public', 'splitdb_plan', ARRAY['name'],
						  'public', ARRAY['EXECUTE'], 'PUBLIC may execute splitdb_plan');
SELECT function_privs_are('public', 'splitdb_plan_dot', ARRAY['name'],
						  'public', ARRAY['EXECUTE'], 'PUBLIC may execute splitdb_plan_dot');
SELECT function_privs_are('public', 'splitdb_verify', ARRAY['name'],
						  'public', ARRAY['EXECUTE'], 'PUBLIC may execute splitdb_verify (it checks for superuser itself)');
SELECT results_eq(
	$$SELECT pg_get_function_result('splitdb_verify(name)'::regprocedure)$$,
	$$VALUES ('TABLE(table_name text, source_rows bigint, target_rows bigint, source_checksum text, target_checksum text, ok boolean)')$$,
	'splitdb_verify returns the columns of the contract');
SELECT function_privs_are('public', 'splitdb_cancel', ARRAY['name'],
						  'public', ARRAY['EXECUTE'], 'PUBLIC may execute splitdb_cancel (it checks for superuser itself)');
SELECT function_privs_are('public', 'splitdb_finalize', ARRAY['name', 'boolean'],
						  'public', ARRAY['EXECUTE'], 'PUBLIC may execute splitdb_finalize (it checks for superuser itself)');
SELECT function_privs_are('public', 'splitdb_doctor', ARRAY['boolean'],
						  'public', ARRAY['EXECUTE'], 'PUBLIC may execute splitdb_doctor (it checks for superuser itself)');
SELECT results_eq(
	$$SELECT pg_get_function_arguments('splitdb_finalize(name,boolean)'::regprocedure)$$,
	$$VALUES ('service name, drop_shim boolean DEFAULT false')$$,
	'splitdb_finalize: argument names and default');
SELECT results_eq(
	$$SELECT pg_get_function_arguments('splitdb_doctor(boolean)'::regprocedure),
			 pg_get_function_result('splitdb_doctor(boolean)'::regprocedure)$$,
	$$VALUES ('repair boolean DEFAULT false',
			  'TABLE(severity text, service name, job_id bigint, location text, object text, problem text, action text, repaired boolean)')$$,
	'splitdb_doctor: its argument and the columns of the contract');
SELECT function_privs_are('public', 'splitdb_migrate', ARRAY['name', 'text', 'boolean'],
						  'public', ARRAY['EXECUTE'], 'PUBLIC may execute splitdb_migrate (it checks for superuser itself)');
SELECT function_privs_are('public', 'splitdb_remote_nextval', ARRAY['name', 'text'],
						  'public', ARRAY['EXECUTE'], 'PUBLIC may execute splitdb_remote_nextval (shim defaults call it)');
SELECT results_eq(
	$$SELECT pg_get_function_arguments('splitdb_migrate(name,text,boolean)'::regprocedure)$$,
	$$VALUES ('service name, mode text DEFAULT ''online''::text, wait boolean DEFAULT false')$$,
	'splitdb_migrate: argument names and defaults (online by default)');
SELECT function_returns('public', 'splitdb_migrate', ARRAY['name', 'text', 'boolean'], 'bigint',
						'splitdb_migrate returns the job id');
SELECT function_privs_are('splitdb', 'forget_dropped_tables', ARRAY[]::name[],
						  'public', ARRAY[]::text[], 'PUBLIC may not execute the event trigger function');
SELECT results_eq(
	$$SELECT p.proname::text COLLATE "default", a.grantee = 0 AS to_public, a.privilege_type::text
		FROM pg_proc p, aclexplode(p.proacl) a
	   WHERE p.oid = 'splitdb.forget_dropped_tables()'::regprocedure
		 AND a.grantee <> p.proowner$$,
	$$SELECT NULL::text, NULL::boolean, NULL::text WHERE false$$,
	'nobody but its owner holds a privilege on the event trigger function');
SELECT schema_privs_are('splitdb', 'public', ARRAY['USAGE'], 'PUBLIC may use schema splitdb');
SELECT table_privs_are('splitdb', 'service', 'public', ARRAY['SELECT'],
					   'PUBLIC may read splitdb.service, not write it');
SELECT table_privs_are('splitdb', 'owned_table', 'public', ARRAY['SELECT'],
					   'PUBLIC may read splitdb.owned_table, not write it');
-- the copy's checkpoints are row keys: not for roles that may not read the table
SELECT results_eq(
	$$SELECT c.table_name::text COLLATE "C", c.column_name::text COLLATE "C" FROM information_schema.columns c
	   WHERE c.table_schema = 'splitdb' AND c.table_name IN ('job_table', 'job_range')
	     AND NOT has_column_privilege('public', format('splitdb.%I', c.table_name), c.column_name, 'SELECT')
	   ORDER BY 1, 2$$,
	$$VALUES ('job_range' COLLATE "C", 'last_key' COLLATE "C"), ('job_range', 'lower_key'), ('job_range', 'upper_key'),
			 ('job_table', 'last_key')$$,
	'PUBLIC may read every column of splitdb.job_table and splitdb.job_range but the checkpoint keys');
SELECT table_privs_are('splitdb', 'job_table', 'public', ARRAY[]::text[],
					   'PUBLIC holds no table-wide privilege on splitdb.job_table');
SELECT table_privs_are('splitdb', 'job_range', 'public', ARRAY[]::text[],
					   'PUBLIC holds no table-wide privilege on splitdb.job_range');
-- an error's text can quote row values: not for roles that may not read them
SELECT results_eq(
	$$SELECT c.table_name::text COLLATE "C", c.column_name::text COLLATE "C" FROM information_schema.columns c
	   WHERE c.table_schema = 'splitdb' AND c.table_name IN ('job', 'rollback')
	     AND NOT has_column_privilege('public', format('splitdb.%I', c.table_name), c.column_name, 'SELECT')
	   ORDER BY 1, 2$$,
	$$VALUES ('job' COLLATE "C", 'last_error' COLLATE "C"), ('rollback', 'last_error')$$,
	'PUBLIC may read every column of splitdb.job and splitdb.rollback but the errors');
SELECT table_privs_are('splitdb', 'job', 'public', ARRAY[]::text[],
					   'PUBLIC holds no table-wide privilege on splitdb.job');
SELECT table_privs_are('splitdb', 'rollback', 'public', ARRAY[]::text[],
					   'PUBLIC holds no table-wide privilege on splitdb.rollback');

-- ===== the catalog starts empty
SELECT is_empty('SELECT * FROM splitdb.service', 'splitdb.service starts empty');
SELECT is_empty('SELECT * FROM splitdb.owned_table', 'splitdb.owned_table starts empty');

-- ===== settings
SELECT results_eq(
	$$SELECT name, setting, unit, context, vartype, min_val, max_val, boot_val
		FROM pg_settings WHERE name LIKE 'splitdb.%' ORDER BY 1$$,
	$$VALUES ('splitdb.batch_rows', '100000', NULL, 'superuser', 'integer', '1', '2147483647', '100000'),
			 ('splitdb.capture_direct', 'on', NULL, 'superuser', 'bool', NULL, NULL, 'on'),
			 ('splitdb.check_connection', 'on', NULL, 'user', 'bool', NULL, NULL, 'on'),
			 ('splitdb.connect_timeout', '10', 's', 'user', 'integer', '0', '3600', '10'),
			 ('splitdb.copy_readers', '0', NULL, 'superuser', 'integer', '0', '16', '0'),
			 ('splitdb.copy_streams', '0', NULL, 'superuser', 'integer', '0', '16', '0'),
			 ('splitdb.cutover_attempts', '20', NULL, 'superuser', 'integer', '1', '10000', '20'),
			 ('splitdb.cutover_lock_timeout', '250', 'ms', 'superuser', 'integer', '1', '600000', '250'),
			 ('splitdb.cutover_max_freeze', '500', 'ms', 'superuser', 'integer', '1', '600000', '500'),
			 ('splitdb.deferred_waiting', 'off', NULL, 'internal', 'bool', NULL, NULL, 'off'),
			 ('splitdb.fence_timeout', '60000', 'ms', 'superuser', 'integer', '1', '2147483647', '60000'),
			 ('splitdb.maintenance_work_mem', '262144', 'kB', 'superuser', 'integer', '1024', '2147483647', '262144'),
			 ('splitdb.migrate_pause_at', '', NULL, 'superuser', 'string', NULL, NULL, ''),
			 ('splitdb.origin', '', NULL, 'user', 'string', NULL, NULL, ''),
			 ('splitdb.owner_rights', 'off', NULL, 'superuser', 'bool', NULL, NULL, 'off'),
			 ('splitdb.relay_waiting', 'off', NULL, 'internal', 'bool', NULL, NULL, 'off'),
			 ('splitdb.rollback_pause_at', '', NULL, 'superuser', 'string', NULL, NULL, '')$$,
	'splitdb.batch_rows: rows, superuser-only, default 100000; splitdb.capture_direct: superuser-only, on; splitdb.check_connection: user-settable, on; splitdb.connect_timeout: seconds, user-settable, 0..3600, default 10; splitdb.copy_readers: superuser-only, 0..16, default 0 (auto); splitdb.copy_streams: superuser-only, 0..16, default 0 (auto); splitdb.cutover_attempts: superuser-only, 1..10000, default 20; splitdb.cutover_lock_timeout: ms, superuser-only, default 250; splitdb.cutover_max_freeze: ms, superuser-only, default 500; splitdb.deferred_waiting: internal (no one sets it), off; splitdb.fence_timeout: ms, superuser-only, default 60 s; splitdb.maintenance_work_mem: kB, superuser-only, 1MB.., default 256MB; splitdb.migrate_pause_at: superuser-only, empty; splitdb.origin: user-settable, empty; splitdb.owner_rights: superuser-only, off; splitdb.relay_waiting: internal (no one sets it), off; splitdb.rollback_pause_at: superuser-only, empty');
SELECT is(
	(SELECT extra_desc FROM pg_settings WHERE name = 'splitdb.origin'),
	'Set by the servers splitdb creates: "source" on the connections of the source''s shims and '
	'reference checks, the service''s name on those of a sibling. It grants nothing: a database '
	'skips the checks of a write only for a session that proved where it comes from '
	'(splitdb.origin_prove()).',
	'splitdb.origin''s description says that it grants nothing: only a proved session''s writes skip the checks');
SELECT throws_ok(
	$$SET LOCAL splitdb.deferred_waiting = off$$,
	'55P02', 'parameter "splitdb.deferred_waiting" cannot be changed',
	'no one sets splitdb.deferred_waiting either: it would keep deferred triggers from firing before the source commits');
SELECT throws_ok(
	$$SET LOCAL splitdb.relay_waiting = off$$,
	'55P02', 'parameter "splitdb.relay_waiting" cannot be changed',
	'no one sets splitdb.relay_waiting, a superuser neither: it would hide keys waiting for the source');
SELECT throws_ok(
	$$SET LOCAL splitdb.no_such_setting = 1$$,
	'42602', 'invalid configuration parameter name "splitdb.no_such_setting"',
	'the splitdb. prefix is reserved');

SELECT * FROM finish();
ROLLBACK;
