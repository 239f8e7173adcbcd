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
	worker_pid      integer,
	rounds          integer NOT NULL DEFAULT 0,
	lag_rows        bigint,
	lag_seconds     double precision,
	lag_trend       text CHECK (lag_trend IN ('shrinking', 'steady', 'growing')),
	lag_at          timestamptz,
	cutover_attempts integer NOT NULL DEFAULT 0,
	cutover_lock_timeout integer CHECK (cutover_lock_timeout > 0),
	cutover_max_freeze integer CHECK (cutover_max_freeze > 0),
	cutover_max_attempts integer CHECK (cutover_max_attempts > 0)
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
COMMENT ON COLUMN splitdb.job.rounds IS 'online mode: replay rounds run, each carrying the writes captured in the source into the sibling';
COMMENT ON COLUMN splitdb.job.lag_rows IS 'online mode: captured changes not yet replayed into the sibling, after the last round';
COMMENT ON COLUMN splitdb.job.lag_seconds IS 'online mode: seconds a round would take to replay lag_rows, at the last round''s rate';
COMMENT ON COLUMN splitdb.job.lag_trend IS 'online mode: lag_rows since the round before: shrinking, steady or growing';
COMMENT ON COLUMN splitdb.job.lag_at IS 'online mode: when the lag was last measured';
COMMENT ON COLUMN splitdb.job.cutover_attempts IS 'online mode: attempts to take the cutover''s locks in this run; each waits at most splitdb.cutover_lock_timeout';
COMMENT ON COLUMN splitdb.job.cutover_lock_timeout IS 'splitdb.cutover_lock_timeout the job runs with, ms: recorded when it starts, kept by every resume unless the resuming session SET it';
COMMENT ON COLUMN splitdb.job.cutover_max_freeze IS 'splitdb.cutover_max_freeze the job runs with, ms: recorded when it starts, kept by every resume unless the resuming session SET it';
COMMENT ON COLUMN splitdb.job.cutover_max_attempts IS 'splitdb.cutover_attempts the job runs with: recorded when it starts, kept by every resume unless the resuming session SET it';

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
COMMENT ON COLUMN splitdb.job_table.rows_total IS 'rows in the source when the job prepared (writes are blocked since): counted up to 8192 pages, the planner''s estimate beyond';
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
 * The artifact registry: every object a job makes, in the source or in a
 * sibling, is recorded here before it is made (a sibling object: in a source
 * transaction that commits before the remote statement runs; a source
 * object: in the transaction that makes it), with the events on which it
 * goes.  Cancel, rollback, finalize and splitdb_doctor() drop what the
 * registry lists, and only that, so objects that were there before the job
 * are never touched.  The DROP statement is derived from kind, identity and
 * parent (src/metadata/artifact.c), never stored.
 */
CREATE TABLE splitdb.artifact (
	artifact_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	job_id      bigint NOT NULL REFERENCES splitdb.job (job_id) ON DELETE CASCADE,
	service     name,
	kind        text NOT NULL CHECK (kind IN ('schema', 'type', 'domain', 'collation', 'sequence',
	                                          'table', 'index', 'constraint', 'trigger', 'policy',
	                                          'function', 'foreign table', 'view',
	                                          'materialized view', 'statistics',
	                                          'text search configuration',
	                                          'text search dictionary', 'extension', 'server',
	                                          'capture log')),
	identity    text NOT NULL,
	parent      text,
	drop_on     text[] NOT NULL CHECK (drop_on <@ ARRAY['failure', 'cancel', 'rollback', 'finalize']),
	recorded_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	dropped_at  timestamptz
);
CREATE INDEX artifact_job_idx ON splitdb.artifact (job_id);
COMMENT ON TABLE splitdb.artifact IS 'artifact registry: every object a job made, recorded before it was made, and when it goes';
COMMENT ON COLUMN splitdb.artifact.artifact_id IS 'the row''s number; a later object has a larger one, and objects are dropped in descending order';
COMMENT ON COLUMN splitdb.artifact.job_id IS 'the job that made it';
COMMENT ON COLUMN splitdb.artifact.service IS 'the service whose sibling database holds it; NULL: this (the source) database';
COMMENT ON COLUMN splitdb.artifact.kind IS 'object kind, as DROP names it; capture log: a change-capture log table';
COMMENT ON COLUMN splitdb.artifact.identity IS 'quoted name as DROP takes it (schema-qualified; a function with its argument types)';
COMMENT ON COLUMN splitdb.artifact.parent IS 'for a trigger, constraint or policy: the quoted, qualified table it is on';
COMMENT ON COLUMN splitdb.artifact.drop_on IS 'events on which it is dropped: failure, cancel, rollback, finalize';
COMMENT ON COLUMN splitdb.artifact.recorded_at IS 'when it was recorded (before it was made)';
COMMENT ON COLUMN splitdb.artifact.dropped_at IS 'when splitdb dropped it, or gave it back (a rollback''s archived originals, under their names again); NULL while it is (or may be) there';

/*
 * The key ranges of a table that several readers copy side by side (the
 * worker and its copiers, copier.c): contiguous, disjoint, covering every
 * key.  A range holds the keys k with lower_key <= k < upper_key, compared
 * as rows over as many leading key columns as a bound has; NULL is
 * unbounded.  Each range has its own checkpoint; job_table.rows_copied and
 * bytes_copied are the sums of its ranges' (job_table.last_key stays NULL).
 * A table read by one reader has no rows here.
 */
CREATE TABLE splitdb.job_range (
	job_id          bigint NOT NULL,
	relid           oid NOT NULL,
	range_no        integer NOT NULL CHECK (range_no >= 0),
	lower_key       text[],
	upper_key       text[],
	last_key        text[],
	rows_copied     bigint NOT NULL DEFAULT 0,
	bytes_copied    bigint NOT NULL DEFAULT 0,
	done            boolean NOT NULL DEFAULT false,
	updated_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (job_id, relid, range_no),
	FOREIGN KEY (job_id, relid) REFERENCES splitdb.job_table (job_id, relid) ON DELETE CASCADE
);
COMMENT ON TABLE splitdb.job_range IS 'key ranges of a table copied by several readers, each with its checkpoint';
COMMENT ON COLUMN splitdb.job_range.job_id IS 'the job';
COMMENT ON COLUMN splitdb.job_range.relid IS 'the source table; after cutover it is the archived original';
COMMENT ON COLUMN splitdb.job_range.range_no IS 'position of the range in key order, from 0';
COMMENT ON COLUMN splitdb.job_range.lower_key IS 'first key of the range (inclusive), leading key columns in text form; NULL: unbounded below';
COMMENT ON COLUMN splitdb.job_range.upper_key IS 'first key after the range (exclusive), leading key columns in text form; NULL: unbounded above';
COMMENT ON COLUMN splitdb.job_range.last_key IS 'checkpoint: the key of the last row of the range copied, in text form';
COMMENT ON COLUMN splitdb.job_range.rows_copied IS 'rows of the range in the sibling at its checkpoint';
COMMENT ON COLUMN splitdb.job_range.bytes_copied IS 'COPY data of the range sent to the sibling';
COMMENT ON COLUMN splitdb.job_range.done IS 'every row of the range is in the sibling';
COMMENT ON COLUMN splitdb.job_range.updated_at IS 'last change of this row';

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
	reference_id        bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
	mode                text NOT NULL DEFAULT 'strict' CHECK (mode IN ('strict', 'off')),
	constraint_oid      oid,
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
COMMENT ON COLUMN splitdb.reference.reference_id IS 'the reference''s number, as splitdb_references shows it and the trigger rows in every database name it';
COMMENT ON COLUMN splitdb.reference.constraint_oid IS 'the foreign key in the source, until the cutover drops it: the cutover reads its names and definition again from it';
COMMENT ON COLUMN splitdb.reference.mode IS 'strict: enforced by triggers on both sides; off: triggers disabled (check with splitdb_orphans)';

/*
 * How this database enforces its ends of cross-service references: one row
 * per (reference, side) whose triggers live here.  In the source the
 * relation is a table that stays or the shim of a moved one; in a sibling it
 * is the moved table.  The trigger functions accept a trigger only when its
 * arguments name a row here for its own relation, so a trigger made by hand
 * cannot make splitdb run other statements.  Written by splitdb at cutover.
 */
CREATE TABLE splitdb.reference_end (
	reference_id        bigint NOT NULL,
	side                "char" NOT NULL CHECK (side IN ('c', 'p')),
	relid               regclass NOT NULL,
	constraint_name     name NOT NULL,
	here                text NOT NULL,
	own_table           text NOT NULL,
	own_server          name,
	own_columns         name[] NOT NULL,
	own_types           text[] NOT NULL,
	other_location      text NOT NULL,
	other_server        name,
	other_table         text NOT NULL,
	other_columns       name[] NOT NULL,
	other_types         text[] NOT NULL,
	other_database      text NOT NULL,
	match_full          boolean NOT NULL,
	on_delete           "char" NOT NULL,
	on_update           "char" NOT NULL,
	set_columns         name[],
	is_deferrable       boolean NOT NULL,
	initially_deferred  boolean NOT NULL,
	always              boolean NOT NULL DEFAULT false,
	PRIMARY KEY (reference_id, side)
);
COMMENT ON TABLE splitdb.reference_end IS 'the ends of cross-service references that this database enforces, written by splitdb at cutover';
COMMENT ON COLUMN splitdb.reference_end.reference_id IS 'the reference, as splitdb.reference numbers it in the source';
COMMENT ON COLUMN splitdb.reference_end.constraint_name IS 'name of the original constraint, for messages and SET CONSTRAINTS';
COMMENT ON COLUMN splitdb.reference_end.own_columns IS 'this end''s key columns, in key order';
COMMENT ON COLUMN splitdb.reference_end.own_types IS 'the types they compare as (splitdb.key_type())';
COMMENT ON COLUMN splitdb.reference_end.other_table IS 'the other end''s table, schema-qualified, in its database';
COMMENT ON COLUMN splitdb.reference_end.other_columns IS 'the other end''s key columns, in key order';
COMMENT ON COLUMN splitdb.reference_end.other_types IS 'the types they compare as (splitdb.key_type())';
COMMENT ON COLUMN splitdb.reference_end.match_full IS 'MATCH FULL (otherwise MATCH SIMPLE)';
COMMENT ON COLUMN splitdb.reference_end.is_deferrable IS 'DEFERRABLE';
COMMENT ON COLUMN splitdb.reference_end.initially_deferred IS 'INITIALLY DEFERRED';
COMMENT ON COLUMN splitdb.reference_end.side IS 'c: the referencing (child) end, p: the referenced (parent) end';
COMMENT ON COLUMN splitdb.reference_end.relid IS 'the relation the triggers are on: a table, or in the source the shim of a moved table';
COMMENT ON COLUMN splitdb.reference_end.here IS 'where this database is: source, or the service whose sibling it is';
COMMENT ON COLUMN splitdb.reference_end.own_table IS 'this end''s table, schema-qualified, in the database that holds its rows';
COMMENT ON COLUMN splitdb.reference_end.own_server IS 'when relid is a shim: the server of the database holding its rows';
COMMENT ON COLUMN splitdb.reference_end.other_location IS 'where the other end is: source, or its service';
COMMENT ON COLUMN splitdb.reference_end.other_server IS 'the postgres_fdw server that reaches the other end, NULL when it is a table here';
COMMENT ON COLUMN splitdb.reference_end.other_database IS 'name of the other end''s database, for messages';
COMMENT ON COLUMN splitdb.reference_end.on_delete IS 'ON DELETE action as in pg_constraint.confdeltype: a, r, c, n, d';
COMMENT ON COLUMN splitdb.reference_end.on_update IS 'ON UPDATE action as in pg_constraint.confupdtype';
COMMENT ON COLUMN splitdb.reference_end.always IS 'check writes that come through the source''s shims too: the end is a partition, which has no shim of its own';
COMMENT ON COLUMN splitdb.reference_end.set_columns IS 'the referencing columns ON DELETE SET NULL/SET DEFAULT sets, NULL for all';

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
-- splitdb_status, which PUBLIC may read, calls it with the reader's rights:
-- it keeps PUBLIC's EXECUTE

