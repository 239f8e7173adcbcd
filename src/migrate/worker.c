/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The background worker that carries a migration job through its
 *	  phases.
 *
 * One dynamic background worker runs one job, as the role that called
 * splitdb_migrate().  It takes the job (writing its row), blocks writes to
 * the service's tables for the whole job (offline mode: session-level SHARE
 * locks, so reads go on), and then runs the steps of the contract (step.c)
 * in the order of the table of steps below, each in transactions of its
 * own, recording every phase in splitdb.job and splitdb.job_table.
 *
 * Invariants:
 * - The names of the phases, as the catalog stores them, are written in the
 *   two tables below and nowhere else in C; code compares SplitdbPhase and
 *   SplitdbTablePhase values.
 * - Any error stops the job in state failed, with the message and SQLSTATE
 *   in its row; phase keeps the step it stopped in, and the next
 *   splitdb_migrate() starts a new worker that continues from there.  A
 *   worker killed before it could record anything is seen as failed by
 *   splitdb_status and splitdb_migrate (its pid is gone).
 * - Every step can run again after a crash: each run first ends or waits
 *   out the sibling sessions of earlier runs (fence.c), so nothing a dead
 *   run sent commits behind its back.
 * - Memory: the job lives in its own context (job_cxt); each step, and the
 *   setup before them, runs in a child context deleted when it ends, and
 *   that context is current between the worker's transactions, so nothing
 *   is allocated in TopMemoryContext after the job starts.
 * - Every message the worker emits carries a context line naming the job,
 *   the step and what it works on (a table, a statement); the error stored
 *   in splitdb.job.last_error does not, since splitdb_status shows the job,
 *   its phase and its current_table beside it.
 * - A job has at least one table: a new job is recorded only with the
 *   relations splitdb_migrate() checked, and a job without any fails.
 * - The copiers a large table's copy starts (copier.c) end with the worker:
 *   it terminates them on every way out, and after an error waits for them
 *   before it records the failure.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/worker.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "tcop/tcopprot.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "compat.h"
#include "metadata/catalog.h"
#include "migrate/access.h"
#include "migrate/copier.h"
#include "migrate/fence.h"
#include "migrate/freecores.h"
#include "migrate/job.h"
#include "migrate/shareddb.h"
#include "migrate/worker_int.h"
#include "remote/remote.h"
#include "splitdb.h"

PGDLLEXPORT void splitdb_worker_main(Datum main_arg);

/*
 * One row per phase, in the manner of pg_cron's CronTaskState: the phase,
 * its name in splitdb.job (state and phase) and splitdb_status, the step
 * that does its work (NULL: none), the phase after it, and the phase a
 * resumed job that stopped in it starts from.
 */
typedef struct SplitdbStep
{
	SplitdbPhase phase;
	const char *name;
	void		(*run) (SplitdbJob *job);
	SplitdbPhase next;
	SplitdbPhase resume_at;
} SplitdbStep;

static const SplitdbStep steps[] = {
	{SPLITDB_PHASE_QUEUED, "queued", NULL,
	SPLITDB_PHASE_PREPARING, SPLITDB_PHASE_QUEUED},
	{SPLITDB_PHASE_PREPARING, "preparing", splitdb_step_prepare,
	SPLITDB_PHASE_COPYING, SPLITDB_PHASE_PREPARING},
	{SPLITDB_PHASE_COPYING, "copying", splitdb_step_copy,
	SPLITDB_PHASE_INDEXING, SPLITDB_PHASE_COPYING},
	{SPLITDB_PHASE_INDEXING, "indexing", splitdb_step_index,
	SPLITDB_PHASE_CATCHING_UP, SPLITDB_PHASE_INDEXING},
	/* online mode only: an offline job goes from indexing to verifying */
	{SPLITDB_PHASE_CATCHING_UP, "catching_up", splitdb_step_catch_up,
	SPLITDB_PHASE_VERIFYING, SPLITDB_PHASE_CATCHING_UP},
	{SPLITDB_PHASE_VERIFYING, "verifying", splitdb_step_verify,
	SPLITDB_PHASE_CUTTING_OVER, SPLITDB_PHASE_VERIFYING},
	/* a resumed cutover verifies again: writes went on while the job was stopped */
	{SPLITDB_PHASE_CUTTING_OVER, "cutting_over", splitdb_step_cutover,
	SPLITDB_PHASE_DONE, SPLITDB_PHASE_VERIFYING},
	/* the cutover's own transaction records done */
	{SPLITDB_PHASE_DONE, "done", NULL,
	SPLITDB_PHASE_DONE, SPLITDB_PHASE_DONE}
};

