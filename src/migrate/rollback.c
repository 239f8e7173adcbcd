/*-------------------------------------------------------------------------
 *
 * rollback.c
 *	  splitdb_rollback(service): the service's tables back in the source,
 *	  with every row written since the cutover, in a background worker.
 *
 * The steps need commits in a fixed order, in two databases: the sibling
 * refuses writes before the source takes its tables back, and the sibling
 * is cleaned only after the source committed.  One SQL call cannot commit
 * in between, so splitdb_rollback() checks what it refuses, starts a
 * worker (job.c's splitdb_bgworker_init), waits for it, and raises its
 * error.  The worker:
 *
 *	0. makes in the archive the partitions that the sibling's partitioned
 *	   tables got since the cutover (archivepart.c), and again in each
 *	   round and under the locks, before any row of theirs is replayed: a
 *	   row of a partition the archive lacks would land in the archive's
 *	   default partition, whose rows then keep the partition from being
 *	   made there on every later run;
 *	1. replays the sibling's capture log into the archived originals in
 *	   rounds without locks, until a round finds few entries (each round:
 *	   one REPEATABLE READ snapshot there, one source transaction here,
 *	   then the ids read are deleted there);
 *	2. takes the locks of the switch back: the shims and what the restore
 *	   changes here, the sibling's tables EXCLUSIVE there (reads go on),
 *	   each attempt under lock_timeout, retried with a growing pause, and
 *	   gives up after SWITCH_ATTEMPTS attempts having changed nothing: no
 *	   deadlock detector spans two databases, the timeouts are the guard,
 *	   and no queue of readers forms behind a lock request for long;
 *	3. replays the last entries under the locks; the SOURCE transaction
 *	   restores the source (restore.c) and marks the job rolled_back; the
 *	   SIBLING commits first: its tables refuse every write from then on
 *	   (splitdb.close_capture), and its reference ends go; then the source
 *	   commits.  A restore that fails (a materialized view that no longer
 *	   refreshes, a lock it cannot get) thus fails before anything is
 *	   switched;
 *	4. drops the sibling's tables and capture, so that a new migration of
 *	   the service builds the same sibling again.
 *
 * Crashes: before the sibling's commit nothing has changed but replayed
 * rows (replayed again next time; the source's restore is not committed
 * either).  Between the two commits the sibling
 * refuses writes and the shims are still in place, so a write through them
 * fails: none is lost, none lands in two places; splitdb_rollback() again
 * finishes (its steps are idempotent).  After the source's commit the job
 * is rolled_back and splitdb.rollback.step says restored: splitdb_rollback()
 * again only cleans the sibling.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/rollback.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"

#include "metadata/artifact.h"
#include "metadata/catalog.h"
#include "migrate/capture.h"
#include "migrate/job.h"
#include "migrate/jobstate.h"
#include "migrate/pause.h"
#include "migrate/replay.h"
#include "migrate/rollback.h"
#include "migrate/shape.h"
#include "migrate/undo.h"
#include "remote/remote.h"
#include "splitdb.h"

PG_FUNCTION_INFO_V1(splitdb_rollback);
PGDLLEXPORT void splitdb_rollback_main(Datum main_arg);

/* rounds without locks, and the entries below which a round is the last */
#define REPLAY_ROUNDS			8
#define REPLAY_FEW_ENTRIES		1000
/* the switch back: attempts, each lock's wait, the first pause between */
#define SWITCH_ATTEMPTS			10
#define SWITCH_LOCK_TIMEOUT		"250ms"
#define SWITCH_STATEMENT_TIMEOUT "60s"
#define SWITCH_FIRST_PAUSE_MS	50L
#define SWITCH_MAX_PAUSE_MS		1000L

/* what the worker is started with, in bgw_extra */
typedef struct RollbackArgs
{
	Oid			dboid;
	Oid			roleoid;
	int64		job_id;
	char		service[NAMEDATALEN];
	char		pause_at[32];	/* test hook: splitdb.rollback_pause_at */
} RollbackArgs;

StaticAssertDecl(sizeof(RollbackArgs) <= BGW_EXTRALEN, "RollbackArgs must fit in bgw_extra");

/* the service's last job, as a rollback sees it */
typedef struct RollbackJob
{
	bool		found;
	int64		job_id;
	char	   *state;
	char	   *step;			/* splitdb.rollback.step, NULL for none */
	char	   *server;
} RollbackJob;

/* test hook: where the worker waits to be stopped (splitdb.c's GUC) */
char	   *splitdb_rollback_pause_at = NULL;

/* one statement of this database, text parameters */
static void
local_sql(const char *sql, int nparams, const char *const *params)
{
	splitdb_catalog_exec_text(sql, nparams, params, false);
}

/*
 * read_job
 *		The service's newest job and its rollback's step, read with the
 *		latest snapshot.  Connected to SPI.
 */
