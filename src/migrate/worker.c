/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The background worker that carries a migration job through its states.
 *
 * One dynamic background worker runs one job, as the role that called
 * splitdb_migrate().  It takes the job (writing its row), blocks writes to
 * the service's tables for the whole job (offline mode: session-level SHARE
 * locks, so reads go on), and then runs the steps of the contract, each in
 * transactions of its own, recording every step in splitdb.job and
 * splitdb.job_table:
 *
 *	 preparing    types, sequences, tables with their keys, in the sibling
 *	 copying      the rows, in key-ordered batches, one checkpoint each
 *	 indexing     secondary indexes, constraints, foreign keys, triggers
 *	 verifying    counts and checksums on both sides
 *	 cutting_over archive, shims, views, sequences (cutover.c)
 *
 * Invariants:
 * - Any error stops the job in state failed, with the message and SQLSTATE
 *   in its row; phase keeps the step it stopped in, and the next
 *   splitdb_migrate() starts a new worker that continues from there.  A
 *   worker killed before it could record anything is seen as failed by
 *   splitdb_status and splitdb_migrate (its pid is gone).
 * - Every step can run again after a crash: each run first ends or waits
 *   out the sibling sessions of earlier runs (fence.c), so nothing a dead
 *   run sent commits behind its back; DDL is guarded by existence checks,
 *   a table's copy goes back to its checkpoint, and the cutover is a
 *   single transaction.
 * - A job has at least one table: a new job is recorded only with the
 *   relations splitdb_migrate() checked, and a job without any fails.
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
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "tcop/tcopprot.h"
#include "utils/backend_status.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "metadata/catalog.h"
#include "compat.h"
#include "migrate/copy.h"
#include "migrate/cutover.h"
#include "migrate/ddl.h"
#include "migrate/fence.h"
#include "migrate/job.h"
#include "remote/remote.h"
#include "splitdb.h"
#include "migrate/verify.h"

PGDLLEXPORT void splitdb_worker_main(Datum main_arg);

/* one table of the job */
typedef struct JobTable
{
	Oid			relid;
	char	   *name;			/* original name, quoted; also the sibling's */
	char		relkind;
	char	   *phase;
	int64		rows_copied;
	char	  **last_key;		/* the checkpoint, text form; NULL for none */
	SplitdbCopySource *src;		/* built when first needed */
} JobTable;

/* the job this worker runs */
typedef struct Job
{
	int64		job_id;
	char	   *service;
	char	   *server;
	char	   *phase;
	List	   *tables;			/* JobTable, by name */
	List	   *relids;			/* every relation, partitions included */
	PGconn	   *conn;			/* the sibling */
	int64		batch_rows;		/* rows per copy batch */
	int			copy_streams;	/* connections a batch is copied over */
	PGconn	   *streams[SPLITDB_MAX_COPY_STREAMS];	/* [0] is conn */
} Job;

/* the job's memory, which lives across its transactions */
static MemoryContext job_cxt = NULL;

/* set while a job runs, for the exit callback */
static int64 running_job_id = 0;

/* this worker took the job (and may record its failure) */
static bool job_claimed = false;
static PGconn *running_conn = NULL;

/* the copy's connections beyond running_conn, closed on every way out */
static PGconn *extra_streams[SPLITDB_MAX_COPY_STREAMS];
static int	n_extra_streams = 0;

/*
 * close_extra_streams
 *		Close the copy's extra connections, if any are open.
 */
static void
close_extra_streams(void)
{
	while (n_extra_streams > 0)
	{
		n_extra_streams--;
		splitdb_remote_disconnect(extra_streams[n_extra_streams]);
		extra_streams[n_extra_streams] = NULL;
	}
}