StaticAssertDecl(lengthof(steps) == SPLITDB_PHASE_DONE + 1,
				 "one step per phase");

/* the names of the phases of a table, as splitdb.job_table stores them */
static const char *const table_phase_names[] = {
	[SPLITDB_TABLE_PENDING] = "pending",
	[SPLITDB_TABLE_CREATED] = "created",
	[SPLITDB_TABLE_COPYING] = "copying",
	[SPLITDB_TABLE_COPIED] = "copied",
	[SPLITDB_TABLE_INDEXED] = "indexed",
	[SPLITDB_TABLE_VERIFIED] = "verified",
	[SPLITDB_TABLE_CUT_OVER] = "cut_over"
};

StaticAssertDecl(lengthof(table_phase_names) == SPLITDB_TABLE_CUT_OVER + 1,
				 "one name per table phase");

/*
 * Where the worker is, for its error context callback: set when the job is
 * known, then for each step and each table or statement a step works on.
 */
typedef struct WorkerPlace
{
	int64		job_id;			/* 0 before the worker knows its job */
	const char *service;
	const char *step;			/* the running step's phase name, or NULL */
	char		what[2 * NAMEDATALEN + 64]; /* "table x.y", ...; "" for none */
} WorkerPlace;

static WorkerPlace place;

/* the job's memory, which lives across its transactions */
static MemoryContext job_cxt = NULL;

/* the memory context a transaction of the worker returns to */
static MemoryContext outer_cxt = NULL;

/* set while a job runs, for the exit callback */
static int64 running_job_id = 0;

/* this worker took the job (and may record its failure) */
static bool job_claimed = false;
static PGconn *running_conn = NULL;

/* the copy's connections beyond running_conn, closed on every way out */
static PGconn *extra_streams[SPLITDB_MAX_COPY_STREAMS];
static int	n_extra_streams = 0;

/*
 * splitdb_worker_phase_name / splitdb_worker_phase_of
 *		A phase's name in the catalog, and the phase of a name.  An unknown
 *		name (a job of a later splitdb, such as an online job catching up)
 *		is an error: this worker cannot run it.
 */
const char *
splitdb_worker_phase_name(SplitdbPhase phase)
{
	Assert(phase >= 0 && phase < lengthof(steps) && steps[phase].phase == phase);
	return steps[phase].name;
}

SplitdbPhase
splitdb_worker_phase_of(const char *name)
{
	for (int i = 0; i < lengthof(steps); i++)
		if (strcmp(steps[i].name, name) == 0)
			return steps[i].phase;
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("job phase \"%s\" is unknown to this version of splitdb", name),
			 errhint("Run the job with the splitdb version that started it.")));
	return SPLITDB_PHASE_QUEUED;	/* keep compiler quiet */
}

/*
 * splitdb_worker_table_phase_name / splitdb_worker_table_phase_of
 *		The same for the phases of a job's table.
 */
const char *
splitdb_worker_table_phase_name(SplitdbTablePhase phase)
{
	Assert(phase >= 0 && phase < lengthof(table_phase_names));
	return table_phase_names[phase];
}

SplitdbTablePhase
splitdb_worker_table_phase_of(const char *name)
{
	for (int i = 0; i < lengthof(table_phase_names); i++)
		if (strcmp(table_phase_names[i], name) == 0)
			return (SplitdbTablePhase) i;
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("table phase \"%s\" is unknown to this version of splitdb", name),
			 errhint("Run the job with the splitdb version that started it.")));
	return SPLITDB_TABLE_PENDING;	/* keep compiler quiet */
}

/*
 * worker_error_context
 *		Error context callback: which job, step and table a message is about,
 *		e.g. splitdb job 3 of service "reservation", step copying, table
 *		public.reservation.
 */
static void
worker_error_context(void *arg)
{
	WorkerPlace *p = (WorkerPlace *) arg;

	if (p->job_id == 0)
		return;
	if (p->step == NULL)
		errcontext("splitdb job " INT64_FORMAT " of service \"%s\"",
				   p->job_id, p->service);
	else if (p->what[0] == '\0')
		errcontext("splitdb job " INT64_FORMAT " of service \"%s\", step %s",
				   p->job_id, p->service, p->step);
	else
		errcontext("splitdb job " INT64_FORMAT " of service \"%s\", step %s, %s",
				   p->job_id, p->service, p->step, p->what);
}