static RollbackJob
read_job(const char *service)
{
	static const char *sql =
		"SELECT j.job_id, j.state, r.step, s.server"
		"  FROM splitdb.job j JOIN splitdb.service s ON s.service = j.service"
		"  LEFT JOIN splitdb.rollback r ON r.job_id = j.job_id"
		" WHERE j.service = $1 ORDER BY j.job_id DESC LIMIT 1";
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(service)};
	SPIPlanPtr	plan = SPI_prepare(sql, 1, types);
	Snapshot	snap;
	RollbackJob job = {0};
	int			rc;

	if (plan == NULL)
		splitdb_spi_failed(sql, SPI_result);
	snap = RegisterSnapshot(GetLatestSnapshot());
	rc = SPI_execute_snapshot(plan, values, NULL, snap, InvalidSnapshot, true, false, 1);
	UnregisterSnapshot(snap);
	if (rc != SPI_OK_SELECT)
		splitdb_spi_failed(sql, rc);
	if (SPI_processed == 1)
	{
		job.found = true;
		job.job_id = pg_strtoint64(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
		job.state = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
		job.step = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
		job.server = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4);
	}
	return job;
}

/* a refusal: 55000, nothing changed */
static void pg_attribute_noreturn()
refuse(const char *service, const char *message, const char *detail, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("service \"%s\" cannot be rolled back: %s", service, message),
			 detail ? errdetail("%s", detail) : 0,
			 errhint("%s", hint)));
}

/*
 * check_source
 *		What the source must hold for a lossless rollback of a done job:
 *		every archived original, nothing over the shims that the switch
 *		cannot move to the originals, and no reference to a table of another
 *		service that is migrated (its sibling checks against this service's
 *		sibling, which the rollback removes).
 */
static void
check_source(const char *service, int64 job_id)
{
	const char *params[2] = {psprintf(INT64_FORMAT, job_id), service};

	local_sql("SELECT t.table_name FROM splitdb.job_table t"
			  " WHERE t.job_id = $1::bigint"
			  "   AND NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = t.relid"
			  "                    AND c.relnamespace = '" SPLITDB_ARCHIVE_SCHEMA "'::regnamespace)"
			  " ORDER BY 1 LIMIT 1",
			  2, params);
	if (SPI_processed > 0)
		refuse(service,
			   psprintf("the archived original of table %s is missing",
						SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1)),
			   "Rows written before the cutover exist only in the archived originals.",
			   psprintf("Restore the table into schema " SPLITDB_ARCHIVE_SCHEMA " (from a backup), or keep the service where it is and call splitdb_finalize('%s').",
						service));

	/*
	 * The switch drops the shims, with what is the shims' own (defaults,
	 * constraints, triggers, policies, statistics): what else was made over
	 * them since the cutover must follow the originals.  Views do (restore.c), and so do the
	 * materialized views the cutover made; anything else (a materialized
	 * view or a function with a SQL-standard body made since) would make
	 * the switch fail at every run, with the sibling refusing writes.
	 */
	local_sql("SELECT CASE WHEN v.oid IS NOT NULL THEN pg_describe_object('pg_class'::regclass, v.oid, 0)"
			  "            ELSE pg_describe_object(d.classid, d.objid, 0) END, s.oid::regclass::text"
			  "  FROM splitdb.job_table t"
			  "  JOIN pg_class s ON s.oid = to_regclass(t.table_name) AND s.relkind = 'f'"
			  "  JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass AND d.refobjid = s.oid"
			  "   AND d.deptype = 'n'"
			  "  LEFT JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid"
			  "  LEFT JOIN pg_class v ON v.oid = r.ev_class"
			  " WHERE t.job_id = $1::bigint"
			  "   AND coalesce(CASE d.classid"
			  "         WHEN 'pg_rewrite'::regclass THEN r.ev_class"
			  "         WHEN 'pg_attrdef'::regclass THEN (SELECT a.adrelid FROM pg_attrdef a WHERE a.oid = d.objid)"
			  "         WHEN 'pg_constraint'::regclass THEN (SELECT k.conrelid FROM pg_constraint k WHERE k.oid = d.objid)"
			  "         WHEN 'pg_trigger'::regclass THEN (SELECT g.tgrelid FROM pg_trigger g WHERE g.oid = d.objid)"
			  "         WHEN 'pg_policy'::regclass THEN (SELECT p.polrelid FROM pg_policy p WHERE p.oid = d.objid)"
			  "         WHEN 'pg_statistic_ext'::regclass"
			  "          THEN (SELECT x.stxrelid FROM pg_statistic_ext x WHERE x.oid = d.objid) END, 0) <> s.oid"
			  "   AND coalesce(v.relkind, '-') <> 'v'"
			  "   AND NOT coalesce(v.relkind = 'm' AND EXISTS (SELECT FROM splitdb.cutover_relation m"
			  "                     JOIN pg_namespace n ON n.nspname = m.schema_name"
			  "                    WHERE m.job_id = $1::bigint AND m.relkind = 'm'"
			  "                      AND n.oid = v.relnamespace AND m.rel_name = v.relname"
			  "                      AND m.relid <> v.oid), false)"
			  " ORDER BY 1, 2 LIMIT 1",
			  2, params);
	if (SPI_processed > 0)
		refuse(service,
			   psprintf("%s depends on shim %s",
						SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1),
						SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2)),
			   "The rollback drops the shims; views made over them since the cutover are re-pointed to the original tables, other objects are not.",
			   psprintf("Drop it, call splitdb_rollback('%s') again, and make it again afterwards.",
						service));

	local_sql("SELECT CASE WHEN r.child_service = $2 THEN r.parent_service ELSE r.child_service END,"
			  "       r.constraint_name, r.child_table"
			  "  FROM splitdb.reference r"
			  " WHERE $2 IN (r.child_service, r.parent_service) AND r.dropped_at IS NOT NULL"
			  "   AND r.child_service IS DISTINCT FROM r.parent_service"
			  "   AND EXISTS (SELECT FROM splitdb.job j"
			  "                WHERE j.service = CASE WHEN r.child_service = $2 THEN r.parent_service"
			  "                                       ELSE r.child_service END"
			  "                  AND j.state IN ('cutting_over', 'done', 'finalized'))"
			  " ORDER BY 1, 2 LIMIT 1",
			  2, params);
	if (SPI_processed > 0)
	{
		char	   *other = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		refuse(service,
			   psprintf("foreign key \"%s\" of %s links it to service \"%s\", which is migrated",
						SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2),
						SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3), other),
			   psprintf("The sibling of service \"%s\" enforces the key against the sibling this rollback removes.",
						other),
			   psprintf("The rollback of service \"%s\" is refused for the same key: two migrated services that a foreign key links cannot go back. Call splitdb_finalize('%s') to keep the service where it is for good.",
						other, service));
	}
}

