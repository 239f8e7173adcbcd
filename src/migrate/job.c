/*-------------------------------------------------------------------------
 *
 * job.c
 *	  splitdb_migrate(): start or resume a service's migration job.
 *
 * The caller's backend checks everything a user can get wrong (the service,
 * its tables, its plan, the sibling, a job already running) and then starts
 * a dynamic background worker that does the work (worker.c).  The worker
 * writes the job's row itself, in a transaction of its own, so the caller
 * never holds a lock the worker needs and `wait => true` cannot deadlock.
 *
 * Invariants:
 * - A refused call writes nothing: every check runs before the worker is
 *   started, and only the worker writes splitdb.job.
 * - The caller's checks and the worker see the same committed state: a
 *   call from a transaction that changed the service (splitdb_assign(),
 *   splitdb_unassign()) or holds a lock the worker would wait for is
 *   refused, and a new job's worker records the job only when the
 *   relations it reads are those the caller checked (their digest).
 * - Two calls for one service are serialized by a transaction-level
 *   advisory lock; the second sees the first's job, because the first does
 *   not return before its worker has committed the job's row.
 * - A job whose worker is gone (killed, server restarted) counts as failed,
 *   whatever its row says, and is resumed by the next call, unless the
 *   tables its runs made are gone from the sibling (a cancel that could not
 *   finish): then only splitdb_cancel() goes on from there.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/job.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/wait_event.h"

#include "metadata/catalog.h"
#include "metadata/catalog_sql.h"
#include "compat.h"
#include "migrate/job.h"
#include "migrate/jobstate.h"
#include "migrate/shareddb.h"
#include "plan/plan.h"
#include "remote/remote.h"
#include "splitdb.h"

PG_FUNCTION_INFO_V1(splitdb_migrate);


/*
 * changed_here
 *		Whether the calling transaction inserted, updated or deleted a row of
 *		splitdb.<table> whose column service_col is the service; a change
 *		undone by a rolled-back subtransaction does not count.
 *
 * Reads every row version (SnapshotAny): a row this transaction deleted is
 * invisible to it but is what the worker would still see.
 */
static bool
changed_here(const char *table, const char *service_col, const char *service)
{
	Oid			relid = get_relname_relid(table, get_namespace_oid("splitdb", false));
	Relation	rel;
	AttrNumber	attno;
	TableScanDesc scan;
	HeapTuple	tup;
	bool		found = false;

	if (!OidIsValid(relid))
		elog(ERROR, "splitdb.%s does not exist", table);
	rel = table_open(relid, AccessShareLock);
	attno = get_attnum(relid, service_col);
	scan = table_beginscan(rel, SnapshotAny, 0, NULL);
	while (!found && (tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		HeapTupleHeader hdr = tup->t_data;
		bool		isnull;
		Datum		d = heap_getattr(tup, attno, RelationGetDescr(rel), &isnull);

		if (isnull || strcmp(NameStr(*DatumGetName(d)), service) != 0)
			continue;
		if (TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetXmin(hdr)))
			found = true;
		else if (!(hdr->t_infomask & HEAP_XMAX_INVALID) &&
				 !HEAP_XMAX_IS_LOCKED_ONLY(hdr->t_infomask) &&
				 TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetUpdateXid(hdr)))
			found = true;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * check_transaction
 *		Refuse to start from a transaction whose state the worker cannot
 *		see or would wait for: one that changed the service's rows in
 *		splitdb.service or splitdb.owned_table and has not committed, or
 *		one that holds a lock on a relation of the service which conflicts
 *		with the SHARE lock the worker takes (a write, an ALTER TABLE).
 *
 * The worker runs in a transaction of its own and reads only what is
 * committed: without this check it would start a job without the tables
 * this transaction assigned, or wait for this transaction, which waits for
 * it with wait => true.
 */
static void
check_transaction(const char *service)
{
	const char *param[2] = {service, NULL};

	if (changed_here("service", "service", service) ||
		changed_here("owned_table", "service", service))
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("splitdb_migrate() cannot start a job in the transaction that changed service \"%s\"",
						service),
				 errdetail("This transaction assigned or unassigned tables of the service and has not committed; the job's worker reads only what is committed."),
				 errhint("Commit the transaction that changed the service first, then call splitdb_migrate('%s') in a transaction of its own.",
						 service)));

	splitdb_catalog_exec_text("SELECT l.relation::pg_catalog.regclass::pg_catalog.text, l.mode"
							  "  FROM pg_catalog.pg_locks l"
							  "  JOIN (" SPLITDB_OWNED_RELATION_SQL ") r ON r.relid = l.relation"
							  " WHERE r.service = $1::pg_catalog.name AND l.locktype = 'relation'"
							  "   AND l.pid = pg_catalog.pg_backend_pid() AND l.granted"
							  "   AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d"
							  "                      WHERE d.datname = pg_catalog.current_database())"
							  "   AND l.mode IN ('RowExclusiveLock', 'ShareUpdateExclusiveLock', 'ShareLock',"
							  "                  'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock')"
							  " ORDER BY 1, 2 LIMIT 1",
							  1, param, true);
	if (SPI_processed > 0)
	{
		char	  **row = (char **) linitial(splitdb_catalog_result_rows());

		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("splitdb_migrate() cannot start a job in a transaction that holds a %s on table \"%s\" of service \"%s\"",
						row[1], splitdb_message_name(row[0]), service),
				 errdetail("The job's worker locks the service's tables (SHARE offline, to hold the writes; SHARE ROW EXCLUSIVE online, to install the change capture), which would wait for this transaction."),
				 errhint("Commit the transaction that changed the service's tables first, then call splitdb_migrate('%s') in a transaction of its own.",
						 service)));
	}
}

