/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  Resuming interrupted jobs after a server restart.
 *
 * With splitdb in shared_preload_libraries, a launcher starts once the
 * server accepts connections.  It lists the databases and, one at a time,
 * starts a short-lived resumer in each.  A resumer that finds splitdb
 * installed marks every job that was running when the server stopped as
 * failed ("the server restarted"), then starts a worker that resumes it as
 * the role that started it, with the cutover settings recorded in its row
 * (those it was started or last resumed with), not the server's.  Jobs
 * whose worker was terminated (SQLSTATE 57P01: a clean shutdown, or
 * pg_terminate_backend) are resumed as well; not those whose worker
 * splitdb_cancel() stopped (57014, jobexit.c), whose cancel a crash may
 * have cut short.
 * Without preloading nothing of this runs: the jobs read as failed and the
 * next splitdb_migrate() resumes them.
 *
 * The launcher also runs after every crash-restart (a backend killed with
 * SIGKILL, say), where the postmaster does not load the library again.  The
 * postmaster forgets a static worker that exits with status 0, and starts
 * one that exits with status 1 again after its bgw_restart_time, or at
 * once after a crash-restart (ResetBackgroundWorkerCrashTimes).  So the
 * launcher exits with status 1 and asks for the longest restart time: it
 * stays registered, without a process, and runs once per start of shared
 * memory.  A flag in shared memory, cleared by every crash-restart, tells
 * the rare timed restart (every LAUNCHER_RESTART_SECS) that the launcher
 * has already run: that one exits at once.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/launcher.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_database.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "compat.h"
#include "metadata/catalog.h"
#include "migrate/job.h"
#include "migrate/launcher.h"
#include "splitdb.h"

PGDLLEXPORT void splitdb_launcher_main(Datum main_arg);
PGDLLEXPORT void splitdb_resumer_main(Datum main_arg);

/*
 * The launcher's restart time, in seconds: the longest the postmaster
 * handles (it computes bgw_restart_time * 1000 in an int), about 24 days.
 */
#define LAUNCHER_RESTART_SECS	(INT_MAX / 1000)

/* set once the launcher has run since shared memory was (re)initialized */
typedef struct SplitdbLauncherShared
{
	pg_atomic_flag ran;
} SplitdbLauncherShared;

static SplitdbLauncherShared *launcher_shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
launcher_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(SplitdbLauncherShared)));
}

/* at server start and after every crash-restart: the flag is clear */
static void
launcher_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	launcher_shared = ShmemInitStruct("splitdb launcher",
									  sizeof(SplitdbLauncherShared), &found);
	if (!found)
		pg_atomic_init_flag(&launcher_shared->ran);
	LWLockRelease(AddinShmemInitLock);
}

/*
 * splitdb_launcher_register
 *		Register the launcher, and the shared memory of its flag; called
 *		from _PG_init while the server loads shared_preload_libraries.
 *
 * The launcher is started again after a crash-restart, and after
 * LAUNCHER_RESTART_SECS, since it exits with status 1 (see the file's
 * comment).
 */
void
splitdb_launcher_register(void)
{
	BackgroundWorker worker;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = launcher_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = launcher_shmem_startup;

	splitdb_bgworker_init(&worker, "splitdb_launcher_main", "splitdb launcher",
						  "splitdb launcher");
	worker.bgw_restart_time = LAUNCHER_RESTART_SECS;
	RegisterBackgroundWorker(&worker);
}

/*
 * databases
 *		The databases that accept connections, as a List of OIDs allocated
 *		in cxt (the transaction that reads them is gone when it returns).
 */
static List *
databases(MemoryContext cxt)
{
	List	   *result = NIL;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);

		if (db->datallowconn && !db->datistemplate)
		{
			MemoryContext old = MemoryContextSwitchTo(cxt);

			result = lappend_oid(result, db->oid);
			MemoryContextSwitchTo(old);
		}
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	PopActiveSnapshot();
	CommitTransactionCommand();
	return result;
}

/*
 * splitdb_launcher_main
 *		Start a resumer in each database, one after the other, then exit
 *		with status 1, so that the postmaster starts the launcher again
 *		after a crash-restart.  Once per start of shared memory: a timed
 *		restart finds the flag set and exits at once.
 */