/*
 * splitdb_worker_working_on / splitdb_worker_clear_working_on
 *		Name what the running step works on in the worker's messages (a
 *		table: "table %s"), or nothing more than the step.  The text is
 *		copied, truncated if very long; nothing is allocated.
 */
void
splitdb_worker_working_on(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(place.what, sizeof(place.what), fmt, ap);
	va_end(ap);
}

void
splitdb_worker_clear_working_on(void)
{
	place.what[0] = '\0';
}

/*
 * splitdb_worker_close_streams
 *		Close the copy's extra connections, if any are open.
 */
void
splitdb_worker_close_streams(void)
{
	while (n_extra_streams > 0)
	{
		n_extra_streams--;
		splitdb_remote_disconnect(extra_streams[n_extra_streams]);
		extra_streams[n_extra_streams] = NULL;
	}
}

/*
 * splitdb_worker_begin / splitdb_worker_commit / splitdb_worker_commit_busy
 *		A transaction of the worker, connected to SPI, with a snapshot; its
 *		activity, as pg_stat_activity shows it, is formatted from fmt inside
 *		the transaction.  Commit returns to the memory context that was
 *		current at begin (the step's), and reports the worker idle, or, for
 *		commit_busy, leaves the activity as it is.
 */
static void
begin_tx(bool repeatable_read)
{
	outer_cxt = CurrentMemoryContext;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (repeatable_read)
		XactIsoLevel = XACT_REPEATABLE_READ;
	splitdb_spi_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
}

/* the activity, formatted from fmt and ap, reported */
#define REPORT_ACTIVITY(fmt) \
	do { \
		StringInfoData activity; \
		initStringInfo(&activity); \
		for (;;) \
		{ \
			va_list		ap; \
			int			needed; \
			va_start(ap, fmt); \
			needed = appendStringInfoVA(&activity, fmt, ap); \
			va_end(ap); \
			if (needed == 0) \
				break; \
			enlargeStringInfo(&activity, needed); \
		} \
		pgstat_report_activity(STATE_RUNNING, activity.data); \
	} while (0)

void
splitdb_worker_begin(const char *fmt,...)
{
	begin_tx(false);
	REPORT_ACTIVITY(fmt);
}

/*
 * splitdb_worker_begin_snapshot
 *		The same, REPEATABLE READ: every statement of the transaction sees
 *		the snapshot taken when it began (online mode's replay rounds).
 */
void
splitdb_worker_begin_snapshot(const char *fmt,...)
{
	begin_tx(true);
	REPORT_ACTIVITY(fmt);
}

static void
commit_tx(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(outer_cxt);
}

void
splitdb_worker_commit(void)
{
	commit_tx();
	pgstat_report_activity(STATE_IDLE, NULL);
}

void
splitdb_worker_commit_busy(void)
{
	commit_tx();
}

/*
 * splitdb_worker_sql
 *		Run a catalog statement with text parameters (NULL entries are SQL
 *		NULLs); the statement casts them.  In a transaction.
 */
void
splitdb_worker_sql(const char *sql, int nparams, const char *const *params)
{
	splitdb_catalog_exec_text(sql, nparams, params, false);
}

/*
 * set_state
 *		Enter a phase, in a transaction of its own: state and phase follow
 *		it, so a resumed job starts here.
 */
static void
set_state(SplitdbJob *job, SplitdbPhase phase)
{
	const char *name = splitdb_worker_phase_name(phase);
	const char *params[2];

	splitdb_worker_begin("%s", name);
	params[0] = splitdb_worker_int64_text(job->job_id);
	params[1] = name;
	splitdb_worker_sql("UPDATE splitdb.job SET state = $2, phase = $2, current_table = NULL,"
					   " updated_at = pg_catalog.clock_timestamp() WHERE job_id = $1::bigint",
					   2, params);
	splitdb_worker_commit();
	job->phase = phase;
	elog(LOG, "job " INT64_FORMAT " of service \"%s\" is %s",
		 job->job_id, job->service, name);
}

/*
 * check_relations
 *		Refuse a new job whose relations, as this worker recorded them in
 *		splitdb.job_table, are not those splitdb_migrate() checked, or are
 *		none: the caller's checks saw a state that is not the committed one
 *		(or it changed since).  The error aborts the claim's transaction, so
 *		nothing of the job is recorded.
 */
