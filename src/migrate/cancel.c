/*-------------------------------------------------------------------------
 *
 * cancel.c
 *	  splitdb_cancel(): stop a migration job before it is done and undo it.
 *
 * A job that is not done has changed nothing of the source but splitdb's
 * own rows (offline mode: its worker only held a SHARE lock on the tables
 * until the cutover, and the cutover is one transaction), and has made in
 * the sibling what the artifact registry lists (record.c).  A cancel:
 *
 *	1. checks the job's state (a refused call does nothing);
 *	2. takes the job's cancel lock, to the end of this transaction: the
 *	   worker, terminated while it is held, records its job stopped by a
 *	   cancel (57014), which the launcher does not resume after a restart
 *	   (jobexit.c);
 *	   then stops the worker: signals it and waits, a bounded time, for the
 *	   job's advisory lock, which the worker holds until its exit handler
 *	   has recorded the job failed; holding it (to the end of this
 *	   transaction) keeps any new worker from taking the job; a job whose
 *	   worker was gone before, failed in a way the launcher resumes, is
 *	   recorded failed with 57014 by a background worker that commits at
 *	   once (mark_intent);
 *	3. connects to the sibling, ends the sessions of the stopped run there
 *	   (fence.c) and drops every object the registry lists to go on cancel,
 *	   newest first, in one remote transaction, committed there;
 *	4. in this transaction: marks those rows dropped, deletes the job's
 *	   cross-service references (recorded while it prepared), and sets the
 *	   job cancelled;
 *	5. in the other siblings (peer.c): a cutover that failed had installed
 *	   there again the ends of the references with this service, to reach
 *	   its sibling; they are installed once more as the job's state now
 *	   places them (reaching the source), each try waiting at most
 *	   splitdb.cutover_lock_timeout for a lock there, up to
 *	   splitdb.cutover_attempts tries, then 55P03; and the registry's
 *	   objects there (a server) are dropped, each peer committing on its own;
 *	6. last, in this transaction, the source's objects of the job: online
 *	   mode's capture (its triggers on the service's tables, its logs) and
 *	   whatever else the registry lists here (drop_in_source).
 *
 * Invariants:
 * - A crash or a kill at any point leaves a job that a second cancel
 *   finishes: every drop says IF EXISTS, installing ends again is
 *   idempotent, and until this transaction commits the job is not
 *   cancelled.  Nor does it run on: the worker this cancel stopped
 *   committed its job failed with 57014, which the launcher leaves alone.
 * - No application statement waits behind the cancel longer than
 *   splitdb.cutover_lock_timeout at a time.  DROP TRIGGER takes an ACCESS
 *   EXCLUSIVE lock on its table, which queues behind any open transaction
 *   that touched the table, and every later statement on the table queues
 *   behind it; so the source's drops come last (the locks are held until
 *   this transaction commits), run in a subtransaction per attempt under
 *   that lock_timeout, and are retried with the cutover's backoff up to
 *   splitdb.cutover_attempts times.  After the last attempt the cancel
 *   fails with 55P03 and its transaction rolls back: the source keeps its
 *   capture, the job stays failed, and a second cancel finishes it.
 * - Every object the stopped run recorded is dropped: the registry is read
 *   after the worker is gone, with a snapshot taken then, not with the
 *   statement's, which may predate what the worker recorded while the
 *   call waited for the service's row or for the worker.
 * - Objects the sibling had before the job have no registry row, and stay.
 * - Once cancelled, the service can be migrated again (splitdb_migrate()
 *   starts a new job, and finds none of the old job's tables there).
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/cancel.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

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
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "metadata/artifact.h"
#include "metadata/catalog.h"
#include "migrate/fence.h"
#include "migrate/job.h"
#include "migrate/jobstate.h"
#include "migrate/lockwait.h"
#include "migrate/online.h"
#include "migrate/peer.h"
#include "migrate/undo.h"
#include "remote/remote.h"
#include "splitdb.h"

PG_FUNCTION_INFO_V1(splitdb_cancel);
PGDLLEXPORT void splitdb_cancel_mark_main(Datum main_arg);

/* what the cancel's marker is started with, in bgw_extra */
typedef struct CancelMarkArgs
{
	Oid			dboid;
	Oid			roleoid;
	int64		job_id;
} CancelMarkArgs;