/*
 * relation_digest
 *		The number of relations the service owns and the hash of their OIDs
 *		(SPLITDB_RELSET_SQL): as the caller's checks see them, or, with
 *		latest, as committed now whatever the caller's isolation level.
 */
static void
relation_digest(const char *service, bool latest, int32 *nrelations, int32 *hash)
{
	static const char *sql =
		SPLITDB_RELSET_SQL(SPLITDB_OWNED_RELATION_SQL " WHERE service = $1");
	Oid			types[1] = {NAMEOID};
	Datum		values[1];
	SPIPlanPtr	plan;
	Snapshot	snap = InvalidSnapshot;
	bool		isnull;
	int			rc;

	values[0] = DirectFunctionCall1(namein, CStringGetDatum(service));
	plan = SPI_prepare(sql, 1, types);
	if (plan == NULL)
		splitdb_spi_failed(sql, SPI_result);
	if (latest)
		snap = RegisterSnapshot(GetLatestSnapshot());
	rc = SPI_execute_snapshot(plan, values, NULL, snap, InvalidSnapshot,
							  true, false, 1);
	if (latest)
		UnregisterSnapshot(snap);
	if (rc != SPI_OK_SELECT)
		splitdb_spi_failed(sql, rc);
	if (SPI_processed != 1)
		elog(ERROR, "could not read the relations of service \"%s\"", service);
	*nrelations = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	*hash = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
}

/*
 * splitdb_job_check_plan
 *		Refuse to start when the service owns nothing or its plan has
 *		blockers: in splitdb_migrate(), and again in the worker of a job
 *		that has not copied yet, once the job's DDL guard holds its tables
 *		(a constraint made between the call and the worker's claim, which
 *		the guard did not refuse, is found there).
 */
void
splitdb_job_check_plan(const char *service)
{
	List	   *steps;
	ListCell   *lc;
	StringInfoData blockers;
	int			nblockers = 0;

	if (splitdb_catalog_count_owned(service) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("service \"%s\" owns no tables", service),
				 errhint("Assign tables to it with splitdb_assign() first.")));

	steps = splitdb_plan_build(service);
	initStringInfo(&blockers);
	foreach(lc, steps)
	{
		SplitdbPlanStep *step = (SplitdbPlanStep *) lfirst(lc);

		if (step->action != SPLITDB_PLAN_BLOCKER)
			continue;
		if (nblockers++ < 3)
			appendStringInfo(&blockers, "%s%s", nblockers > 1 ? "\n" : "", step->detail);
	}
	if (nblockers > 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the plan of service \"%s\" has %d blocker%s", service,
						nblockers, nblockers == 1 ? "" : "s"),
				 errdetail_internal("%s", blockers.data),
				 errhint("See SELECT * FROM splitdb_plan('%s') WHERE action = 'blocker'; resolve each, then call splitdb_migrate() again.",
						 service)));
}

/*
 * check_resumable
 *		Refuse to resume a job whose tables are gone from the sibling.  A
 *		splitdb_cancel() that dropped the job's objects there (committed in
 *		the sibling) and then could not remove the source's capture fails
 *		with 55P03 and leaves the job failed, its tables gone; so does a
 *		DBA who dropped them.  A resumed run would work against tables that
 *		are not there, so the only way on is to finish the cancel.
 *
 * The tables are those the job's preparing step recorded as made
 * (splitdb.job_table, phase past pending: the remote transaction that made
 * them had committed), asked for in one query of the sibling.  In the
 * caller's transaction, connected to SPI; conn is open, outside a remote
 * transaction.  Changes nothing.
 */