static void
check_relations(const SplitdbWorkerArgs *args)
{
	const char *params[1] = {splitdb_worker_int64_text(args->job_id)};
	int32		n;
	int32		hash;
	bool		isnull;

	splitdb_worker_sql(SPLITDB_RELSET_SQL("SELECT relid FROM splitdb.job_table WHERE job_id = $1::bigint"),
					   1, params);
	n = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	hash = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("service \"%s\" owns no committed tables; its job is not started",
						args->service),
				 errhint("Commit the splitdb_assign() of its tables, then call splitdb_migrate() again.")));
	if (n != args->nrelations || hash != args->relset_hash)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("the tables of service \"%s\" changed while its migration started",
						args->service),
				 errdetail("splitdb_migrate() checked %d relations; %d are committed now.",
						   args->nrelations, n),
				 errhint("Call splitdb_migrate('%s') again.", args->service)));
}

/*
 * stamp_claim
 *		Set a new job's started_at to now, under a transaction lock that
 *		every new job's claim takes, so that its commit (the caller's) makes
 *		jobs visible in the order of their started_at: a job that a
 *		worker's check of its peers does not see (shareddb.c) started after
 *		its own.  Job ids do not give that order: the callers of
 *		splitdb_migrate() draw them before their workers claim.  The
 *		stamp is after every one already committed, also when the clock
 *		stepped back since.
 */
static void
stamp_claim(const SplitdbWorkerArgs *args)
{
	const char *key[1] = {psprintf("%d", SPLITDB_CLAIM_LOCK_KEY)};
	const char *job[1] = {splitdb_worker_int64_text(args->job_id)};

	splitdb_worker_sql("SELECT pg_catalog.pg_advisory_xact_lock($1::integer, 0)", 1, key);
	splitdb_worker_sql("UPDATE splitdb.job SET started_at = GREATEST(pg_catalog.clock_timestamp(),"
					   "  (SELECT pg_catalog.max(o.started_at) + interval '1 microsecond'"
					   "     FROM splitdb.job o WHERE o.job_id <> $1::bigint))"
					   " WHERE job_id = $1::bigint", 1, job);
}

/*
 * claim_job
 *		Write the job's row (a new job) or take it over (a resumed one), with
 *		this worker's pid, and commit, which is what splitdb_migrate waits
 *		for.  Returns false, having written nothing, when another worker
 *		runs the job.
 */
static bool
claim_job(const SplitdbWorkerArgs *args)
{
	const char *params[9];

	splitdb_worker_begin("claiming the job");

	/*
	 * One worker per job: a session lock on the job id, held until exit.  A
	 * second worker (say, splitdb_migrate() racing the launcher's resumer)
	 * leaves the job alone.
	 */
	{
		Oid			types[2] = {INT4OID, INT4OID};
		Datum		values[2] = {Int32GetDatum(SPLITDB_JOB_LOCK_KEY),
		Int32GetDatum((int32) args->job_id)};
		bool		isnull;

		splitdb_spi_exec("SELECT pg_catalog.pg_try_advisory_lock($1, $2)",
						 2, types, values, NULL, false, 1);
		if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
		{
			splitdb_worker_commit();
			ereport(LOG,
					(errmsg("job " INT64_FORMAT " of service \"%s\" is run by another worker; this one exits",
							args->job_id, args->service)));
			return false;
		}
	}

	params[0] = splitdb_worker_int64_text(args->job_id);
	params[1] = args->service;
	params[2] = args->online ? "online" : "offline";
	params[3] = splitdb_worker_oid_text(args->roleoid);
	params[4] = psprintf("%d", MyProcPid);
	params[5] = splitdb_worker_phase_name(SPLITDB_PHASE_QUEUED);
	params[6] = psprintf("%d", args->cutover_lock_timeout);
	params[7] = psprintf("%d", args->cutover_max_freeze);
	params[8] = psprintf("%d", args->cutover_attempts);
	if (!args->resume)
	{
		splitdb_worker_sql("INSERT INTO splitdb.job (job_id, service, mode, state, phase, started_by, worker_pid,"
						   "                         cutover_lock_timeout, cutover_max_freeze, cutover_max_attempts)"
						   " VALUES ($1::bigint, $2::name, $3, $6, $6, $4::oid, $5::integer,"
						   "         $7::integer, $8::integer, $9::integer)",
						   9, params);
		splitdb_worker_sql("INSERT INTO splitdb.job_table (job_id, relid, table_name, relkind, partition_root)"
						   " SELECT $1::bigint, r.relid, format('%I.%I', n.nspname, c.relname), c.relkind,"
						   "        r.partition_root"
						   "   FROM (" SPLITDB_OWNED_RELATION_SQL ") r"
						   "   JOIN pg_class c ON c.oid = r.relid JOIN pg_namespace n ON n.oid = c.relnamespace"
						   "  WHERE r.service = $2::name",
						   2, params);
		check_relations(args);
		stamp_claim(args);
	}
	else
	{
		const char *p[6] = {params[0], params[4], params[5], params[6], params[7], params[8]};

		/*
		 * The state only: the phase stays the one the job stopped in.  Not
		 * a job that is over: splitdb_cancel() may have ended it between
		 * the call that started this worker and the lock above.  The
		 * settings the resumer gave (the recorded ones, or those the
		 * resuming session set: splitdb_job_cutover_settings()) are the
		 * job's from now on.
		 */
		splitdb_worker_sql("UPDATE splitdb.job SET state = $3, worker_pid = $2::integer, runs = runs + 1,"
						   " last_error = NULL, last_sqlstate = NULL, finished_at = NULL,"
						   " copy_started_at = NULL, copy_finished_at = NULL, updated_at = pg_catalog.clock_timestamp(),"
						   " cutover_lock_timeout = $4::integer, cutover_max_freeze = $5::integer,"
						   " cutover_max_attempts = $6::integer"
						   " WHERE job_id = $1::bigint"
						   "   AND state NOT IN ('done', 'cancelled', 'rolled_back', 'finalized')", 6, p);
		if (SPI_processed == 0)
		{
			splitdb_worker_commit();
			ereport(LOG,
					(errmsg("job " INT64_FORMAT " of service \"%s\" is over; this worker exits",
							args->job_id, args->service)));
			return false;
		}
	}
	splitdb_worker_commit();
	return true;
}

