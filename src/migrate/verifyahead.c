/*-------------------------------------------------------------------------
 *
 * verifyahead.c
 *	  The source's side of an offline job's verification, counted while the
 *	  sibling builds the job's indexes.
 *
 * While the indexing step's builds run in the sibling, the worker only
 * waits for them, and once the last build has started the connections that
 * finish leave their cores idle.  The rows of an offline job's tables in
 * the source cannot change until the job ends: the worker holds a share lock
 * on each for as long as it runs (worker.c).  So their count and checksum
 * are then what the verification would find, and the worker computes them
 * between two waits for the builds once none is left to start, one table at
 * a time, in its own backend alone.  The verifying step then asks only the sibling for those tables
 * (verify.c), and runs both sides at once for the others.  Each result is
 * also recorded in splitdb.job_table, with the sibling's side and the
 * verdict cleared, where splitdb_table_status shows it before the
 * verification.
 *
 * Invariants:
 * - Online jobs count nothing ahead: their source changes until the
 *   verification's snapshot.
 * - What was counted lives in this run's memory only: each indexing step
 *   starts a new list, the verifying step takes it, and a job resumed at
 *   verifying counts both sides again.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/verifyahead.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "nodes/pg_list.h"

#include "migrate/verify.h"
#include "migrate/worker_int.h"

/*
 * splitdb_verify_ahead_start
 *		Make job->ahead_tables the tables that the verification will count,
 *		none of them counted yet, and clear what an earlier verification of
 *		the job recorded (its tables were copied again since); NIL for an
 *		online job, or with splitdb.verify_ahead off.
 */
void
splitdb_verify_ahead_start(SplitdbJob *job)
{
	const char *params[1];

	job->ahead_tables = NIL;
	if (job->online || !job->verify_ahead)
		return;
	splitdb_worker_begin("listing the tables to verify");
	job->ahead_tables = splitdb_verify_tables(job->service, job->job_cxt);
	/* a verification of earlier copies says nothing of these */
	params[0] = splitdb_worker_int64_text(job->job_id);
	splitdb_worker_sql("UPDATE splitdb.job_table SET source_rows = NULL, source_checksum = NULL,"
					   " target_rows = NULL, target_checksum = NULL, verified = NULL, error = NULL"
					   " WHERE job_id = $1::bigint", 1, params);
	splitdb_worker_commit();
}

/*
 * splitdb_verify_ahead_next
 *		Count and checksum in the source the next table of job->ahead_tables
 *		(arg: the SplitdbJob) not counted yet, and record it; false when none
 *		is left.  The idle work of the indexing step's builds
 *		(splitdb_ddl_apply_side_by_side()).
 */
bool
splitdb_verify_ahead_next(void *arg)
{
	SplitdbJob *job = (SplitdbJob *) arg;
	ListCell   *lc;

	foreach(lc, job->ahead_tables)
	{
		SplitdbVerifyTable *t = (SplitdbVerifyTable *) lfirst(lc);
		const char *params[4];

		if (t->source_ready)
			continue;
		splitdb_worker_begin("counting %s in the source", t->target_name);
		splitdb_verify_source(t, job->job_cxt);
		params[0] = splitdb_worker_int64_text(job->job_id);
		params[1] = t->target_name;
		params[2] = splitdb_worker_int64_text(t->source_rows);
		params[3] = t->source_checksum;
		splitdb_worker_sql("UPDATE splitdb.job_table SET source_rows = $3::bigint, source_checksum = $4,"
						   " updated_at = pg_catalog.clock_timestamp()"
						   " WHERE job_id = $1::bigint AND table_name = $2", 4, params);
		splitdb_worker_commit_busy();
		return true;
	}
	return false;
}

/*
 * splitdb_verify_ahead_take
 *		The verifying step's tables as the indexing step left them, some
 *		counted in the source already; NIL when there is no such list (an
 *		online job, or a run that starts at verifying).  The job's list is
 *		emptied: a later verification lists its tables again.
 */
List *
splitdb_verify_ahead_take(SplitdbJob *job)
{
	List	   *tables = job->ahead_tables;

	job->ahead_tables = NIL;
	return tables;
}