/*
 * check_sibling
 *		Refuse when the sibling's capture of the job misses writes, when
 *		its tables no longer have their archived originals' columns, or
 *		when objects made there since depend on them: what
 *		splitdb_capture_problem(), splitdb_shape_problem() and
 *		splitdb_dependents_problem() report.  Run
 *		by the call, and again by the worker under the switch's locks, which
 *		hold off the DDL that could change either in between (a partition
 *		or table dropped, one made that captures nothing, a column added).
 *		In a transaction, connected to SPI.
 */
static void
check_sibling(const char *service, int64 job_id, PGconn *conn)
{
	char	   *problem;
	char	   *shape = NULL;
	char	   *dependents = NULL;

	problem = splitdb_capture_problem(job_id, service, conn);
	if (problem == NULL)
		shape = splitdb_shape_problem(job_id, conn, service);
	if (problem == NULL && shape == NULL)
		dependents = splitdb_dependents_problem(job_id, conn, service);
	if (problem != NULL)
		refuse(service, "its sibling's capture of writes is incomplete",
			   psprintf("%s: the rows written since the cutover cannot all be known.", problem),
			   psprintf("splitdb_doctor() reports the capture; without it, keep the service where it is and call splitdb_finalize('%s').",
						service));
	if (shape != NULL)
		refuse(service, "its tables in the sibling no longer have the columns of their archived originals",
			   psprintf("%s: the rows written since the cutover cannot go back as they are.", shape),
			   psprintf("Make the table in the sibling match its archived original again (a column added there goes with its values), or keep the service where it is and call splitdb_finalize('%s').",
						service));
	if (dependents != NULL)
		refuse(service, "objects in its sibling depend on its tables there",
			   psprintf("%s: the rollback drops the tables in the sibling once the source has them back.", dependents),
			   psprintf("Drop those objects in the sibling (or move what they hold into the source yourself), then call splitdb_rollback('%s') again; or keep the service where it is and call splitdb_finalize('%s').",
						service, service));
}

/*
 * check_job
 *		Everything splitdb_rollback() refuses, for the service's newest job;
 *		with a done job, conn (opened here when NULL, and closed) reaches the
 *		sibling to check the capture.  Returns the job.  Connected to SPI.
 */