static void
check_resumable(PGconn *conn, const char *service, const SplitdbJobState *job)
{
	const char *params[1] = {psprintf(INT64_FORMAT, job->job_id)};
	PGresult   *res;
	int64		made;
	int64		missing;
	char	   *example;

	splitdb_catalog_exec_text("SELECT coalesce(pg_catalog.array_agg(t.table_name ORDER BY t.table_name),"
							  "                '{}')::pg_catalog.text"
							  "  FROM splitdb.job_table t"
							  " WHERE t.job_id = $1::pg_catalog.int8 AND t.phase <> 'pending'",
							  1, params, true);
	params[0] = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	res = splitdb_remote_exec(conn,
							  "SELECT pg_catalog.count(*), pg_catalog.count(*) FILTER (WHERE pg_catalog.to_regclass(n) IS NULL),"
							  "       pg_catalog.min(n) FILTER (WHERE pg_catalog.to_regclass(n) IS NULL)"
							  "  FROM pg_catalog.unnest($1::pg_catalog.text[]) n",
							  1, params, service);
	made = pg_strtoint64(splitdb_remote_value(res, 0, 0));
	missing = pg_strtoint64(splitdb_remote_value(res, 0, 1));
	example = splitdb_remote_value(res, 0, 2);
	splitdb_remote_clear(res);
	if (missing == 0)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("cannot resume the migration of service \"%s\" because its tables are gone from the sibling",
					service),
			 errdetail("Job " INT64_FORMAT " (failed in phase %s) made " INT64_FORMAT " table%s in the sibling; " INT64_FORMAT " %s not there, %s among them.  A splitdb_cancel() that could not finish drops the job's objects in the sibling and leaves the job failed.",
					   job->job_id, job->phase, made, made == 1 ? "" : "s", missing,
					   missing == 1 ? "is" : "are", example),
			 errhint("Finish the cancel with splitdb_cancel('%s'); splitdb_migrate('%s') then starts a new job.",
					 service, service)));
}

/*
 * splitdb_job_check_role
 *		Refuse a job whose connection to the sibling (conn) is no superuser
 *		there; call names the SQL function that would go on with it
 *		("splitdb_migrate", "splitdb_rollback", "splitdb_finalize").
 *
 * The cutover installs splitdb in the sibling (CREATE EXTENSION, which a
 * role that is no superuser may not run for it), and with it the triggers
 * of the change capture and of the cross-service references, through
 * functions that only the extension's owner may call; the online rounds
 * write as a replica.  Without this check a job would copy, index and
 * verify every row and only then fail at its cutover.  splitdb_migrate()
 * calls it before it makes or resumes a job, and every run of the worker
 * as soon as it has connected (a job the launcher resumes after a restart,
 * whose mapping changed meanwhile), before it changes anything.  A rollback
 * and a finalize change those objects again, and call it before they do,
 * so that a mapping changed after the cutover is named for what it is.
 */
void
splitdb_job_check_role(PGconn *conn, const char *service, const char *call)
{
	char	   *role = splitdb_remote_scalar(conn,
											 "SELECT r.rolname::pg_catalog.text FROM pg_catalog.pg_roles r"
											 " WHERE r.rolname = CURRENT_USER AND NOT r.rolsuper",
											 0, NULL, service);

	if (role != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role \"%s\", which the user mapping of service \"%s\" connects as, is not a superuser in the sibling",
						role, service),
				 strcmp(call, "splitdb_migrate") == 0 ?
				 errdetail("The cutover installs splitdb in the sibling, with the triggers of the change capture and of the cross-service references, which takes a superuser there.") :
				 errdetail("%s() changes splitdb's objects in the sibling (the change capture, the triggers of the cross-service references), which takes a superuser there.", call),
				 errhint("Map the service's server to a superuser of the sibling's cluster with ALTER USER MAPPING, then call %s() again.", call)));
}

/*
 * check_sibling
 *		Connect to the sibling (so an unreachable one is refused now), refuse
 *		one whose encoding is not the source's, and a connection that is no
 *		superuser there (splitdb_job_check_role)
 *		and, for a new job, when one of the tables is already there; for
 *		a resumed job (resumed not NULL), when its tables are gone
 *		(check_resumable).
 */