/*
 * begin_tx / end_tx
 *		A transaction of the worker, connected to SPI, with a snapshot.
 */
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
end_tx(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * run_sql
 *		Run a catalog statement with text parameters (NULL entries are SQL
 *		NULLs); the statement casts them.
 */
static void
run_sql(const char *sql, int nparams, const char *const *params)
{
	splitdb_catalog_exec_text(sql, nparams, params, false);
}

static char *
int64_text(int64 v)
{
	return psprintf(INT64_FORMAT, v);
}

/* the text[] literal of a key, for splitdb.job_table.last_key */
static char *
key_text(char **key, int nkeys)
{
	return key == NULL ? NULL : splitdb_catalog_text_array(key, nkeys);
}

/*
 * set_state
 *		Enter a state; the phase follows it, so a resumed job starts here.
 */
static void
set_state(Job *job, const char *state)
{
	const char *params[2] = {int64_text(job->job_id), state};

	run_sql("UPDATE splitdb.job SET state = $2, phase = $2, current_table = NULL,"
			" updated_at = pg_catalog.clock_timestamp() WHERE job_id = $1::bigint",
			2, params);
	job->phase = MemoryContextStrdup(job_cxt, state);
	elog(LOG, "splitdb: job " INT64_FORMAT " of service \"%s\" is %s",
		 job->job_id, job->service, state);
}

static void
set_current_table(Job *job, const char *name)
{
	const char *params[2] = {int64_text(job->job_id), name};

	run_sql("UPDATE splitdb.job SET current_table = $2, updated_at = pg_catalog.clock_timestamp()"
			" WHERE job_id = $1::bigint", 2, params);
}

static void
set_table_phase(Job *job, JobTable *t, const char *phase)
{
	const char *params[3] = {int64_text(job->job_id), psprintf("%u", t->relid), phase};

	run_sql("UPDATE splitdb.job_table SET phase = $3, updated_at = pg_catalog.clock_timestamp()"
			" WHERE job_id = $1::bigint AND relid = $2::oid", 3, params);
	t->phase = MemoryContextStrdup(job_cxt, phase);
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
	const char *params[1] = {int64_text(args->job_id)};
	int32		n;
	int32		hash;
	bool		isnull;

	run_sql(SPLITDB_RELSET_SQL("SELECT relid FROM splitdb.job_table WHERE job_id = $1::bigint"),
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
 * claim_job
 *		Write the job's row (a new job) or take it over (a resumed one), with
 *		this worker's pid, and commit, which is what splitdb_migrate waits
 *		for.  Returns false, having written nothing, when another worker
 *		runs the job.
 */
static bool
claim_job(const SplitdbWorkerArgs *args)
{
	const char *params[5];
	bool		isnull;

	begin_tx("claiming the job");

	/*
	 * One worker per job: a session lock on the job id, held until exit.  A
	 * second worker (say, splitdb_migrate() racing the launcher's resumer)
	 * leaves the job alone.
	 */
	{
		Oid			types[2] = {INT4OID, INT4OID};
		Datum		values[2] = {Int32GetDatum(SPLITDB_JOB_LOCK_KEY),
		Int32GetDatum((int32) args->job_id)};

		if (SPI_execute_with_args("SELECT pg_catalog.pg_try_advisory_lock($1, $2)",
								  2, types, values, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not lock job " INT64_FORMAT, args->job_id);
		if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
		{
			end_tx();
			ereport(LOG,
					(errmsg("splitdb: job " INT64_FORMAT " of service \"%s\" is run by another worker; this one exits",
							args->job_id, args->service)));
			return false;
		}
	}

	params[0] = int64_text(args->job_id);
	params[1] = args->service;
	params[2] = args->mode;
	params[3] = psprintf("%u", args->roleoid);
	params[4] = psprintf("%d", MyProcPid);
	if (!args->resume)
	{
		run_sql("INSERT INTO splitdb.job (job_id, service, mode, state, phase, started_by, worker_pid)"
				" VALUES ($1::bigint, $2::name, $3, 'queued', 'queued', $4::oid, $5::integer)",
				5, params);
		run_sql("INSERT INTO splitdb.job_table (job_id, relid, table_name, relkind, partition_root)"
				" SELECT $1::bigint, r.relid, format('%I.%I', n.nspname, c.relname), c.relkind,"
				"        r.partition_root"
				"   FROM (" SPLITDB_OWNED_RELATION_SQL ") r"
				"   JOIN pg_class c ON c.oid = r.relid JOIN pg_namespace n ON n.oid = c.relnamespace"
				"  WHERE r.service = $2::name",
				2, params);
		check_relations(args);
	}
	else
	{
		const char *p[2] = {params[0], params[4]};

		run_sql("UPDATE splitdb.job SET state = 'queued', worker_pid = $2::integer, runs = runs + 1,"
				" last_error = NULL, last_sqlstate = NULL, finished_at = NULL,"
				" copy_started_at = NULL, copy_finished_at = NULL, updated_at = pg_catalog.clock_timestamp()"
				" WHERE job_id = $1::bigint", 2, p);
	}
	end_tx();
	return true;
}

/*
 * load_job
 *		Read the job, its service and its tables into job_cxt.
 */
static Job *
load_job(const SplitdbWorkerArgs *args)
{
	const char *params[1];
	Job		   *job;
	MemoryContext old;

	begin_tx("loading the job");
	params[0] = int64_text(args->job_id);
	run_sql("SELECT s.server, j.phase FROM splitdb.job j JOIN splitdb.service s ON s.service = j.service"
			" WHERE j.job_id = $1::bigint", 1, params);
	if (SPI_processed != 1)
		elog(ERROR, "job " INT64_FORMAT " does not exist", args->job_id);

	old = MemoryContextSwitchTo(job_cxt);
	job = palloc0(sizeof(Job));
	job->job_id = args->job_id;
	job->batch_rows = args->batch_rows > 0 ? args->batch_rows : splitdb_batch_rows;
	job->copy_streams = args->copy_streams > 0 ?
		Min(args->copy_streams, SPLITDB_MAX_COPY_STREAMS) : splitdb_copy_streams;
	job->service = pstrdup(args->service);
	job->server = pstrdup(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	job->phase = pstrdup(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2));
	MemoryContextSwitchTo(old);

	run_sql("SELECT relid, table_name, relkind, phase, rows_copied, last_key FROM splitdb.job_table"
			" WHERE job_id = $1::bigint ORDER BY table_name", 1, params);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		JobTable   *t;

		old = MemoryContextSwitchTo(job_cxt);
		t = palloc0(sizeof(JobTable));
		t->relid = DatumGetObjectId(SPI_getbinval(tup, desc, 1, &isnull));
		t->name = pstrdup(SPI_getvalue(tup, desc, 2));
		t->relkind = DatumGetChar(SPI_getbinval(tup, desc, 3, &isnull));
		t->phase = pstrdup(SPI_getvalue(tup, desc, 4));
		t->rows_copied = DatumGetInt64(SPI_getbinval(tup, desc, 5, &isnull));
		{
			int			n;

			t->last_key = splitdb_catalog_array_elems(tup, desc, 6, &n);
		}
		job->tables = lappend(job->tables, t);
		job->relids = lappend_oid(job->relids, t->relid);
		MemoryContextSwitchTo(old);
	}
	end_tx();

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
 */
static void
block_writes(Job *job)
{
	ListCell   *lc;

	begin_tx("waiting for writes to the service's tables to end");
	foreach(lc, job->tables)
	{
		JobTable   *t = (JobTable *) lfirst(lc);
		LockRelId	relid = {t->relid, MyDatabaseId};

		if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(t->relid)))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("table %s of service \"%s\" no longer exists", t->name, job->service),
					 errhint("A table was dropped while its migration was under way.")));
		LockRelationIdForSession(&relid, ShareLock);
	}
	end_tx();
}

/*
 * step_prepare
 *		Count the rows, record the cross-service references, and create in
 *		the sibling everything that comes before the data, in one remote
 *		transaction.
 */
static void
step_prepare(Job *job)
{
	List	   *items;
	ListCell   *lc;

	begin_tx("preparing the sibling");
	set_state(job, "preparing");
	foreach(lc, job->tables)
	{
		JobTable   *t = (JobTable *) lfirst(lc);
		MemoryContext old;
		const char *params[5];
		bool		isnull;

		if (t->relkind != 'r' || strcmp(t->phase, "pending") != 0)
			continue;
		old = MemoryContextSwitchTo(job_cxt);
		t->src = splitdb_copy_source(t->relid);
		MemoryContextSwitchTo(old);

		if (SPI_execute(psprintf("SELECT pg_catalog.count(*) FROM ONLY %s", t->src->name),
						true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not count the rows of %s", t->name);
		params[0] = int64_text(job->job_id);
		params[1] = psprintf("%u", t->relid);
		params[2] = int64_text(DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
														   SPI_tuptable->tupdesc, 1, &isnull)));
		params[3] = t->src->nkeys > 0 ? t->src->key_list : NULL;
		params[4] = t->src->binary ? "binary" : "text";
		run_sql("UPDATE splitdb.job_table SET rows_total = $3::bigint, key_columns = $4,"
				" copy_format = $5 WHERE job_id = $1::bigint AND relid = $2::oid", 5, params);
	}
	splitdb_cutover_record_references(job->job_id, job->service);
	{
		MemoryContext old = MemoryContextSwitchTo(job_cxt);

		items = splitdb_ddl_build(SPLITDB_DDL_BEFORE_DATA, job->service, job->relids);
		MemoryContextSwitchTo(old);
	}
	end_tx();

	splitdb_remote_command(job->conn, "BEGIN", 0, NULL, job->service);
	splitdb_ddl_apply(job->conn, items, job->service);
	splitdb_remote_command(job->conn, "COMMIT", 0, NULL, job->service);

	begin_tx("recording the sibling's tables");
	foreach(lc, job->tables)
	{
		JobTable   *t = (JobTable *) lfirst(lc);

		if (strcmp(t->phase, "pending") == 0)
			set_table_phase(job, t, "created");
	}
	end_tx();
}

/*
 * copy_table
 *		Copy one table batch by batch, each batch a checkpoint.
 *
 * A table whose copy never reached a checkpoint (phase created) starts from
 * an empty sibling table (step_copy emptied it), as does one without a key.
 * One with a key continues after its checkpoint, the key recorded with the
 * last batch, once the rows beyond it (a batch under way when an earlier
 * run stopped) are gone from the sibling.
 */
static void
copy_table(Job *job, JobTable *t)
{
	char	  **last_key = NULL;
	int64		rows_copied = 0;
	const char *params[6];

	begin_tx(psprintf("copying %s", t->name));
	set_current_table(job, t->name);
	if (t->src == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(job_cxt);

		t->src = splitdb_copy_source(t->relid);
		MemoryContextSwitchTo(old);
	}
	if (strcmp(t->phase, "copying") == 0 && t->src->nkeys == 0)
		splitdb_copy_truncate(job->conn, t->src->name, job->service);
	else if (strcmp(t->phase, "copying") == 0)
	{
		last_key = t->last_key;
		rows_copied = last_key != NULL ? t->rows_copied : 0;
		splitdb_copy_trim(job->conn, t->src, last_key, job->service);
	}
	params[0] = int64_text(job->job_id);
	params[1] = psprintf("%u", t->relid);
	params[2] = int64_text(rows_copied);
	params[3] = key_text(last_key, t->src->nkeys);
	run_sql("UPDATE splitdb.job_table SET phase = 'copying', rows_copied = $3::bigint,"
			" last_key = $4::text[], updated_at = pg_catalog.clock_timestamp()"
			" WHERE job_id = $1::bigint AND relid = $2::oid", 4, params);
	t->phase = "copying";
	{
		/* last_key must outlive this transaction */
		MemoryContext old = MemoryContextSwitchTo(job_cxt);

		if (last_key != NULL)
		{
			char	  **kept = palloc(sizeof(char *) * t->src->nkeys);

			for (int k = 0; k < t->src->nkeys; k++)
				kept[k] = pstrdup(last_key[k]);
			last_key = kept;
		}
		MemoryContextSwitchTo(old);
	}
	end_tx();

	for (;;)
	{
		int64		rows;
		int64		bytes;

		begin_tx(psprintf("copying %s", t->name));
		rows = splitdb_copy_batch(job->streams, job->copy_streams, t->src, &last_key,
								  job->batch_rows, &bytes, job->service);
		if (rows > 0)
		{
			MemoryContext old = MemoryContextSwitchTo(job_cxt);
			char	  **kept = NULL;

			if (last_key != NULL)
			{
				kept = palloc(sizeof(char *) * t->src->nkeys);
				for (int k = 0; k < t->src->nkeys; k++)
					kept[k] = pstrdup(last_key[k]);
			}
			MemoryContextSwitchTo(old);
			last_key = kept;

			/* this transaction's memory: the strings of the first one are gone */
			params[0] = int64_text(job->job_id);
			params[1] = psprintf("%u", t->relid);
			params[2] = int64_text(rows);
			params[3] = int64_text(bytes);
			params[4] = key_text(last_key, t->src->nkeys);
			params[5] = (t->src->nkeys == 0) ? "copied" : "copying";
			run_sql("UPDATE splitdb.job_table SET rows_copied = rows_copied + $3::bigint,"
					" bytes_copied = bytes_copied + $4::bigint, last_key = $5::text[], phase = $6,"
					" updated_at = pg_catalog.clock_timestamp()"
					" WHERE job_id = $1::bigint AND relid = $2::oid", 6, params);
			run_sql("UPDATE splitdb.job SET updated_at = pg_catalog.clock_timestamp()"
					" WHERE job_id = $1::bigint", 1, params);
		}
		if (rows == 0 || t->src->nkeys == 0)
		{
			set_table_phase(job, t, "copied");
			end_tx();
			break;
		}
		end_tx();
	}
}

/*
 * connect_streams
 *		Connect the extra streams the copy and the index builds use (the
 *		first is the job's connection), unless they are open already; each
 *		joins the run's fence in the sibling.
 */
static void
connect_streams(Job *job)
{
	job->streams[0] = job->conn;
	if (n_extra_streams + 1 >= job->copy_streams)
		return;
	begin_tx("connecting the copy's streams");
	while (n_extra_streams + 1 < job->copy_streams)
	{
		PGconn	   *conn = splitdb_remote_connect_server(job->server, job->service);

		extra_streams[n_extra_streams++] = conn;
		job->streams[n_extra_streams] = conn;
		splitdb_fence_join(conn, job->job_id, job->service);
	}
	end_tx();
}

/*
 * step_copy
 *		Copy every table that holds rows and is not copied yet.
 */
static void
step_copy(Job *job)
{
	ListCell   *lc;
	const char *params[1] = {int64_text(job->job_id)};

	begin_tx("copying");
	set_state(job, "copying");
	end_tx();
	connect_streams(job);
	begin_tx("copying");

	/*
	 * Tables whose copy has not reached a checkpoint start from empty: a
	 * batch the sibling committed before a crash is removed.  They are
	 * emptied together, since foreign keys among them may exist already
	 * (tables sent back by verification).
	 */
	{
		StringInfoData names;

		initStringInfo(&names);
		foreach(lc, job->tables)
		{
			JobTable   *t = (JobTable *) lfirst(lc);

			if (t->relkind == 'r' && strcmp(t->phase, "created") == 0)
				appendStringInfo(&names, "%s%s", names.len > 0 ? ", " : "", t->name);
		}
		if (names.len > 0)
			splitdb_copy_truncate(job->conn, names.data, job->service);
	}
	run_sql("UPDATE splitdb.job SET copy_started_at = pg_catalog.clock_timestamp(),"
			" copy_rows_start = (SELECT coalesce(sum(t.rows_copied), 0) FROM splitdb.job_table t"
			"                     WHERE t.job_id = $1::bigint)"
			" WHERE job_id = $1::bigint", 1, params);
	end_tx();

	foreach(lc, job->tables)
	{
		JobTable   *t = (JobTable *) lfirst(lc);

		if (t->relkind == 'r' &&
			(strcmp(t->phase, "created") == 0 || strcmp(t->phase, "copying") == 0))
			copy_table(job, t);
	}

	begin_tx("copied");
	run_sql("UPDATE splitdb.job SET copy_finished_at = pg_catalog.clock_timestamp()"
			" WHERE job_id = $1::bigint", 1, params);
	foreach(lc, job->tables)
	{
		JobTable   *t = (JobTable *) lfirst(lc);

		if (t->relkind != 'r' && strcmp(t->phase, "created") == 0)
			set_table_phase(job, t, "copied");
	}
	end_tx();
}

/*
 * record_builds
 *		splitdb_ddl_apply_side_by_side()'s report of what it runs: the job's
 *		current_table, in a transaction of its own.
 */
static void
record_builds(const char *running, void *arg)
{
	Job		   *job = (Job *) arg;

	begin_tx(psprintf("creating %s", running));
	set_current_table(job, running);
	end_tx();
	pgstat_report_activity(STATE_RUNNING, psprintf("creating %s", running));
}

/*
 * drop_invalid_indexes
 *		Drop the sibling's invalid indexes on the job's tables, so that the
 *		indexing step builds them again: its guards only ask whether an
 *		index exists.  A plain CREATE INDEX that is ended rolls back
 *		entirely, but an index can be left invalid by other means (a failed
 *		CREATE INDEX CONCURRENTLY, a partitioned index whose partitions were
 *		not all attached when a run stopped).  A valid index is kept.
 */
static void
drop_invalid_indexes(Job *job)
{
	char	  **names;
	const char *params[1];
	PGresult   *res;
	List	   *drops;
	ListCell   *lc;
	int			n = 0;

	/* the array literal is built with the catalogs: inside a transaction */
	begin_tx("dropping invalid indexes in the sibling");
	names = palloc(sizeof(char *) * Max(list_length(job->tables), 1));
	foreach(lc, job->tables)
		names[n++] = ((JobTable *) lfirst(lc))->name;
	params[0] = splitdb_catalog_text_array(names, n);
	res = splitdb_remote_exec(job->conn,
							  "SELECT pg_catalog.format('DROP INDEX IF EXISTS %s', i.indexrelid::pg_catalog.regclass)"
							  "  FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid"
							  " WHERE NOT i.indisvalid"
							  "   AND i.indrelid IN (SELECT pg_catalog.to_regclass(t)"
							  "                        FROM pg_catalog.unnest($1::pg_catalog.text[]) t)"
							  " ORDER BY c.relkind = 'I' DESC, 1",
							  1, params, job->service);
	drops = splitdb_remote_result_rows(res);
	splitdb_remote_clear(res);
	foreach(lc, drops)
	{
		const char *sql = ((char **) lfirst(lc))[0];

		elog(LOG, "splitdb: job " INT64_FORMAT " of service \"%s\" drops an invalid index in the sibling: %s",
			 job->job_id, job->service, sql);
		/* partitioned indexes first: their partitions' indexes go with them */
		splitdb_remote_command(job->conn, sql, 0, NULL, job->service);
	}
	end_tx();
}

/*
 * step_index
 *		Primary keys, secondary indexes, unique and exclusion constraints,
 *		foreign keys inside the sibling, triggers and policies.  The index
 *		builds of tables that hold rows run first, side by side over the
 *		streams (as many as splitdb.copy_streams); then every other
 *		statement, one at a time.  Each statement is its own remote
 *		transaction, so a resumed job skips what is done.
 */
static void
step_index(Job *job)
{
	List	   *items;
	List	   *builds = NIL;
	List	   *rest = NIL;
	ListCell   *lc;

	begin_tx("indexing");
	set_state(job, "indexing");
	{
		MemoryContext old = MemoryContextSwitchTo(job_cxt);

		items = splitdb_ddl_build(SPLITDB_DDL_AFTER_DATA, job->service, job->relids);
		foreach(lc, items)
		{
			SplitdbDdl *d = (SplitdbDdl *) lfirst(lc);

			if (splitdb_ddl_side_by_side(d))
				builds = lappend(builds, d);
			else
				rest = lappend(rest, d);
		}
		MemoryContextSwitchTo(old);
	}
	end_tx();

	drop_invalid_indexes(job);
	if (builds != NIL)
	{
		connect_streams(job);
		splitdb_ddl_apply_side_by_side(job->streams, job->copy_streams, builds,
									   job->service, record_builds, job);
	}
	close_extra_streams();

	foreach(lc, rest)
	{
		SplitdbDdl *d = (SplitdbDdl *) lfirst(lc);

		begin_tx(psprintf("creating %s %s", d->kind, d->name));
		set_current_table(job, psprintf("%s %s", d->kind, d->name));
		end_tx();
		splitdb_ddl_apply(job->conn, list_make1(d), job->service);
	}

	begin_tx("indexed");
	foreach(lc, job->tables)
	{
		JobTable   *t = (JobTable *) lfirst(lc);

		if (strcmp(t->phase, "copied") == 0)
			set_table_phase(job, t, "indexed");
	}
	end_tx();
}

/*
 * step_verify
 *		Count and checksum every table on both sides.  A table that differs
 *		fails the job, naming the table, and is sent back to be copied again
 *		when the job resumes.
 */
static void
step_verify(Job *job)
{
	List	   *tables;
	ListCell   *lc;
	StringInfoData bad;
	int			nbad = 0;

	begin_tx("verifying");
	set_state(job, "verifying");
	tables = splitdb_verify_tables(job->service, job_cxt);
	end_tx();
	splitdb_verify_prepare_remote(job->conn, job->service);

	initStringInfo(&bad);
	foreach(lc, tables)
	{
		SplitdbVerifyTable *vt = (SplitdbVerifyTable *) lfirst(lc);
		SplitdbVerifyResult r;
		const char *params[8];

		begin_tx(psprintf("verifying %s", vt->target_name));
		set_current_table(job, vt->target_name);
		splitdb_verify_table(job->conn, vt, job->service, &r);
		params[0] = int64_text(job->job_id);
		params[1] = vt->target_name;
		params[2] = int64_text(r.source_rows);
		params[3] = r.present ? int64_text(r.target_rows) : NULL;
		params[4] = r.source_checksum;
		params[5] = r.present ? r.target_checksum : NULL;
		params[6] = r.ok ? "true" : "false";
		params[7] = r.ok ? NULL :
			psprintf("the sibling differs: source %s rows, checksum %s; sibling %s rows, checksum %s",
					 params[2], r.source_checksum,
					 params[3] ? params[3] : "no", params[5] ? params[5] : "none");
		run_sql("UPDATE splitdb.job_table SET source_rows = $3::bigint, target_rows = $4::bigint,"
				" source_checksum = $5, target_checksum = $6, verified = $7::boolean, error = $8,"
				" phase = CASE WHEN $7::boolean THEN 'verified' ELSE phase END,"
				" updated_at = pg_catalog.clock_timestamp()"
				" WHERE job_id = $1::bigint AND table_name = $2", 8, params);
		if (!r.ok)
		{
			if (nbad++ > 0)
				appendStringInfoString(&bad, ", ");
			appendStringInfoString(&bad, vt->target_name);
			if (nbad == 1)
				appendStringInfo(&bad, " (%s)", params[7]);
		}
		end_tx();
	}

	if (nbad > 0)
	{
		const char *params[1] = {int64_text(job->job_id)};

		begin_tx("sending tables back to be copied");
		/*
		 * Every table goes back, not only those that differ: the sibling's
		 * foreign keys among them exist now, and only emptying them all
		 * together is allowed.
		 */
		run_sql("UPDATE splitdb.job_table SET phase = 'created', rows_copied = 0, bytes_copied = 0,"
				" last_key = NULL WHERE job_id = $1::bigint AND relkind = 'r'",
				1, params);
		run_sql("UPDATE splitdb.job SET phase = 'copying' WHERE job_id = $1::bigint", 1, params);
		end_tx();
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("verification failed for %d table%s of service \"%s\": %s",
						nbad, nbad == 1 ? "" : "s", job->service, bad.data),
				 errhint("Find what changed the rows; the next splitdb_migrate('%s') copies the service's tables again.",
						 job->service)));
	}
}