static RollbackJob
check_job(const char *service, PGconn *conn)
{
	RollbackJob job;

	(void) splitdb_catalog_get_service(service, SPLITDB_LOCK_NONE, false);
	job = read_job(service);
	if (!job.found)
		refuse(service, "it has not been migrated", NULL,
			   psprintf("splitdb_migrate('%s') migrates it.", service));
	if (strcmp(job.state, "finalized") == 0)
		refuse(service, "finalized jobs cannot be rolled back",
			   psprintf("splitdb_finalize() dropped the archived originals of job " INT64_FORMAT ".",
						job.job_id),
			   "Copy the tables back by hand, or migrate them back into this database as a service of their own.");
	if (strcmp(job.state, "rolled_back") == 0)
	{
		if (job.step != NULL && strcmp(job.step, "restored") == 0)
			return job;			/* only the sibling's cleanup is left */
		refuse(service, "it has been rolled back already",
			   psprintf("Job " INT64_FORMAT " is rolled_back; its tables are in this database.", job.job_id),
			   psprintf("splitdb_migrate('%s') migrates it again.", service));
	}
	if (strcmp(job.state, "done") != 0)
		refuse(service, psprintf("its job " INT64_FORMAT " is %s, not done", job.job_id, job.state),
			   "Only a migration that has cut over is rolled back; before that, the source is unchanged.",
			   strcmp(job.state, "cancelled") == 0 ?
			   psprintf("The job was cancelled, which left the source as it was; splitdb_migrate('%s') migrates the service again.", service) :
			   psprintf("Wait for the job to end, or stop it with splitdb_cancel('%s').", service));

	check_source(service, job.job_id);
	{
		PGconn	   *own = conn ? NULL : splitdb_remote_connect_server(job.server, service);

		PG_TRY();
		{
			splitdb_job_check_role(conn ? conn : own, service, "splitdb_rollback");
			check_sibling(service, job.job_id, conn ? conn : own);
		}
		PG_FINALLY();
		{
			if (own)
				splitdb_remote_disconnect(own);
		}
		PG_END_TRY();
	}
	return job;
}

/*
 * splitdb_rollback
 *		SQL: splitdb_rollback(service name) RETURNS void
 */
Datum
splitdb_rollback(PG_FUNCTION_ARGS)
{
	char	   *service = pstrdup(NameStr(*PG_GETARG_NAME(0)));
	RollbackJob job;
	RollbackArgs args;
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	pid_t		pid;

	splitdb_require_superuser("splitdb_rollback");
	splitdb_spi_connect();
	/* one caller at a time per service, until this transaction ends */
	splitdb_jobstate_lock_service(service);

	/* the checks, in a subtransaction rolled back: they keep no lock */
	{
		MemoryContext cxt = CurrentMemoryContext;
		ResourceOwner owner = CurrentResourceOwner;

		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(cxt);
		PG_TRY();
		{
			job = check_job(service, NULL);
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(cxt);
			RollbackAndReleaseCurrentSubTransaction();
			CurrentResourceOwner = owner;
			PG_RE_THROW();
		}
		PG_END_TRY();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}

	memset(&args, 0, sizeof(args));
	args.dboid = MyDatabaseId;
	args.roleoid = GetUserId();
	args.job_id = job.job_id;
	strlcpy(args.service, service, sizeof(args.service));
	if (splitdb_rollback_pause_at)
		strlcpy(args.pause_at, splitdb_rollback_pause_at, sizeof(args.pause_at));

	splitdb_bgworker_init(&worker, "splitdb_rollback_main",
						  psprintf("splitdb rollback of service %s", service),
						  SPLITDB_WORKER_TYPE);
	memcpy(worker.bgw_extra, &args, sizeof(args));
	worker.bgw_notify_pid = MyProcPid;
	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start a background worker for the rollback of service \"%s\"", service),
				 errhint("Wait for other background workers to finish, or raise max_worker_processes and restart the server.")));
	if (WaitForBackgroundWorkerStartup(handle, &pid) == BGWH_POSTMASTER_DIED ||
		WaitForBackgroundWorkerShutdown(handle) == BGWH_POSTMASTER_DIED)
		ereport(FATAL,
				(errcode(ERRCODE_ADMIN_SHUTDOWN),
				 errmsg("postmaster exited during the rollback of service \"%s\"", service)));

	/* what the worker recorded */
	{
		const char *params[1] = {psprintf(INT64_FORMAT, job.job_id)};
		Snapshot	snap = RegisterSnapshot(GetLatestSnapshot());
		SPIPlanPtr	plan;
		Datum		v[1] = {Int64GetDatum(job.job_id)};
		Oid			t[1] = {INT8OID};
		const char *sql = "SELECT step, last_error, last_sqlstate, last_hint,"
			" pg_catalog.array_to_string(not_valid, ', ')"
			" FROM splitdb.rollback WHERE job_id = $1";
		char	   *not_valid = NULL;
		char	   *step = NULL;
		char	   *error = NULL;
		char	   *state = NULL;
		char	   *hint = NULL;

		(void) params;
		plan = SPI_prepare(sql, 1, t);
		if (plan == NULL)
			splitdb_spi_failed(sql, SPI_result);
		if (SPI_execute_snapshot(plan, v, NULL, snap, InvalidSnapshot, true, false, 1) != SPI_OK_SELECT)
			splitdb_spi_failed(sql, 0);
		UnregisterSnapshot(snap);
		if (SPI_processed == 1)
		{
			step = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
			error = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
			state = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
			hint = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4);
			not_valid = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 5);
		}
		if (not_valid != NULL && not_valid[0] != '\0')
			ereport(WARNING,
					(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
					 errmsg("foreign keys of service \"%s\" restored NOT VALID: %s", service, not_valid),
					 errdetail("Rows written while the service lived apart refer to missing keys."),
					 errhint("SELECT * FROM splitdb_orphans('%s') lists such rows; fix them, then ALTER TABLE ... VALIDATE CONSTRAINT.",
							 service)));
		if (step == NULL || strcmp(step, "done") != 0 || error != NULL)
		{
			int			code = ERRCODE_INTERNAL_ERROR;

			if (state != NULL && strlen(state) == 5)
				code = MAKE_SQLSTATE(state[0], state[1], state[2], state[3], state[4]);
			ereport(ERROR,
					(errcode(code),
					 errmsg("rollback of service \"%s\" failed: %s", service,
							error ? error : "the worker stopped before it ended"),
					 errdetail("The rollback of job " INT64_FORMAT " stopped at step %s.", job.job_id,
							   step ? step : "replaying"),
					 errhint("%s", hint ? hint :
							 psprintf("Fix the cause, then call splitdb_rollback('%s') again: it resumes where it stopped.",
									  service))));
		}
	}
	SPI_finish();
	PG_RETURN_VOID();
}

