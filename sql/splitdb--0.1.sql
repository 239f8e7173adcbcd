/* sql/splitdb--0.1.sql */
\echo Use "CREATE EXTENSION splitdb" to load this file. \quit

/*
 * Catalog.  splitdb's own tables live in schema splitdb; the functions that
 * users call live in the extension's schema and carry the splitdb_ prefix.
 */
CREATE SCHEMA splitdb;
COMMENT ON SCHEMA splitdb IS 'splitdb catalog: services and the tables they own';

CREATE TABLE splitdb.service (
	service          name PRIMARY KEY,
	dbname           text NOT NULL,
	server           name NOT NULL UNIQUE,
	server_created   boolean NOT NULL,
	database_created boolean NOT NULL,
	mapping_role     name,
	created_at       timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE splitdb.service IS 'services: one sibling database each, reached through a postgres_fdw server';
COMMENT ON COLUMN splitdb.service.service IS 'the service name used in every splitdb call';
COMMENT ON COLUMN splitdb.service.dbname IS 'name of the sibling database';
COMMENT ON COLUMN splitdb.service.server IS 'postgres_fdw foreign server that reaches the sibling';
COMMENT ON COLUMN splitdb.service.server_created IS 'true when splitdb created the server (and drops it with the service)';
COMMENT ON COLUMN splitdb.service.database_created IS 'true when splitdb created the sibling database';
COMMENT ON COLUMN splitdb.service.mapping_role IS 'role whose user mapping splitdb created, NULL when it made none';

CREATE TABLE splitdb.owned_table (
	relid          regclass PRIMARY KEY,
	service        name NOT NULL REFERENCES splitdb.service (service),
	partition_root regclass,
	assigned_at    timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX owned_table_service_idx ON splitdb.owned_table (service);
COMMENT ON TABLE splitdb.owned_table IS 'table ownership: which service each assigned table moves to';
COMMENT ON COLUMN splitdb.owned_table.relid IS 'the owned table';
COMMENT ON COLUMN splitdb.owned_table.service IS 'the service that owns it';
COMMENT ON COLUMN splitdb.owned_table.partition_root IS 'the partitioned table it was assigned through, NULL when assigned by itself';

/*
 * Migration jobs.  A job is one service's migration; its worker moves it
 * through the states of the contract, one transaction per step, and records
 * every step here.  The worker writes these rows; users read them through
 * splitdb_status and splitdb_table_status.
 */
CREATE TABLE splitdb.job (
	job_id          bigint PRIMARY KEY,
	service         name NOT NULL REFERENCES splitdb.service (service),
	mode            text NOT NULL CHECK (mode IN ('offline', 'online')),
	state           text NOT NULL CHECK (state IN ('queued', 'preparing', 'copying', 'indexing',
	                                               'catching_up', 'verifying', 'cutting_over', 'done',
	                                               'failed', 'cancelled', 'rolled_back', 'finalized')),
	phase           text NOT NULL CHECK (phase IN ('queued', 'preparing', 'copying', 'indexing',
	                                               'catching_up', 'verifying', 'cutting_over', 'done')),
	current_table   text,
	started_by      oid NOT NULL,
	runs            integer NOT NULL DEFAULT 1,
	started_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
	copy_started_at timestamptz,
	copy_rows_start bigint,
	copy_finished_at timestamptz,
	finished_at     timestamptz,
	last_error      text,
	last_sqlstate   text,
	worker_pid      integer
);
CREATE SEQUENCE splitdb.job_id_seq OWNED BY splitdb.job.job_id;
/* one job per service that is not over (cancelled and rolled-back jobs are) */
CREATE UNIQUE INDEX job_one_per_service ON splitdb.job (service)
	WHERE state NOT IN ('cancelled', 'rolled_back');
COMMENT ON TABLE splitdb.job IS 'migration jobs: one per service migration, written by its background worker';
COMMENT ON COLUMN splitdb.job.job_id IS 'job id, as splitdb_migrate returns it';
COMMENT ON COLUMN splitdb.job.service IS 'the service being migrated';
COMMENT ON COLUMN splitdb.job.mode IS 'offline (writes wait for the whole job) or online';
COMMENT ON COLUMN splitdb.job.current_table IS 'what the worker works on now: a table, or an index or constraint while indexing';
COMMENT ON COLUMN splitdb.job.started_at IS 'when the job was first started';
COMMENT ON COLUMN splitdb.job.updated_at IS 'last progress: every batch, every step';
COMMENT ON COLUMN splitdb.job.finished_at IS 'when the job ended (done or failed)';
COMMENT ON COLUMN splitdb.job.last_error IS 'why the job failed, NULL while it runs or once done';
COMMENT ON COLUMN splitdb.job.last_sqlstate IS 'SQLSTATE of last_error';
COMMENT ON COLUMN splitdb.job.worker_pid IS 'process id of the worker that runs or last ran the job';
COMMENT ON COLUMN splitdb.job.state IS 'job state: queued, preparing, copying, indexing, catching_up, verifying, cutting_over, done, failed, cancelled, rolled_back, finalized';
COMMENT ON COLUMN splitdb.job.phase IS 'the step the job is in, or was in when it stopped; a resumed job continues from it';
COMMENT ON COLUMN splitdb.job.started_by IS 'role the worker runs as: the caller of splitdb_migrate';
COMMENT ON COLUMN splitdb.job.runs IS 'how many workers have run the job (1 + resumptions)';
COMMENT ON COLUMN splitdb.job.copy_started_at IS 'when the current run started copying, for the copy rate';
COMMENT ON COLUMN splitdb.job.copy_rows_start IS 'rows already copied when the current run started copying';
COMMENT ON COLUMN splitdb.job.copy_finished_at IS 'when the current run finished copying';

CREATE TABLE splitdb.job_table (
	job_id          bigint NOT NULL REFERENCES splitdb.job (job_id) ON DELETE CASCADE,
	relid           oid NOT NULL,
	table_name      text NOT NULL,
	relkind         "char" NOT NULL,
	partition_root  oid,
	phase           text NOT NULL DEFAULT 'pending'
	                CHECK (phase IN ('pending', 'created', 'copying', 'copied', 'indexed',
	                                 'verified', 'cut_over')),
	key_columns     text,
	copy_format     text,
	rows_total      bigint,
	rows_copied     bigint NOT NULL DEFAULT 0,
	bytes_copied    bigint NOT NULL DEFAULT 0,
	last_key        text[],
	source_rows     bigint,
	target_rows     bigint,
	source_checksum text,
	target_checksum text,
	verified        boolean,
	error           text,
	updated_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (job_id, relid)
);
COMMENT ON TABLE splitdb.job_table IS 'per-table progress of a job: phase, copy checkpoint, verification';
COMMENT ON COLUMN splitdb.job_table.job_id IS 'the job';
COMMENT ON COLUMN splitdb.job_table.relkind IS 'r for a table that holds rows, p for a partitioned table';
COMMENT ON COLUMN splitdb.job_table.partition_root IS 'the partitioned table it moves with, NULL when owned by itself';
COMMENT ON COLUMN splitdb.job_table.rows_total IS 'rows in the source when the job prepared (writes are blocked since)';
COMMENT ON COLUMN splitdb.job_table.rows_copied IS 'rows in the sibling at the last checkpoint';
COMMENT ON COLUMN splitdb.job_table.bytes_copied IS 'COPY data sent to the sibling';
COMMENT ON COLUMN splitdb.job_table.source_rows IS 'verification: rows in the source';
COMMENT ON COLUMN splitdb.job_table.target_rows IS 'verification: rows in the sibling';
COMMENT ON COLUMN splitdb.job_table.source_checksum IS 'verification: order-independent checksum in the source';
COMMENT ON COLUMN splitdb.job_table.target_checksum IS 'verification: order-independent checksum in the sibling';
COMMENT ON COLUMN splitdb.job_table.verified IS 'verification: counts and checksums agree';
COMMENT ON COLUMN splitdb.job_table.error IS 'why verification failed';
COMMENT ON COLUMN splitdb.job_table.updated_at IS 'last change of this row';
COMMENT ON COLUMN splitdb.job_table.relid IS 'the source table; after cutover it is the archived original';
COMMENT ON COLUMN splitdb.job_table.table_name IS 'schema-qualified, quoted name in the source before cutover and in the sibling';
COMMENT ON COLUMN splitdb.job_table.phase IS 'pending, created, copying, copied, indexed, verified, cut_over';
COMMENT ON COLUMN splitdb.job_table.key_columns IS 'quoted columns the copy is ordered and checkpointed by; NULL: copied in one pass';
COMMENT ON COLUMN splitdb.job_table.copy_format IS 'binary, or text when a column type cannot cross databases in binary';
COMMENT ON COLUMN splitdb.job_table.last_key IS 'checkpoint: the key of the last row copied, in text form';

/*
 * Foreign keys that cross databases once a service moves: left out of the
 * sibling, dropped in the source at cutover, and kept here with their full
 * definition.
 */
CREATE TABLE splitdb.reference (
	job_id              bigint NOT NULL REFERENCES splitdb.job (job_id) ON DELETE CASCADE,
	constraint_name     name NOT NULL,
	child_relid         oid NOT NULL,
	child_table         text NOT NULL,
	child_service       name,
	child_columns       name[] NOT NULL,
	parent_relid        oid NOT NULL,
	parent_table        text NOT NULL,
	parent_service      name,
	parent_columns      name[] NOT NULL,
	match_type          text NOT NULL,
	on_delete           text NOT NULL,
	on_update           text NOT NULL,
	delete_set_columns  name[],
	is_deferrable       boolean NOT NULL,
	initially_deferred  boolean NOT NULL,
	definition          text NOT NULL,
	dropped_at          timestamptz,
	PRIMARY KEY (job_id, child_relid, constraint_name)
);
COMMENT ON TABLE splitdb.reference IS 'foreign keys whose two ends end up in different databases, with their full definition';
COMMENT ON COLUMN splitdb.reference.job_id IS 'the job whose migration made the key cross databases';
COMMENT ON COLUMN splitdb.reference.constraint_name IS 'name of the original constraint';
COMMENT ON COLUMN splitdb.reference.child_relid IS 'the referencing table (after cutover, the archived original if it moved)';
COMMENT ON COLUMN splitdb.reference.child_table IS 'the referencing table, schema-qualified, as named before cutover';
COMMENT ON COLUMN splitdb.reference.child_columns IS 'the referencing columns, in key order';
COMMENT ON COLUMN splitdb.reference.parent_relid IS 'the referenced table (after cutover, the archived original if it moved)';
COMMENT ON COLUMN splitdb.reference.parent_table IS 'the referenced table, schema-qualified, as named before cutover';
COMMENT ON COLUMN splitdb.reference.parent_columns IS 'the referenced columns, in key order';
COMMENT ON COLUMN splitdb.reference.match_type IS 'SIMPLE, FULL or PARTIAL';
COMMENT ON COLUMN splitdb.reference.on_delete IS 'ON DELETE action: NO ACTION, RESTRICT, CASCADE, SET NULL, SET DEFAULT';
COMMENT ON COLUMN splitdb.reference.on_update IS 'ON UPDATE action';
COMMENT ON COLUMN splitdb.reference.delete_set_columns IS 'the column list of ON DELETE SET NULL/SET DEFAULT, NULL for all';
COMMENT ON COLUMN splitdb.reference.is_deferrable IS 'DEFERRABLE';
COMMENT ON COLUMN splitdb.reference.initially_deferred IS 'INITIALLY DEFERRED';
COMMENT ON COLUMN splitdb.reference.child_service IS 'service the referencing table belongs to; NULL when it stays in the source';
COMMENT ON COLUMN splitdb.reference.parent_service IS 'service the referenced table belongs to; NULL when it stays in the source';
COMMENT ON COLUMN splitdb.reference.definition IS 'pg_get_constraintdef() of the original constraint, names schema-qualified';
COMMENT ON COLUMN splitdb.reference.dropped_at IS 'when cutover dropped the constraint in the source';

/*
 * Every relation each service owns: the rows of splitdb.owned_table, plus
 * every partition attached later under an owned partitioned table, a
 * table's own row winning.  The one definition the plan, the graph,
 * verification, the jobs and splitdb_table_status share.
 */
CREATE VIEW splitdb.owned_relation AS
SELECT o.relid::pg_catalog.oid AS relid, o.service,
	   o.partition_root::pg_catalog.oid AS partition_root
  FROM splitdb.owned_table o
UNION ALL
SELECT t.relid::pg_catalog.oid, o.service, o.relid::pg_catalog.oid
  FROM splitdb.owned_table o, LATERAL pg_catalog.pg_partition_tree(o.relid) t
 WHERE o.partition_root IS NULL AND t.level > 0
   AND NOT EXISTS (SELECT FROM splitdb.owned_table x WHERE x.relid = t.relid);
COMMENT ON VIEW splitdb.owned_relation IS 'every relation each service owns, partitions attached later included';

/*
 * A job whose worker is gone: its row says it runs, but no splitdb worker
 * has its pid (killed, or the server restarted).  splitdb_status and
 * splitdb_migrate read such a job as failed.
 */
CREATE FUNCTION splitdb.job_worker_gone(state text, worker_pid integer)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT state IN ('queued', 'preparing', 'copying', 'indexing', 'catching_up',
					 'verifying', 'cutting_over')
	   AND NOT EXISTS (SELECT FROM pg_catalog.pg_stat_activity a
					    WHERE a.pid = worker_pid AND a.backend_type = 'splitdb worker')
$$;
COMMENT ON FUNCTION splitdb.job_worker_gone(text, integer) IS 'true when a job''s row says it runs but its worker is gone';

SELECT pg_catalog.pg_extension_config_dump('splitdb.service', '');
SELECT pg_catalog.pg_extension_config_dump('splitdb.owned_table', '');
SELECT pg_catalog.pg_extension_config_dump('splitdb.job', '');
SELECT pg_catalog.pg_extension_config_dump('splitdb.job_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('splitdb.job_table', '');
SELECT pg_catalog.pg_extension_config_dump('splitdb.reference', '');

GRANT USAGE ON SCHEMA splitdb TO PUBLIC;
GRANT SELECT ON splitdb.service, splitdb.owned_table, splitdb.job, splitdb.job_table,
	splitdb.reference, splitdb.owned_relation TO PUBLIC;

/*
 * A dropped table leaves no ownership row behind, so the catalog never holds
 * a dangling OID.
 */
CREATE FUNCTION splitdb.forget_dropped_tables()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER	-- any role's DROP fires it; only the owner may write the catalog
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	DELETE FROM splitdb.owned_table o
	 USING pg_catalog.pg_event_trigger_dropped_objects() d
	 WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
	   AND d.objsubid = 0
	   AND o.relid::pg_catalog.oid = d.objid;
END
$$;
COMMENT ON FUNCTION splitdb.forget_dropped_tables() IS 'event trigger: removes ownership rows of dropped tables';
REVOKE ALL ON FUNCTION splitdb.forget_dropped_tables() FROM PUBLIC;

CREATE EVENT TRIGGER splitdb_forget_dropped_tables ON sql_drop
	EXECUTE FUNCTION splitdb.forget_dropped_tables();

/*
 * Services
 */
CREATE FUNCTION splitdb_add_service(service name,
									dbname text DEFAULT NULL,
									server name DEFAULT NULL,
									create_database boolean DEFAULT true)
RETURNS void
AS 'MODULE_PATHNAME', 'splitdb_add_service'
LANGUAGE C VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION splitdb_add_service(name, text, name, boolean) IS
'registers a service: its sibling database and the postgres_fdw server that reaches it';

CREATE FUNCTION splitdb_drop_service(service name)
RETURNS void
AS 'MODULE_PATHNAME', 'splitdb_drop_service'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION splitdb_drop_service(name) IS
'forgets a service that owns no tables, with the server and user mapping splitdb made for it';

/*
 * Ownership
 */
CREATE FUNCTION splitdb_assign(service name, VARIADIC tables regclass[])
RETURNS integer
AS 'MODULE_PATHNAME', 'splitdb_assign'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION splitdb_assign(name, regclass[]) IS
'assigns tables (partitioned tables with their partitions) to a service; returns how many were newly assigned';

CREATE FUNCTION splitdb_unassign(service name, VARIADIC tables regclass[])
RETURNS integer
AS 'MODULE_PATHNAME', 'splitdb_unassign'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION splitdb_unassign(name, regclass[]) IS
'takes tables (partitioned tables with their partitions) away from a service; returns how many were removed';

/*
 * The plan
 */
CREATE FUNCTION splitdb_plan(service name)
RETURNS TABLE (step integer, action text, object text, detail text)
AS 'MODULE_PATHNAME', 'splitdb_plan'
LANGUAGE C STRICT STABLE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
SET datestyle = 'ISO, YMD';
COMMENT ON FUNCTION splitdb_plan(name) IS
'dry run: the steps a migration of the service would take, with warnings and blockers';

CREATE FUNCTION splitdb_plan_dot(service name)
RETURNS text
AS 'MODULE_PATHNAME', 'splitdb_plan_dot'
LANGUAGE C STRICT STABLE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION splitdb_plan_dot(name) IS
'the foreign-key graph of the service''s tables and their neighbours, as Graphviz DOT';

/*
 * Verification
 */
CREATE FUNCTION splitdb_verify(service name)
RETURNS TABLE (table_name text, source_rows bigint, target_rows bigint,
			   source_checksum text, target_checksum text, ok boolean)
AS 'MODULE_PATHNAME', 'splitdb_verify'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
SET datestyle = 'ISO, YMD'
SET intervalstyle = 'postgres'
SET timezone = 'UTC'
SET extra_float_digits = 3
SET bytea_output = 'hex'
SET lc_monetary = 'C';
COMMENT ON FUNCTION splitdb_verify(name) IS
'row counts and order-independent checksums of each owned table, in the source and in the sibling';

/*
 * Privileges: every function is callable by anyone; the functions that change
 * the catalog or read table data check for superuser themselves, so a
 * refusal carries a hint.
 */
REVOKE ALL ON FUNCTION splitdb_add_service(name, text, name, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION splitdb_drop_service(name) FROM PUBLIC;
REVOKE ALL ON FUNCTION splitdb_assign(name, regclass[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION splitdb_unassign(name, regclass[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION splitdb_plan(name) FROM PUBLIC;
REVOKE ALL ON FUNCTION splitdb_plan_dot(name) FROM PUBLIC;
REVOKE ALL ON FUNCTION splitdb_verify(name) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION splitdb_add_service(name, text, name, boolean) TO PUBLIC;
GRANT EXECUTE ON FUNCTION splitdb_drop_service(name) TO PUBLIC;
GRANT EXECUTE ON FUNCTION splitdb_assign(name, regclass[]) TO PUBLIC;
GRANT EXECUTE ON FUNCTION splitdb_unassign(name, regclass[]) TO PUBLIC;
GRANT EXECUTE ON FUNCTION splitdb_plan(name) TO PUBLIC;
GRANT EXECUTE ON FUNCTION splitdb_plan_dot(name) TO PUBLIC;
GRANT EXECUTE ON FUNCTION splitdb_verify(name) TO PUBLIC;

/*
 * Migration
 */
CREATE FUNCTION splitdb_migrate(service name, mode text DEFAULT 'offline',
								wait boolean DEFAULT false)
RETURNS bigint
AS 'MODULE_PATHNAME', 'splitdb_migrate'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION splitdb_migrate(name, text, boolean) IS
'starts (or resumes) the migration of a service in a background worker; returns the job id';

CREATE FUNCTION splitdb_remote_nextval(service name, sequence text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'splitdb_remote_nextval'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION splitdb_remote_nextval(name, text) IS
'the next value of a sequence in a service''s sibling: the default of a shim''s serial and identity columns';

/*
 * Progress.  A job whose worker is gone (killed, or the server restarted)
 * reads as failed, whatever its row says.
 */
CREATE VIEW splitdb_status AS
SELECT s.service,
	   j.job_id,
	   CASE WHEN d.dead THEN 'failed' ELSE j.state END AS state,
	   j.phase,
	   j.current_table,
	   t.tables_done,
	   t.tables_total,
	   t.rows_copied,
	   t.rows_total,
	   t.bytes_copied,
	   r.rows_per_sec,
	   CASE WHEN j.state = 'copying' AND NOT d.dead AND r.rows_per_sec > 0
			THEN pg_catalog.make_interval(secs => GREATEST(t.rows_total - t.rows_copied, 0)
												  / r.rows_per_sec::double precision)
	   END AS eta,
	   j.started_at,
	   j.updated_at,
	   j.finished_at,
	   CASE WHEN d.dead
			THEN COALESCE(j.last_error,
				 pg_catalog.format('the worker (pid %s) ended without recording a result: it was killed or the server restarted; call splitdb_migrate(%L) to resume',
								   j.worker_pid, s.service))
			ELSE j.last_error END AS last_error,
	   CASE WHEN j.state IN ('queued', 'preparing', 'copying', 'indexing', 'catching_up',
							 'verifying', 'cutting_over') AND NOT d.dead
			THEN j.worker_pid END AS worker_pid
  FROM splitdb.service s
  LEFT JOIN LATERAL (SELECT * FROM splitdb.job j WHERE j.service = s.service
					  ORDER BY j.job_id DESC LIMIT 1) j ON true
  LEFT JOIN LATERAL (
	SELECT pg_catalog.count(*) FILTER (WHERE jt.relkind = 'r'
		   AND jt.phase IN ('copied', 'indexed', 'verified', 'cut_over')) AS tables_done,
		   pg_catalog.count(*) FILTER (WHERE jt.relkind = 'r') AS tables_total,
		   pg_catalog.sum(jt.rows_copied)::bigint AS rows_copied,
		   pg_catalog.sum(jt.rows_total)::bigint AS rows_total,
		   pg_catalog.sum(jt.bytes_copied)::bigint AS bytes_copied
	  FROM splitdb.job_table jt WHERE jt.job_id = j.job_id) t ON true
  CROSS JOIN LATERAL (SELECT COALESCE(splitdb.job_worker_gone(j.state, j.worker_pid), false) AS dead) d
  LEFT JOIN LATERAL (
	SELECT pg_catalog.round((t.rows_copied - j.copy_rows_start)
			 / NULLIF(EXTRACT(epoch FROM COALESCE(j.copy_finished_at, j.updated_at) - j.copy_started_at),
					  0::numeric))::bigint AS rows_per_sec) r ON j.copy_started_at IS NOT NULL;
COMMENT ON VIEW splitdb_status IS 'one row per service: its last migration job, with progress, rate, ETA and errors';

CREATE VIEW splitdb_table_status AS
SELECT o.service,
	   COALESCE(jt.table_name, o.relid::pg_catalog.regclass::pg_catalog.text) AS table_name,
	   j.job_id,
	   COALESCE(jt.phase, 'not started') AS phase,
	   jt.rows_copied,
	   jt.rows_total,
	   jt.bytes_copied,
	   jt.key_columns,
	   jt.copy_format,
	   jt.source_rows,
	   jt.target_rows,
	   jt.source_rows = jt.target_rows AS counts_match,
	   jt.source_checksum = jt.target_checksum AS checksums_match,
	   jt.verified,
	   jt.error,
	   jt.updated_at
  FROM splitdb.owned_relation o
  LEFT JOIN LATERAL (SELECT * FROM splitdb.job j WHERE j.service = o.service
					  ORDER BY j.job_id DESC LIMIT 1) j ON true
  LEFT JOIN splitdb.job_table jt ON jt.job_id = j.job_id AND jt.relid = o.relid;
COMMENT ON VIEW splitdb_table_status IS 'one row per owned table: phase of its service''s last job, rows copied, verification';

REVOKE ALL ON FUNCTION splitdb_migrate(name, text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION splitdb_migrate(name, text, boolean) TO PUBLIC;
GRANT EXECUTE ON FUNCTION splitdb_remote_nextval(name, text) TO PUBLIC;
GRANT SELECT ON splitdb_status, splitdb_table_status TO PUBLIC;