void
splitdb_launcher_main(Datum main_arg)
{
	ListCell   *lc;
	List	   *dbs;
	MemoryContext cxt;
	int			visited = 0;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	if (!pg_atomic_test_set_flag(&launcher_shared->ran))
		proc_exit(1);

	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	/* nothing of the launcher's goes to TopMemoryContext */
	cxt = AllocSetContextCreate(TopMemoryContext, "splitdb launcher",
								ALLOCSET_SMALL_SIZES);
	dbs = databases(cxt);
	MemoryContextSwitchTo(cxt);
	foreach(lc, dbs)
	{
		BackgroundWorker worker;
		BackgroundWorkerHandle *handle;
		Oid			dboid = lfirst_oid(lc);

		splitdb_bgworker_init(&worker, "splitdb_resumer_main", "splitdb resumer",
							  "splitdb resumer");
		worker.bgw_main_arg = ObjectIdGetDatum(dboid);
		worker.bgw_notify_pid = MyProcPid;

		if (!RegisterDynamicBackgroundWorker(&worker, &handle))
		{
			ereport(LOG,
					(errmsg("no background worker slot free to look for interrupted jobs in database %u", dboid),
					 errhint("Raise max_worker_processes; interrupted jobs resume with the next splitdb_migrate().")));
			break;
		}
		if (WaitForBackgroundWorkerShutdown(handle) == BGWH_POSTMASTER_DIED)
			proc_exit(1);
		visited++;
	}
	ereport(LOG,
			(errmsg("the launcher looked for interrupted jobs in %d of %d databases",
					visited, list_length(dbs))));
	/* status 1: stay registered, to run again after a crash-restart */
	proc_exit(1);
}

/*
 * recorded
 *		A setting recorded in the job's row (column col of tup), or
 *		otherwise, when the row has none, the server's.
 */
static int32
recorded(HeapTuple tup, TupleDesc desc, int col, int32 otherwise)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? otherwise : DatumGetInt32(d);
}

/*
 * splitdb_resumer_main
 *		In one database: fail and resume the jobs a restart interrupted.
 */
void
splitdb_resumer_main(Datum main_arg)
{
	static const char *const mark_sql =
		"UPDATE splitdb.job SET state = 'failed',"
		" last_error = 'the server restarted while the job was running',"
		" last_sqlstate = '57P01', worker_pid = NULL,"
		" updated_at = pg_catalog.clock_timestamp()"
		" WHERE splitdb.job_worker_gone(state, worker_pid)"
		"    OR (state = 'failed' AND last_sqlstate = '57P01')"
		" RETURNING job_id, service, started_by, mode, cutover_lock_timeout, cutover_max_freeze,"
		"           cutover_max_attempts";
	Oid			dboid = DatumGetObjectId(main_arg);
	MemoryContext jobs_cxt;
	List	   *jobs = NIL;
	ListCell   *lc;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);

	/* the jobs to resume outlive the transaction that marks them */
	jobs_cxt = AllocSetContextCreate(TopMemoryContext, "splitdb resumer",
									 ALLOCSET_SMALL_SIZES);

	StartTransactionCommand();
	/* not the database's search_path (ALTER DATABASE ... SET): pg_catalog's names */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION);
	PushActiveSnapshot(GetTransactionSnapshot());
	/* splitdb installed, at a version with jobs */
	if (OidIsValid(get_extension_oid("splitdb", true)) &&
		OidIsValid(get_namespace_oid("splitdb", true)) &&
		OidIsValid(get_relname_relid("job", get_namespace_oid("splitdb", true))))
	{
		int			rc;

		splitdb_spi_connect();
		rc = splitdb_spi_exec(mark_sql, 0, NULL, NULL, NULL, false, 0);
		if (rc != SPI_OK_UPDATE_RETURNING)
			splitdb_spi_failed(mark_sql, rc);
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			MemoryContext old = MemoryContextSwitchTo(jobs_cxt);
			SplitdbWorkerArgs *args = palloc0(sizeof(SplitdbWorkerArgs));
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;

			args->dboid = dboid;
			args->job_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
			strlcpy(args->service, SPI_getvalue(tup, desc, 2), sizeof(args->service));
			args->roleoid = DatumGetObjectId(SPI_getbinval(tup, desc, 3, &isnull));
			args->online = strcmp(SPI_getvalue(tup, desc, 4), "online") == 0;
			args->resume = true;
			args->batch_rows = splitdb_batch_rows;
			args->copy_streams = splitdb_copy_streams;
			args->copy_readers = splitdb_copy_readers;
			/* the settings the job was started (or last resumed) with */
			args->cutover_lock_timeout = recorded(tup, desc, 5, splitdb_cutover_lock_timeout);
			args->cutover_max_freeze = recorded(tup, desc, 6, splitdb_cutover_max_freeze);
			args->cutover_attempts = recorded(tup, desc, 7, splitdb_cutover_attempts);
			jobs = lappend(jobs, args);
			MemoryContextSwitchTo(old);
		}
		SPI_finish();
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(jobs_cxt);

	/* the failures are committed: now resume */
	foreach(lc, jobs)
	{
		SplitdbWorkerArgs *args = (SplitdbWorkerArgs *) lfirst(lc);

		if (splitdb_job_start_worker(args, false) == NULL)
			ereport(LOG,
					(errmsg("no background worker slot free to resume job " INT64_FORMAT " of service \"%s\"",
							args->job_id, args->service),
					 errhint("Call splitdb_migrate('%s') to resume it.", args->service)));
		else
			ereport(LOG,
					(errmsg("resuming job " INT64_FORMAT " of service \"%s\" after a restart",
							args->job_id, args->service)));
	}
	proc_exit(0);
}
