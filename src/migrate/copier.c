/*-------------------------------------------------------------------------
 *
 * copier.c
 *	  The readers of a large table: the job's worker and its copiers.
 *
 * A table split into key ranges (range.c) is read by several processes at
 * once: the job's worker and up to splitdb.copy_readers - 1 copiers,
 * dynamic background workers it starts for the table ("splitdb copier",
 * never restarted), each connected to the source database as the job's
 * role.  Every reader takes ranges that no other reader holds, one at a
 * time, until none is left, and sends them to the sibling over streams of
 * its own: splitdb.copy_streams divided among the readers, at least one
 * each.  Each copier's connections join the run's fence (fence.c) before
 * anything else.
 *
 * The worker and its copiers share a small dynamic shared memory segment:
 * what the copiers need to know of the job and table, and one slot per
 * copier in which it reports that it runs, that it is done, or why it
 * stopped.
 *
 * Invariants:
 * - A copier that stops before its work is done (an error,
 *   pg_terminate_backend, a shutdown) fails the job: the worker, which
 *   looks at its copiers before each batch and while it waits for them,
 *   raises an error naming the copier and its reason, and on that error
 *   stops the other copiers and waits for them before it records the
 *   failure.  A copier that never started (no free worker slot) only
 *   means fewer readers: the others take its ranges.
 * - A copier stops when the job's worker does: the worker terminates its
 *   copiers on every way out (worker.c); besides, a copier checks before
 *   each batch that the worker's process is still there, and records a
 *   checkpoint only while the worker still runs the job (range.c), so
 *   one that lingers changes nothing a later run relies on.
 * - Every range is done when the table is recorded as copied: the worker
 *   copies itself, once its copiers have ended, any range none took.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/copier.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/procarray.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/backend_status.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

#include "metadata/catalog.h"
#include "migrate/copier.h"
#include "migrate/fence.h"
#include "migrate/job.h"
#include "migrate/range.h"
#include "migrate/worker_int.h"
#include "remote/remote.h"
#include "splitdb.h"

PGDLLEXPORT void splitdb_copier_main(Datum main_arg);

/* how often the worker looks at its copiers while it waits for them, ms */
#define COPIER_POLL_MS	100

typedef enum CopierState
{
	COPIER_STARTING,			/* registered, not running yet */
	COPIER_RUNNING,
	COPIER_DONE,				/* no range left that it could take */
	COPIER_FAILED				/* stopped; why is in error */
} CopierState;

/* one copier's report */
typedef struct CopierSlot
{
	CopierState state;
	int			pid;
	int			sqlerrcode;
	char		error[512];
} CopierSlot;

/* the shared segment: the job, the table, the copiers' slots */
typedef struct CopierShared
{
	slock_t		mutex;			/* protects the slots */
	int64		job_id;
	int64		batch_rows;
	Oid			relid;
	int			worker_pid;
	int			nstreams;		/* each copier's connections to the sibling */
	bool		replica;		/* they write in replica (splitdb_copy_replica) */
	char		service[NAMEDATALEN];
	char		server[NAMEDATALEN];
	char		table[2 * NAMEDATALEN + 8];
	CopierSlot	slots[FLEXIBLE_ARRAY_MEMBER];
} CopierShared;

/* what a copier is started with, in bgw_extra; the segment's handle is its main_arg */
typedef struct CopierArgs
{
	Oid			dboid;
	Oid			roleoid;
	int			slot;
} CopierArgs;

StaticAssertDecl(sizeof(CopierArgs) <= BGW_EXTRALEN, "CopierArgs must fit in bgw_extra");

/* in the worker: the copiers of the table being copied */
static dsm_segment *worker_seg = NULL;
static CopierShared *worker_shared = NULL;
static BackgroundWorkerHandle *handles[SPLITDB_MAX_COPY_READERS];
static bool finished[SPLITDB_MAX_COPY_READERS];
static int	nhandles = 0;

/* in a copier: its slot and its connections */
static CopierShared *my_shared = NULL;
static CopierSlot *my_slot = NULL;
static PGconn *my_conns[SPLITDB_MAX_COPY_STREAMS];
static int	my_nconns = 0;
static MemoryContext copier_cxt = NULL;

