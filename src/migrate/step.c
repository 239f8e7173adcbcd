/*-------------------------------------------------------------------------
 *
 * step.c
 *	  The steps of a migration job, one per phase that does work.
 *
 *	 preparing    types, sequences, tables with their keys, in the sibling
 *	 copying      the rows, in key-ordered batches, one checkpoint each
 *	 indexing     secondary indexes, constraints, foreign keys, triggers
 *	 catching_up  online mode: replay rounds until little is left (catchup.c)
 *	 verifying    counts and checksums on both sides
 *	 cutting_over archive, shims, views, sequences (cutover.c; online, its
 *	              attempts: catchup.c)
 *
 * worker.c runs them in order from its table of steps, each after it has
 * recorded that the job entered the step's phase.
 *
 * Invariants:
 * - A step runs in its own memory context (job->step_cxt), current between
 *   the worker's transactions and deleted when the step ends; what must
 *   outlive a transaction but not the step is allocated there, and only
 *   what the whole job needs (a table's copy source) in job->job_cxt.
 * - Every step can run again after a crash: DDL is guarded by existence
 *   checks (ddlapply.c), a table's copy goes back to its checkpoint, and
 *   the cutover and the job's end are a single transaction.
 * - Where sibling DDL does not run inside one remote transaction, the
 *   reason is written at the call.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/step.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/table.h"
#include "executor/spi.h"
#include "optimizer/plancat.h"
#include "portability/instr_time.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "lib/stringinfo.h"
#include "pgstat.h"
#include "utils/backend_status.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "metadata/catalog.h"
#include "migrate/copier.h"
#include "migrate/job.h"
#include "migrate/copy.h"
#include "migrate/capture.h"
#include "migrate/catchup.h"
#include "migrate/cutover.h"
#include "migrate/ddl.h"
#include "migrate/access.h"
#include "migrate/online.h"
#include "migrate/range.h"
#include "migrate/record.h"
#include "migrate/verify.h"
#include "migrate/worker_int.h"
#include "remote/remote.h"



/* the text[] literal of a key, for splitdb.job_table.last_key */
static char *
key_text(char **key, int nkeys)
{
	return key == NULL ? NULL : splitdb_catalog_text_array(key, nkeys);
}

/* record what the job works on, for splitdb_status; in a transaction */
static void
set_current_table(SplitdbJob *job, const char *name)
{
	const char *params[2] = {splitdb_worker_int64_text(job->job_id), name};

	splitdb_worker_sql("UPDATE splitdb.job SET current_table = $2, updated_at = pg_catalog.clock_timestamp()"
					   " WHERE job_id = $1::bigint", 2, params);
}

/* record a table's phase, in the catalog and in t; in a transaction */
static void
set_table_phase(SplitdbJob *job, SplitdbJobTable *t, SplitdbTablePhase phase)
{
	const char *params[3] = {splitdb_worker_int64_text(job->job_id),
		splitdb_worker_oid_text(t->relid),
	splitdb_worker_table_phase_name(phase)};

	splitdb_worker_sql("UPDATE splitdb.job_table SET phase = $3, updated_at = pg_catalog.clock_timestamp()"
					   " WHERE job_id = $1::bigint AND relid = $2::oid", 3, params);
	t->phase = phase;
}

/*
 * table_source
 *		t's copy source, built when first needed in the job's context: the
 *		preparing step counts rows with it and the copying step copies them.
 *		In a transaction.
 */
static SplitdbCopySource *
table_source(SplitdbJob *job, SplitdbJobTable *t)
{
	if (t->src == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(job->job_cxt);

		t->src = splitdb_copy_source(t->relid);
		MemoryContextSwitchTo(old);
	}
	return t->src;
}

/*
 * keep_key
 *		A copy of a checkpoint key in the step's context, which outlives the
 *		transaction key was made in; NULL for NULL.  The copy it replaces,
 *		if any, is freed, so a table copied in many batches keeps one.
 */
static char **
keep_key(SplitdbJob *job, char **key, int nkeys, char **replaced)
{
	char	  **kept = NULL;

	if (key != NULL)
	{
		kept = MemoryContextAlloc(job->step_cxt, sizeof(char *) * nkeys);
		for (int k = 0; k < nkeys; k++)
			kept[k] = MemoryContextStrdup(job->step_cxt, key[k]);
	}
	if (replaced != NULL)
	{
		for (int k = 0; k < nkeys; k++)
			pfree(replaced[k]);
		pfree(replaced);
	}
	return kept;
}

/*
 * Tables of at most this many pages (64MB of 8kB pages) have their rows
 * counted for rows_total; larger ones are estimated.
 */
#define EXACT_COUNT_PAGES	8192