/*
 * load_job
 *		Read the job, its service and its tables into job_cxt.
 */
static SplitdbJob *
load_job(const SplitdbWorkerArgs *args)
{
	const char *params[1];
	SplitdbJob *job;
	MemoryContext old;

	splitdb_worker_begin("loading the job");
	params[0] = splitdb_worker_int64_text(args->job_id);
	splitdb_worker_sql("SELECT s.server, j.phase, j.mode FROM splitdb.job j"
					   "  JOIN splitdb.service s ON s.service = j.service"
					   " WHERE j.job_id = $1::bigint", 1, params);
	if (SPI_processed != 1)
		elog(ERROR, "job " INT64_FORMAT " does not exist", args->job_id);

	old = MemoryContextSwitchTo(job_cxt);
	job = palloc0(sizeof(SplitdbJob));
	job->job_id = args->job_id;
	job->job_cxt = job_cxt;
	job->batch_rows = args->batch_rows > 0 ? args->batch_rows : splitdb_batch_rows;
	job->copy_streams = args->copy_streams > 0 ?
		Min(args->copy_streams, SPLITDB_MAX_COPY_STREAMS) :
		splitdb_free_cores(args->job_id, args->service, "splitdb.copy_streams", "copies over", "stream",
				   1, SPLITDB_MAX_AUTO_COPY_STREAMS);
	/* the worker is one reader; each copier takes a worker slot */
	job->copy_readers = args->copy_readers > 0 ?
		Min(args->copy_readers, SPLITDB_MAX_COPY_READERS) :
		splitdb_free_cores(args->job_id, args->service, "splitdb.copy_readers", "reads large tables with",
				   "reader", SPLITDB_STREAMS_PER_READER, SPLITDB_MAX_AUTO_COPY_READERS);
	job->copy_readers = Max(Min(job->copy_readers, max_worker_processes), 1);
	job->maintenance_work_mem = args->maintenance_work_mem > 0 ?
		args->maintenance_work_mem : splitdb_maintenance_work_mem;
	job->cutover_lock_timeout = args->cutover_lock_timeout > 0 ?
		args->cutover_lock_timeout : splitdb_cutover_lock_timeout;
	job->cutover_max_freeze = args->cutover_max_freeze > 0 ?
		args->cutover_max_freeze : splitdb_cutover_max_freeze;
	job->cutover_attempts = args->cutover_attempts > 0 ?
		args->cutover_attempts : splitdb_cutover_attempts;
	job->pause_at = args->pause_at;
	job->service = pstrdup(args->service);
	job->server = pstrdup(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	job->phase = splitdb_worker_phase_of(SPI_getvalue(SPI_tuptable->vals[0],
													  SPI_tuptable->tupdesc, 2));
	/* the job's own mode, also when a call of the other mode resumes it */
	job->online = strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3),
						 "online") == 0;
	MemoryContextSwitchTo(old);
	/* as claim_job recorded them */
	if (job->online)
		ereport(LOG,
				(errmsg("job " INT64_FORMAT " of service \"%s\" runs with splitdb.cutover_lock_timeout = %d ms, splitdb.cutover_max_freeze = %d ms, splitdb.cutover_attempts = %d",
						args->job_id, args->service, job->cutover_lock_timeout,
						job->cutover_max_freeze, job->cutover_attempts)));

	splitdb_worker_sql("SELECT relid, table_name, relkind, phase, rows_copied, last_key FROM splitdb.job_table"
					   " WHERE job_id = $1::bigint ORDER BY table_name", 1, params);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		SplitdbJobTable *t;
		int			n;

		old = MemoryContextSwitchTo(job_cxt);
		t = palloc0(sizeof(SplitdbJobTable));
		t->relid = DatumGetObjectId(SPI_getbinval(tup, desc, 1, &isnull));
		t->name = pstrdup(SPI_getvalue(tup, desc, 2));
		t->relkind = DatumGetChar(SPI_getbinval(tup, desc, 3, &isnull));
		t->phase = splitdb_worker_table_phase_of(SPI_getvalue(tup, desc, 4));
		t->rows_copied = DatumGetInt64(SPI_getbinval(tup, desc, 5, &isnull));
		t->last_key = splitdb_catalog_array_elems(tup, desc, 6, &n);
		job->tables = lappend(job->tables, t);
		job->relids = lappend_oid(job->relids, t->relid);
		MemoryContextSwitchTo(old);
	}
	splitdb_worker_commit();

	/* claim_job never records one; a job without tables must not end done */
	if (job->tables == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("job " INT64_FORMAT " of service \"%s\" has no tables", job->job_id,
						job->service),
				 errdetail("splitdb.job_table holds no row for it."),
				 errhint("The job cannot be resumed; report it as a bug of splitdb.")));
	return job;
}