/* set a copier's slot */
static void
report(CopierShared *shared, CopierSlot *slot, CopierState state, int code,
	   const char *error)
{
	SpinLockAcquire(&shared->mutex);
	slot->state = state;
	slot->pid = MyProcPid;
	slot->sqlerrcode = code;
	strlcpy(slot->error, error ? error : "", sizeof(slot->error));
	SpinLockRelease(&shared->mutex);
}

/*
 * release_copiers
 *		Forget the copiers of the table, once they have all exited.
 */
static void
release_copiers(void)
{
	for (int i = 0; i < nhandles; i++)
		pfree(handles[i]);
	nhandles = 0;
	if (worker_seg != NULL)
		dsm_detach(worker_seg);
	worker_seg = NULL;
	worker_shared = NULL;
}

/*
 * splitdb_copier_stop_all
 *		Terminate the copiers of the table being copied, if any; with wait,
 *		wait until they have exited and forget them.  The worker calls it on
 *		every way out: without wait from its exit callback, with wait after
 *		an error, before it records the job's failure.
 */
void
splitdb_copier_stop_all(bool wait)
{
	for (int i = 0; i < nhandles; i++)
		TerminateBackgroundWorker(handles[i]);
	if (!wait)
		return;
	for (int i = 0; i < nhandles; i++)
		(void) WaitForBackgroundWorkerShutdown(handles[i]);
	release_copiers();
}

/*
 * check_copiers
 *		Before each of the worker's batches, and while it waits: raise an
 *		error when a copier failed or exited without finishing; note those
 *		that are done or never started.  Returns true when none runs.
 */
static bool
check_copiers(void)
{
	bool		all = true;

	for (int i = 0; i < nhandles; i++)
	{
		CopierSlot	slot;
		pid_t		pid;
		BgwHandleStatus status;

		if (finished[i])
			continue;
		status = GetBackgroundWorkerPid(handles[i], &pid);
		SpinLockAcquire(&worker_shared->mutex);
		slot = worker_shared->slots[i];
		SpinLockRelease(&worker_shared->mutex);

		if (status == BGWH_POSTMASTER_DIED)
			ereport(FATAL,
					(errcode(ERRCODE_ADMIN_SHUTDOWN),
					 errmsg("postmaster exited while table \"%s\" was copied",
							splitdb_message_name(worker_shared->table))));
		if (slot.state == COPIER_FAILED ||
			(status == BGWH_STOPPED && slot.state == COPIER_RUNNING))
			ereport(ERROR,
					(errcode(slot.state == COPIER_FAILED ? slot.sqlerrcode : ERRCODE_INTERNAL_ERROR),
					 errmsg("copier %d (pid %d) of table \"%s\" stopped: %s", i + 1, slot.pid,
							splitdb_message_name(worker_shared->table),
							slot.state == COPIER_FAILED ? slot.error : "it exited without a report"),
					 errhint("The other readers stop too; call splitdb_migrate('%s') again: every range of the table resumes from its own checkpoint.",
							 worker_shared->service)));
		if (status == BGWH_STOPPED)
		{
			if (slot.state == COPIER_STARTING)
				ereport(LOG,
						(errmsg("copier %d of job " INT64_FORMAT " of service \"%s\" exited before it started; the other readers copy table %s",
								i + 1, worker_shared->job_id, worker_shared->service,
								worker_shared->table)));
			finished[i] = true;
			continue;
		}
		all = false;
	}
	return all;
}

/* check_copiers() as a reader's check: the worker's before each batch */
static void
check_copiers_cb(void *arg)
{
	(void) check_copiers();
}

/*
 * wait_copiers
 *		Wait until every copier has exited, raising an error as soon as one
 *		fails; then forget them.
 */
static void
wait_copiers(void)
{
	pgstat_report_activity(STATE_RUNNING, "waiting for the copiers");
	while (!check_copiers())
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 COPIER_POLL_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	pgstat_report_activity(STATE_IDLE, NULL);
	release_copiers();
}

/*
 * start_copiers
 *		Start up to n copiers for table t, each with nstreams streams.
 *		Returns how many were registered: fewer when background worker
 *		slots ran out, which is logged.
 */