/*
 * step_cutover
 *		The cutover, and the job's end, in one transaction.
 */
static void
step_cutover(Job *job)
{
	begin_tx("cutting over");
	set_state(job, "cutting_over");
	end_tx();

	begin_tx("cutting over");
	splitdb_cutover_run(job->job_id, job->service, job->server, job->conn);
	{
		const char *params[1] = {int64_text(job->job_id)};

		run_sql("UPDATE splitdb.job SET state = 'done', phase = 'done', current_table = NULL,"
				" finished_at = pg_catalog.clock_timestamp(), updated_at = pg_catalog.clock_timestamp()"
				" WHERE job_id = $1::bigint", 1, params);
		run_sql("UPDATE splitdb.job_table SET phase = 'cut_over', updated_at = pg_catalog.clock_timestamp()"
				" WHERE job_id = $1::bigint", 1, params);
	}
	end_tx();
	elog(LOG, "splitdb: job " INT64_FORMAT " of service \"%s\" is done",
		 job->job_id, job->service);
}

/*
 * fence_sibling
 *		Before any step touches the sibling: end the sessions an earlier
 *		run of the job left there, or wait for them (fence.c), and mark the
 *		job's connection as this run's.  Whatever phase the job resumes in,
 *		nothing the dead run sent can commit behind this run's back.
 */