/* the worker's state, for its error path */
static RollbackArgs rb_args;
static MemoryContext rb_cxt;
static PGconn *rb_conn;

/* a transaction of the worker, connected to SPI, with a snapshot */
static void
begin_tx(const char *activity)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	splitdb_spi_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
}

static void
commit_tx(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(rb_cxt);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/* a statement in the sibling */
static void
remote_sql(const char *sql, int nparams, const char *const *params)
{
	splitdb_remote_command(rb_conn, sql, nparams, params, rb_args.service);
}

/*
 * pause_at
 *		Test hook: with splitdb.rollback_pause_at = point in the caller's
 *		session, the worker waits here, its activity "paused at <point>",
 *		while a session holds the advisory lock (SPLITDB_ROLLBACK_PAUSE_KEY,
 *		job id): tests stop it there, or let writers meet it there.  In a
 *		transaction of the worker.
 */
static void
pause_at(const char *point)
{
	if (strcmp(rb_args.pause_at, point) != 0)
		return;
	elog(LOG, "the rollback of service \"%s\" pauses at %s", rb_args.service, point);
	splitdb_pause_while_locked(SPLITDB_ROLLBACK_PAUSE_KEY, (int32) rb_args.job_id, point);
	elog(LOG, "the rollback of service \"%s\" goes on from %s", rb_args.service, point);
}

/*
 * load_tables
 *		The job's tables that capture, with their replays, in rb_cxt (SPI
 *		calls return to SPI's context, so every allocation that must outlive
 *		the transaction switches to rb_cxt itself).
 */
static List *
load_tables(void)
{
	const char *params[1] = {psprintf(INT64_FORMAT, rb_args.job_id)};
	List	   *rows;
	List	   *tables = NIL;
	ListCell   *lc;

	local_sql("SELECT table_name, relid::text FROM splitdb.job_table"
			  " WHERE job_id = $1::bigint AND partition_root IS NULL ORDER BY table_name",
			  1, params);
	rows = splitdb_catalog_result_rows();
	foreach(lc, rows)
	{
		char	  **row = (char **) lfirst(lc);
		MemoryContext old = MemoryContextSwitchTo(rb_cxt);
		SplitdbReplayTable *t = splitdb_replay_table(rb_conn, rb_args.service, row[0],
													 (Oid) strtoul(row[1], NULL, 10));

		if (t == NULL)
			refuse(rb_args.service, psprintf("table %s has no capture in the sibling", row[0]),
				   NULL, "splitdb_doctor() reports the capture.");
		tables = lappend(tables, t);
		MemoryContextSwitchTo(old);
	}
	return tables;
}

/* one replay of every table, in the current transactions of both sides */
static int64
replay_all(List *tables)
{
	int64		n = 0;
	ListCell   *lc;

	local_sql("SET LOCAL session_replication_role = replica", 0, NULL);
	foreach(lc, tables)
		n += splitdb_replay_run(rb_conn, rb_args.service, (SplitdbReplayTable *) lfirst(lc));
	local_sql("SET LOCAL session_replication_role = origin", 0, NULL);
	return n;
}

/* count a round in splitdb.rollback */
static void
count_round(int64 entries)
{
	const char *params[2] = {psprintf(INT64_FORMAT, rb_args.job_id), psprintf(INT64_FORMAT, entries)};

	local_sql("UPDATE splitdb.rollback SET rounds = rounds + 1, rows_replayed = rows_replayed + $2::bigint,"
			  " updated_at = pg_catalog.clock_timestamp() WHERE job_id = $1::bigint",
			  2, params);
}

/*
 * replay_rounds
 *		Step 1: rounds without locks, until one finds few entries.
 */
static void
replay_rounds(List *tables)
{
	for (int round = 0; round < REPLAY_ROUNDS; round++)
	{
		int64		n;
		ListCell   *lc;

		begin_tx("replaying the sibling's changes");
		remote_sql("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL);
		/* partitions made there since the last look, before their rows */
		(void) splitdb_archive_new_partitions(rb_args.job_id, rb_args.service, rb_conn);
		n = replay_all(tables);
		remote_sql("COMMIT", 0, NULL);
		count_round(n);
		commit_tx();
		begin_tx("forgetting the changes replayed");
		foreach(lc, tables)
			splitdb_replay_forget(rb_conn, rb_args.service, (SplitdbReplayTable *) lfirst(lc));
		commit_tx();
		if (n < REPLAY_FEW_ENTRIES)
			break;
	}
}

/*
 * take_locks
 *		One attempt at the locks of the switch back, in the current source
 *		transaction and a new sibling transaction (REPEATABLE READ, whose
 *		snapshot is taken after its lock).  Errors when a lock waits longer
 *		than SWITCH_LOCK_TIMEOUT.
 */
static void
take_locks(void)
{
	const char *params[1] = {psprintf(INT64_FORMAT, rb_args.job_id)};

	local_sql("SET LOCAL lock_timeout = '" SWITCH_LOCK_TIMEOUT "'", 0, NULL);
	splitdb_restore_lock(rb_args.job_id, rb_args.service);

	local_sql("SELECT 'LOCK TABLE ' || string_agg(table_name, ', ' ORDER BY table_name) || ' IN EXCLUSIVE MODE'"
			  "  FROM splitdb.job_table WHERE job_id = $1::bigint AND partition_root IS NULL",
			  1, params);
	{
		char	   *lock = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		remote_sql("BEGIN ISOLATION LEVEL REPEATABLE READ", 0, NULL);
		remote_sql("SET LOCAL lock_timeout = '" SWITCH_LOCK_TIMEOUT "'", 0, NULL);
		remote_sql("SET LOCAL statement_timeout = '" SWITCH_STATEMENT_TIMEOUT "'", 0, NULL);
		/* it waits, idle, while the source is restored (switch_back) */
		remote_sql("SET LOCAL idle_in_transaction_session_timeout = 0", 0, NULL);
		remote_sql(lock, 0, NULL);
	}
}

/*
 * lock_for_switch
 *		Step 2: take the locks, SWITCH_ATTEMPTS attempts with a growing
 *		pause between them; on success the source transaction is open and
 *		so is the sibling's.  Returns the attempts made; errors having
 *		changed nothing when every attempt timed out.
 */
static int
lock_for_switch(void)
{
	long		pause = SWITCH_FIRST_PAUSE_MS;

	for (int attempt = 1; attempt <= SWITCH_ATTEMPTS; attempt++)
	{
		bool		locked = false;

		begin_tx("taking the locks of the switch back");
		PG_TRY();
		{
			take_locks();
			locked = true;
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(rb_cxt);
			edata = CopyErrorData();
			if (edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE &&
				edata->sqlerrcode != ERRCODE_QUERY_CANCELED)
				PG_RE_THROW();
			FlushErrorState();
			AbortCurrentTransaction();
			MemoryContextSwitchTo(rb_cxt);
			/* the source's lock may have timed out before the sibling's BEGIN */
			splitdb_remote_rollback_open(rb_conn, rb_args.service);
			elog(LOG, "the rollback of service \"%s\" waits: %s (attempt %d of %d)",
				 rb_args.service, edata->message, attempt, SWITCH_ATTEMPTS);
			pgstat_report_activity(STATE_IDLE, NULL);
		}
		PG_END_TRY();
		if (locked)
			return attempt;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 pause, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		pause = Min(pause * 2, SWITCH_MAX_PAUSE_MS);
	}
	ereport(ERROR,
			(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
			 errmsg("could not lock the tables of service \"%s\" for the switch back", rb_args.service),
			 errdetail("%d attempts each waited %s for writers to finish; nothing was switched.",
					   SWITCH_ATTEMPTS, SWITCH_LOCK_TIMEOUT),
			 errhint("Call splitdb_rollback('%s') again when fewer writers hold the tables.",
					 rb_args.service)));
	return 0;					/* keep compiler quiet */
}

/*
 * switch_back
 *		Steps 2 and 3: under the locks, the sibling checked again and the
 *		last replay; the sibling's
 *		commit (writes refused there, its reference ends gone), then the
 *		source's (restored, the job rolled_back).
 */
static void
switch_back(List *tables)
{
	int			attempts;
	int64		n;
	const char *params[3];

	if (rb_args.pause_at[0] != '\0')
	{
		begin_tx("replayed");
		pause_at("replayed");
		commit_tx();
	}
	attempts = lock_for_switch();
	/* the partitions made there since the last round; the locks hold off more */
	(void) splitdb_archive_new_partitions(rb_args.job_id, rb_args.service, rb_conn);
	/* what DDL in the sibling may have changed since the call checked */
	check_sibling(rb_args.service, rb_args.job_id, rb_conn);
	n = replay_all(tables);
	pause_at("locked");

	params[0] = psprintf(INT64_FORMAT, rb_args.job_id);
	params[1] = rb_args.service;
	remote_sql("SELECT splitdb.close_capture($1::bigint, $2)", 2, params);

	/*
	 * The source is restored before the sibling commits: whatever makes the
	 * restore fail (a materialized view that no longer refreshes, a view
	 * replaced since, a lock it cannot get) fails the call with nothing
	 * switched, instead of leaving the sibling closed and the source not
	 * restored at every later call.  The sibling's locks hold its writers
	 * meanwhile.
	 */
	splitdb_restore_source(rb_args.job_id, rb_args.service, rb_conn);
	count_round(n);
	params[1] = psprintf("%d", attempts);
	local_sql("UPDATE splitdb.rollback SET step = 'restored', lock_attempts = lock_attempts + $2::integer,"
			  " updated_at = pg_catalog.clock_timestamp() WHERE job_id = $1::bigint",
			  2, params);
	local_sql("UPDATE splitdb.job SET state = 'rolled_back', updated_at = pg_catalog.clock_timestamp(),"
			  " finished_at = pg_catalog.clock_timestamp() WHERE job_id = $1::bigint",
			  1, params);

	remote_sql("COMMIT", 0, NULL);
	pause_at("between_commits");
	commit_tx();
	elog(LOG, "service \"%s\" is rolled back into the source", rb_args.service);
}

/*
 * clean_sibling
 *		Step 4: the sibling's tables, capture and the objects the registry
 *		drops on rollback there go; the rollback is done.  Idempotent: a
 *		resumed call drops what an interrupted one left, IF EXISTS.
 */
static void
clean_sibling(void)
{
	const char *params[1] = {psprintf(INT64_FORMAT, rb_args.job_id)};
	List	   *artifacts;
	ListCell   *lc;
	char	   *drop;
	char	   *has_splitdb;

	begin_tx("cleaning the sibling");
	pause_at("before_cleanup");
	local_sql("SELECT 'DROP TABLE IF EXISTS ' || string_agg(table_name, ', ' ORDER BY table_name)"
			  "  FROM splitdb.job_table WHERE job_id = $1::bigint AND partition_root IS NULL",
			  1, params);
	drop = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

	remote_sql("BEGIN", 0, NULL);

	/*
	 * The registry's drops below commit there one by one, splitdb's
	 * extension among them (and its capture with it): a cleanup resumed
	 * after a kill may find it gone already.
	 */
	has_splitdb = splitdb_remote_scalar(rb_conn,
										"SELECT pg_catalog.to_regprocedure('splitdb.drop_capture(bigint)') IS NOT NULL",
										0, NULL, rb_args.service);
	if (has_splitdb != NULL && strcmp(has_splitdb, "t") == 0)
		remote_sql("SELECT splitdb.drop_capture($1::bigint)", 1, params);
	if (drop != NULL)
		remote_sql(drop, 0, NULL);
	remote_sql("COMMIT", 0, NULL);

	artifacts = splitdb_artifact_list(rb_args.job_id, SPLITDB_ON_ROLLBACK);
	foreach(lc, artifacts)
	{
		SplitdbArtifact *a = (SplitdbArtifact *) lfirst(lc);

		if (a->service == NULL || strcmp(a->service, rb_args.service) != 0)
			continue;
		if (splitdb_undo_keeps(rb_conn, a, rb_args.service))
			continue;
		remote_sql(splitdb_artifact_drop_sql(a), 0, NULL);
	}
	foreach(lc, artifacts)
	{
		SplitdbArtifact *a = (SplitdbArtifact *) lfirst(lc);

		if (a->service != NULL && strcmp(a->service, rb_args.service) == 0)
			splitdb_artifact_dropped(a->artifact_id);
	}
	local_sql("UPDATE splitdb.rollback SET step = 'done', updated_at = pg_catalog.clock_timestamp()"
			  " WHERE job_id = $1::bigint",
			  1, params);
	commit_tx();
}

/*
 * run_rollback
 *		The worker's work: claim the job, then each step the job still
 *		needs.
 */
static void
run_rollback(void)
{
	RollbackJob job;
	const char *params[2];

	begin_tx("starting the rollback");
	{
		Oid			types[2] = {INT4OID, INT4OID};
		Datum		values[2] = {Int32GetDatum(SPLITDB_JOB_LOCK_KEY), Int32GetDatum((int32) rb_args.job_id)};
		bool		isnull;

		splitdb_spi_exec("SELECT pg_catalog.pg_try_advisory_lock($1, $2)", 2, types, values, NULL, false, 1);
		if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_IN_USE),
					 errmsg("job " INT64_FORMAT " of service \"%s\" is in use by another process",
							rb_args.job_id, rb_args.service),
					 errhint("Another splitdb_rollback() or splitdb_finalize() runs; wait for it.")));
	}
	MemoryContextSwitchTo(rb_cxt);
	rb_conn = NULL;
	job = check_job(rb_args.service, NULL);
	job.state = MemoryContextStrdup(rb_cxt, job.state);
	job.server = MemoryContextStrdup(rb_cxt, job.server);
	if (job.job_id != rb_args.job_id)
		elog(ERROR, "the newest job of service \"%s\" changed", rb_args.service);
	params[0] = psprintf(INT64_FORMAT, rb_args.job_id);
	params[1] = psprintf("%d", MyProcPid);
	local_sql("INSERT INTO splitdb.rollback (job_id, step, worker_pid) VALUES ($1::bigint, 'replaying', $2::integer)"
			  " ON CONFLICT (job_id) DO UPDATE SET runs = splitdb.rollback.runs + 1,"
			  "  worker_pid = excluded.worker_pid, last_error = NULL, last_sqlstate = NULL,"
			  "  last_hint = NULL, updated_at = pg_catalog.clock_timestamp()",
			  2, params);
	commit_tx();

	if (strcmp(job.state, "done") == 0)
	{
		List	   *tables;

		begin_tx("reading the capture");
		MemoryContextSwitchTo(rb_cxt);
		rb_conn = splitdb_remote_connect_server(job.server, rb_args.service);
		/* the partitions the sibling got since the cutover, before any replay */
		(void) splitdb_archive_new_partitions(rb_args.job_id, rb_args.service, rb_conn);
		tables = load_tables();
		commit_tx();
		if (rb_args.pause_at[0] != '\0')
		{
			begin_tx("partitions_made");
			pause_at("partitions_made");
			commit_tx();
		}
		replay_rounds(tables);
		switch_back(tables);
	}
	else
	{
		begin_tx("connecting to the sibling");
		MemoryContextSwitchTo(rb_cxt);
		rb_conn = splitdb_remote_connect_server(job.server, rb_args.service);
		commit_tx();
	}
	clean_sibling();
}