StaticAssertDecl(sizeof(CancelMarkArgs) <= BGW_EXTRALEN, "CancelMarkArgs must fit in bgw_extra");

/* how often the cancel looks again whether the worker is gone */
#define STOP_POLL_MS	50

/*
 * check_cancellable
 *		Refuse a cancel of a job that is done or over, before anything is
 *		touched.
 */
static void
check_cancellable(const char *service, const SplitdbJobState *job)
{
	if (!job->found)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("service \"%s\" has no migration job to cancel", service),
				 errhint("splitdb_migrate('%s') starts one; splitdb_status shows the jobs.", service)));
	if (strcmp(job->state, "done") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot cancel the migration of service \"%s\" because it is done", service),
				 errdetail("Job " INT64_FORMAT " has cut over: the service's tables live in its sibling.",
						   job->job_id),
				 errhint("Bring the tables back with splitdb_rollback('%s'), or keep them and call splitdb_finalize('%s').",
						 service, service)));
	if (strcmp(job->state, "cancelled") == 0 || strcmp(job->state, "rolled_back") == 0 ||
		strcmp(job->state, "finalized") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot cancel the migration of service \"%s\" because it is %s",
						service, job->state),
				 errdetail("Job " INT64_FORMAT " is over.", job->job_id),
				 errhint("Nothing is left to cancel; see splitdb_status.")));
}

/*
 * take_cancel_lock
 *		The job's cancel lock, to the end of this transaction, before the
 *		worker is stopped: a worker terminated while it is held records its
 *		job stopped by a cancel (57014, jobexit.c), which the launcher does
 *		not resume, so a crash before this transaction commits cannot let
 *		the job run on to done.  Refuses (55P03) while another cancel of the
 *		job holds it.
 */
static void
take_cancel_lock(const char *service, int64 job_id)
{
	if (!splitdb_jobstate_try_lock(SPLITDB_CANCEL_LOCK_KEY, job_id))
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("another splitdb_cancel() of job " INT64_FORMAT " of service \"%s\" is under way",
						job_id, service),
				 errhint("Wait for it to end; splitdb_status shows the job's state.")));
}

/*
 * signal_workers
 *		Terminate the splitdb workers of the job: the one its row names, and
 *		any that holds the job's advisory lock (one the resumer started
 *		meanwhile).  Only processes whose backend_type is splitdb's worker:
 *		a pid may have been reused.  pg_stat_activity is read afresh at each
 *		call: the transaction's cached snapshot of it would still list a
 *		worker that exited since the first, and pg_terminate_backend() warns
 *		"PID ... is not a PostgreSQL backend process" for it.
 */
static void
signal_workers(const SplitdbJobState *job)
{
	Oid			types[3] = {INT4OID, INT4OID, INT4OID};
	Datum		values[3] = {Int32GetDatum(job->worker_pid), Int32GetDatum(SPLITDB_JOB_LOCK_KEY),
	Int32GetDatum((int32) job->job_id)};

	splitdb_spi_exec("SELECT pg_catalog.pg_stat_clear_snapshot()", 0, NULL, NULL, NULL, false, 0);
	splitdb_spi_exec("SELECT pg_catalog.pg_terminate_backend(a.pid)"
					 "  FROM pg_catalog.pg_stat_activity a"
					 " WHERE a.backend_type = '" SPLITDB_WORKER_TYPE "'"
					 "   AND (a.pid = $1 OR a.pid IN (SELECT l.pid FROM pg_catalog.pg_locks l"
					 "         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2"
					 "           AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d"
					 "                              WHERE d.datname = pg_catalog.current_database())"
					 "           AND l.classid = $2::pg_catalog.oid AND l.objid = $3::pg_catalog.oid))",
					 3, types, values, NULL, false, 0);
}

/*
 * stop_worker
 *		Signal the job's worker, if one runs, and wait up to
 *		splitdb.fence_timeout for the job's advisory lock.  The worker
 *		releases it last, once its exit handler has committed the job
 *		failed, so the cancel never writes the job's row at the same time
 *		as the worker.  Raises 55P03 when the lock does not come.
 */