/*
 * rows_total_of
 *		A table's rows_total, the progress figure of its copy: the exact
 *		count of a table of at most EXACT_COUNT_PAGES pages, the planner's
 *		estimate of a larger one (estimate_rel_size(): pg_class.reltuples
 *		scaled to the table's current number of pages, or a density from
 *		its column widths when it was never vacuumed or analyzed).  Never
 *		negative.  In a transaction.
 *
 * Why: counting scans the whole table only for a figure of progress,
 * which the copy reads in full right after; the copy counts what it sends
 * (rows_copied) and verification compares exact counts on both sides, so
 * nothing the job checks depends on rows_total.  Small tables keep the
 * exact count, which costs little.  Range planning (range.c) takes the
 * figure as a size, which an estimate serves as well.
 */
static int64
rows_total_of(SplitdbCopySource *src)
{
	Relation	rel = table_open(src->relid, AccessShareLock);
	BlockNumber pages = RelationGetNumberOfBlocks(rel);
	double		tuples = 0;
	double		allvisfrac;
	bool		isnull;

	if (pages > EXACT_COUNT_PAGES)
		estimate_rel_size(rel, NULL, &pages, &tuples, &allvisfrac);
	table_close(rel, AccessShareLock);
	if (pages > EXACT_COUNT_PAGES)
		return (int64) Max(rint(tuples), 0);

	splitdb_spi_exec(psprintf("SELECT pg_catalog.count(*) FROM ONLY %s", src->name),
					 0, NULL, NULL, NULL, true, 0);
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
									   1, &isnull));
}

/*
 * splitdb_step_prepare
 *		Record each table's rows_total (rows_total_of), the cross-service
 *		references, and create in the sibling everything that comes before
 *		the data.
 */
void
splitdb_step_prepare(SplitdbJob *job)
{
	List	   *items;
	ListCell   *lc;

	/* online: every write is logged before the copy reads its first row */
	if (job->online)
		splitdb_online_capture(job);

	splitdb_worker_begin("preparing the sibling");
	foreach(lc, job->tables)
	{
		SplitdbJobTable *t = (SplitdbJobTable *) lfirst(lc);
		SplitdbCopySource *src;
		const char *params[5];

		if (t->relkind != 'r' || t->phase != SPLITDB_TABLE_PENDING)
			continue;
		splitdb_worker_working_on("table %s", t->name);
		src = table_source(job, t);
		params[0] = splitdb_worker_int64_text(job->job_id);
		params[1] = splitdb_worker_oid_text(t->relid);
		params[2] = splitdb_worker_int64_text(rows_total_of(src));
		params[3] = src->nkeys > 0 ? src->key_list : NULL;
		params[4] = src->binary ? "binary" : "text";
		splitdb_worker_sql("UPDATE splitdb.job_table SET rows_total = $3::bigint, key_columns = $4,"
						   " copy_format = $5 WHERE job_id = $1::bigint AND relid = $2::oid",
						   5, params);
	}
	splitdb_worker_clear_working_on();
	splitdb_cutover_record_references(job->job_id, job->service);
	{
		MemoryContext old = MemoryContextSwitchTo(job->step_cxt);

		/* the roles, for the schemas' USAGE of the functions' owners */
		items = splitdb_ddl_build(SPLITDB_DDL_BEFORE_DATA, job->service, job->relids,
								  splitdb_access_sibling_roles(job->conn, job->service));
		MemoryContextSwitchTo(old);
	}
	splitdb_worker_commit();

	/* what the sibling lacks, recorded (and committed) before it is made */
	splitdb_worker_begin("recording the sibling's new objects");
	splitdb_record_ddl(job->job_id, job->service, job->conn, items);
	splitdb_worker_commit();

	/*
	 * One remote transaction for the whole of it: a run that stops halfway
	 * leaves nothing in the sibling (the next run's fence ends its session,
	 * so the transaction rolls back), and the next run starts over.
	 */
	splitdb_remote_command(job->conn, "BEGIN", 0, NULL, job->service);
	splitdb_ddl_apply(job->conn, items, job->service);
	splitdb_access_withhold_created(job);
	splitdb_remote_command(job->conn, "COMMIT", 0, NULL, job->service);

	splitdb_worker_begin("recording the sibling's tables");
	foreach(lc, job->tables)
	{
		SplitdbJobTable *t = (SplitdbJobTable *) lfirst(lc);

		if (t->phase == SPLITDB_TABLE_PENDING)
			set_table_phase(job, t, SPLITDB_TABLE_CREATED);
	}
	splitdb_worker_commit();
}

/*
 * copy_table
 *		Copy one table batch by batch, each batch a checkpoint.
 *
 * A table large enough to be split, or split by an earlier run, is copied
 * by key ranges with several readers (copier.c).  Otherwise:
 * A table whose copy never reached a checkpoint (phase created) starts from
 * an empty sibling table (splitdb_step_copy emptied it), as does one without
 * a key.  One with a key continues after its checkpoint, the key recorded
 * with the last batch, once the rows beyond it (a batch under way when an
 * earlier run stopped) are gone from the sibling.
 */