static void
check_sibling(const char *service, const char *server, const SplitdbJobState *resumed)
{
	bool		new_job = resumed == NULL;
	PGconn	   *volatile conn = NULL;
	List	   *names = NIL;
	ListCell   *lc;

	if (new_job)
	{
		const char *param[1] = {service};

		splitdb_catalog_exec_text("SELECT format('%I.%I', n.nspname, c.relname)"
								  "  FROM (" SPLITDB_OWNED_RELATION_SQL ") r"
								  "  JOIN pg_class c ON c.oid = r.relid"
								  "  JOIN pg_namespace n ON n.oid = c.relnamespace"
								  " WHERE r.service = $1::pg_catalog.name ORDER BY 1",
								  1, param, true);
		foreach(lc, splitdb_catalog_result_rows())
			names = lappend(names, ((char **) lfirst(lc))[0]);
	}

	PG_TRY();
	{
		conn = splitdb_remote_connect_server(server, service);
		splitdb_remote_check_encoding(conn, service);
		splitdb_job_check_role(conn, service, "splitdb_migrate");
		splitdb_remote_check_library(conn, service);
		splitdb_shareddb_check(conn, service, resumed ? resumed->job_id : 0);
		if (resumed != NULL)
			check_resumable(conn, service, resumed);
		foreach(lc, names)
		{
			const char *name = (const char *) lfirst(lc);
			const char *param[1] = {name};
			char	   *value;
			bool		exists;

			value = splitdb_remote_scalar(conn, "SELECT pg_catalog.to_regclass($1) IS NOT NULL",
										  1, param, service);
			if (value == NULL || strcmp(value, "t") != 0)
				continue;

			value = splitdb_remote_scalar(conn,
										  psprintf("SELECT EXISTS (SELECT FROM %s)", name),
										  0, NULL, service);
			exists = value != NULL && strcmp(value, "t") == 0;
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_TABLE),
					 errmsg("table \"%s\" already exists in the sibling of service \"%s\"",
							splitdb_message_name(name), service),
					 exists ? errdetail("It holds rows.") : errdetail("It is empty."),
					 errhint("splitdb creates the sibling's tables itself: drop or rename that table in the sibling, or unassign the table.")));
		}
	}
	PG_FINALLY();
	{
		splitdb_remote_disconnect(conn);
	}
	PG_END_TRY();
}

/*
 * splitdb_bgworker_init
 *		Describe one of splitdb's background workers: connected to a
 *		database, started once recovery is done, never restarted.
 *
 * function: the entry point in this library; name and type: as
 * pg_stat_activity and the server log show them.
 */
void
splitdb_bgworker_init(BackgroundWorker *worker, const char *function,
					  const char *name, const char *type)
{
	memset(worker, 0, sizeof(BackgroundWorker));
	worker->bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker->bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker->bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker->bgw_library_name, BGW_MAXLEN, "splitdb");
	snprintf(worker->bgw_function_name, BGW_MAXLEN, "%s", function);
	snprintf(worker->bgw_name, BGW_MAXLEN, "%s", name);
	snprintf(worker->bgw_type, BGW_MAXLEN, "%s", type);
}

/*
 * splitdb_job_start_worker
 *		Register a dynamic background worker for a job.
 *
 * must: raise an error when no slot is free; otherwise return NULL.
 * The worker notifies this backend when it starts and stops.
 */
BackgroundWorkerHandle *
splitdb_job_start_worker(const SplitdbWorkerArgs *args, bool must)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;

	splitdb_bgworker_init(&worker, "splitdb_worker_main",
						  psprintf("splitdb worker for service %s", args->service),
						  SPLITDB_WORKER_TYPE);
	memcpy(worker.bgw_extra, args, sizeof(SplitdbWorkerArgs));
	worker.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
	{
		if (!must)
			return NULL;
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start a background worker for service \"%s\"",
						args->service),
				 errdetail("Every background worker slot is in use (max_worker_processes = %d).",
						   max_worker_processes),
				 errhint("Wait for other background workers to finish, or raise max_worker_processes and restart the server.")));
	}
	return handle;
}

/*
 * splitdb_job_cutover_settings
 *		The cutover settings job job_id runs with (or a new job would):
 *		each one this session gave a value of its own (SET, SET LOCAL, a
 *		function's SET clause, or the connection's options: pg_settings'
 *		source session or client) takes that value; any other the value
 *		recorded in the job's row, or, for a new job, the one in effect
 *		(the server's configuration, the role's or database's settings).
 *		In a transaction, connected to SPI.
 *
 * So a resumed job keeps the settings it was started with, whoever resumes
 * it (the launcher after a restart, or a call of splitdb_migrate()), and a
 * DBA changes them with SET before the call that resumes it.
 */