static void
stop_worker(const char *service, const SplitdbJobState *job)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   splitdb_fence_timeout);

	for (;;)
	{
		if (splitdb_jobstate_try_lock(SPLITDB_JOB_LOCK_KEY, job->job_id))
			return;
		signal_workers(job);
		if (GetCurrentTimestamp() >= deadline)
			ereport(ERROR,
					(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
					 errmsg("the worker of job " INT64_FORMAT " of service \"%s\" did not stop",
							job->job_id, service),
					 errdetail("Another process still holds the job's advisory lock after %d ms.",
							   splitdb_fence_timeout),
					 errhint("See pg_locks and pg_stat_activity for the process; call splitdb_cancel('%s') again once it is gone. splitdb.fence_timeout sets how long the cancel waits.",
							 service)));
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 STOP_POLL_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * splitdb_cancel_mark_main
 *		Background worker: record, in a transaction of its own committed at
 *		once, that a cancel of the job is under way, for a job the launcher
 *		would resume after a restart (the resumer's condition: failed with
 *		57P01, or running with its worker gone): failed with 57014.  The
 *		cancel's own transaction commits only at its end.
 */
void
splitdb_cancel_mark_main(Datum main_arg)
{
	CancelMarkArgs args;
	Oid			types[1] = {INT8OID};
	Datum		values[1];

	memcpy(&args, MyBgworkerEntry->bgw_extra, sizeof(args));
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(args.dboid, args.roleoid, 0);

	StartTransactionCommand();
	/* not the database's or the role's search_path: names resolve in pg_catalog */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION);
	PushActiveSnapshot(GetTransactionSnapshot());
	splitdb_spi_connect();
	values[0] = Int64GetDatum(args.job_id);
	splitdb_spi_exec("UPDATE splitdb.job SET state = 'failed', last_sqlstate = '57014', worker_pid = NULL,"
					 " last_error = 'splitdb_cancel() began after the worker was gone ('"
					 "   || coalesce(last_error, 'no error recorded') || ')',"
					 " updated_at = pg_catalog.clock_timestamp()"
					 " WHERE job_id = $1 AND (splitdb.job_worker_gone(state, worker_pid)"
					 "                        OR (state = 'failed' AND last_sqlstate = '57P01'))",
					 1, types, values, NULL, false, 0);
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	proc_exit(0);
}

/*
 * mark_intent
 *		For a job whose worker was gone before the cancel began, with a
 *		failure the launcher resumes (57P01, or none recorded): have a
 *		background worker record the job failed with 57014 and commit, and
 *		wait for it, so that a crash before this transaction commits cannot
 *		let the launcher run the job on to done.  (A worker the cancel
 *		stopped recorded 57014 itself: jobexit.c.)  Without a free worker
 *		slot, a WARNING says so and the cancel goes on.
 */
static void
mark_intent(const char *service, const SplitdbJobState *job)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	CancelMarkArgs args = {MyDatabaseId, GetUserId(), job->job_id};
	pid_t		pid;

	if (job->last_sqlstate != NULL && strcmp(job->last_sqlstate, "57P01") != 0)
		return;
	splitdb_bgworker_init(&worker, "splitdb_cancel_mark_main",
						  psprintf("splitdb cancel of service %s", service),
						  "splitdb cancel");
	memcpy(worker.bgw_extra, &args, sizeof(args));
	worker.bgw_notify_pid = MyProcPid;
	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
	{
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start a background worker to record the cancel of job " INT64_FORMAT " of service \"%s\" at once",
						job->job_id, service),
				 errdetail("Should the server crash before this cancel commits, the launcher resumes the job at the restart."),
				 errhint("Raise max_worker_processes, or wait for other background workers to finish before cancelling.")));
		return;
	}
	if (WaitForBackgroundWorkerStartup(handle, &pid) == BGWH_POSTMASTER_DIED ||
		WaitForBackgroundWorkerShutdown(handle) == BGWH_POSTMASTER_DIED)
		ereport(FATAL,
				(errcode(ERRCODE_ADMIN_SHUTDOWN),
				 errmsg("postmaster exited during the cancel of service \"%s\"", service)));
}