static int
start_copiers(SplitdbJob *job, SplitdbJobTable *t, int n, int nstreams)
{
	Size		size = offsetof(CopierShared, slots) + sizeof(CopierSlot) * n;
	MemoryContext old = MemoryContextSwitchTo(job->job_cxt);

	worker_seg = dsm_create(size, 0);
	dsm_pin_mapping(worker_seg);
	worker_shared = dsm_segment_address(worker_seg);
	memset(worker_shared, 0, size);
	SpinLockInit(&worker_shared->mutex);
	worker_shared->job_id = job->job_id;
	worker_shared->batch_rows = job->batch_rows;
	worker_shared->relid = t->relid;
	worker_shared->worker_pid = MyProcPid;
	worker_shared->nstreams = nstreams;
	worker_shared->replica = job->copy_replica;
	strlcpy(worker_shared->service, job->service, sizeof(worker_shared->service));
	strlcpy(worker_shared->server, job->server, sizeof(worker_shared->server));
	strlcpy(worker_shared->table, t->name, sizeof(worker_shared->table));

	for (int i = 0; i < n; i++)
	{
		BackgroundWorker worker;
		CopierArgs	args = {MyDatabaseId, GetUserId(), i};

		splitdb_bgworker_init(&worker, "splitdb_copier_main",
							  psprintf("splitdb copier %d for service %s", i + 1, job->service),
							  SPLITDB_COPIER_TYPE);
		worker.bgw_main_arg = UInt32GetDatum(dsm_segment_handle(worker_seg));
		memcpy(worker.bgw_extra, &args, sizeof(args));
		worker.bgw_notify_pid = MyProcPid;
		finished[nhandles] = false;
		if (!RegisterDynamicBackgroundWorker(&worker, &handles[nhandles]))
			break;
		nhandles++;
	}
	MemoryContextSwitchTo(old);
	if (nhandles < n)
		ereport(LOG,
				(errmsg("job " INT64_FORMAT " of service \"%s\" reads table %s with %d reader%s instead of %d: no background worker slot was free for the others (max_worker_processes = %d)",
						job->job_id, job->service, t->name, nhandles + 1,
						nhandles == 0 ? "" : "s", n + 1, max_worker_processes)));
	return nhandles;
}

/* the number of rows the job counted in table t while preparing */
static int64
rows_total(SplitdbJob *job, SplitdbJobTable *t)
{
	const char *params[2] = {splitdb_worker_int64_text(job->job_id),
	splitdb_worker_oid_text(t->relid)};
	bool		isnull;
	Datum		d;

	splitdb_worker_sql("SELECT rows_total FROM splitdb.job_table"
					   " WHERE job_id = $1::bigint AND relid = $2::oid", 2, params);
	if (SPI_processed != 1)
		return 0;
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? 0 : DatumGetInt64(d);
}

/* record a table's phase, in the catalog and in t; in a transaction */
static void
set_phase(SplitdbJob *job, SplitdbJobTable *t, SplitdbTablePhase phase)
{
	const char *params[3] = {splitdb_worker_int64_text(job->job_id),
		splitdb_worker_oid_text(t->relid),
	splitdb_worker_table_phase_name(phase)};

	splitdb_worker_sql("UPDATE splitdb.job_table SET phase = $3, updated_at = pg_catalog.clock_timestamp()"
					   " WHERE job_id = $1::bigint AND relid = $2::oid", 3, params);
	t->phase = phase;
}

/*
 * load_ranges
 *		The ranges of table t, planned now when its copy starts (phase
 *		created) and it is large enough, in the step's memory.  NIL: the
 *		table is copied whole, by the worker alone.
 */
static List *
load_ranges(SplitdbJob *job, SplitdbJobTable *t)
{
	List	   *ranges;
	MemoryContext old;

	splitdb_worker_begin("planning the ranges of %s", t->name);
	if (t->phase == SPLITDB_TABLE_CREATED)
	{
		int64		rows = rows_total(job, t);
		int			n = splitdb_range_count(rows, job->copy_readers);

		/* ranges of a copy that verification sent back are planned anew */
		splitdb_range_forget(job->job_id, t->relid);
		if (n < 2 || splitdb_range_plan(job->job_id, t->relid, t->src, rows, n) == 0)
		{
			splitdb_worker_commit();
			return NIL;
		}
		{
			const char *params[3] = {splitdb_worker_int64_text(job->job_id),
				splitdb_worker_oid_text(t->relid),
			splitdb_worker_table_phase_name(SPLITDB_TABLE_COPYING)};

			splitdb_worker_sql("UPDATE splitdb.job_table SET phase = $3, rows_copied = 0, bytes_copied = 0,"
							   " last_key = NULL, updated_at = pg_catalog.clock_timestamp()"
							   " WHERE job_id = $1::bigint AND relid = $2::oid", 3, params);
			t->phase = SPLITDB_TABLE_COPYING;
		}
	}
	old = MemoryContextSwitchTo(job->step_cxt);
	ranges = splitdb_range_load(job->job_id, t->relid);
	MemoryContextSwitchTo(old);
	splitdb_worker_commit();
	return ranges;
}