void
splitdb_job_cutover_settings(int64 job_id, SplitdbCutoverSettings *settings)
{
	const char *params[1] = {psprintf(INT64_FORMAT, job_id)};
	char	  **row;

	splitdb_catalog_exec_text("WITH s AS (SELECT g.name, g.setting::pg_catalog.int4 AS v,"
							  "                  g.source IN ('session', 'client') AS here"
							  "             FROM pg_catalog.pg_settings g"
							  "            WHERE g.name IN ('splitdb.cutover_lock_timeout',"
							  "                             'splitdb.cutover_max_freeze',"
							  "                             'splitdb.cutover_attempts'))"
							  "SELECT CASE WHEN l.here THEN l.v ELSE coalesce(j.cutover_lock_timeout, l.v) END,"
							  "       CASE WHEN f.here THEN f.v ELSE coalesce(j.cutover_max_freeze, f.v) END,"
							  "       CASE WHEN a.here THEN a.v ELSE coalesce(j.cutover_max_attempts, a.v) END"
							  "  FROM s l CROSS JOIN s f CROSS JOIN s a"
							  "  LEFT JOIN splitdb.job j ON j.job_id = $1::pg_catalog.int8"
							  " WHERE l.name = 'splitdb.cutover_lock_timeout'"
							  "   AND f.name = 'splitdb.cutover_max_freeze'"
							  "   AND a.name = 'splitdb.cutover_attempts'",
							  1, params, true);
	if (SPI_processed != 1)
		elog(ERROR, "could not read the cutover settings of job " INT64_FORMAT, job_id);
	row = (char **) linitial(splitdb_catalog_result_rows());
	settings->lock_timeout = pg_strtoint32(row[0]);
	settings->max_freeze = pg_strtoint32(row[1]);
	settings->attempts = pg_strtoint32(row[2]);
}

/*
 * wait_for_claim
 *		Wait until the worker has committed the job's row, or has exited.
 *
 * Returns the job as the worker left it.  A worker that exited without
 * taking a new job because the service's relations differ from those the
 * caller checked (args->relset_hash) is reported as such.
 */
static SplitdbJobState
wait_for_claim(BackgroundWorkerHandle *handle, const SplitdbWorkerArgs *args)
{
	const char *service = args->service;
	int64		job_id = args->job_id;
	pid_t		pid;
	BgwHandleStatus status;

	status = WaitForBackgroundWorkerStartup(handle, &pid);
	if (status == BGWH_POSTMASTER_DIED)
		ereport(FATAL,
				(errcode(ERRCODE_ADMIN_SHUTDOWN),
				 errmsg("postmaster exited while starting the worker of service \"%s\"", service)));

	for (;;)
	{
		SplitdbJobState		job = splitdb_jobstate_last(service);

		/* the worker writes its pid into the row when it takes the job */
		if (job.found && job.job_id == job_id && job.worker_pid == pid)
			return job;

		status = GetBackgroundWorkerPid(handle, &pid);
		if (status == BGWH_STOPPED)
		{
			job = splitdb_jobstate_last(service);
			if (job.found && job.job_id == job_id && job.worker_pid == pid)
				return job;

			/* it found another worker on the job (one the launcher started) */
			if (job.found && job.job_id == job_id && strcmp(job.state, "failed") != 0)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_IN_USE),
						 errmsg("a migration of service \"%s\" is already running", service),
						 errdetail("Job " INT64_FORMAT " is %s, in worker process %d.",
								   job.job_id, job.state, job.worker_pid),
						 errhint("Watch it in splitdb_status; call splitdb_migrate('%s') again if it fails.",
								 service)));
			if (!args->resume)
			{
				int32		n;
				int32		hash;

				/* the worker refuses relations that differ from those checked */
				relation_digest(service, true, &n, &hash);
				if (n != args->nrelations || hash != args->relset_hash)
					ereport(ERROR,
							(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
							 errmsg("the tables of service \"%s\" changed while its migration started", service),
							 errdetail("splitdb_migrate() checked %d relations; the service owns %d now.",
									   args->nrelations, n),
							 errhint("Call splitdb_migrate('%s') again: it checks the tables the service owns now.",
									 service)));
			}
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("the worker of service \"%s\" exited before it started the job", service),
					 errhint("See the server log for the reason.")));
		}

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 10L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * raise_job_error
 *		Raise the error a failed job recorded, with its SQLSTATE.
 */