static void
fence_sibling(Job *job, const SplitdbWorkerArgs *args)
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
				(errmsg("splitdb: job " INT64_FORMAT " of service \"%s\" ended %d session%s of an earlier run in the sibling",
						job->job_id, job->service, ended, ended == 1 ? "" : "s")));
}

/*
 * run_job
 *		Carry the job from the phase it is in to done.
 */
static void
run_job(const SplitdbWorkerArgs *args)
{
	Job		   *job;

	if (!claim_job(args))
		return;
	job_claimed = true;
	running_job_id = args->job_id;
	job = load_job(args);
	block_writes(job);

	/* the user mapping is read from the catalogs: inside a transaction */
	begin_tx("connecting to the sibling");
	job->conn = splitdb_remote_connect_server(job->server, job->service);
	running_conn = job->conn;
	end_tx();
	fence_sibling(job, args);

	if (strcmp(job->phase, "queued") == 0 || strcmp(job->phase, "preparing") == 0)
		step_prepare(job);
	if (strcmp(job->phase, "preparing") == 0 || strcmp(job->phase, "copying") == 0)
		step_copy(job);
	if (strcmp(job->phase, "copying") == 0 || strcmp(job->phase, "indexing") == 0)
		step_index(job);
	/* a resumed cutover verifies again: writes went on while the job was stopped */
	if (strcmp(job->phase, "indexing") == 0 || strcmp(job->phase, "verifying") == 0 ||
		(args->resume && strcmp(job->phase, "cutting_over") == 0))
		step_verify(job);
	if (strcmp(job->phase, "verifying") == 0 || strcmp(job->phase, "cutting_over") == 0)
		step_cutover(job);

	running_conn = NULL;
	splitdb_remote_disconnect(job->conn);
}