/*
 * block_writes
 *		Offline mode: take a session-level SHARE lock on every table of the
 *		job, held until the worker exits.  Writers wait; readers go on.
 *		Online mode takes no lock (the capture logs the writes); both check
 *		that every table is still there.
 */
static void
block_writes(SplitdbJob *job)
{
	ListCell   *lc;

	splitdb_worker_begin(job->online ? "checking the service's tables" :
						 "waiting for writes to the service's tables to end");
	foreach(lc, job->tables)
	{
		SplitdbJobTable *t = (SplitdbJobTable *) lfirst(lc);
		LockRelId	relid = {t->relid, MyDatabaseId};

		if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(t->relid)))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("table \"%s\" of service \"%s\" no longer exists",
							splitdb_message_name(t->name), job->service),
					 errhint("A table was dropped while its migration was under way.")));
		if (!job->online)
			LockRelationIdForSession(&relid, ShareLock);
	}
	splitdb_worker_commit();
}

/*
 * splitdb_worker_connect_streams
 *		Connect the extra streams the copy and the index builds use (the
 *		first is the job's connection), unless they are open already; each
 *		joins the run's fence in the sibling.  They stay open until
 *		splitdb_worker_close_streams() or the worker's exit.
 */
void
splitdb_worker_connect_streams(SplitdbJob *job)
{
	job->streams[0] = job->conn;
	if (n_extra_streams + 1 >= job->copy_streams)
		return;
	splitdb_worker_begin("connecting the copy's streams");
	while (n_extra_streams + 1 < job->copy_streams)
	{
		PGconn	   *conn = splitdb_remote_connect_server(job->server, job->service);

		extra_streams[n_extra_streams++] = conn;
		job->streams[n_extra_streams] = conn;
		splitdb_fence_join(conn, job->job_id, job->service);
	}
	splitdb_worker_commit();
}

/*
 * fence_sibling
 *		Before any step touches the sibling: end the sessions an earlier
 *		run of the job left there, or wait for them (fence.c), and mark the
 *		job's connection as this run's.  Whatever phase the job resumes in,
 *		nothing the dead run sent can commit behind this run's back.
 */
static void
fence_sibling(SplitdbJob *job, const SplitdbWorkerArgs *args)
{
	int			ended;

	pgstat_report_activity(STATE_RUNNING,
						   "waiting for the sibling's sessions of an earlier run to end");
	ended = splitdb_fence_take(job->conn, job->job_id,
							   args->fence_timeout > 0 ? args->fence_timeout :
							   splitdb_fence_timeout,
							   job->service);
	pgstat_report_activity(STATE_IDLE, NULL);
	if (ended > 0)
		ereport(LOG,
				(errmsg("job " INT64_FORMAT " of service \"%s\" ended %d session%s of an earlier run in the sibling",
						job->job_id, job->service, ended, ended == 1 ? "" : "s")));
}