/*
 * splitdb_copier_copy_table
 *		Copy table t by key ranges with several readers, when it has ranges
 *		or is large enough to be given some.
 *
 * t->src is built and has a key; the sibling's table is empty (phase
 * created) or holds the rows of an earlier run.  Each range not done is
 * first trimmed back to its checkpoint, then the readers copy.  Returns
 * false, having copied nothing, when the table is to be copied whole; true
 * once every range is done and the table is recorded as copied.
 */
bool
splitdb_copier_copy_table(SplitdbJob *job, SplitdbJobTable *t)
{
	List	   *ranges = load_ranges(job, t);
	ListCell   *lc;
	int			open = 0;
	int			readers;
	int			nstreams;
	SplitdbRangeReader rd;

	if (ranges == NIL)
		return false;

	/* rows an earlier run sent beyond each range's checkpoint */
	splitdb_worker_begin("trimming the ranges of %s", t->name);
	foreach(lc, ranges)
	{
		SplitdbRange *r = (SplitdbRange *) lfirst(lc);

		if (r->done)
			continue;
		splitdb_copy_trim(job->conn, t->src, &r->bounds, r->last_key, job->service);
		open++;
	}
	splitdb_worker_commit();

	readers = Max(Min(job->copy_readers, open), 1);
	nstreams = Max(job->copy_streams / readers, 1);
	ereport(LOG,
			(errmsg("job " INT64_FORMAT " of service \"%s\" copies table %s in %d ranges (%d to go) with %d reader%s of %d stream%s each",
					job->job_id, job->service, t->name, list_length(ranges), open,
					readers, readers == 1 ? "" : "s", nstreams, nstreams == 1 ? "" : "s")));
	if (readers > 1)
		start_copiers(job, t, readers - 1, nstreams);

	memset(&rd, 0, sizeof(rd));
	rd.job_id = job->job_id;
	rd.worker_pid = MyProcPid;
	rd.relid = t->relid;
	rd.table = t->name;
	rd.service = job->service;
	rd.src = t->src;
	rd.conns = job->streams;
	rd.nconns = Min(nstreams, job->copy_streams);
	rd.batch_rows = job->batch_rows;
	rd.check = nhandles > 0 ? check_copiers_cb : NULL;
	(void) splitdb_range_read(&rd, false);
	if (nhandles > 0)
		wait_copiers();

	/* the ranges no copier took: a copier that never started */
	rd.check = NULL;
	(void) splitdb_range_read(&rd, true);

	splitdb_worker_begin("copied %s", t->name);
	foreach(lc, splitdb_range_load(job->job_id, t->relid))
		if (!((SplitdbRange *) lfirst(lc))->done)
			elog(ERROR, "range %d of table %s is not copied", ((SplitdbRange *) lfirst(lc))->range_no,
				 t->name);
	set_phase(job, t, SPLITDB_TABLE_COPIED);
	splitdb_worker_commit();
	return true;
}

/*
 * copier_check
 *		A copier's check before each batch: stop when the job's worker is
 *		gone.
 */
static void
copier_check(void *arg)
{
	if (BackendPidGetProc(my_shared->worker_pid) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_ADMIN_SHUTDOWN),
				 errmsg("the worker (pid %d) of job " INT64_FORMAT " of service \"%s\" is gone",
						my_shared->worker_pid, my_shared->job_id, my_shared->service),
				 errhint("The next run of the job copies table \"%s\" on from each range's checkpoint.",
						 splitdb_message_name(my_shared->table))));
}

/*
 * copier_exit
 *		before_shmem_exit callback of a copier: close its connections, and
 *		report a copier stopped before its work was done (terminated, or a
 *		shutdown) as failed.
 */