/*
 * pg_dump carries every row of the catalog, the jobs included, progress and
 * worker pids too.  The jobs are not a log that a restore may drop: which
 * services have moved is read from their state (splitdb.reference_placement
 * counts a service as moved once its job is cutting_over, done or
 * finalized),
 * splitdb_migrate() refuses to migrate a service again once its job is
 * done, and the rows of splitdb.reference belong to a job.  The pid cannot
 * be left out without the row (a filter drops rows, not columns), and it
 * misleads no one: a job whose row says it runs reads as failed unless a
 * splitdb worker has that pid (splitdb.job_worker_gone()), so a job that
 * the dump caught while it ran reads as failed after a restore.
 * splitdb.job_table and splitdb.reference name relations by OID, which a
 * restore does not keep: there they tell what the migration did.
 */
SELECT pg_catalog.pg_extension_config_dump('splitdb.service', '');
SELECT pg_catalog.pg_extension_config_dump('splitdb.owned_table', '');
SELECT pg_catalog.pg_extension_config_dump('splitdb.job', '');
SELECT pg_catalog.pg_extension_config_dump('splitdb.job_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('splitdb.job_table', '');
SELECT pg_catalog.pg_extension_config_dump('splitdb.job_range', '');
SELECT pg_catalog.pg_extension_config_dump('splitdb.reference', '');
SELECT pg_catalog.pg_extension_config_dump('splitdb.artifact', '');
SELECT pg_catalog.pg_extension_config_dump('splitdb.artifact_artifact_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('splitdb.reference_end', '');
SELECT pg_catalog.pg_extension_config_dump('splitdb.reference_reference_id_seq', '');

GRANT USAGE ON SCHEMA splitdb TO PUBLIC;
GRANT SELECT ON splitdb.service, splitdb.owned_table,
	splitdb.reference, splitdb.owned_relation, splitdb.artifact TO PUBLIC;
-- an error's text can quote row values (the key of a unique violation), as
-- PostgreSQL shows them only to roles that may read the columns: every
-- column but that one, which splitdb_status shows to pg_read_all_stats
GRANT SELECT (job_id, service, mode, state, phase, current_table, started_by, runs, started_at,
			  updated_at, copy_started_at, copy_rows_start, copy_finished_at, finished_at,
			  last_sqlstate, worker_pid, rounds, lag_rows, lag_seconds, lag_trend, lag_at,
			  cutover_attempts, cutover_lock_timeout, cutover_max_freeze, cutover_max_attempts)
	ON splitdb.job TO PUBLIC;
-- the copy's checkpoints hold row keys, which a role that may not read the
-- table must not read here: every column but those
GRANT SELECT (job_id, relid, table_name, relkind, partition_root, phase, key_columns, copy_format,
			  rows_total, rows_copied, bytes_copied, source_rows, target_rows, source_checksum,
			  target_checksum, verified, error, updated_at)
	ON splitdb.job_table TO PUBLIC;
GRANT SELECT (job_id, relid, range_no, rows_copied, bytes_copied, done, updated_at)
	ON splitdb.job_range TO PUBLIC;

/*
 * A dropped table leaves no ownership row behind, so the catalog never holds
 * a dangling OID.  In C (src/metadata/ownership.c): it deletes the rows as of
 * now, so that a REPEATABLE READ transaction older than a table's
 * splitdb_assign() drops its row too.
 */
CREATE FUNCTION splitdb.forget_dropped_tables()
RETURNS event_trigger
AS 'MODULE_PATHNAME', 'splitdb_forget_dropped_tables'
LANGUAGE C
SECURITY DEFINER	-- any role's DROP fires it; only the owner may write the catalog
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION splitdb.forget_dropped_tables() IS 'event trigger: removes ownership rows of dropped tables';
REVOKE ALL ON FUNCTION splitdb.forget_dropped_tables() FROM PUBLIC;

CREATE EVENT TRIGGER splitdb_forget_dropped_tables ON sql_drop
	EXECUTE FUNCTION splitdb.forget_dropped_tables();

/*
 * A trigger on splitdb.reference_row() or splitdb.reference_flush() made
 * by hand is refused to every role but the functions' owner: PUBLIC keeps
 * EXECUTE on them for the copies that PostgreSQL makes on a new partition,
 * which fire no CREATE TRIGGER.
 *
 * Only a table's owner may create a trigger on it here; the TRIGGER
 * privilege alone no longer suffices.  Writes that arrive from another
 * database on a session that proved its origin (src/reference/origin.c)
 * are enforced by that database, which sees only the rows it sent; the
 * rows that a trigger here writes in turn are handed back to it, after each
 * statement and before it commits, but not in every case
 * (docs/operations.md, "Limits known today"), and a trigger runs its code
 * in those sessions.  This keeps that to the tables' owners.
 */
CREATE FUNCTION splitdb.refuse_foreign_triggers()
RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t record;
BEGIN
	-- splitdb's own trigger functions, which PUBLIC may execute so that a
	-- partition's owner gets the copies of its table's triggers
	FOR t IN
		SELECT tg.tgname, c.oid::regclass AS rel, p.oid::regprocedure AS fn
		  FROM pg_event_trigger_ddl_commands() d
		  JOIN pg_trigger tg ON tg.oid = d.objid
		  JOIN pg_class c ON c.oid = tg.tgrelid
		  JOIN pg_proc p ON p.oid = tg.tgfoid
		 WHERE d.classid = 'pg_catalog.pg_trigger'::regclass
		   AND p.pronamespace = 'splitdb'::regnamespace
		   AND p.proname IN ('reference_row', 'reference_flush')
		   AND NOT pg_has_role(p.proowner, 'USAGE')
	LOOP
		RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
			MESSAGE = format('permission denied for function %s', t.fn),
			DETAIL = format('Trigger %I on %s would call one of the functions of splitdb''s cross-service references, whose triggers only splitdb creates.', t.tgname, t.rel),
			HINT = 'splitdb installs these triggers itself when a cutover turns a foreign key into a cross-service reference, and PostgreSQL copies them onto new partitions.';
	END LOOP;
	FOR t IN
		SELECT tg.tgname, c.oid::regclass AS rel, c.relowner
		  FROM pg_event_trigger_ddl_commands() d
		  JOIN pg_trigger tg ON tg.oid = d.objid
		  JOIN pg_class c ON c.oid = tg.tgrelid
		 WHERE d.classid = 'pg_catalog.pg_trigger'::regclass
		   AND NOT pg_has_role(c.relowner, 'USAGE')
	LOOP
		RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
			MESSAGE = format('permission denied to create trigger %I on %s', t.tgname, t.rel),
			DETAIL = 'In a database with splitdb, only a table''s owner may create triggers on it: a trigger runs in the sessions whose writes another database enforces, and that database does not check every row a trigger writes there.',
			HINT = format('Ask role %I, the owner of %s, to create the trigger.', t.relowner::regrole, t.rel);
	END LOOP;
END
$$;
COMMENT ON FUNCTION splitdb.refuse_foreign_triggers() IS 'event trigger: refuses a trigger created by a role that does not own its table';
REVOKE ALL ON FUNCTION splitdb.refuse_foreign_triggers() FROM PUBLIC;

-- CREATE SCHEMA too: its elements may create a table and a trigger on it,
-- which fire no CREATE TRIGGER of their own
CREATE EVENT TRIGGER splitdb_trigger_owner ON ddl_command_end WHEN TAG IN ('CREATE TRIGGER', 'CREATE SCHEMA')
	EXECUTE FUNCTION splitdb.refuse_foreign_triggers();

/*
 * While a job moves a table, and while its original waits in
 * splitdb_archive for finalize or rollback, DDL on it is refused: the
 * sibling was built from its definition, and a rollback restores it as it
 * was archived (src/migrate/ddlguard.c).  splitdb's own workers pass.
 */
-- no SET search_path: the rows of a partition that ALTER TABLE ... ATTACH
-- PARTITION names are checked (src/reference/attachcheck.c), and its names are
-- looked up under the session's path, as the command looked them up; the
-- function pins pg_catalog, pg_temp for its queries
CREATE FUNCTION splitdb.guard_ddl()
RETURNS event_trigger
AS 'MODULE_PATHNAME', 'splitdb_guard_ddl'
LANGUAGE C;
COMMENT ON FUNCTION splitdb.guard_ddl() IS 'event trigger: refuses DDL on a table of a migration under way or on an archived original, on its schema or on the types of its columns';
REVOKE ALL ON FUNCTION splitdb.guard_ddl() FROM PUBLIC;

CREATE FUNCTION splitdb.guard_drop()
RETURNS event_trigger
AS 'MODULE_PATHNAME', 'splitdb_guard_drop'
LANGUAGE C
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION splitdb.guard_drop() IS 'event trigger: refuses dropping a table of a migration under way or an archived original, or a trigger, rule or policy on one';
REVOKE ALL ON FUNCTION splitdb.guard_drop() FROM PUBLIC;

-- no SET search_path: it looks up the command's names under the session's
-- path, as the command does, and sets pg_catalog, pg_temp for its queries
CREATE FUNCTION splitdb.guard_start()
RETURNS event_trigger
AS 'MODULE_PATHNAME', 'splitdb_guard_start'
LANGUAGE C;
COMMENT ON FUNCTION splitdb.guard_start() IS 'event trigger: refuses, before it runs, DROP INDEX, CREATE INDEX CONCURRENTLY, DETACH PARTITION CONCURRENTLY, ALTER SEQUENCE, or a DROP ... CASCADE that would drop an index, on a table of a migration under way or on an archived original';
REVOKE ALL ON FUNCTION splitdb.guard_start() FROM PUBLIC;

CREATE FUNCTION splitdb.archive_guard()
RETURNS trigger
AS 'MODULE_PATHNAME', 'splitdb_archive_guard'
LANGUAGE C
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION splitdb.archive_guard() IS 'statement trigger on an archived original: refuses writes (a rollback replays with session_replication_role = replica)';
REVOKE ALL ON FUNCTION splitdb.archive_guard() FROM PUBLIC;

/*
 * Only for these tags: an event trigger that fires for every command makes
 * PostgreSQL log each one at DEBUG1, and with log_min_error_statement at
 * that level the statement's text, a user mapping's password included.
 */
CREATE EVENT TRIGGER splitdb_guard_ddl ON ddl_command_end
	WHEN TAG IN ('ALTER TABLE', 'CREATE INDEX', 'ALTER INDEX', 'CREATE TRIGGER', 'ALTER TRIGGER',
	             'CREATE RULE', 'ALTER RULE', 'CREATE POLICY', 'ALTER POLICY', 'CREATE STATISTICS',
	             'ALTER STATISTICS', 'CREATE TABLE', 'CREATE FOREIGN TABLE', 'ALTER FOREIGN TABLE',
	             'ALTER SCHEMA', 'ALTER TYPE', 'ALTER DOMAIN', 'CREATE CAST', 'COMMENT')
	EXECUTE FUNCTION splitdb.guard_ddl();
CREATE EVENT TRIGGER splitdb_guard_drop ON sql_drop
	WHEN TAG IN ('DROP TABLE', 'DROP SCHEMA', 'DROP OWNED', 'DROP TYPE', 'DROP DOMAIN',
	             'DROP COLLATION', 'ALTER TABLE', 'DROP EXTENSION', 'DROP TRIGGER', 'DROP RULE',
	             'DROP POLICY', 'DROP SEQUENCE', 'DROP FUNCTION', 'DROP ROUTINE')
	EXECUTE FUNCTION splitdb.guard_drop();
-- what must be refused before it runs (src/migrate/ddlguard.c,
-- refused_before_it_runs()): DROP INDEX, CREATE INDEX CONCURRENTLY,
-- DETACH PARTITION ... CONCURRENTLY, ALTER SEQUENCE
CREATE EVENT TRIGGER splitdb_guard_start ON ddl_command_start
	WHEN TAG IN ('DROP INDEX', 'CREATE INDEX', 'ALTER TABLE', 'ALTER SEQUENCE',
				 'DROP FUNCTION', 'DROP ROUTINE', 'DROP OPERATOR', 'DROP OPERATOR CLASS',
				 'DROP OPERATOR FAMILY', 'DROP COLLATION', 'DROP TYPE', 'DROP DOMAIN',
				 'DROP CAST', 'DROP TEXT SEARCH CONFIGURATION', 'DROP TEXT SEARCH DICTIONARY',
				 'DROP TEXT SEARCH PARSER', 'DROP TEXT SEARCH TEMPLATE', 'DROP ACCESS METHOD',
				 'DROP SCHEMA', 'DROP EXTENSION', 'DROP OWNED')
	EXECUTE FUNCTION splitdb.guard_start();
-- also under session_replication_role = replica: a migration's tables
-- change under no setting a client can send
ALTER EVENT TRIGGER splitdb_guard_ddl ENABLE ALWAYS;
ALTER EVENT TRIGGER splitdb_guard_drop ENABLE ALWAYS;
ALTER EVENT TRIGGER splitdb_guard_start ENABLE ALWAYS;

-- splitdb's reference triggers are what a foreign key's system triggers
-- were: only a superuser (or the extension's owner) may switch, drop or
-- rename them, or rename, move or change the key columns of a table that
-- has them, which the other database reads by name, detach a partition of
-- a referenced one, or give one an inheritance child, or make a cast from
-- or to a key type (src/reference/trigguard.c).  No SET search_path: it looks up the
-- command's names under the session's path, as the command does, and pins
-- it for its queries.
CREATE FUNCTION splitdb.guard_triggers()
RETURNS event_trigger
AS 'MODULE_PATHNAME', 'splitdb_guard_triggers'
LANGUAGE C;
COMMENT ON FUNCTION splitdb.guard_triggers() IS 'event trigger: refuses, for a role that is no superuser, enabling, disabling, replacing, dropping or renaming a trigger of a cross-service reference, and renaming, moving or changing a key column of a table that has one';
REVOKE ALL ON FUNCTION splitdb.guard_triggers() FROM PUBLIC;
-- ALTER INDEX, ALTER VIEW, ALTER MATERIALIZED VIEW and ALTER TYPE: PostgreSQL
-- lets ALTER INDEX ... RENAME rename a table, ALTER VIEW and ALTER
-- MATERIALIZED VIEW ... RENAME COLUMN rename a table's column, and ALTER TYPE
-- ... RENAME ATTRIBUTE rename one of a table's (or, with CASCADE, of a typed
-- table's); CREATE FOREIGN TABLE ... INHERITS makes an inheritance child;
-- CREATE OR REPLACE TRIGGER would put another function in place of one of
-- splitdb's triggers
CREATE EVENT TRIGGER splitdb_guard_triggers ON ddl_command_start
	WHEN TAG IN ('ALTER TABLE', 'ALTER FOREIGN TABLE', 'CREATE TRIGGER', 'DROP TRIGGER', 'ALTER TRIGGER',
				 'ALTER SCHEMA', 'CREATE TABLE', 'CREATE FOREIGN TABLE', 'CREATE CAST',
				 'ALTER INDEX', 'ALTER VIEW', 'ALTER MATERIALIZED VIEW', 'ALTER TYPE')
	EXECUTE FUNCTION splitdb.guard_triggers();
ALTER EVENT TRIGGER splitdb_guard_triggers ENABLE ALWAYS;

-- For a role that is no superuser, a command that dropped a relation with an
-- end of a cross-service reference (DROP TABLE, DROP SCHEMA ... CASCADE, ...):
-- the other end's triggers, in another database, would go on checking it.
CREATE FUNCTION splitdb.guard_dropped_ends()
RETURNS event_trigger
AS 'MODULE_PATHNAME', 'splitdb_guard_dropped_ends'
LANGUAGE C
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION splitdb.guard_dropped_ends() IS 'event trigger: drops a cross-service reference with a dropped table that holds one of its ends, as a foreign key goes with its table; refuses, for a role that is no superuser, what PostgreSQL refuses of a referenced table (a drop without CASCADE, a partition) and the drop of a shim with an end';
REVOKE ALL ON FUNCTION splitdb.guard_dropped_ends() FROM PUBLIC;
CREATE EVENT TRIGGER splitdb_guard_dropped_ends ON sql_drop
	EXECUTE FUNCTION splitdb.guard_dropped_ends();
ALTER EVENT TRIGGER splitdb_guard_dropped_ends ENABLE ALWAYS;

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
 *
 * jit = off here and for splitdb_migrate(), which reads the plan too: the
 * catalog queries are estimated dear (recursive walks of function bodies)
 * and run in milliseconds, but JIT compiled them for seconds on a large
 * schema.
 */
CREATE FUNCTION splitdb_plan(service name)
RETURNS TABLE (step integer, action text, object text, detail text)
AS 'MODULE_PATHNAME', 'splitdb_plan'
LANGUAGE C STRICT STABLE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
SET datestyle = 'ISO, YMD'
SET jit = off;
COMMENT ON FUNCTION splitdb_plan(name) IS
'dry run: the steps a migration of the service would take, with warnings and blockers';

CREATE FUNCTION splitdb_plan_dot(service name)
RETURNS text
AS 'MODULE_PATHNAME', 'splitdb_plan_dot'
LANGUAGE C STRICT STABLE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
SET jit = off;
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

-- One row's hash for those checksums: hash_record_extended(ROW(...), 0) of
-- the arguments, without building the record.  No SET clause: it runs once
-- per row, and looks nothing up by name.
CREATE FUNCTION splitdb.row_hash(VARIADIC "any")
RETURNS bigint
AS 'MODULE_PATHNAME', 'splitdb_row_hash'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION splitdb.row_hash("any") IS
'the hash of the row made of the arguments, equal to hash_record_extended(ROW(...), 0): the row hash of splitdb_verify()''s checksums';

-- The row hash of splitdb_verify()'s checksums where both sides have it:
-- row_hash() with the values of numeric, jsonb, the text, integer, date,
-- time and float types, uuid, interval and arrays hashed by their bytes,
-- value or shape, which costs less than their types' hash functions and
-- tells apart values that those call equal, and the row's hash mixed once
-- more, so that its sum over a table is the checksum.  Its values are not
-- those of ROW(): compare a checksum made with it only with another made
-- with it.  The C symbol names the digest's version (rowhash.c).
CREATE FUNCTION splitdb.row_digest(VARIADIC "any")
RETURNS bigint
AS 'MODULE_PATHNAME', 'splitdb_row_digest_v2'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION splitdb.row_digest("any") IS
'the row hash of splitdb_verify()''s checksums where both sides have this function: splitdb.row_hash() with the values of some built-in types hashed by their bytes, value or shape, mixed once more';

/*
 * Privileges of the splitdb_* functions: PUBLIC keeps the EXECUTE that
 * PostgreSQL grants on every new function.  Those that change the catalog
 * or read table data check for superuser themselves, so that a refusal
 * carries a hint.
 */

/*
 * Migration
 */
CREATE FUNCTION splitdb_migrate(service name, mode text DEFAULT 'online',
								wait boolean DEFAULT false)
RETURNS bigint
AS 'MODULE_PATHNAME', 'splitdb_migrate'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
SET jit = off;
COMMENT ON FUNCTION splitdb_migrate(name, text, boolean) IS
'starts (or resumes) the migration of a service in a background worker; returns the job id';

CREATE FUNCTION splitdb_remote_nextval(service name, sequence text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'splitdb_remote_nextval'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION splitdb_remote_nextval(name, text) IS
'the next value of a sequence in a service''s sibling: the default of a shim''s serial and identity columns';

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

-- splitdb_migrate() checks for superuser itself; splitdb_remote_nextval() is
-- the default of shim columns, so every role that inserts through a shim
-- calls it: both keep PUBLIC's EXECUTE
GRANT SELECT ON splitdb_table_status TO PUBLIC;

/*
 * Cross-service references.  Cutover turns each foreign key that now crosses
 * databases into triggers on both ends, in every database that holds an end
 * (splitdb.reference_end says how), with PostgreSQL's foreign-key semantics.
 */
/*
 * Where each end of each cross-service reference is: "source", or the service
 * whose job has moved it (cutting over, done or finalized); with the servers and
 * databases that reach it, and the key columns' types.
 */
-- The type a key column compares as: a domain's base type (through domains
-- over domains), without a type modifier.  PostgreSQL's foreign keys compare
-- with the base type's equality; a cast to the column's own type would apply
-- a domain's CHECK, a length limit or a numeric scale to the value looked up.
-- The name is format_type()'s for an explicit typmod of -1: bpchar and "bit",
-- where "character" and "bit" would be read as character(1) and bit(1).
CREATE FUNCTION splitdb.key_type(typid oid)
RETURNS text
LANGUAGE sql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	WITH RECURSIVE d(oid, typtype, typbasetype) AS (
		SELECT t.oid, t.typtype, t.typbasetype FROM pg_catalog.pg_type t WHERE t.oid = typid
		UNION ALL
		SELECT t.oid, t.typtype, t.typbasetype
		  FROM d JOIN pg_catalog.pg_type t ON t.oid = d.typbasetype
		 WHERE d.typtype OPERATOR(pg_catalog.=) 'd')
	SELECT pg_catalog.format_type(d.oid, -1) FROM d WHERE d.typtype OPERATOR(pg_catalog.<>) 'd'
$$;
COMMENT ON FUNCTION splitdb.key_type(oid) IS 'the type a key column of that type compares as: the base type of a domain, without a type modifier';
-- splitdb_references, which PUBLIC may read, calls it (through
-- splitdb.reference_placement) with the reader's rights: it keeps PUBLIC's
-- EXECUTE

-- The relation that stands for one end of a reference in the source: the
-- table (after the cutover, its archived original), else, once
-- splitdb_finalize() dropped the archive, the shim of the same name; NULL
-- when neither is left (finalized with drop_shim).
CREATE FUNCTION splitdb.reference_end_relid(relid oid, table_name text)
RETURNS oid
LANGUAGE sql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce((SELECT c.oid FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) relid),
					pg_catalog.to_regclass(table_name)::pg_catalog.oid)
$$;
COMMENT ON FUNCTION splitdb.reference_end_relid(oid, text) IS 'the relation that stands for a reference end in the source: the table or its archived original, else the shim of the same name';
-- splitdb_references, which PUBLIC may read, calls it (through
-- splitdb.reference_placement) with the reader's rights: it keeps PUBLIC's
-- EXECUTE

CREATE VIEW splitdb.reference_placement AS
WITH loc AS (
	SELECT s.service, s.server, s.dbname,
		   EXISTS (SELECT FROM splitdb.job j WHERE j.service = s.service
					  AND j.state IN ('cutting_over', 'done', 'finalized')) AS moved
	  FROM splitdb.service s)
SELECT r.*,
	   CASE WHEN cl.moved THEN r.child_service::pg_catalog.text ELSE 'source' END AS child_location,
	   CASE WHEN pl.moved THEN r.parent_service::pg_catalog.text ELSE 'source' END AS parent_location,
	   CASE WHEN cl.moved THEN cl.dbname ELSE pg_catalog.current_database()::pg_catalog.text END AS child_database,
	   CASE WHEN pl.moved THEN pl.dbname ELSE pg_catalog.current_database()::pg_catalog.text END AS parent_database,
	   CASE WHEN cl.moved THEN cl.server END AS child_server,
	   CASE WHEN pl.moved THEN pl.server END AS parent_server,
	   (SELECT pg_catalog.array_agg(splitdb.key_type(a.atttypid) ORDER BY k.ord)
		  FROM pg_catalog.unnest(r.child_columns) WITH ORDINALITY k(col, ord)
		  JOIN pg_catalog.pg_attribute a ON a.attrelid = splitdb.reference_end_relid(r.child_relid, r.child_table)
			   AND a.attname = k.col) AS child_types,
	   (SELECT pg_catalog.array_agg(splitdb.key_type(a.atttypid) ORDER BY k.ord)
		  FROM pg_catalog.unnest(r.parent_columns) WITH ORDINALITY k(col, ord)
		  JOIN pg_catalog.pg_attribute a ON a.attrelid = splitdb.reference_end_relid(r.parent_relid, r.parent_table)
			   AND a.attname = k.col) AS parent_types
  FROM splitdb.reference r
  LEFT JOIN loc cl ON cl.service = r.child_service
  LEFT JOIN loc pl ON pl.service = r.parent_service;
COMMENT ON VIEW splitdb.reference_placement IS 'where both ends of each cross-service reference are, and how to reach them';

-- The WHEN condition of the source's triggers on a shim for a reference
-- declared on one partition of the moved table: the partition's constraint
-- over the trigger's new or old row (src/reference/route.c).
CREATE FUNCTION splitdb.partition_route(partition regclass, row_alias text)
RETURNS text
AS 'MODULE_PATHNAME', 'splitdb_partition_route'
LANGUAGE C STRICT STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION splitdb.partition_route(regclass, text) IS 'the partition constraint of a partition over a trigger''s new or old row, for the WHEN clause of the shim''s triggers of a reference declared on that partition';
REVOKE ALL ON FUNCTION splitdb.partition_route(regclass, text) FROM PUBLIC;

CREATE FUNCTION splitdb.reference_row()
RETURNS trigger
AS 'MODULE_PATHNAME', 'splitdb_reference_row'
LANGUAGE C STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION splitdb.reference_row() IS 'row trigger of a cross-service reference: queues the keys to check or the action to apply (AFTER), or sends a referencing row''s lookup ahead (BEFORE)';

CREATE FUNCTION splitdb.reference_flush()
RETURNS trigger
AS 'MODULE_PATHNAME', 'splitdb_reference_flush'
LANGUAGE C STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION splitdb.reference_flush() IS 'statement trigger of a cross-service reference: checks the queued keys, one remote statement per referenced table; refuses TRUNCATE of a referenced table';

CREATE FUNCTION splitdb.reference_counters(OUT datid oid, OUT reference_id bigint, OUT side "char",
	OUT checks bigint, OUT violations bigint, OUT round_trips bigint, OUT time_ms double precision)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'splitdb_reference_counters'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION splitdb.reference_counters() IS 'enforcement counters of every database of this cluster since the server started (needs splitdb in shared_preload_libraries)';

CREATE FUNCTION splitdb.reference_relay(statement text, params text[],
	OUT reference_id bigint, OUT side "char", OUT kind "char", OUT old_key text[], OUT new_key text[])
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'splitdb_reference_relay'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION splitdb.reference_relay(text, text[]) IS 'runs, with the caller''s rights, an action that another database''s enforcement applies here, and returns the statement''s rows and then the keys this database left to the caller';

CREATE FUNCTION splitdb.reference_relay_action(reference_id bigint, event "char",
	collations text[], params text[], counter bigint, mac text,
	OUT reference_id bigint, OUT side "char", OUT kind "char", OUT old_key text[], OUT new_key text[])
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'splitdb_reference_relay_action'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION splitdb.reference_relay_action(bigint, "char", text[], text[], bigint, text) IS 'applies, as the owner of the referencing table here, the action of a reference for the keys that another database deleted or changed, for splitdb in that database alone (a proved session and a MAC per request), and returns the statement''s rows and then the keys this database left to the caller';

CREATE FUNCTION splitdb.reference_lookup(reference_id bigint, side "char",
	flags integer, collations text[], keys text[], counter bigint, mac text)
RETURNS SETOF bigint
AS 'MODULE_PATHNAME', 'splitdb_reference_lookup'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION splitdb.reference_lookup(bigint, "char", integer, text[], text[], bigint, text) IS 'looks up, as the owner of the table of this database''s end of a reference, the keys that another database checks, for splitdb in that database alone (a proved session and a MAC per request), and returns the positions of the keys found';

CREATE FUNCTION splitdb.reference_relayed(
	OUT reference_id bigint, OUT side "char", OUT kind "char", OUT old_key text[], OUT new_key text[])
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'splitdb_reference_relayed'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION splitdb.reference_relayed() IS 'the keys this database left, since the last call, to the database whose write through a shim changed more rows here by foreign keys or triggers';

CREATE FUNCTION splitdb.shim_statement()
RETURNS trigger
AS 'MODULE_PATHNAME', 'splitdb_shim_statement'
LANGUAGE C STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION splitdb.shim_statement() IS 'statement trigger of a shim: after an update or delete, enforces here the references that the rows the sibling''s foreign keys and triggers changed in turn left to this database';

/*
 * shim_statement() is splitdb's own: PostgreSQL checks EXECUTE on a
 * trigger's function when the trigger is created, not when it fires, so
 * revoking it keeps every other role from making a trigger that calls it
 * and costs the writers nothing.
 *
 * reference_row() and reference_flush() keep PUBLIC's EXECUTE: CREATE
 * TABLE ... PARTITION OF and ALTER TABLE ... ATTACH PARTITION clone a
 * table's row triggers onto the partition, and PostgreSQL checks EXECUTE
 * on their functions for the role that adds it, the table's owner.  A
 * CREATE TRIGGER that calls them is refused all the same, to every role
 * but their owner (splitdb_trigger_owner, above); one made by a superuser
 * must name, in its arguments, a reference with an end on its own table
 * (or a table it is a partition of), or it fails (09000,
 * refcheck_def.c).  The rows an attached partition brings are checked at
 * the attachment (attachcheck.c).
 *
 * reference_relay(), reference_relay_action(), reference_lookup() and
 * reference_relayed() keep PUBLIC's EXECUTE, although only splitdb calls
 * them: splitdb calls them
 * from another database, on postgres_fdw's connection for the writing
 * role's user mapping (or the table owner's), so the caller here is
 * whatever role that mapping logs in as, which no install script can name.
 * Revoked, every CASCADE, SET NULL or SET DEFAULT across databases and
 * every UPDATE or DELETE through a shim whose sibling holds an end would
 * fail for such a role with 42501.  They grant nothing to anyone else: the
 * relay runs its statement with the caller's own rights and every check
 * on; the relay of an action runs, as the referencing table's owner, only
 * the statement of an action of a reference whose referencing end is here,
 * made here from that end's row, and only for a request that carries a MAC
 * under a key of a session that proved its origin (src/reference/origin.c,
 * refcheck_act.c): splitdb's; the lookup reads, as the owner of a table of
 * an end here, only the lookup made here from that end's row, under the
 * same rule (refcheck_lookup.c); and the keys they hand back exist only in
 * such a session.
 * reference_counters() keeps it because the view splitdb_references, which
 * PUBLIC may read, calls it with the reader's rights.
 */
REVOKE ALL ON FUNCTION splitdb.shim_statement() FROM PUBLIC;

CREATE VIEW splitdb_references AS
SELECT r.reference_id,
	   r.constraint_name,
	   r.child_table,
	   r.child_location,
	   r.child_columns,
	   r.parent_table,
	   r.parent_location,
	   r.parent_columns,
	   r.match_type,
	   r.on_delete,
	   r.on_update,
	   r.delete_set_columns,
	   r.is_deferrable,
	   r.initially_deferred,
	   r.mode,
	   r.dropped_at IS NOT NULL AS enforced,
	   c.checks,
	   c.violations,
	   c.round_trips,
	   c.time_ms
  FROM splitdb.reference_placement r
  LEFT JOIN LATERAL (
	SELECT pg_catalog.sum(k.checks)::bigint AS checks,
		   pg_catalog.sum(k.violations)::bigint AS violations,
		   pg_catalog.sum(k.round_trips)::bigint AS round_trips,
		   pg_catalog.round(pg_catalog.sum(k.time_ms)::numeric, 3) AS time_ms
	  FROM splitdb.reference_counters() k
	 WHERE k.reference_id = r.reference_id
	   AND k.datid IN (SELECT d.oid FROM pg_catalog.pg_database d
						WHERE d.datname = pg_catalog.current_database()
						   OR d.datname IN (SELECT s.dbname FROM splitdb.service s
											 WHERE s.service IN (r.child_service, r.parent_service)))) c ON true
 WHERE NOT EXISTS (SELECT FROM splitdb.job j WHERE j.job_id = r.job_id
					  AND j.state IN ('cancelled', 'rolled_back'));
COMMENT ON VIEW splitdb_references IS 'every cross-service reference of a migration neither cancelled nor rolled back: both ends, columns, actions, mode, and the checks made on this cluster';

CREATE FUNCTION splitdb_orphans(service name)
RETURNS TABLE (reference_id bigint, constraint_name name, child_table text,
			   parent_table text, child_key text)
AS 'MODULE_PATHNAME', 'splitdb_orphans'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION splitdb_orphans(name) IS
'rows whose cross-service reference points at nothing: for each reference with an end in the service, each distinct key of the referencing table that the referenced table lacks';

CREATE FUNCTION splitdb_reference_mode(reference_id bigint, mode text)
RETURNS text
AS 'MODULE_PATHNAME', 'splitdb_reference_mode'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION splitdb_reference_mode(bigint, text) IS
'strict enforces the reference on both sides; off disables its triggers in every database (for a bulk backfill; run splitdb_orphans after); returns the previous mode';

-- splitdb_orphans() and splitdb_reference_mode() keep PUBLIC's EXECUTE and
-- check for superuser themselves
GRANT SELECT ON splitdb_references TO PUBLIC;
GRANT SELECT ON splitdb.reference_end TO PUBLIC;

/*
 * splitdb must be loaded in a session before postgres_fdw's first
 * connection there, so that its commit-time callback runs after
 * postgres_fdw's (docs/architecture.md, "Locks past the commit").  Unless
 * the cluster preloads it, the database preloads it for new sessions.
 * Returns whether it changed the database's setting.
 */
CREATE FUNCTION splitdb.ensure_preloaded()
RETURNS boolean
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	listed text := '(^|[\s,])"?splitdb"?($|[\s,])';
	libs text;
BEGIN
	IF current_setting('shared_preload_libraries') ~ listed THEN
		RETURN false;
	END IF;
	SELECT substr(c, length('session_preload_libraries=') + 1) INTO libs
	  FROM pg_db_role_setting s, unnest(s.setconfig) c
	 WHERE s.setdatabase = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
	   AND s.setrole = 0 AND c LIKE 'session_preload_libraries=%';
	IF libs ~ listed THEN
		RETURN false;
	END IF;
	EXECUTE format('ALTER DATABASE %I SET session_preload_libraries = %L', current_database(),
				   CASE WHEN coalesce(libs, '') = '' THEN 'splitdb' ELSE libs || ', splitdb' END);
	RETURN true;
END
$$;
COMMENT ON FUNCTION splitdb.ensure_preloaded() IS 'makes new sessions of this database load splitdb before anything else, unless the cluster preloads it';
REVOKE ALL ON FUNCTION splitdb.ensure_preloaded() FROM PUBLIC;

/*
 * Installing reference ends: the same functions run in the source and in
 * every sibling (splitdb is installed there at cutover), called by splitdb
 * with the ends as one jsonb parameter.
 */
CREATE FUNCTION splitdb.drop_reference_ends(reference_ids bigint[])
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t record;
BEGIN
	FOR t IN
		SELECT tg.tgrelid::regclass AS rel, tg.tgname
		  FROM pg_trigger tg
		 WHERE tg.tgfoid IN ('splitdb.reference_row()'::regprocedure,
							 'splitdb.reference_flush()'::regprocedure)
		   AND tg.tgnargs = 2 AND tg.tgparentid = 0
		   AND split_part(encode(tg.tgargs, 'escape'), '\000', 1) ~ '^[0-9]+$'
		   AND split_part(encode(tg.tgargs, 'escape'), '\000', 1)::bigint = ANY (reference_ids)
	LOOP
		EXECUTE format('DROP TRIGGER %I ON %s', t.tgname, t.rel);
	END LOOP;
	DELETE FROM splitdb.reference_end WHERE reference_id = ANY (reference_ids);
	-- statement triggers of relations that no longer hold an end
	FOR t IN
		SELECT tg.tgrelid::regclass AS rel, tg.tgname
		  FROM pg_trigger tg
		 WHERE tg.tgfoid = 'splitdb.reference_flush()'::regprocedure
		   AND tg.tgnargs = 0 AND tg.tgname = 'splitdb_reference_flush'
		   AND NOT EXISTS (SELECT FROM splitdb.reference_end e
							WHERE e.relid = tg.tgrelid
							   OR e.relid IN (SELECT a FROM pg_partition_ancestors(tg.tgrelid) a))
	LOOP
		EXECUTE format('DROP TRIGGER %I ON %s', t.tgname, t.rel);
	END LOOP;
END
$$;
COMMENT ON FUNCTION splitdb.drop_reference_ends(bigint[]) IS 'removes the triggers and rows of reference ends in this database';

/*
 * One end: its triggers and its row.  A superuser's DROP of a table here
 * that holds the other end calls it (splitdb_guard_dropped_ends) for the
 * ends here whose other end was that table: their checks would read a
 * table that no longer exists.
 */
CREATE FUNCTION splitdb.drop_reference_end(reference_id bigint, side "char")
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t record;
BEGIN
	FOR t IN
		SELECT tg.tgrelid::regclass AS rel, tg.tgname
		  FROM pg_trigger tg
		 WHERE tg.tgfoid IN ('splitdb.reference_row()'::regprocedure,
							 'splitdb.reference_flush()'::regprocedure)
		   AND tg.tgnargs = 2 AND tg.tgparentid = 0
		   AND split_part(encode(tg.tgargs, 'escape'), '\000', 1) = drop_reference_end.reference_id::text
		   AND split_part(encode(tg.tgargs, 'escape'), '\000', 2) = drop_reference_end.side::text
	LOOP
		EXECUTE format('DROP TRIGGER %I ON %s', t.tgname, t.rel);
		-- the source's registry: dropped on purpose, not missing
		UPDATE splitdb.artifact a SET dropped_at = pg_catalog.clock_timestamp()
		 WHERE a.service IS NULL AND a.kind = 'trigger' AND a.dropped_at IS NULL
		   AND a.identity = pg_catalog.quote_ident(t.tgname) AND a.parent = t.rel::text;
	END LOOP;
	DELETE FROM splitdb.reference_end e
	 WHERE e.reference_id = drop_reference_end.reference_id AND e.side = drop_reference_end.side;
	-- statement triggers of relations that no longer hold an end
	FOR t IN
		SELECT tg.tgrelid::regclass AS rel, tg.tgname
		  FROM pg_trigger tg
		 WHERE tg.tgfoid = 'splitdb.reference_flush()'::regprocedure
		   AND tg.tgnargs = 0 AND tg.tgname = 'splitdb_reference_flush'
		   AND NOT EXISTS (SELECT FROM splitdb.reference_end e
							WHERE e.relid = tg.tgrelid
							   OR e.relid IN (SELECT a FROM pg_partition_ancestors(tg.tgrelid) a))
	LOOP
		EXECUTE format('DROP TRIGGER %I ON %s', t.tgname, t.rel);
	END LOOP;
END
$$;
COMMENT ON FUNCTION splitdb.drop_reference_end(bigint, "char") IS 'removes the triggers and row of one reference end in this database';

/*
 * A reference off here: the triggers of its ends disabled, whatever the
 * ends' tables hold, for splitdb_reference_mode(..., 'off') of a reference
 * whose table in the source was dropped (its ends cannot be installed again
 * without that table's key types).
 */
CREATE FUNCTION splitdb.reference_ends_off(reference_id bigint)
RETURNS integer
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t record;
	n integer := 0;
BEGIN
	FOR t IN
		SELECT tg.tgrelid::regclass AS rel, tg.tgname, c.relkind
		  FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid
		 WHERE tg.tgfoid IN ('splitdb.reference_row()'::regprocedure,
							 'splitdb.reference_flush()'::regprocedure)
		   AND tg.tgnargs = 2 AND tg.tgparentid = 0 AND tg.tgenabled <> 'D'
		   AND split_part(encode(tg.tgargs, 'escape'), '\000', 1) = reference_ends_off.reference_id::text
		 ORDER BY 1, 2
	LOOP
		EXECUTE format('%s %s DISABLE TRIGGER %I',
					   CASE WHEN t.relkind = 'f' THEN 'ALTER FOREIGN TABLE' ELSE 'ALTER TABLE' END,
					   t.rel, t.tgname);
		n := n + 1;
	END LOOP;
	RETURN n;
END
$$;
COMMENT ON FUNCTION splitdb.reference_ends_off(bigint) IS 'disables the triggers of a reference''s ends in this database';

CREATE FUNCTION splitdb.install_reference_ends(ends jsonb)
RETURNS integer
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	j jsonb;
	e splitdb.reference_end;
	kind "char";
	alter_cmd text;
	deferral text;
	route text;
	deferred_events text[];
	plain_events text[];
	names text[];
	n text;
	p regclass;
	installed integer := 0;
	dropped splitdb.reference_end[];
BEGIN
	-- ends whose table here was dropped (splitdb_guard_dropped_ends) stay
	-- as they are: the other databases' lookups read them
	SELECT pg_catalog.array_agg(d) INTO dropped
	  FROM splitdb.reference_end d
	 WHERE d.reference_id IN (SELECT (x->>'reference_id')::bigint FROM jsonb_array_elements(ends) x)
	   AND d.own_server IS NULL
	   AND NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = d.relid);
	PERFORM splitdb.drop_reference_ends(
		ARRAY(SELECT (x->>'reference_id')::bigint FROM jsonb_array_elements(ends) x));
	INSERT INTO splitdb.reference_end SELECT d.* FROM unnest(dropped) d;
	FOR j IN SELECT x FROM jsonb_array_elements(ends) x
	LOOP
		CONTINUE WHEN EXISTS (SELECT FROM unnest(dropped) d
							   WHERE d.reference_id = (j->>'reference_id')::bigint
								 AND d.side = (j->>'side')::"char");
		e := jsonb_populate_record(NULL::splitdb.reference_end,
								   j || jsonb_build_object('relid',
									   coalesce(j->>'on_table', j->>'own_table')::regclass::oid));
		INSERT INTO splitdb.reference_end SELECT e.*;
		SELECT c.relkind INTO kind FROM pg_class c WHERE c.oid = e.relid;
		alter_cmd := CASE WHEN kind = 'f' THEN 'ALTER FOREIGN TABLE' ELSE 'ALTER TABLE' END;
		deferral := CASE WHEN e.initially_deferred THEN 'DEFERRABLE INITIALLY DEFERRED'
						 ELSE 'DEFERRABLE INITIALLY IMMEDIATE' END;
		-- an end on the shim of a partitioned table for one of its partitions
		-- applies to the rows that partition holds
		route := CASE WHEN j->>'route' IS NULL THEN '' ELSE format(' WHEN (%s)', j->>'route') END;

		-- the events, and which of them PostgreSQL itself may defer
		IF e.side = 'c' AND route <> '' THEN
			-- inserts only: row triggers for UPDATE on a shim make postgres_fdw
			-- update by ctid, which a remote partitioned table repeats
			plain_events := ARRAY['INSERT'];
		ELSIF e.side = 'c' THEN
			plain_events := ARRAY['INSERT', 'UPDATE'];
		ELSE
			plain_events := ARRAY['DELETE', 'UPDATE'];
		END IF;
		deferred_events := '{}';
		IF e.is_deferrable AND kind <> 'f' THEN
			IF e.side = 'c' THEN
				deferred_events := plain_events;
			ELSE
				deferred_events := ARRAY(SELECT ev FROM unnest(plain_events) ev
										  WHERE (ev = 'DELETE' AND e.on_delete = 'a')
											 OR (ev = 'UPDATE' AND e.on_update = 'a'));
			END IF;
			plain_events := ARRAY(SELECT ev FROM unnest(plain_events) ev
								   WHERE ev <> ALL (deferred_events));
		END IF;

		names := '{}';
		IF cardinality(deferred_events) > 0 THEN
			EXECUTE format('CREATE CONSTRAINT TRIGGER %I AFTER %s ON %s %s FOR EACH ROW%s'
						   ' EXECUTE FUNCTION splitdb.reference_row(%L, %L)',
						   e.constraint_name, array_to_string(deferred_events, ' OR '),
						   e.relid, deferral, route, e.reference_id, e.side);
			names := names || e.constraint_name::text;
		ELSIF e.is_deferrable AND kind <> 'f' AND e.side = 'p' THEN
			-- the referenced end of a deferrable key whose actions PostgreSQL
			-- never defers (RESTRICT, CASCADE, SET NULL, SET DEFAULT): its
			-- triggers are plain ones, so a constraint trigger that never
			-- fires keeps the key's name here, for SET CONSTRAINTS <name>,
			-- which then reaches the deferred checks of the referencing end
			-- on a shim (refcheck_constraint.c)
			EXECUTE format('CREATE CONSTRAINT TRIGGER %I AFTER DELETE ON %s %s FOR EACH ROW'
						   ' WHEN (false) EXECUTE FUNCTION splitdb.reference_row(%L, %L)',
						   e.constraint_name, e.relid, deferral, e.reference_id, e.side);
			names := names || e.constraint_name::text;
		END IF;
		IF cardinality(plain_events) > 0 THEN
			n := format('splitdb_ref_%s_%s', e.reference_id, e.side);
			EXECUTE format('CREATE TRIGGER %I AFTER %s ON %s FOR EACH ROW%s'
						   ' EXECUTE FUNCTION splitdb.reference_row(%L, %L)',
						   n, array_to_string(plain_events, ' OR '), e.relid, route,
						   e.reference_id, e.side);
			names := names || n;
		END IF;
		-- a deferrable end: in a session that proved it comes from the
		-- database that enforces the reference, the rows that are not the
		-- writer's own (those that code here writes in turn, an action's,
		-- and on a partition whose other end is in the source those of an
		-- UPDATE or DELETE through the source's shim) go back to that
		-- database at the end of the statement (refcheck.c), which the key's
		-- constraint trigger, deferred to this database's commit, would do
		-- too late
		IF cardinality(deferred_events) > 0 THEN
			n := format('splitdb_ref_%s_%s_handback', e.reference_id, e.side);
			EXECUTE format('CREATE TRIGGER %I AFTER %s ON %s FOR EACH ROW'
						   ' EXECUTE FUNCTION splitdb.reference_row(%L, %L)',
						   n, array_to_string(deferred_events, ' OR '), e.relid,
						   e.reference_id, e.side);
			names := names || n;
		END IF;
		-- a referencing end sends a row's lookup ahead, before the row is written
		IF e.side = 'c' AND NOT e.is_deferrable AND e.other_server IS NOT NULL THEN
			n := format('splitdb_ref_%s_ahead', e.reference_id);
			EXECUTE format('CREATE TRIGGER %I BEFORE %s ON %s FOR EACH ROW%s'
						   ' EXECUTE FUNCTION splitdb.reference_row(%L, %L)',
						   n, CASE WHEN route = '' THEN 'INSERT OR UPDATE' ELSE 'INSERT' END,
						   e.relid, route, e.reference_id, e.side);
			names := names || n;
		END IF;
		IF e.side = 'p' AND kind <> 'f' THEN
			n := format('splitdb_ref_%s_truncate', e.reference_id);
			EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %s FOR EACH STATEMENT'
						   ' EXECUTE FUNCTION splitdb.reference_flush(%L, %L)',
						   n, e.relid, e.reference_id, e.side);
			names := names || n;
		END IF;

		-- one statement trigger per relation checks what its statements queued
		FOR p IN SELECT e.relid UNION
				 SELECT t.relid FROM pg_partition_tree(e.relid) t WHERE t.relid <> e.relid
		LOOP
			IF NOT EXISTS (SELECT FROM pg_trigger tg WHERE tg.tgrelid = p
							  AND tg.tgname = 'splitdb_reference_flush') THEN
				EXECUTE format('CREATE TRIGGER splitdb_reference_flush AFTER INSERT OR UPDATE OR DELETE'
							   ' ON %s FOR EACH STATEMENT EXECUTE FUNCTION splitdb.reference_flush()', p);
			END IF;
		END LOOP;

		IF j->>'mode' = 'off' THEN
			FOREACH n IN ARRAY names LOOP
				EXECUTE format('%s %s DISABLE TRIGGER %I', alter_cmd, e.relid, n);
			END LOOP;
		END IF;
		installed := installed + 1;
	END LOOP;
	RETURN installed;