/*
 * start_job
 *		Take the job, read it, block writes to its tables, connect to the
 *		sibling, fence it and take the copies there back.  Returns NULL when another worker runs the job.
 *		Runs in a memory context of its own, deleted when it returns; the
 *		job lives in job_cxt.
 */
static SplitdbJob *
start_job(const SplitdbWorkerArgs *args)
{
	MemoryContext cxt = AllocSetContextCreate(job_cxt, "splitdb job start",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	SplitdbJob *job = NULL;

	if (claim_job(args))
	{
		job_claimed = true;
		running_job_id = args->job_id;
		job = load_job(args);

		/*
		 * The plan again, now that the DDL guard holds the tables: a change
		 * since splitdb_migrate() checked it stops a job that has not copied
		 * yet.  The SHARE UPDATE EXCLUSIVE locks wait for DDL the guard let
		 * through before the job was committed, so the plan sees it.
		 */
		if (job->phase <= SPLITDB_PHASE_PREPARING)
		{
			ListCell   *lc;

			splitdb_worker_begin("checking the plan");
			foreach(lc, job->relids)
				LockRelationOid(lfirst_oid(lc), ShareUpdateExclusiveLock);
			splitdb_job_check_plan(job->service);
			splitdb_worker_commit();
		}
		block_writes(job);

		/* the user mapping is read from the catalogs: inside a transaction */
		splitdb_worker_begin("connecting to the sibling");
		job->conn = splitdb_remote_connect_server(job->server, job->service);
		running_conn = job->conn;
		splitdb_worker_commit();
		splitdb_remote_check_encoding(job->conn, job->service);
		splitdb_job_check_role(job->conn, job->service, "splitdb_migrate");
		splitdb_remote_check_library(job->conn, job->service);
		splitdb_worker_begin("checking the peers' databases");
		splitdb_shareddb_check(job->conn, job->service, job->job_id);
		splitdb_worker_commit();
		fence_sibling(job, args);
		splitdb_access_take_back(job);
		if (job->online && job->phase > SPLITDB_PHASE_PREPARING)
			splitdb_step_resume_online(job);
		/* an offline job let go of its tables while it was stopped */
		job->recopy_if_written = !job->online && args->resume;
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return job;
}

/*
 * run_step
 *		Enter a step's phase and run the step, in a memory context of its
 *		own under job_cxt, deleted when the step ends.  The step that leads
 *		to done records done itself (the cutover and the job's end are one
 *		transaction); this only logs it.
 */
static void
run_step(SplitdbJob *job, const SplitdbStep *step)
{
	MemoryContext old;

	job->step_cxt = AllocSetContextCreate(job_cxt, "splitdb step",
										  ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(job->step_cxt);
	place.step = step->name;
	place.what[0] = '\0';

	set_state(job, step->phase);
	step->run(job);
	if (step->next == SPLITDB_PHASE_DONE)
	{
		/* the step recorded done itself, in its last transaction */
		job->phase = SPLITDB_PHASE_DONE;
		elog(LOG, "job " INT64_FORMAT " of service \"%s\" is %s",
			 job->job_id, job->service, splitdb_worker_phase_name(SPLITDB_PHASE_DONE));
	}

	place.step = NULL;
	place.what[0] = '\0';
	MemoryContextSwitchTo(old);
	MemoryContextDelete(job->step_cxt);
	job->step_cxt = NULL;
}

/*
 * run_job
 *		Carry the job from the phase it is in to done, step by step through
 *		the table of steps.
 */
static void
run_job(const SplitdbWorkerArgs *args)
{
	SplitdbJob *job;
	SplitdbPhase phase;

	job = start_job(args);
	if (job == NULL)
		return;

	phase = args->resume ? steps[job->phase].resume_at : job->phase;
	while (phase != SPLITDB_PHASE_DONE)
	{
		const SplitdbStep *step = &steps[phase];

		/* catching up is online mode's alone */
		if (step->run != NULL &&
			(job->online || phase != SPLITDB_PHASE_CATCHING_UP))
			run_step(job, step);
		if (job->sent_back)
		{
			/* verification sent the tables back: copy them again */
			job->sent_back = false;
			phase = SPLITDB_PHASE_COPYING;
			continue;
		}
		phase = step->next;
	}

	running_conn = NULL;
	splitdb_remote_disconnect(job->conn);
}

/*
 * on_worker_exit
 *		before_shmem_exit callback, on every way out: releases the session
 *		locks, and a worker terminated in the middle of a job
 *		(pg_terminate_backend, shutdown) records why before it goes.
 */
static void
on_worker_exit(int code, Datum arg)
{
	int64		job_id = running_job_id;

	running_job_id = 0;
	splitdb_copier_stop_all(false);
	splitdb_worker_close_streams();
	if (running_conn != NULL)
	{
		splitdb_remote_disconnect(running_conn);
		running_conn = NULL;
	}
	AbortOutOfAnyTransaction();

	/*
	 * Session locks outlive transactions and, unlike advisory locks, are not
	 * released when a process exits: release the write block here, on every
	 * way out.
	 */
	LockReleaseAll(DEFAULT_LOCKMETHOD, true);

	if (job_id == 0)
		return;
	MemoryContextSwitchTo(job_cxt);
	PG_TRY();
	{
		splitdb_worker_record_failure(job_id, ERRCODE_ADMIN_SHUTDOWN,
					   psprintf("the worker (pid %d) was terminated before the job ended", MyProcPid));
	}
	PG_CATCH();
	{
		/* the job reads as failed anyway once this process is gone */
		FlushErrorState();
	}
	PG_END_TRY();
}

/*
 * splitdb_worker_pin_settings
 *		The session settings of the worker and its copiers: names resolve in
 *		pg_catalog only, and values print the same way on both sides and in
 *		every reader (verification and checkpoint keys depend on it).
 */
void
splitdb_worker_pin_settings(const char *application_name)
{
	StartTransactionCommand();
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("datestyle", "ISO, YMD", PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("intervalstyle", "postgres", PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("timezone", "UTC", PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("extra_float_digits", "3", PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("bytea_output", "hex", PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("lc_monetary", "C", PGC_SUSET, PGC_S_SESSION);
	SetConfigOption("xmloption", "content", PGC_USERSET, PGC_S_SESSION);
	/* the count and checksum scans gain nothing from JIT; it costs memory */
	SetConfigOption("jit", "off", PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("application_name", application_name, PGC_USERSET, PGC_S_SESSION);
	/* what the tables' owners wrote runs with their rights, not ours */
	SetConfigOption(SPLITDB_OWNER_RIGHTS_GUC, "on", PGC_SUSET, PGC_S_SESSION);
	CommitTransactionCommand();
}

/*
 * splitdb_worker_main
 *		Entry point of a job's background worker.
 */
void
splitdb_worker_main(Datum main_arg)
{
	SplitdbWorkerArgs args;
	ErrorContextCallback errcallback;

	memcpy(&args, MyBgworkerEntry->bgw_extra, sizeof(args));
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(args.dboid, args.roleoid, 0);

	job_cxt = AllocSetContextCreate(TopMemoryContext, "splitdb job",
									ALLOCSET_DEFAULT_SIZES);
	splitdb_worker_pin_settings(SPLITDB_WORKER_TYPE);
	MemoryContextSwitchTo(job_cxt);
	before_shmem_exit(on_worker_exit, (Datum) 0);

	/* every message from here on names the job, and the step once one runs */
	place.job_id = args.job_id;
	place.service = args.service;
	errcallback.callback = worker_error_context;
	errcallback.arg = &place;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	PG_TRY();
	{
		run_job(&args);
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		char	   *message;

		HOLD_INTERRUPTS();
		MemoryContextSwitchTo(job_cxt);
		edata = CopyErrorData();
		EmitErrorReport();
		FlushErrorState();
		AbortOutOfAnyTransaction();
		MemoryContextSwitchTo(job_cxt);
		splitdb_worker_close_streams();
		if (running_conn != NULL)
		{
			splitdb_remote_disconnect(running_conn);
			running_conn = NULL;
		}
		/* the stored error is the message (and detail), not the context */
		message = edata->detail ?
			psprintf("%s (%s)", edata->message, edata->detail) : pstrdup(edata->message);
		RESUME_INTERRUPTS();

		/* copiers still at work stop before the failure is recorded */
		splitdb_copier_stop_all(true);

		running_job_id = 0;
		place.step = NULL;
		place.what[0] = '\0';
		if (job_claimed)
			splitdb_worker_record_failure(args.job_id, edata->sqlerrcode, message);
		proc_exit(1);
	}
	PG_END_TRY();

	error_context_stack = errcallback.previous;
	running_job_id = 0;
	proc_exit(0);
}