/* record why the rollback stopped, in a transaction of its own */
static void
record_error(ErrorData *edata)
{
	const char *params[4];

	params[0] = psprintf(INT64_FORMAT, rb_args.job_id);
	params[1] = edata->detail ? psprintf("%s (%s)", edata->message, edata->detail) : edata->message;
	params[2] = unpack_sql_state(edata->sqlerrcode);
	params[3] = edata->hint;
	begin_tx("recording the rollback's error");
	local_sql("INSERT INTO splitdb.rollback (job_id, step, last_error, last_sqlstate, last_hint)"
			  " SELECT $1::bigint, 'replaying', $2, $3, $4"
			  "  WHERE EXISTS (SELECT FROM splitdb.job WHERE job_id = $1::bigint)"
			  " ON CONFLICT (job_id) DO UPDATE SET last_error = $2, last_sqlstate = $3, last_hint = $4,"
			  "  updated_at = pg_catalog.clock_timestamp()",
			  4, params);
	commit_tx();
}

/*
 * splitdb_rollback_main
 *		Entry point of the rollback's background worker.
 */
void
splitdb_rollback_main(Datum main_arg)
{
	memcpy(&rb_args, MyBgworkerEntry->bgw_extra, sizeof(rb_args));
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(rb_args.dboid, rb_args.roleoid, 0);

	rb_cxt = AllocSetContextCreate(TopMemoryContext, "splitdb rollback", ALLOCSET_DEFAULT_SIZES);
	StartTransactionCommand();
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("application_name", SPLITDB_WORKER_TYPE, PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("timezone", "UTC", PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("datestyle", "ISO, YMD", PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("intervalstyle", "postgres", PGC_USERSET, PGC_S_SESSION);
	/* the rows come back through COPY FROM: xml fragments as well as documents */
	SetConfigOption("xmloption", "content", PGC_USERSET, PGC_S_SESSION);
	/* and money as the sibling's splitdb session prints it (remote.c) */
	SetConfigOption("lc_monetary", "C", PGC_SUSET, PGC_S_SESSION);
	SetConfigOption("jit", "off", PGC_USERSET, PGC_S_SESSION);
	/* the archive's constraints and indexes run their owners' code as them */
	SetConfigOption(SPLITDB_OWNER_RIGHTS_GUC, "on", PGC_SUSET, PGC_S_SESSION);
	CommitTransactionCommand();
	MemoryContextSwitchTo(rb_cxt);

	PG_TRY();
	{
		run_rollback();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		HOLD_INTERRUPTS();
		MemoryContextSwitchTo(rb_cxt);
		edata = CopyErrorData();
		EmitErrorReport();
		FlushErrorState();
		AbortOutOfAnyTransaction();
		MemoryContextSwitchTo(rb_cxt);
		if (rb_conn != NULL)
		{
			splitdb_remote_disconnect(rb_conn);
			rb_conn = NULL;
		}
		RESUME_INTERRUPTS();
		record_error(edata);
		proc_exit(1);
	}
	PG_END_TRY();
	if (rb_conn != NULL)
		splitdb_remote_disconnect(rb_conn);
	proc_exit(0);
}