END
$$;
COMMENT ON FUNCTION splitdb.install_reference_ends(jsonb) IS 'creates the triggers and rows of reference ends in this database, replacing earlier ones';

/*
 * A server or user mapping that a reference needs in this database.  The
 * options arrive as parameters, and never hold a secret: splitdb sends no
 * password to any database, and both functions refuse one, so no statement
 * that a server logs can show it.
 */
CREATE FUNCTION splitdb.ensure_server(server name, options text[], origin text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	current text;
	fdw name;
	owner_name name;
	owner_super boolean;
	-- libpq splits options at white space, and takes a backslash as an
	-- escape: a service named "a b" must arrive as one argument, a b
	wanted text := '-c splitdb.origin=' || regexp_replace(origin, '([\\[:space:]])', '\\\1', 'g');
BEGIN
	IF EXISTS (SELECT FROM unnest(options) o WHERE split_part(o, '=', 1) IN ('password', 'sslpassword')) THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('server %I cannot be given a password', server),
			HINT = 'Passwords belong in user mappings, which splitdb never fills in.';
	END IF;
	IF NOT EXISTS (SELECT FROM pg_foreign_server s WHERE s.srvname = server) THEN
		EXECUTE format('CREATE SERVER %I FOREIGN DATA WRAPPER postgres_fdw OPTIONS (%s)', server,
					   (SELECT string_agg(format('%I %L', split_part(o, '=', 1),
												 substr(o, strpos(o, '=') + 1)), ', ')
						  FROM unnest(options || ('options=' || wanted)) o));
		RETURN;
	END IF;
	-- a server of that name made by someone else: its owner could point it
	-- anywhere, and the checks send user mappings' passwords and proofs of
	-- origin through it (src/remote/servertrust.c)
	SELECT w.fdwname, r.rolname, r.rolsuper INTO fdw, owner_name, owner_super
	  FROM pg_foreign_server s
	  JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw
	  JOIN pg_roles r ON r.oid = s.srvowner
	 WHERE s.srvname = server;
	IF NOT owner_super THEN
		RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
			MESSAGE = format('server %I is owned by role %I, which is not a superuser', server, owner_name),
			DETAIL = 'splitdb would send user mappings'' passwords and its proofs of origin through it, and its owner may change where it connects.',
			HINT = 'Drop the server, or make a superuser its owner, then call the function again.';
	END IF;
	IF fdw <> 'postgres_fdw' THEN
		RAISE EXCEPTION USING ERRCODE = 'wrong_object_type',
			MESSAGE = format('server %I uses foreign-data wrapper %I, not postgres_fdw', server, fdw),
			HINT = 'Drop the server, then call the function again: splitdb makes it.';
	END IF;
	SELECT substr(o, 9) INTO current
	  FROM pg_foreign_server s, unnest(s.srvoptions) o
	 WHERE s.srvname = server AND o LIKE 'options=%';
	IF current IS NULL THEN
		EXECUTE format('ALTER SERVER %I OPTIONS (ADD options %L)', server, wanted);
	ELSIF current NOT LIKE '%splitdb.origin=%' THEN
		EXECUTE format('ALTER SERVER %I OPTIONS (SET options %L)', server, current || ' ' || wanted);
	END IF;
END
$$;
COMMENT ON FUNCTION splitdb.ensure_server(name, text[], text) IS 'creates a postgres_fdw server for reference checks, or marks an existing one with splitdb.origin';

/*
 * Whether role has a user mapping on server here, its own or PUBLIC's.
 * When it has none and options is not NULL, one is created with them;
 * options NULL means splitdb may not make one (it would need a password),
 * and the caller reports the mapping as missing.
 */
CREATE FUNCTION splitdb.ensure_user_mapping(role name, server name, options text[])
RETURNS boolean
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF EXISTS (SELECT FROM pg_user_mappings m WHERE m.srvname = server
				  AND (m.usename = role OR m.umuser = 0)) THEN
		RETURN true;
	END IF;
	IF options IS NULL THEN
		RETURN false;
	END IF;
	IF EXISTS (SELECT FROM unnest(options) o WHERE split_part(o, '=', 1) IN ('password', 'sslpassword')) THEN
		RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
			MESSAGE = format('splitdb does not create a user mapping that holds a password (role %I, server %I)',
							 role, server),
			HINT = 'Create the user mapping yourself.';
	END IF;
	BEGIN
		EXECUTE format('CREATE USER MAPPING FOR %I SERVER %I%s', role, server,
					   CASE WHEN cardinality(options) > 0 THEN
						 ' OPTIONS (' || (SELECT string_agg(format('%I %L', split_part(o, '=', 1),
																   substr(o, strpos(o, '=') + 1)), ', ')
											FROM unnest(options) o) || ')'
					   ELSE '' END);
	EXCEPTION WHEN OTHERS THEN
		RAISE EXCEPTION USING ERRCODE = SQLSTATE,
			MESSAGE = format('could not create the user mapping for role %I on server %I', role, server),
			DETAIL = SQLERRM,
			HINT = 'Create it yourself; splitdb uses an existing one.';
	END;
	RETURN true;
END
$$;
COMMENT ON FUNCTION splitdb.ensure_user_mapping(name, name, text[]) IS 'whether a role has the user mapping a reference check needs; creates one without a secret when given its options';

REVOKE ALL ON FUNCTION splitdb.drop_reference_ends(bigint[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION splitdb.drop_reference_end(bigint, "char") FROM PUBLIC;
REVOKE ALL ON FUNCTION splitdb.reference_ends_off(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION splitdb.install_reference_ends(jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION splitdb.ensure_server(name, text[], text) FROM PUBLIC;
REVOKE ALL ON FUNCTION splitdb.ensure_user_mapping(name, name, text[]) FROM PUBLIC;

/*
 * Proving where a session's writes come from (origin.c).  A database skips
 * the checks of a write that another database enforces only for a session
 * that proved, with the secret the two share, that splitdb there opened it.
 */
CREATE TABLE splitdb.origin_key (
	location text PRIMARY KEY,
	server name,
	here text NOT NULL,
	secret bytea NOT NULL
);
COMMENT ON TABLE splitdb.origin_key IS 'the secret this database shares with each database that holds the other end of a cross-service reference; readable by its owner only';
COMMENT ON COLUMN splitdb.origin_key.location IS 'the other database: source, or its service';
COMMENT ON COLUMN splitdb.origin_key.server IS 'the postgres_fdw server here that reaches it, NULL when there is none';
COMMENT ON COLUMN splitdb.origin_key.here IS 'where this database is, as the other one knows it: source, or its service';
COMMENT ON COLUMN splitdb.origin_key.secret IS '32 random bytes, the same in both databases';
REVOKE ALL ON splitdb.origin_key FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('splitdb.origin_key', '');

CREATE FUNCTION splitdb.origin_challenge()
RETURNS text
AS 'MODULE_PATHNAME', 'splitdb_origin_challenge'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION splitdb.origin_challenge() IS 'a fresh nonce (hex) for this session''s next splitdb.origin_prove(); forgets what the session proved';

CREATE FUNCTION splitdb.origin_prove(location text, mac text)
RETURNS void
AS 'MODULE_PATHNAME', 'splitdb_origin_prove'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION splitdb.origin_prove(text, text) IS 'proves that this session''s writes come from splitdb at location: mac is the hex of HMAC-SHA256(secret, nonce || location); raises 28000 otherwise';

CREATE FUNCTION splitdb.origin_withdraw()
RETURNS void
AS 'MODULE_PATHNAME', 'splitdb_origin_withdraw'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION splitdb.origin_withdraw() IS 'this session proves nothing any more';

CREATE FUNCTION splitdb.origin_key_make(location text, server name, here text)
RETURNS text
AS 'MODULE_PATHNAME', 'splitdb_origin_key_make'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION splitdb.origin_key_make(text, name, text) IS 'the secret (hex) this database shares with location, made when there is none; called by splitdb when it installs references';

-- origin_challenge(), origin_prove() and origin_withdraw() keep PUBLIC's
-- EXECUTE: a shim write's remote role is the application's mapped role, and
-- it proves with the secret, which it cannot read, so calling them grants
-- nothing.  origin_key_make() reads and makes secrets: splitdb's alone.
REVOKE ALL ON FUNCTION splitdb.origin_key_make(text, name, text) FROM PUBLIC;

-- capture, replay, rollback

/*
 * Change capture (src/migrate/capture.c): the keys of the rows written to a
 * table are logged by statement triggers into a key-only log table, for a
 * replay into another database (src/migrate/replay.c).  At cutover the
 * sibling captures the moved tables, so that splitdb_rollback() can bring
 * back every row written there since.  One row per captured relation: a
 * table, a partitioned table, or a partition (which logs into its root's
 * log).  The trigger function accepts a trigger only on a relation listed
 * here, and writes only into that relation's log.
 */
CREATE TABLE splitdb.capture (
	relid       regclass PRIMARY KEY,
	log         regclass NOT NULL,
	key_columns name[] NOT NULL,
	job_id      bigint NOT NULL,
	closed_by   text,
	closed_at   timestamptz
);
COMMENT ON TABLE splitdb.capture IS 'relations whose writes are logged for a replay into another database, written by splitdb';
COMMENT ON COLUMN splitdb.capture.relid IS 'the captured relation';
COMMENT ON COLUMN splitdb.capture.log IS 'the log of keys written: splitdb_id, splitdb_op (I, U, D, T), the key columns';
COMMENT ON COLUMN splitdb.capture.key_columns IS 'the columns that identify a row (primary key, or a unique key of not-null columns); empty: none, every write logs T';
COMMENT ON COLUMN splitdb.capture.job_id IS 'the job (in the database that replays) that installed it';
COMMENT ON COLUMN splitdb.capture.closed_by IS 'the service whose rollback closed the relation to writes, NULL while writes go on';
COMMENT ON COLUMN splitdb.capture.closed_at IS 'when writes to the relation were refused';
SELECT pg_catalog.pg_extension_config_dump('splitdb.capture', '');

CREATE FUNCTION splitdb.capture_changes()
RETURNS trigger
AS 'MODULE_PATHNAME', 'splitdb_capture_changes'
LANGUAGE C STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION splitdb.capture_changes() IS 'statement trigger of change capture: logs the keys of the transition tables (or T for TRUNCATE) into the relation''s log, as the log''s owner';
REVOKE ALL ON FUNCTION splitdb.capture_changes() FROM PUBLIC;

/*
 * splitdb.capture_relation: the capture of relation r into log (key
 * columns keys) for job_id: its row of splitdb.capture and its four
 * statement triggers, ENABLE ALWAYS, so that writes applied with
 * session_replication_role = replica are captured too.  Idempotent.
 */
CREATE FUNCTION splitdb.capture_relation(r regclass, log regclass, keys name[], job_id bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	INSERT INTO splitdb.capture (relid, log, key_columns, job_id)
	VALUES (r, log, keys, capture_relation.job_id)
	ON CONFLICT (relid) DO UPDATE
	   SET log = excluded.log, key_columns = excluded.key_columns, job_id = excluded.job_id,
		   closed_by = NULL, closed_at = NULL;
	EXECUTE format('CREATE OR REPLACE TRIGGER splitdb_capture_insert AFTER INSERT ON %s'
				   ' REFERENCING NEW TABLE AS splitdb_new'
				   ' FOR EACH STATEMENT EXECUTE FUNCTION splitdb.capture_changes()', r);
	EXECUTE format('CREATE OR REPLACE TRIGGER splitdb_capture_update AFTER UPDATE ON %s'
				   ' REFERENCING OLD TABLE AS splitdb_old NEW TABLE AS splitdb_new'
				   ' FOR EACH STATEMENT EXECUTE FUNCTION splitdb.capture_changes()', r);
	EXECUTE format('CREATE OR REPLACE TRIGGER splitdb_capture_delete AFTER DELETE ON %s'
				   ' REFERENCING OLD TABLE AS splitdb_old'
				   ' FOR EACH STATEMENT EXECUTE FUNCTION splitdb.capture_changes()', r);
	EXECUTE format('CREATE OR REPLACE TRIGGER splitdb_capture_truncate AFTER TRUNCATE ON %s'
				   ' FOR EACH STATEMENT EXECUTE FUNCTION splitdb.capture_changes()', r);
	EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER splitdb_capture_insert,'
				   ' ENABLE ALWAYS TRIGGER splitdb_capture_update,'
				   ' ENABLE ALWAYS TRIGGER splitdb_capture_delete,'
				   ' ENABLE ALWAYS TRIGGER splitdb_capture_truncate', r);
END
$$;
COMMENT ON FUNCTION splitdb.capture_relation(regclass, regclass, name[], bigint) IS 'captures the writes to one relation into a key log; called by splitdb';
REVOKE ALL ON FUNCTION splitdb.capture_relation(regclass, regclass, name[], bigint) FROM PUBLIC;

/*
 * splitdb.install_capture: run in the database that captures.  tables: the
 * quoted names of the tables to capture (partitioned tables capture their
 * leaf partitions too); the n-th gets log splitdb_capture.log_<job>_<n>.
 * Idempotent.  Returns how many relations capture.
 */
CREATE FUNCTION splitdb.install_capture(job_id bigint, tables text[])
RETURNS integer
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n integer := 0;
	total integer := 0;
	t text;
	root regclass;
	keys name[];
	log_name text;
	log regclass;
	r regclass;
	cols text;
BEGIN
	CREATE SCHEMA IF NOT EXISTS splitdb_capture;
	REVOKE ALL ON SCHEMA splitdb_capture FROM PUBLIC;
	FOREACH t IN ARRAY tables LOOP
		n := n + 1;
		root := t::regclass;
		-- the primary key, or else a unique key of not-null plain columns,
		-- whose types compare with pg_catalog's operators, as the replay's
		-- statements do (citext's own = is case-insensitive, the text = it
		-- casts to under search_path pg_catalog is not): no such key, no
		-- key, and the replay replaces a changed table whole
		SELECT ARRAY(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
					   JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
					  ORDER BY k.ord)
		  INTO keys
		  FROM pg_index i
		 WHERE i.indrelid = root AND i.indisunique AND i.indpred IS NULL
		   AND i.indexprs IS NULL AND i.indimmediate
		   AND NOT EXISTS (SELECT FROM unnest(i.indkey) k(attnum)
							 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
							WHERE NOT a.attnotnull)
		   AND NOT EXISTS (SELECT FROM unnest(i.indclass::oid[]) k(opc)
							 JOIN pg_opclass oc ON oc.oid = k.opc
							 JOIN pg_amop ao ON ao.amopfamily = oc.opcfamily
							  AND ao.amoplefttype = oc.opcintype AND ao.amoprighttype = oc.opcintype
							  AND ao.amopstrategy = 3
							 JOIN pg_operator o ON o.oid = ao.amopopr
							WHERE o.oprnamespace <> 'pg_catalog'::regnamespace)
		 ORDER BY i.indisprimary DESC, i.indnkeyatts, i.indexrelid
		 LIMIT 1;
		keys := coalesce(keys, '{}');
		log_name := format('log_%s_%s', job_id, n);
		SELECT string_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod))
						  || CASE WHEN a.attcollation <> 0 AND a.attcollation <> 100
								  THEN ' COLLATE ' || a.attcollation::regcollation::text ELSE '' END,
						  ', ' ORDER BY k.ord)
		  INTO cols
		  FROM unnest(keys) WITH ORDINALITY k(name, ord)
		  JOIN pg_attribute a ON a.attrelid = root AND a.attname = k.name;
		EXECUTE format('CREATE TABLE IF NOT EXISTS splitdb_capture.%I (splitdb_id bigint GENERATED ALWAYS AS IDENTITY'
					   ' PRIMARY KEY, splitdb_op "char" NOT NULL CHECK (splitdb_op IN (''I'', ''U'', ''D'', ''T''))%s)',
					   log_name, coalesce(', ' || cols, ''));
		log := format('splitdb_capture.%I', log_name)::regclass;
		EXECUTE format('REVOKE ALL ON %s FROM PUBLIC', log);
		-- every relation of the tree: a write fires the statement triggers of
		-- the table it names alone, be it the root, a partitioned table under
		-- it or a leaf.  pg_partition_tree() lists nothing for a table that is
		-- not partitioned.
		FOR r IN
			SELECT p.relid FROM pg_partition_tree(root) p
			UNION
			SELECT root
		LOOP
			PERFORM splitdb.capture_relation(r, log, keys, install_capture.job_id);
			total := total + 1;
		END LOOP;
	END LOOP;
	RETURN total;
END
$$;
COMMENT ON FUNCTION splitdb.install_capture(bigint, text[]) IS 'captures the writes to the tables (and their partitions) into key logs; called by splitdb at cutover';
REVOKE ALL ON FUNCTION splitdb.install_capture(bigint, text[]) FROM PUBLIC;

/*
 * splitdb.capture_partition: a partition made or attached under a
 * relation that captures (CREATE TABLE ... PARTITION OF, ALTER TABLE ...
 * ATTACH PARTITION, caught by splitdb.guard_ddl) captures into the same
 * log, with every relation under it; the rows it brings are logged as
 * inserted, since they are new to the captured table.  Nothing when the
 * parent does not capture.  A partition of a table whose capture a
 * rollback has closed is refused, as a write to it would be.
 */
CREATE FUNCTION splitdb.capture_partition(parent regclass, part regclass)
RETURNS integer
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	c splitdb.capture;
	r regclass;
	n integer := 0;
	keys text;
BEGIN
	SELECT * INTO c FROM splitdb.capture x WHERE x.relid = parent;
	IF NOT FOUND THEN
		RETURN 0;
	END IF;
	IF c.closed_at IS NOT NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
			MESSAGE = format('service "%s" was rolled back: table %s takes no new partition', c.closed_by, parent),
			HINT = 'The rows are back in the source database; work there.  A rollback still under way finishes with the next splitdb_rollback().';
	END IF;
	FOR r IN SELECT p.relid FROM pg_partition_tree(part) p UNION SELECT part LOOP
		PERFORM splitdb.capture_relation(r, c.log, c.key_columns, c.job_id);
		n := n + 1;
	END LOOP;
	IF cardinality(c.key_columns) = 0 THEN
		EXECUTE format('INSERT INTO %s (splitdb_op) SELECT ''T'' WHERE EXISTS (SELECT FROM %s)', c.log, part);
	ELSE
		SELECT string_agg(quote_ident(k), ', ') INTO keys FROM unnest(c.key_columns) k;
		EXECUTE format('INSERT INTO %s (splitdb_op, %s) SELECT ''I'', %s FROM %s', c.log, keys, keys, part);
	END IF;
	RETURN n;
END
$$;
COMMENT ON FUNCTION splitdb.capture_partition(regclass, regclass) IS 'captures the writes to a partition made or attached under a captured relation, and logs the rows it brings; called by splitdb';
REVOKE ALL ON FUNCTION splitdb.capture_partition(regclass, regclass) FROM PUBLIC;

/*
 * splitdb.capture_problem: what is wrong with job_id's capture of tables
 * (quoted names) here, or NULL when every relation captures every write
 * into its log: its row, its log, its four triggers enabled ALWAYS.
 */
CREATE FUNCTION splitdb.capture_problem(job_id bigint, tables text[])
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t text;
	root regclass;
	r regclass;
	c splitdb.capture;
	ev text;
	rootlog regclass;
BEGIN
	FOREACH t IN ARRAY tables LOOP
		root := to_regclass(t);
		IF root IS NULL THEN
			RETURN format('table %s is missing', t);
		END IF;
		rootlog := NULL;
		-- every relation of the tree (see install_capture); pg_partition_tree()
		-- lists nothing for a table that is not partitioned
		FOR r IN
			SELECT p.relid FROM pg_partition_tree(root) p
			UNION
			SELECT root
		LOOP
			SELECT * INTO c FROM splitdb.capture x WHERE x.relid = r;
			IF NOT FOUND OR c.job_id <> capture_problem.job_id THEN
				RETURN format('%s has no capture row of job %s', r, capture_problem.job_id);
			END IF;
			IF to_regclass(c.log::text) IS NULL THEN
				RETURN format('the capture log of %s is missing', r);
			END IF;
			rootlog := coalesce(rootlog, c.log);
			IF c.log <> rootlog THEN
				RETURN format('%s logs into %s, not into %s', r, c.log, rootlog);
			END IF;
			FOREACH ev IN ARRAY ARRAY['insert', 'update', 'delete', 'truncate'] LOOP
				IF NOT EXISTS (SELECT FROM pg_trigger g
								WHERE g.tgrelid = r AND g.tgname = 'splitdb_capture_' || ev
								  AND g.tgfoid = 'splitdb.capture_changes()'::regprocedure
								  AND g.tgenabled = 'A' AND g.tgnargs = 0) THEN
					RETURN format('trigger %I on %s is missing or not enabled ALWAYS',
								  'splitdb_capture_' || ev, r);
				END IF;
			END LOOP;
		END LOOP;
		-- a statement on a table writes its inheritance children's rows too,
		-- and their logs take its keys (splitdb.capture_changes): each must
		-- capture as well
		FOR r IN
			WITH RECURSIVE kids(relid) AS (
				SELECT i.inhrelid FROM pg_inherits i JOIN pg_class k ON k.oid = i.inhrelid
				 WHERE i.inhparent = root AND NOT k.relispartition
				UNION
				SELECT i.inhrelid FROM kids JOIN pg_inherits i ON i.inhparent = kids.relid)
			SELECT kids.relid FROM kids
		LOOP
			IF NOT EXISTS (SELECT FROM splitdb.capture x
							WHERE x.relid = r AND x.job_id = capture_problem.job_id) THEN
				RETURN format('%s inherits from %s and has no capture row of job %s',
							  r, root, capture_problem.job_id);
			END IF;
		END LOOP;
	END LOOP;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION splitdb.capture_problem(bigint, text[]) IS 'NULL when the capture of the tables is complete here, else what is wrong with it';
REVOKE ALL ON FUNCTION splitdb.capture_problem(bigint, text[]) FROM PUBLIC;

CREATE FUNCTION splitdb.refuse_writes()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
		MESSAGE = format('service "%s" was rolled back: table "%s.%s" no longer takes writes',
						 TG_ARGV[0], TG_TABLE_SCHEMA, TG_TABLE_NAME),
		HINT = format('Once splitdb_status shows the job of service "%s" rolled_back, its rows are in the source database: write there.  While it shows the job done, its rollback stopped half way: call splitdb_rollback(%L) in the source database to finish it.',
					  TG_ARGV[0], TG_ARGV[0]);
END
$$;
COMMENT ON FUNCTION splitdb.refuse_writes() IS 'statement trigger on the tables of a rolled-back service: refuses every write';
REVOKE ALL ON FUNCTION splitdb.refuse_writes() FROM PUBLIC;

/*
 * splitdb.close_capture: run in the sibling in the rollback's transaction
 * that also read the last changes: every captured relation of job_id
 * refuses writes from now on, and the reference ends on them go.
 */
CREATE FUNCTION splitdb.close_capture(job_id bigint, service text)
RETURNS integer
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r regclass;
	n integer := 0;
	ids bigint[];
BEGIN
	FOR r IN SELECT c.relid FROM splitdb.capture c WHERE c.job_id = close_capture.job_id ORDER BY 1 LOOP
		EXECUTE format('CREATE OR REPLACE TRIGGER splitdb_rolled_back BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE'
					   ' ON %s FOR EACH STATEMENT EXECUTE FUNCTION splitdb.refuse_writes(%L)', r, service);
		EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER splitdb_rolled_back', r);
		n := n + 1;
	END LOOP;
	UPDATE splitdb.capture c SET closed_by = service, closed_at = coalesce(c.closed_at, clock_timestamp())
	 WHERE c.job_id = close_capture.job_id;
	SELECT array_agg(DISTINCT e.reference_id) INTO ids
	  FROM splitdb.reference_end e
	 WHERE e.relid IN (SELECT c.relid FROM splitdb.capture c WHERE c.job_id = close_capture.job_id);
	IF ids IS NOT NULL THEN
		PERFORM splitdb.drop_reference_ends(ids);
	END IF;
	RETURN n;
END
$$;
COMMENT ON FUNCTION splitdb.close_capture(bigint, text) IS 'refuses writes to the captured relations of a job and drops the reference ends on them; called by splitdb_rollback';
REVOKE ALL ON FUNCTION splitdb.close_capture(bigint, text) FROM PUBLIC;

/*
 * splitdb.drop_capture: the capture triggers, logs and rows of job_id here.
 * Idempotent.
 */
CREATE FUNCTION splitdb.drop_capture(job_id bigint)
RETURNS integer
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	c record;
	n integer := 0;
BEGIN
	FOR c IN
		SELECT g.tgname, g.tgrelid::regclass AS rel
		  FROM pg_trigger g JOIN splitdb.capture x ON x.relid = g.tgrelid
		 WHERE x.job_id = drop_capture.job_id
		   AND g.tgfoid = 'splitdb.capture_changes()'::regprocedure
	LOOP
		EXECUTE format('DROP TRIGGER %I ON %s', c.tgname, c.rel);
	END LOOP;
	-- a log dropped already (by the registry) has no name left to drop
	FOR c IN SELECT DISTINCT x.log FROM splitdb.capture x
			  WHERE x.job_id = drop_capture.job_id
				AND EXISTS (SELECT FROM pg_class l WHERE l.oid = x.log) LOOP
		EXECUTE format('DROP TABLE %s', c.log);
		n := n + 1;
	END LOOP;
	DELETE FROM splitdb.capture x WHERE x.job_id = drop_capture.job_id;
	-- the log schema goes with its last log
	IF to_regnamespace('splitdb_capture') IS NOT NULL
	   AND NOT EXISTS (SELECT FROM pg_class WHERE relnamespace = to_regnamespace('splitdb_capture')) THEN
		DROP SCHEMA splitdb_capture;
	END IF;
	RETURN n;
END
$$;
COMMENT ON FUNCTION splitdb.drop_capture(bigint) IS 'drops the capture triggers and logs of a job, and the log schema once it is empty; in the sibling by a rollback or finalize, in the source by an online cutover or a cancel';
REVOKE ALL ON FUNCTION splitdb.drop_capture(bigint) FROM PUBLIC;

/*
 * What the cutover changed in the source, so that a rollback can undo it:
 * every relation it moved to the archive (tables, materialized views, their
 * indexes and sequences) with its name before, and every view it re-pointed
 * with the statement that re-points it (run again after the originals are
 * back, it points the view at them).
 */
CREATE TABLE splitdb.cutover_relation (
	job_id      bigint NOT NULL REFERENCES splitdb.job (job_id) ON DELETE CASCADE,
	relid       oid NOT NULL,
	relkind     "char" NOT NULL,
	schema_name name NOT NULL,
	rel_name    name NOT NULL,
	populated   boolean NOT NULL DEFAULT true,
	PRIMARY KEY (job_id, relid)
);
COMMENT ON TABLE splitdb.cutover_relation IS 'the relations a cutover moved to splitdb_archive, with their names before';
COMMENT ON COLUMN splitdb.cutover_relation.job_id IS 'the job whose cutover moved it';
COMMENT ON COLUMN splitdb.cutover_relation.relkind IS 'r, p, m, i, I or S, as pg_class says';
COMMENT ON COLUMN splitdb.cutover_relation.relid IS 'the relation (table, materialized view, index, sequence)';
COMMENT ON COLUMN splitdb.cutover_relation.schema_name IS 'its schema before the cutover';
COMMENT ON COLUMN splitdb.cutover_relation.rel_name IS 'its name before the cutover (the archive may have renamed it name_N)';
COMMENT ON COLUMN splitdb.cutover_relation.populated IS 'a materialized view: whether it held rows';
SELECT pg_catalog.pg_extension_config_dump('splitdb.cutover_relation', '');

CREATE TABLE splitdb.cutover_view (
	job_id      bigint NOT NULL REFERENCES splitdb.job (job_id) ON DELETE CASCADE,
	view_name   text NOT NULL,
	definition  text NOT NULL,
	PRIMARY KEY (job_id, view_name)
);
COMMENT ON TABLE splitdb.cutover_view IS 'the views a cutover re-pointed to the shims, with the statement that did it';
COMMENT ON COLUMN splitdb.cutover_view.job_id IS 'the job whose cutover re-pointed it';
COMMENT ON COLUMN splitdb.cutover_view.view_name IS 'the view, quoted and qualified';
COMMENT ON COLUMN splitdb.cutover_view.definition IS 'CREATE OR REPLACE VIEW with names qualified: they resolve to the originals again once those are back';
SELECT pg_catalog.pg_extension_config_dump('splitdb.cutover_view', '');

/*
 * Rollbacks: one row per job being or having been rolled back.
 */
CREATE TABLE splitdb.rollback (
	job_id        bigint PRIMARY KEY REFERENCES splitdb.job (job_id) ON DELETE CASCADE,
	step          text NOT NULL CHECK (step IN ('replaying', 'restored', 'done')),
	rounds        integer NOT NULL DEFAULT 0,
	rows_replayed bigint NOT NULL DEFAULT 0,
	lock_attempts integer NOT NULL DEFAULT 0,
	runs          integer NOT NULL DEFAULT 1,
	worker_pid    integer,
	started_at    timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	updated_at    timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	last_error    text,
	last_sqlstate text,
	last_hint     text,
	not_valid     text[] NOT NULL DEFAULT '{}'
);
COMMENT ON TABLE splitdb.rollback IS 'rollbacks of jobs: the step reached, written by the rollback''s worker';
COMMENT ON COLUMN splitdb.rollback.job_id IS 'the job rolled back';
COMMENT ON COLUMN splitdb.rollback.worker_pid IS 'process id of the worker that runs or last ran it';
COMMENT ON COLUMN splitdb.rollback.started_at IS 'when the first splitdb_rollback() call started it';
COMMENT ON COLUMN splitdb.rollback.updated_at IS 'last progress';
COMMENT ON COLUMN splitdb.rollback.last_sqlstate IS 'SQLSTATE of last_error';
COMMENT ON COLUMN splitdb.rollback.last_hint IS 'the hint of last_error';
COMMENT ON COLUMN splitdb.rollback.not_valid IS 'foreign keys restored NOT VALID (rows refer to missing keys), as "constraint" on table';
COMMENT ON COLUMN splitdb.rollback.step IS 'replaying: the source is not restored yet; restored: the source is (the job is rolled_back), the sibling not yet cleaned; done';
COMMENT ON COLUMN splitdb.rollback.rounds IS 'replay rounds run, the last one under locks included';
COMMENT ON COLUMN splitdb.rollback.rows_replayed IS 'log entries replayed into the source';
COMMENT ON COLUMN splitdb.rollback.lock_attempts IS 'attempts to take the locks of the switch back';
COMMENT ON COLUMN splitdb.rollback.runs IS 'how many workers have run it';
COMMENT ON COLUMN splitdb.rollback.last_error IS 'why the last run failed, NULL once a run ends well';
SELECT pg_catalog.pg_extension_config_dump('splitdb.rollback', '');
GRANT SELECT ON splitdb.capture, splitdb.cutover_relation, splitdb.cutover_view TO PUBLIC;
-- last_error can quote row values, as splitdb.job's (see there)
GRANT SELECT (job_id, step, rounds, rows_replayed, lock_attempts, runs, worker_pid, started_at,
			  updated_at, last_sqlstate, last_hint, not_valid)
	ON splitdb.rollback TO PUBLIC;

/*
 * Progress.  A job whose worker is gone (killed, or the server restarted)
 * reads as failed, whatever its row says.  Defined after splitdb.rollback:
 * a done job whose rollback has started and not restored the source has one
 * way out left, to finish that rollback (between the rollback's commits the
 * sibling refuses writes, and splitdb_finalize() is refused).
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
	   CASE WHEN j.last_error IS NOT NULL
				 AND NOT pg_catalog.pg_has_role('pg_read_all_stats', 'MEMBER')
			THEN '<insufficient privilege>'
			WHEN d.dead
			THEN COALESCE(j.last_error,
				 pg_catalog.format('the worker (pid %s) ended without recording a result: it was killed or the server restarted; call splitdb_migrate(%L) to resume',
								   j.worker_pid, s.service))
			ELSE j.last_error END AS last_error,
	   CASE WHEN j.state IN ('queued', 'preparing', 'copying', 'indexing', 'catching_up',
							 'verifying', 'cutting_over') AND NOT d.dead
			THEN j.worker_pid END AS worker_pid,
	   CASE WHEN j.state IN ('queued', 'preparing', 'copying', 'indexing', 'catching_up',
							 'verifying', 'cutting_over', 'failed') OR d.dead
			THEN 'cancel'
			WHEN j.state = 'done' AND rb.step = 'replaying' THEN 'rollback'
			WHEN j.state = 'done' THEN 'rollback or finalize' END AS way_out,
	   j.mode,
	   j.lag_rows,
	   j.lag_seconds,
	   j.lag_trend
  FROM splitdb.service s
  LEFT JOIN LATERAL (SELECT * FROM splitdb.job j WHERE j.service = s.service
					  ORDER BY j.job_id DESC LIMIT 1) j ON true
  LEFT JOIN splitdb.rollback rb ON rb.job_id = j.job_id
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
GRANT SELECT ON splitdb_status TO PUBLIC;

CREATE FUNCTION splitdb_rollback(service name)
RETURNS void
AS 'MODULE_PATHNAME', 'splitdb_rollback'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION splitdb_rollback(name) IS
'after cutover: brings the service''s tables back into this database, with every row written since, and removes the sibling''s copies';

-- cancel, finalize, doctor

CREATE FUNCTION splitdb_cancel(service name)
RETURNS void
AS 'MODULE_PATHNAME', 'splitdb_cancel'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION splitdb_cancel(name) IS
'stops a migration job that is not done and undoes it: the sibling''s objects the job made are dropped, the job is cancelled';

CREATE FUNCTION splitdb_finalize(service name, drop_shim boolean DEFAULT false)
RETURNS void
AS 'MODULE_PATHNAME', 'splitdb_finalize'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION splitdb_finalize(name, boolean) IS
'keeps a done migration for good: drops the archived originals and the reverse capture (and the shims with drop_shim); the job is finalized';

CREATE FUNCTION splitdb_doctor(repair boolean DEFAULT false)
RETURNS TABLE (severity text, service name, job_id bigint, location text, object text,
			   problem text, action text, repaired boolean)
AS 'MODULE_PATHNAME', 'splitdb_doctor'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION splitdb_doctor(boolean) IS
'reports leftovers and inconsistent states of migration jobs (critical, warning, info); with repair, repairs what is safe and says so';