/*
 * record_failure
 *		Mark the job failed with an error's message and SQLSTATE.  Runs in a
 *		fresh transaction; the caller has aborted the one that failed.
 */
static void
record_failure(int64 job_id, int sqlerrcode, const char *message)
{
	const char *params[4];

	begin_tx("recording the failure");
	params[0] = int64_text(job_id);
	params[1] = message;
	params[2] = unpack_sql_state(sqlerrcode);
	params[3] = psprintf("%d", MyProcPid);
	run_sql("UPDATE splitdb.job SET state = 'failed', last_error = $2, last_sqlstate = $3,"
			" worker_pid = $4::integer, finished_at = pg_catalog.clock_timestamp(),"
			" updated_at = pg_catalog.clock_timestamp()"
			" WHERE job_id = $1::bigint", 4, params);
	end_tx();
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
	close_extra_streams();
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
	PG_TRY();
	{
		record_failure(job_id, ERRCODE_ADMIN_SHUTDOWN,
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
 * pin_settings
 *		The worker's session settings: names resolve in pg_catalog only, and
 *		values print the same way on both sides (verification depends on it).
 */
static void
pin_settings(void)
{
	StartTransactionCommand();
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("datestyle", "ISO, YMD", PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("intervalstyle", "postgres", PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("timezone", "UTC", PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("extra_float_digits", "3", PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("bytea_output", "hex", PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("lc_monetary", "C", PGC_SUSET, PGC_S_SESSION);
	/* the count and checksum scans gain nothing from JIT; it costs memory */
	SetConfigOption("jit", "off", PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("application_name", SPLITDB_WORKER_TYPE, PGC_USERSET, PGC_S_SESSION);
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

	memcpy(&args, MyBgworkerEntry->bgw_extra, sizeof(args));
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(args.dboid, args.roleoid, 0);

	job_cxt = AllocSetContextCreate(TopMemoryContext, "splitdb job",
									ALLOCSET_DEFAULT_SIZES);
	pin_settings();
	before_shmem_exit(on_worker_exit, (Datum) 0);

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
		close_extra_streams();
		if (running_conn != NULL)
		{
			splitdb_remote_disconnect(running_conn);
			running_conn = NULL;
		}
		message = edata->detail ?
			psprintf("%s (%s)", edata->message, edata->detail) : pstrdup(edata->message);
		RESUME_INTERRUPTS();

		running_job_id = 0;
		if (job_claimed)
			record_failure(args.job_id, edata->sqlerrcode, message);
		proc_exit(1);
	}
	PG_END_TRY();

	running_job_id = 0;
	proc_exit(0);
}