static void
copy_table(SplitdbJob *job, SplitdbJobTable *t)
{
	SplitdbCopySource *src;
	char	  **last_key = NULL;
	int64		rows_copied = 0;
	const char *params[6];

	splitdb_worker_working_on("table %s", t->name);
	splitdb_worker_begin("copying %s", t->name);
	set_current_table(job, t->name);
	src = table_source(job, t);
	splitdb_worker_commit();
	if (src->nkeys > 0 && splitdb_copier_copy_table(job, t))
	{
		splitdb_worker_clear_working_on();
		return;
	}

	splitdb_worker_begin("copying %s", t->name);

	/*
	 * Emptying a table without a key, and the trim, commit in the sibling at
	 * once, in autocommit: the batches then go over other connections, which
	 * must not wait for a lock this one would hold.  A copy again empties
	 * with a DELETE, in replica as every statement of the copy then is: the
	 * sibling's foreign keys exist, and one that references the table (a
	 * unique column that may be null, which gives no key) refuses a
	 * TRUNCATE (0A000), in every run that resumes.
	 */
	if (t->phase == SPLITDB_TABLE_COPYING && src->nkeys == 0 && job->copy_replica)
		splitdb_copy_empty(job->conn, src->name, job->service);
	else if (t->phase == SPLITDB_TABLE_COPYING && src->nkeys == 0)
		splitdb_copy_truncate(job->conn, src->name, job->service);
	else if (t->phase == SPLITDB_TABLE_COPYING)
	{
		last_key = t->last_key;
		rows_copied = last_key != NULL ? t->rows_copied : 0;
		splitdb_copy_trim(job->conn, src, NULL, last_key, job->service);
	}
	params[0] = splitdb_worker_int64_text(job->job_id);
	params[1] = splitdb_worker_oid_text(t->relid);
	params[2] = splitdb_worker_int64_text(rows_copied);
	params[3] = key_text(last_key, src->nkeys);
	params[4] = splitdb_worker_table_phase_name(SPLITDB_TABLE_COPYING);
	splitdb_worker_sql("UPDATE splitdb.job_table SET phase = $5, rows_copied = $3::bigint,"
					   " last_key = $4::text[], updated_at = pg_catalog.clock_timestamp()"
					   " WHERE job_id = $1::bigint AND relid = $2::oid", 5, params);
	t->phase = SPLITDB_TABLE_COPYING;
	/* the checkpoint outlives each batch's transaction */
	last_key = keep_key(job, last_key, src->nkeys, NULL);
	splitdb_worker_commit();

	for (;;)
	{
		char	  **key = last_key;
		int64		rows;
		int64		bytes;

		splitdb_worker_begin("copying %s", t->name);
		rows = splitdb_copy_batch(job->streams, job->copy_streams, src, NULL, &key,
								  job->batch_rows, &bytes, job->service);
		if (rows > 0)
		{
			last_key = keep_key(job, key, src->nkeys, last_key);

			/* this transaction's memory: the strings of the first one are gone */
			params[0] = splitdb_worker_int64_text(job->job_id);
			params[1] = splitdb_worker_oid_text(t->relid);
			params[2] = splitdb_worker_int64_text(rows);
			params[3] = splitdb_worker_int64_text(bytes);
			params[4] = key_text(last_key, src->nkeys);
			params[5] = splitdb_worker_table_phase_name(src->nkeys == 0 ?
														SPLITDB_TABLE_COPIED :
														SPLITDB_TABLE_COPYING);
			splitdb_worker_sql("UPDATE splitdb.job_table SET rows_copied = rows_copied + $3::bigint,"
							   " bytes_copied = bytes_copied + $4::bigint, last_key = $5::text[], phase = $6,"
							   " updated_at = pg_catalog.clock_timestamp()"
							   " WHERE job_id = $1::bigint AND relid = $2::oid", 6, params);
			splitdb_worker_sql("UPDATE splitdb.job SET updated_at = pg_catalog.clock_timestamp()"
							   " WHERE job_id = $1::bigint", 1, params);
		}
		if (rows == 0 || src->nkeys == 0)
		{
			set_table_phase(job, t, SPLITDB_TABLE_COPIED);
			splitdb_worker_commit();
			break;
		}
		splitdb_worker_commit();

		splitdb_worker_begin("copying %s", t->name);
		splitdb_worker_pause_at(job, SPLITDB_PAUSE_COPYING, "copying");
		splitdb_worker_commit();
	}
	keep_key(job, NULL, src->nkeys, last_key);
	splitdb_worker_clear_working_on();
}