static void
raise_job_error(const char *service, const SplitdbJobState *job)
{
	int			code = ERRCODE_INTERNAL_ERROR;
	const char *s = job->last_sqlstate;

	if (s != NULL && strlen(s) == 5)
		code = MAKE_SQLSTATE(s[0], s[1], s[2], s[3], s[4]);
	ereport(ERROR,
			(errcode(code),
			 errmsg("migration of service \"%s\" failed: %s", service,
					job->last_error ? job->last_error : "reason unknown"),
			 errdetail("Job " INT64_FORMAT " stopped in phase %s.", job->job_id, job->phase),
			 errhint("Fix the cause, then call splitdb_migrate('%s') again: the job resumes from its last checkpoint.",
					 service)));
}

/*
 * check_online_keys
 *		Refuse online mode for a service with a table that has rows of its
 *		own and no key a replay can find rows by: a primary key, or a unique
 *		key over NOT NULL plain columns, that is not DEFERRABLE (a deferrable
 *		key can hold duplicates until its transaction commits; the capture
 *		takes no such key either).  The refusal names the deferrable key a
 *		table has instead, if any.  In a transaction, connected to SPI.
 */
static void
check_online_keys(const char *service)
{
	const char *params[1] = {service};
	char	   *table;
	char	   *deferrable;
	char	   *foreign_ops;

/* a unique index usable as an online key, but for its deferrability */
#define KEY_SHAPE(i) \
	i ".indisunique AND " i ".indpred IS NULL AND " i ".indexprs IS NULL" \
	" AND NOT EXISTS (SELECT FROM pg_catalog.unnest(" i ".indkey) k(attnum)" \
	"  JOIN pg_catalog.pg_attribute a ON a.attrelid = " i ".indrelid AND a.attnum = k.attnum" \
	"  WHERE NOT a.attnotnull)"

	splitdb_catalog_exec_text("SELECT o.relid::pg_catalog.regclass::pg_catalog.text,"
							  "  (SELECT CASE WHEN d.indisprimary THEN 'primary key ' ELSE 'unique key ' END"
							  "          || pg_catalog.quote_ident(k.conname)"
							  "     FROM pg_catalog.pg_index d JOIN pg_catalog.pg_constraint k"
							  "       ON k.conindid = d.indexrelid AND k.conrelid = d.indrelid"
							  "    WHERE d.indrelid = c.oid AND " KEY_SHAPE("d")
							  "      AND NOT EXISTS (" SPLITDB_KEY_FOREIGN_OPS("d") ")"
							  "    ORDER BY d.indisprimary DESC, d.indexrelid LIMIT 1),"
							  "  (SELECT CASE WHEN f.indisprimary THEN 'primary key ' ELSE 'unique key ' END"
							  "          || pg_catalog.quote_ident(k.conname) || ' on a column of type ' || ("
							  SPLITDB_KEY_FOREIGN_OPS("f") " LIMIT 1)"
							  "     FROM pg_catalog.pg_index f JOIN pg_catalog.pg_constraint k"
							  "       ON k.conindid = f.indexrelid AND k.conrelid = f.indrelid"
							  "    WHERE f.indrelid = c.oid AND f.indimmediate AND " KEY_SHAPE("f")
							  "    ORDER BY f.indisprimary DESC, f.indexrelid LIMIT 1)"
							  "  FROM splitdb.owned_relation o JOIN pg_catalog.pg_class c ON c.oid = o.relid"
							  " WHERE o.service = $1::pg_catalog.name AND c.relkind IN ('r', 'p')"
							  "   AND NOT c.relispartition"
							  "   AND NOT EXISTS (SELECT FROM pg_catalog.pg_index i"
							  "                    WHERE i.indrelid = c.oid AND i.indimmediate AND " KEY_SHAPE("i")
							  "                      AND NOT EXISTS (" SPLITDB_KEY_FOREIGN_OPS("i") "))"
							  " ORDER BY 1 LIMIT 1",
							  1, params, true);
#undef KEY_SHAPE
	if (SPI_processed == 0)
		return;
	table = splitdb_message_name(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	deferrable = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	foreign_ops = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
	if (foreign_ops != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("table \"%s\" of service \"%s\" has no key that an online migration can replay by",
						table, service),
				 errdetail("Its %s: the type's equality is an operator of its own, outside pg_catalog, and splitdb compares keys with pg_catalog's operators, under which such a type compares as the type it casts to.",
						   foreign_ops),
				 errhint("Migrate with mode => 'offline', which copies such a table in one pass, or add a primary key or unique key over NOT NULL columns of built-in types.")));
	if (deferrable != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("table \"%s\" of service \"%s\" has no key that an online migration can replay by",
						table, service),
				 errdetail("Its %s is DEFERRABLE: a deferrable key can hold duplicates until its transaction commits, so it cannot be an online migration's key.",
						   deferrable),
				 errhint("Add the key again without DEFERRABLE (PostgreSQL alters the deferrability of foreign keys only), or add another primary key or unique key over NOT NULL columns, or migrate with mode => 'offline': writes to the service's tables then wait until the job is done.")));
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("table \"%s\" of service \"%s\" has no primary key or unique key over NOT NULL columns",
					table, service),
			 errdetail("An online migration replays the writes made during the copy by key."),
			 errhint("Add a primary key to the table, or migrate with mode => 'offline': writes to the service's tables then wait until the job is done.")));
}