/*
 * drop_reference_ends
 *		Remove from the sibling the reference ends a failed cutover
 *		installed there (their remote transaction commits before the
 *		cutover's, which rolled back and took their registry rows along):
 *		the ends of every reference with an end in the service, through the
 *		sibling's splitdb.drop_reference_ends(), when it has splitdb.  They
 *		are on the job's tables, which go next; without them, splitdb's
 *		extension, if the job made it there, can go too.
 */
static void
drop_reference_ends(PGconn *conn, const char *service)
{
	const char *params[1] = {service};
	char	   *has;

	has = splitdb_remote_scalar(conn,
								"SELECT pg_catalog.to_regprocedure('splitdb.drop_reference_ends(bigint[])') IS NOT NULL",
								0, NULL, service);
	if (has == NULL || strcmp(has, "t") != 0)
		return;
	splitdb_catalog_exec_text("SELECT coalesce(pg_catalog.array_agg(r.reference_id), '{}')::text"
							  "  FROM splitdb.reference r"
							  " WHERE $1::pg_catalog.name IN (r.child_service, r.parent_service)",
							  1, params, true);
	params[0] = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	splitdb_remote_command(conn, "SELECT splitdb.drop_reference_ends($1::pg_catalog.int8[])",
						   1, params, service);
}

/*
 * drop_in_sibling
 *		End the stopped run's sessions in the sibling and drop the job's
 *		objects there that go on cancel; returns how many.
 */
static int
drop_in_sibling(const char *service, const char *server, int64 job_id, List *artifacts)
{
	PGconn	   *volatile conn = NULL;
	int			n = 0;

	PG_TRY();
	{
		conn = splitdb_remote_connect_server(server, service);
		(void) splitdb_fence_take(conn, job_id, splitdb_fence_timeout, service);
		drop_reference_ends(conn, service);
		n = splitdb_undo_sibling(conn, service, artifacts);
	}
	PG_FINALLY();
	{
		splitdb_remote_disconnect(conn);
	}
	PG_END_TRY();
	return n;
}

/* what an attempt at the source's drops works on, and what it dropped */
typedef struct SourceDrops
{
	int64		job_id;
	List	   *artifacts;
	int			lock_timeout;	/* ms, for the locks of the attempt in all */
	int			dropped;
} SourceDrops;

/*
 * drop_source
 *		The source's drops of a cancel (splitdb_lockwait_attempt()'s work):
 *		the locks DROP TRIGGER takes on the captured relations, within one
 *		lock_timeout for them all, then the registry's objects here, then
 *		online mode's capture.
 */
static void
drop_source(void *arg)
{
	SourceDrops *d = (SourceDrops *) arg;

	splitdb_lockwait_relations(splitdb_online_captured(d->job_id), AccessExclusiveLock,
							   d->lock_timeout);
	d->dropped = splitdb_undo_source(d->artifacts);
	splitdb_online_remove_capture(d->job_id);
}

/*
 * drop_in_source
 *		Drop the job's objects in the source: those of the registry that
 *		live here, and online mode's capture (splitdb.drop_capture: its
 *		triggers, logs and rows, the log schema once empty).  Returns how
 *		many registry objects it dropped.
 *
 * DROP TRIGGER waits for every open transaction that touched the table,
 * and the application's statements would queue behind it: each attempt
 * waits at most the job's splitdb.cutover_lock_timeout for its locks on
 * the captured relations in all (and as long for any other lock), and a
 * failed one is rolled back and tried again after the cutover's backoff,
 * up to the job's splitdb.cutover_attempts times (the settings of this
 * session where it set them; splitdb_job_cutover_settings()).  Then raises
 * 55P03; nothing of the source has changed.
 */