/*
 * sibling_has_constraints
 *		Whether the job has made (or was about to make) constraints or
 *		triggers in the sibling: the indexing step has run, and the tables
 *		are copied again (sent back by verification, or by a capture found
 *		broken).  Their copy then writes in replica (splitdb_copy_replica),
 *		so that the foreign keys among the tables and the moved triggers do
 *		not fire on the rows.  A first copy writes in origin, as it always
 *		has: the sibling's tables have no trigger of the job's yet.
 *
 * Call in a transaction of the worker's.
 */
static bool
sibling_has_constraints(SplitdbJob *job)
{
	const char *params[1] = {splitdb_worker_int64_text(job->job_id)};
	bool		isnull;

	splitdb_worker_sql("SELECT EXISTS (SELECT FROM splitdb.artifact a WHERE a.job_id = $1::bigint"
					   " AND a.service IS NOT NULL AND a.kind IN ('constraint', 'trigger')"
					   " AND a.dropped_at IS NULL)", 1, params);
	return SPI_processed == 1 &&
		DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * splitdb_step_copy
 *		Copy every table that holds rows and is not copied yet.
 */
void
splitdb_step_copy(SplitdbJob *job)
{
	ListCell   *lc;
	const char *params[1] = {splitdb_worker_int64_text(job->job_id)};

	splitdb_worker_connect_streams(job);
	splitdb_worker_begin("copying");
	job->copy_replica = sibling_has_constraints(job);
	for (int i = 0; job->copy_replica && i < job->copy_streams; i++)
		splitdb_copy_replica(job->streams[i], true, job->service);

	/*
	 * Tables whose copy has not reached a checkpoint start from empty: a
	 * batch the sibling committed before a crash is removed.  They are
	 * emptied together, since foreign keys among them may exist already
	 * (tables sent back by verification), in autocommit for the reason
	 * copy_table gives.
	 */
	{
		StringInfoData names;
		bool		all_created = true;

		initStringInfo(&names);
		foreach(lc, job->tables)
		{
			SplitdbJobTable *t = (SplitdbJobTable *) lfirst(lc);

			if (t->relkind == 'r' && t->phase == SPLITDB_TABLE_CREATED)
				appendStringInfo(&names, "%s%s", names.len > 0 ? ", " : "", t->name);
			else if (t->relkind == 'r')
				all_created = false;
		}

		/*
		 * A TRUNCATE is refused when a table it leaves references one it
		 * empties (heap_truncate_check_FKs, whatever the replication role),
		 * and the sibling's foreign keys exist once verification sent the
		 * tables back: a run that stopped after copying some of them again
		 * deletes instead.  Those tables hold at most the batches of the
		 * run that stopped: every table was emptied when they were all
		 * sent back, and a table's phase leaves created before its first
		 * batch.
		 *
		 * The partitioned tables go into the TRUNCATE too: a foreign key
		 * of one is checked on it, not on its partitions, and it refused a
		 * TRUNCATE of the table it references that left it out (0A000, on
		 * every run).  Named after the first table, they are truncated
		 * with their partitions (ONLY binds to the first name alone), all
		 * of which are the job's.
		 */
		if (names.len > 0 && all_created)
		{
			foreach(lc, job->tables)
			{
				SplitdbJobTable *t = (SplitdbJobTable *) lfirst(lc);

				if (t->relkind == 'p')
					appendStringInfo(&names, ", %s", t->name);
			}
			splitdb_copy_truncate(job->conn, names.data, job->service);
		}
		else if (names.len > 0)
			foreach(lc, job->tables)
			{
				SplitdbJobTable *t = (SplitdbJobTable *) lfirst(lc);

				if (t->relkind == 'r' && t->phase == SPLITDB_TABLE_CREATED)
					splitdb_copy_empty(job->conn, t->name, job->service);
			}
	}
	splitdb_worker_sql("UPDATE splitdb.job SET copy_started_at = pg_catalog.clock_timestamp(),"
					   " copy_rows_start = (SELECT coalesce(sum(t.rows_copied), 0) FROM splitdb.job_table t"
					   "                     WHERE t.job_id = $1::bigint)"
					   " WHERE job_id = $1::bigint", 1, params);
	splitdb_worker_commit();

	foreach(lc, job->tables)
	{
		SplitdbJobTable *t = (SplitdbJobTable *) lfirst(lc);

		if (t->relkind == 'r' &&
			(t->phase == SPLITDB_TABLE_CREATED || t->phase == SPLITDB_TABLE_COPYING))
			copy_table(job, t);
	}

	splitdb_worker_begin("copied");
	for (int i = 0; job->copy_replica && i < job->copy_streams; i++)
		splitdb_copy_replica(job->streams[i], false, job->service);
	job->copy_replica = false;
	splitdb_worker_sql("UPDATE splitdb.job SET copy_finished_at = pg_catalog.clock_timestamp()"
					   " WHERE job_id = $1::bigint", 1, params);
	foreach(lc, job->tables)
	{
		SplitdbJobTable *t = (SplitdbJobTable *) lfirst(lc);

		if (t->relkind != 'r' && t->phase == SPLITDB_TABLE_CREATED)
			set_table_phase(job, t, SPLITDB_TABLE_COPIED);
	}
	splitdb_worker_commit();
}

/*
 * record_builds
 *		splitdb_ddl_apply_side_by_side()'s report of what it runs: the job's
 *		current_table, in a transaction of its own, and the activity.
 */
static void
record_builds(const char *running, void *arg)
{
	SplitdbJob *job = (SplitdbJob *) arg;

	splitdb_worker_begin("creating %s", running);
	set_current_table(job, running);
	splitdb_worker_commit_busy();
}

/*
 * drop_invalid_indexes
 *		Drop the sibling's invalid indexes on the job's tables, so that the
 *		indexing step builds them again: its guards only ask whether an
 *		index exists.  A plain CREATE INDEX that is ended rolls back
 *		entirely, but an index can be left invalid by other means (a failed
 *		CREATE INDEX CONCURRENTLY, a partitioned index whose partitions were
 *		not all attached when a run stopped: ALTER TABLE ONLY ... ADD
 *		PRIMARY KEY leaves one until its partitions' keys are attached).  An
 *		index that backs a primary key, unique or exclusion constraint goes
 *		with its constraint (ALTER TABLE ... DROP CONSTRAINT), since DROP
 *		INDEX refuses it.  A valid index is kept.
 */
static void
drop_invalid_indexes(SplitdbJob *job)
{
	char	  **names;
	const char *params[1];
	PGresult   *res;
	List	   *drops;
	ListCell   *lc;
	int			n = 0;

	/* the array literal is built with the catalogs: inside a transaction */
	splitdb_worker_begin("dropping invalid indexes in the sibling");
	names = palloc(sizeof(char *) * Max(list_length(job->tables), 1));
	foreach(lc, job->tables)
		names[n++] = ((SplitdbJobTable *) lfirst(lc))->name;
	params[0] = splitdb_catalog_text_array(names, n);
	res = splitdb_remote_exec(job->conn,
							  "SELECT CASE WHEN k.conname IS NULL"
							  "  THEN pg_catalog.format('DROP INDEX IF EXISTS %s', i.indexrelid::pg_catalog.regclass)"
							  "  ELSE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT IF EXISTS %I',"
							  "                         i.indrelid::pg_catalog.regclass, k.conname) END"
							  "  FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid"
							  "  LEFT JOIN pg_catalog.pg_constraint k ON k.conindid = i.indexrelid"
							  "   AND k.conrelid = i.indrelid AND k.contype IN ('p', 'u', 'x')"
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

		elog(LOG, "job " INT64_FORMAT " of service \"%s\" drops an invalid index in the sibling: %s",
			 job->job_id, job->service, sql);

		/*
		 * Partitioned indexes first: their partitions' indexes go with them.
		 * Each drop commits on its own (autocommit): one that is done stays
		 * done if a later one fails, and the next run's query finds only
		 * what is left.
		 */
		splitdb_remote_command(job->conn, sql, 0, NULL, job->service);
	}
	splitdb_worker_commit();
}

/*
 * set_build_settings
 *		Give the sibling sessions that build indexes the memory and the
 *		parallel workers of their builds.
 *
 * conns: the nconns sessions that run the builds (job->streams, or the
 *        job's connection alone)
 *
 * Why: a build sorts its rows in maintenance_work_mem, and the sibling's
 * (64MB by default) makes a build of a table of millions of rows spill to
 * disk in runs that it merges again; the sessions are the job's own and
 * build nothing else, so a larger value (splitdb.maintenance_work_mem)
 * costs only while the builds run.  A parallel build divides that memory
 * between its participants, and side by side the streams already keep as
 * many of the sibling's cores busy: with more than one session,
 * max_parallel_maintenance_workers is 0, so that the builds do not compete
 * for the same cores; with one, the sibling's own value stands.
 */
static void
set_build_settings(SplitdbJob *job, PGconn *const *conns, int nconns)
{
	const char *params[2];

	params[0] = psprintf("%dkB", job->maintenance_work_mem);
	params[1] = nconns > 1 ? "0" : NULL;
	for (int i = 0; i < nconns; i++)
		splitdb_remote_command(conns[i],
							   "SELECT pg_catalog.set_config('maintenance_work_mem', $1, false),"
							   " pg_catalog.set_config('max_parallel_maintenance_workers',"
							   "  coalesce($2, (SELECT s.reset_val FROM pg_catalog.pg_settings s"
							   "                 WHERE s.name = 'max_parallel_maintenance_workers')), false)",
							   2, params, job->service);
}

/*
 * build_side_by_side
 *		Build the side-by-side items in builds over the job's streams: as
 *		many at a time as there are streams, or, when there are fewer
 *		builds than streams, over as many streams as builds, each with the
 *		sibling's parallel workers (set_build_settings), so that the cores
 *		the other streams would have used still work.
 *
 * deferred: as for splitdb_ddl_apply_side_by_side(); the list is made in
 *           the step's context
 */
static void
build_side_by_side(SplitdbJob *job, List *builds, List **deferred)
{
	int			nconns = Min(job->copy_streams, list_length(builds));
	MemoryContext old;

	if (builds == NIL)
		return;
	splitdb_worker_connect_streams(job);
	set_build_settings(job, job->streams, nconns);
	old = MemoryContextSwitchTo(job->step_cxt);
	splitdb_ddl_apply_side_by_side(job->streams, nconns, builds,
								   job->service, record_builds, job, deferred);
	MemoryContextSwitchTo(old);
}

/*
 * splitdb_step_index
 *		Primary keys, secondary indexes, unique and exclusion constraints,
 *		foreign keys inside the sibling, triggers and policies.  The index
 *		builds of tables that hold rows run first, side by side over the
 *		streams (as many as splitdb.copy_streams); then every other
 *		statement, one at a time.
 *
 * Online, the batches of the copy read different snapshots: a replay round
 * brings every table to one before the foreign keys are made, so that they
 * hold.  The indexes are built before that round, so that it finds the
 * rows of the keys it replays through them rather than by a scan of each
 * table, and so that the builds run side by side as offline.  A unique
 * index may meet a duplicate there: a value moved, during the copy, from a
 * row not copied yet to one copied already is in the sibling twice until
 * the round.  Its build then fails (unique_violation), leaving nothing, and
 * is made again after the round, when the rows equal the source's at one
 * snapshot.  The round keeps a unique index that was built: it deletes
 * every key it replays before it inserts any row, and what is left between
 * the two is a part of what it makes.
 */
void
splitdb_step_index(SplitdbJob *job)
{
	List	   *items;
	List	   *builds = NIL;
	List	   *deferred = NIL;
	List	   *rest = NIL;
	ListCell   *lc;

	splitdb_worker_begin("indexing");
	{
		MemoryContext old = MemoryContextSwitchTo(job->step_cxt);

		items = splitdb_ddl_build(SPLITDB_DDL_AFTER_DATA, job->service, job->relids,
								  splitdb_access_sibling_roles(job->conn, job->service));
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
	splitdb_worker_commit();

	/* what the sibling lacks, recorded (and committed) before it is made */
	splitdb_worker_begin("recording the sibling's new objects");
	splitdb_record_ddl(job->job_id, job->service, job->conn, items);
	splitdb_worker_commit();

	drop_invalid_indexes(job);

	/*
	 * Each statement of this step is a remote transaction of its own
	 * (autocommit), not one for all: a build can take hours, and a resumed
	 * job skips what an earlier run built (the guards) instead of building
	 * everything again.  The builds also run side by side over several
	 * connections, which no one transaction spans.
	 */
	build_side_by_side(job, builds, job->online ? &deferred : NULL);
	if (job->online)
	{
		splitdb_catchup_round(job, "before indexing");
		build_side_by_side(job, deferred, NULL);
	}
	splitdb_worker_close_streams();

	/* exclusion constraints, and the indexes of partitioned tables, build here */
	if (rest != NIL)
		set_build_settings(job, &job->conn, 1);

	foreach(lc, rest)
	{
		SplitdbDdl *d = (SplitdbDdl *) lfirst(lc);

		splitdb_worker_working_on("%s %s", d->kind, d->name);
		splitdb_worker_begin("creating %s %s", d->kind, d->name);
		set_current_table(job, psprintf("%s %s", d->kind, d->name));
		splitdb_worker_commit();
		splitdb_ddl_apply(job->conn, list_make1(d), job->service);
	}
	splitdb_worker_clear_working_on();

	splitdb_worker_begin("indexed");
	foreach(lc, job->tables)
	{
		SplitdbJobTable *t = (SplitdbJobTable *) lfirst(lc);

		if (t->phase == SPLITDB_TABLE_COPIED)
			set_table_phase(job, t, SPLITDB_TABLE_INDEXED);
	}
	splitdb_worker_commit();

	/* the test hook waits in a transaction; none without it */
	if (job->pause_at == SPLITDB_PAUSE_INDEXING)
	{
		splitdb_worker_begin("indexed");
		splitdb_worker_pause_at(job, SPLITDB_PAUSE_INDEXING, "indexing");
		splitdb_worker_commit();
	}
}

/*
 * send_back
 *		After a failed verification: every table goes back to be copied, and
 *		the job to the copying phase, so that the next run copies again.  Not
 *		only the tables that differ: the sibling's foreign keys among them
 *		exist now, and only emptying them all together is allowed.  The
 *		job's tables in memory follow, for a run that copies again itself.
 */
static void
send_back(SplitdbJob *job)
{
	const char *params[3] = {splitdb_worker_int64_text(job->job_id),
		splitdb_worker_table_phase_name(SPLITDB_TABLE_CREATED),
	splitdb_worker_phase_name(SPLITDB_PHASE_COPYING)};
	ListCell   *lc;

	splitdb_worker_begin("sending tables back to be copied");
	splitdb_worker_sql("UPDATE splitdb.job_table SET phase = $2, rows_copied = 0, bytes_copied = 0,"
					   " last_key = NULL WHERE job_id = $1::bigint AND relkind = 'r'",
					   2, params);
	splitdb_range_forget(job->job_id, InvalidOid);
	params[1] = params[2];
	splitdb_worker_sql("UPDATE splitdb.job SET phase = $2 WHERE job_id = $1::bigint", 2, params);
	splitdb_worker_commit();

	foreach(lc, job->tables)
	{
		SplitdbJobTable *t = (SplitdbJobTable *) lfirst(lc);

		if (t->relkind == 'r')
		{
			t->phase = SPLITDB_TABLE_CREATED;
			t->rows_copied = 0;
			t->last_key = NULL;
		}
	}
	job->phase = SPLITDB_PHASE_COPYING;
}

/*
 * splitdb_step_resume_online
 *		Online mode, a job resumed after its capture was installed: when the
 *		capture is no longer intact (a trigger dropped or disabled by hand,
 *		DDL with the event triggers bypassed), writes may have gone
 *		unlogged, so the capture is installed again and every table is sent
 *		back to be copied; else nothing changes.
 */
void
splitdb_step_resume_online(SplitdbJob *job)
{
	bool		intact;

	splitdb_worker_begin("checking the change capture");
	intact = splitdb_online_capture_intact(job->job_id);
	splitdb_worker_commit();
	if (intact)
		return;

	ereport(LOG,
			(errmsg("job " INT64_FORMAT " of service \"%s\": the change capture was not intact; its tables are copied again",
					job->job_id, job->service)));
	splitdb_online_capture(job);
	send_back(job);
}

/*
 * splitdb_step_verify
 *		Count and checksum every table on both sides.  A table that differs
 *		fails the job, naming the table, and is sent back to be copied again
 *		when the job resumes; in a resumed offline job, the first time, it
 *		is sent back without a failure (job->sent_back), and the run copies
 *		again: the job let go of its tables while it was stopped.
 */
void
splitdb_step_verify(SplitdbJob *job)
{
	List	   *tables;
	ListCell   *lc;
	StringInfoData bad;
	int			nbad = 0;
	const char *remote_hash;

	splitdb_worker_begin("verifying");
	tables = splitdb_verify_tables(job->service, job->step_cxt);
	splitdb_worker_commit();
	remote_hash = splitdb_verify_prepare_remote(job->conn, job->service);

	/*
	 * Online: one snapshot for every table.  The round brings the sibling
	 * to it, and nothing else writes the sibling's tables, so both sides
	 * are compared at the same point while the application writes on.
	 */
	initStringInfo(&bad);
	if (job->online)
	{
		splitdb_worker_begin_snapshot("verifying at one snapshot");
		splitdb_catchup_verify_round(job);
	}

	foreach(lc, tables)
	{
		SplitdbVerifyTable *vt = (SplitdbVerifyTable *) lfirst(lc);
		SplitdbVerifyResult r;
		const char *params[9];

		splitdb_worker_working_on("table %s", vt->target_name);
		if (!job->online)
			splitdb_worker_begin("verifying %s", vt->target_name);
		set_current_table(job, vt->target_name);
		splitdb_verify_table(job->conn, vt, remote_hash, job->service, &r);
		params[0] = splitdb_worker_int64_text(job->job_id);
		params[1] = vt->target_name;
		params[2] = splitdb_worker_int64_text(r.source_rows);
		params[3] = r.present ? splitdb_worker_int64_text(r.target_rows) : NULL;
		params[4] = r.source_checksum;
		params[5] = r.present ? r.target_checksum : NULL;
		params[6] = r.ok ? "true" : "false";
		params[7] = r.ok ? NULL :
			psprintf("the sibling differs: source %s rows, checksum %s; sibling %s rows, checksum %s",
					 params[2], r.source_checksum,
					 params[3] ? params[3] : "no", params[5] ? params[5] : "none");
		params[8] = splitdb_worker_table_phase_name(SPLITDB_TABLE_VERIFIED);
		splitdb_worker_sql("UPDATE splitdb.job_table SET source_rows = $3::bigint, target_rows = $4::bigint,"
						   " source_checksum = $5, target_checksum = $6, verified = $7::boolean, error = $8,"
						   " phase = CASE WHEN $7::boolean THEN $9 ELSE phase END,"
						   " updated_at = pg_catalog.clock_timestamp()"
						   " WHERE job_id = $1::bigint AND table_name = $2", 9, params);
		if (!r.ok)
		{
			/* bad grows where it was made: in the step's context */
			if (nbad++ > 0)
				appendStringInfoString(&bad, ", ");
			appendStringInfoString(&bad, vt->target_name);
			if (nbad == 1)
				appendStringInfo(&bad, " (%s)", params[7]);
		}
		if (!job->online)
			splitdb_worker_commit();
	}
	if (job->online)
		splitdb_worker_commit();
	splitdb_worker_clear_working_on();

	if (nbad > 0)
	{
		send_back(job);
		if (job->recopy_if_written)
		{
			/*
			 * An offline job resumed: its tables were open to writes while
			 * it was failed, and are locked now.  Copy again, once.
			 */
			job->recopy_if_written = false;
			job->sent_back = true;
			ereport(LOG,
					(errmsg("job " INT64_FORMAT " of service \"%s\": %d table%s changed while the job was stopped; its tables are copied again",
							job->job_id, job->service, nbad, nbad == 1 ? "" : "s"),
					 errdetail("%s", bad.data)));
			return;
		}
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("verification failed for %d table%s of service \"%s\": %s",
						nbad, nbad == 1 ? "" : "s", job->service, bad.data),
				 errhint("Find what changed the rows; the next splitdb_migrate('%s') copies the service's tables again.",
						 job->service)));
	}

	/* the test hook waits in a transaction; none without it */
	if (job->pause_at == SPLITDB_PAUSE_VERIFYING)
	{
		splitdb_worker_begin("verified");
		splitdb_worker_pause_at(job, SPLITDB_PAUSE_VERIFYING, "verifying");
		splitdb_worker_commit();
	}
}