/*
 * check_rollback_cleaned
 *		Refuse a new job while the rollback of the service's last job
 *		(job_id, rolled_back) has not cleaned the sibling yet
 *		(splitdb.rollback.step restored): its registry still lists the
 *		sibling's tables of that job as due to drop, under the names a new
 *		job would make them with again, and the cleanup that finishes
 *		(splitdb_rollback() or splitdb_doctor(repair)) would drop the new
 *		job's live tables.
 */
static void
check_rollback_cleaned(const char *service, int64 job_id)
{
	const char *params[1] = {psprintf(INT64_FORMAT, job_id)};
	List	   *rows;

	splitdb_catalog_exec_text("SELECT r.step FROM splitdb.rollback r WHERE r.job_id = $1::pg_catalog.int8",
							  1, params, true);
	rows = splitdb_catalog_result_rows();
	if (rows == NIL || ((char **) linitial(rows))[0] == NULL ||
		strcmp(((char **) linitial(rows))[0], "done") == 0)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("the rollback of service \"%s\" has not cleaned its sibling yet", service),
			 errdetail("Job " INT64_FORMAT " is rolled_back, and the sibling still holds its tables, which a new job would make again under the same names.",
					   job_id),
			 errhint("Call splitdb_rollback('%s') again to finish the cleanup, then call splitdb_migrate('%s').",
					 service, service)));
}

/*
 * check_request
 *		Everything splitdb_migrate refuses, checked before anything starts.
 *
 * Sets *job to the service's last job, *resume when that job is resumed,
 * *job_id to the job the worker runs and, for a new job, *nrelations and
 * *relset_hash to the digest of the relations checked.  Returns the
 * service.
 */
static SplitdbService *
check_request(const char *service, bool online, SplitdbJobState *job, bool *resume,
			  int64 *job_id, int32 *nrelations, int32 *relset_hash)
{
	SplitdbService *svc;

	svc = splitdb_catalog_get_service(service, SPLITDB_LOCK_SHARE, false);
	check_transaction(service);
	*job = splitdb_jobstate_last(service);
	if (job->found && strcmp(job->state, "failed") != 0 &&
		strcmp(job->state, "cancelled") != 0 && strcmp(job->state, "rolled_back") != 0)
	{
		if (strcmp(job->state, "done") == 0 || strcmp(job->state, "finalized") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("service \"%s\" has already been migrated", service),
					 errdetail("Job " INT64_FORMAT " is %s; its tables live in database \"%s\".",
							   job->job_id, job->state, svc->dbname),
					 errhint("See SELECT * FROM splitdb_status.")));
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("a migration of service \"%s\" is already running", service),
				 errdetail("Job " INT64_FORMAT " is %s, in worker process %d.",
						   job->job_id, job->state, job->worker_pid),
				 errhint("Watch it in splitdb_status; call splitdb_migrate('%s') again if it fails.",
						 service)));
	}
	if (job->found && strcmp(job->state, "rolled_back") == 0)
		check_rollback_cleaned(service, job->job_id);

	*resume = job->found && strcmp(job->state, "failed") == 0;
	if (!*resume)
	{
		if (online)
			check_online_keys(service);
		splitdb_job_check_plan(service);
		relation_digest(service, false, nrelations, relset_hash);
	}
	check_sibling(service, svc->server, *resume ? job : NULL);

	if (*resume)
		*job_id = job->job_id;
	else
	{
		bool		isnull;

		splitdb_spi_exec("SELECT pg_catalog.nextval('splitdb.job_id_seq')", 0, NULL, NULL, NULL, false, 1);
		*job_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											  SPI_tuptable->tupdesc, 1, &isnull));
	}
	return svc;
}