static void
copier_exit(int code, Datum arg)
{
	while (my_nconns > 0)
		splitdb_remote_disconnect(my_conns[--my_nconns]);
	if (my_slot != NULL && (my_slot->state == COPIER_STARTING || my_slot->state == COPIER_RUNNING))
		report(my_shared, my_slot, COPIER_FAILED, ERRCODE_ADMIN_SHUTDOWN,
			   psprintf("the copier (pid %d) was terminated before its ranges were copied",
						MyProcPid));
}

/* error context callback: which copier, job and table a message is about */
static void
copier_error_context(void *arg)
{
	errcontext("splitdb copier of job " INT64_FORMAT " of service \"%s\", table %s",
			   my_shared->job_id, my_shared->service, my_shared->table);
}

/*
 * run_copier
 *		Connect to the sibling, join the run's fence, and copy ranges of the
 *		table until none is left.
 */
static void
run_copier(void)
{
	SplitdbRangeReader rd;
	MemoryContext old;

	splitdb_worker_begin("connecting to the sibling");
	while (my_nconns < my_shared->nstreams)
	{
		PGconn	   *conn = splitdb_remote_connect_server(my_shared->server, my_shared->service);

		my_conns[my_nconns++] = conn;
		splitdb_fence_join(conn, my_shared->job_id, my_shared->service);
		if (my_shared->replica)
			splitdb_copy_replica(conn, true, my_shared->service);
	}
	splitdb_worker_commit();

	/* the copy source lives as long as the copier */
	memset(&rd, 0, sizeof(rd));
	splitdb_worker_begin("reading table %s", my_shared->table);
	old = MemoryContextSwitchTo(copier_cxt);
	rd.src = splitdb_copy_source(my_shared->relid);
	MemoryContextSwitchTo(old);
	splitdb_worker_commit();

	rd.job_id = my_shared->job_id;
	rd.worker_pid = my_shared->worker_pid;
	rd.relid = my_shared->relid;
	rd.table = my_shared->table;
	rd.service = my_shared->service;
	rd.conns = my_conns;
	rd.nconns = my_nconns;
	rd.batch_rows = my_shared->batch_rows;
	rd.check = copier_check;
	(void) splitdb_range_read(&rd, false);
}

/*
 * splitdb_copier_main
 *		Entry point of a copier.
 */
void
splitdb_copier_main(Datum main_arg)
{
	CopierArgs	args;
	dsm_segment *seg;
	ErrorContextCallback errcallback;

	memcpy(&args, MyBgworkerEntry->bgw_extra, sizeof(args));
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(args.dboid, args.roleoid, 0);

	seg = dsm_attach(DatumGetUInt32(main_arg));
	if (seg == NULL)
	{
		ereport(LOG,
				(errmsg("a splitdb copier exits: the worker that started it is gone")));
		proc_exit(0);
	}
	dsm_pin_mapping(seg);
	my_shared = dsm_segment_address(seg);
	my_slot = &my_shared->slots[args.slot];
	before_shmem_exit(copier_exit, (Datum) 0);
	report(my_shared, my_slot, COPIER_RUNNING, 0, NULL);

	splitdb_worker_pin_settings(SPLITDB_COPIER_TYPE);
	copier_cxt = AllocSetContextCreate(TopMemoryContext, "splitdb copier",
									   ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(copier_cxt);
	errcallback.callback = copier_error_context;
	errcallback.arg = NULL;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	PG_TRY();
	{
		run_copier();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		HOLD_INTERRUPTS();
		MemoryContextSwitchTo(copier_cxt);
		edata = CopyErrorData();
		EmitErrorReport();
		FlushErrorState();
		AbortOutOfAnyTransaction();
		report(my_shared, my_slot, COPIER_FAILED, edata->sqlerrcode,
			   edata->detail ? psprintf("%s (%s)", edata->message, edata->detail) : edata->message);
		RESUME_INTERRUPTS();
		proc_exit(1);
	}
	PG_END_TRY();

	while (my_nconns > 0)
		splitdb_remote_disconnect(my_conns[--my_nconns]);
	report(my_shared, my_slot, COPIER_DONE, 0, NULL);
	error_context_stack = errcallback.previous;
	proc_exit(0);
}