/*
 * splitdb_step_cutover
 *		The cutover, and the job's end, in one transaction: the job is done
 *		exactly when its cutover is committed.
 */
void
splitdb_step_cutover(SplitdbJob *job)
{
	/*
	 * what the reference ends and the capture make in the sibling, recorded
	 * before the cutover makes it
	 */
	splitdb_worker_begin("recording the sibling's objects of the cutover");
	splitdb_record_before_cutover(job->job_id, job->service, job->conn);
	splitdb_capture_record(job->job_id, job->service, job->conn);
	splitdb_worker_commit();

	/* splitdb in the sibling, made before the locks: not a part of the freeze */
	splitdb_worker_begin("installing splitdb in the sibling");
	splitdb_capture_prepare_sibling(job->service, job->conn);
	splitdb_worker_commit();

	if (!job->online)
	{
		splitdb_worker_begin("cutting over");
		splitdb_worker_pause_at(job, SPLITDB_PAUSE_CUTOVER, "cutover");
		splitdb_step_cut_over(job);
		return;
	}
	splitdb_catchup_cutover(job);
}

/*
 * splitdb_step_cut_over
 *		The cutover and the job's end, in the transaction the caller began,
 *		which this commits (offline, and an online cutover's attempt,
 *		catchup.c).
 */