/* the test hook's point named by splitdb.migrate_pause_at */
static SplitdbPausePoint
pause_point(const char *name)
{
	static const char *const names[] = {"", "copying", "catching_up", "cutover",
	"cutover_committing", "indexing", "verifying", "done"};

	for (int i = 0; i < lengthof(names); i++)
		if (strcmp(name == NULL ? "" : name, names[i]) == 0)
			return (SplitdbPausePoint) i;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid value for splitdb.migrate_pause_at: \"%s\"", name),
			 errhint("It is empty, copying, indexing, catching_up, verifying, cutover, cutover_committing or done.")));
}

/*
 * splitdb_migrate
 *		SQL: splitdb_migrate(service name, mode text = 'online',
 *		                     wait boolean = false) RETURNS bigint
 *
 * Starts the service's migration, or resumes its failed one, and returns
 * the job id.  With wait, returns when the job has ended and raises its
 * error if it failed.  A resumed job keeps the mode it was started in.
 */
Datum
splitdb_migrate(PG_FUNCTION_ARGS)
{
	char	   *service = pstrdup(NameStr(*PG_GETARG_NAME(0)));
	char	   *mode = text_to_cstring(PG_GETARG_TEXT_PP(1));
	bool		wait = PG_GETARG_BOOL(2);
	bool		online;
	SplitdbPausePoint pause_at;
	SplitdbService *svc;
	SplitdbWorkerArgs args;
	BackgroundWorkerHandle *handle;
	SplitdbJobState		job;
	bool		resume;
	int64		job_id;
	int32		nrelations = 0;
	int32		relset_hash = 0;

	splitdb_require_superuser("splitdb_migrate");

	if (strcmp(mode, "offline") != 0 && strcmp(mode, "online") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid migration mode \"%s\"", mode),
				 errhint("The mode is 'online' (the default: writes go on, and wait only for the cutover) or 'offline' (writes wait for the whole job).")));
	online = strcmp(mode, "online") == 0;
	pause_at = pause_point(splitdb_migrate_pause_at);

	splitdb_spi_connect();

	/* one caller at a time per service, until this transaction ends */
	splitdb_jobstate_lock_service(service);

	/*
	 * The checks read the catalogs and lock the service's tables and views
	 * on the way (pg_partition_tree, view query trees).  They run in a
	 * subtransaction that is rolled back, so those locks are released and
	 * the worker's cutover cannot wait for a caller that waits for it.
	 */
	{
		MemoryContext cxt = CurrentMemoryContext;
		ResourceOwner owner = CurrentResourceOwner;

		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(cxt);
		PG_TRY();
		{
			svc = check_request(service, online, &job, &resume, &job_id,
								&nrelations, &relset_hash);
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
	(void) svc;

	memset(&args, 0, sizeof(args));
	args.dboid = MyDatabaseId;
	args.roleoid = GetUserId();
	args.job_id = job_id;
	args.resume = resume;
	args.batch_rows = splitdb_batch_rows;
	args.copy_streams = splitdb_copy_streams;
	args.copy_readers = splitdb_copy_readers;
	args.fence_timeout = splitdb_fence_timeout;
	args.maintenance_work_mem = splitdb_maintenance_work_mem;
	args.nrelations = nrelations;
	args.relset_hash = relset_hash;
	args.online = online;
	args.pause_at = (int8) pause_at;
	{
		SplitdbCutoverSettings settings;

		splitdb_job_cutover_settings(job_id, &settings);
		args.cutover_lock_timeout = settings.lock_timeout;
		args.cutover_max_freeze = settings.max_freeze;
		args.cutover_attempts = settings.attempts;
	}
	strlcpy(args.service, service, sizeof(args.service));

	handle = splitdb_job_start_worker(&args, true);
	job = wait_for_claim(handle, &args);

	if (wait)
	{
		if (WaitForBackgroundWorkerShutdown(handle) == BGWH_POSTMASTER_DIED)
			ereport(FATAL,
					(errcode(ERRCODE_ADMIN_SHUTDOWN),
					 errmsg("postmaster exited while the worker of service \"%s\" ran", service)));
		job = splitdb_jobstate_last(service);
		if (strcmp(job.state, "done") != 0)
			raise_job_error(service, &job);
	}
	else if (strcmp(job.state, "failed") == 0)
		raise_job_error(service, &job);

	SPI_finish();
	PG_RETURN_INT64(job_id);
}