static int
drop_in_source(const char *service, int64 job_id, List *artifacts)
{
	SplitdbCutoverSettings settings;
	SourceDrops drops = {job_id, artifacts, 0, 0};

	splitdb_job_cutover_settings(job_id, &settings);
	drops.lock_timeout = settings.lock_timeout;
	for (int attempt = 1;; attempt++)
	{
		ErrorData  *why = splitdb_lockwait_attempt(drop_source, &drops, settings.lock_timeout);

		if (why == NULL)
			return drops.dropped;
		if (attempt >= settings.attempts)
			ereport(ERROR,
					(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
					 errmsg("could not remove the change capture of service \"%s\" from its tables in %d attempt%s",
							service, attempt, attempt == 1 ? "" : "s"),
					 errdetail("Each attempt waited at most %d ms for a lock on a table of the service; the last one failed: %s.  Nothing changed in this database: job " INT64_FORMAT " stays failed, and its objects in the sibling are dropped already.",
							   settings.lock_timeout, why->message, job_id),
					 errhint("Find the sessions that hold locks on the service's tables (pg_locks, pg_stat_activity) and end them, or raise splitdb.cutover_lock_timeout or splitdb.cutover_attempts, then call splitdb_cancel('%s') again to finish.",
							 service)));
		ereport(NOTICE,
				(errmsg("attempt %d to remove the change capture of service \"%s\" failed, retrying: %s",
						attempt, service, why->message)));
		FreeErrorData(why);
		splitdb_online_backoff(attempt);
	}
}

/*
 * splitdb_cancel
 *		SQL: splitdb_cancel(service name) RETURNS void
 */
Datum
splitdb_cancel(PG_FUNCTION_ARGS)
{
	char	   *service = pstrdup(NameStr(*PG_GETARG_NAME(0)));
	SplitdbService *svc;
	SplitdbJobState job;
	List	   *artifacts;
	const char *params[1];
	int			dropped;

	splitdb_require_superuser("splitdb_cancel");
	splitdb_spi_connect();

	/*
	 * Not the lock that serializes splitdb_migrate() calls: a call with
	 * wait => true holds it until the job ends.  The job's own lock, taken
	 * below, keeps any worker from taking the job, and no new job of the
	 * service can start while this one is not over.
	 */
	svc = splitdb_catalog_get_service(service, SPLITDB_LOCK_SHARE, false);
	job = splitdb_jobstate_last(service);
	check_cancellable(service, &job);

	take_cancel_lock(service, job.job_id);
	stop_worker(service, &job);

	/*
	 * Read what the stopped run committed.  This statement's snapshot dates
	 * from before the call waited for the service's row and for the worker,
	 * which may have recorded objects meanwhile (and made them in the
	 * sibling); the reads below that take the active snapshot (the
	 * registry's list, the captured tables) must see them, or the cancel
	 * would leave them standing.
	 */
	PushActiveSnapshot(GetLatestSnapshot());

	/* what the worker's exit recorded, now that it is gone */
	job = splitdb_jobstate_last(service);
	check_cancellable(service, &job);
	mark_intent(service, &job);

	artifacts = splitdb_artifact_list(job.job_id, SPLITDB_ON_CANCEL);
	dropped = drop_in_sibling(service, svc->server, job.job_id, artifacts);
	splitdb_undo_mark(artifacts, service);

	params[0] = psprintf(INT64_FORMAT, job.job_id);

	/*
	 * The job's cross-service references: recorded while it prepared, their
	 * keys never dropped (that is the cutover's, rolled back or never run).
	 * The service noted on earlier jobs' references stays: it says who owns
	 * the other end, which a cancel does not change, and where an end is
	 * enforced follows the jobs' states (splitdb.reference_placement), in
	 * which this service no longer counts as moved.
	 */
	splitdb_catalog_exec_text("DELETE FROM splitdb.reference WHERE job_id = $1::bigint",
							  1, params, false);
	/* one timestamp for both columns: the job ended when it was last changed */
	splitdb_catalog_exec_text("UPDATE splitdb.job j SET state = 'cancelled', worker_pid = NULL,"
							  " current_table = NULL, finished_at = n.t, updated_at = n.t"
							  "  FROM (SELECT pg_catalog.clock_timestamp() AS t) n"
							  " WHERE j.job_id = $1::bigint",
							  1, params, false);

	/* the other siblings, now that the job's state places its ends in the source */
	dropped += splitdb_peer_cancel(service, job.job_id, artifacts,
								   strcmp(job.phase, "cutting_over") == 0);

	/* last: its locks on the service's tables are held until commit */
	dropped += drop_in_source(service, job.job_id, artifacts);

	ereport(NOTICE,
			(errmsg("job " INT64_FORMAT " of service \"%s\" is cancelled; %d object%s dropped",
					job.job_id, service, dropped, dropped == 1 ? "" : "s")));
	PopActiveSnapshot();
	SPI_finish();
	PG_RETURN_VOID();
}