void
splitdb_step_cut_over(SplitdbJob *job)
{
	const char *params[3];

	splitdb_cutover_run(job->job_id, job->service, job->server, job->conn,
						job->online ? 0 : job->cutover_lock_timeout,
						job->online ? 0 : job->cutover_attempts);
	splitdb_worker_pause_at(job, SPLITDB_PAUSE_CUTOVER_COMMITTING, "cutover_committing");
	params[0] = splitdb_worker_int64_text(job->job_id);
	params[1] = splitdb_worker_phase_name(SPLITDB_PHASE_DONE);
	params[2] = splitdb_worker_table_phase_name(SPLITDB_TABLE_CUT_OVER);
	/*
	 * Online, the cutover replayed under its locks what the last round left:
	 * nothing is left to replay, whatever that round counted.
	 */
	splitdb_worker_sql("UPDATE splitdb.job SET state = $2, phase = $2, current_table = NULL,"
					   " lag_trend = CASE WHEN lag_rows > 0 THEN 'shrinking' ELSE lag_trend END,"
					   " lag_seconds = CASE WHEN lag_rows IS NULL THEN lag_seconds ELSE 0 END,"
					   " lag_rows = CASE WHEN lag_rows IS NULL THEN NULL ELSE 0 END,"
					   " finished_at = pg_catalog.clock_timestamp(), updated_at = pg_catalog.clock_timestamp()"
					   " WHERE job_id = $1::bigint", 2, params);
	params[1] = params[2];
	splitdb_worker_sql("UPDATE splitdb.job_table SET phase = $2, updated_at = pg_catalog.clock_timestamp()"
					   " WHERE job_id = $1::bigint", 2, params);
	splitdb_worker_commit();
	if (job->pause_at == SPLITDB_PAUSE_DONE)
	{
		splitdb_worker_begin("done");
		splitdb_worker_pause_at(job, SPLITDB_PAUSE_DONE, "done");
		splitdb_worker_commit();
	}
}
