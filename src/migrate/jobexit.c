/*-------------------------------------------------------------------------
 *
 * jobexit.c
 *	  How a job's worker records that its job failed, and a stop by
 *	  splitdb_cancel() apart from any other.
 *
 * The launcher resumes, after a restart, the jobs that failed with 57P01: a
 * worker terminated by a clean shutdown or pg_terminate_backend() (see
 * launcher.c).  splitdb_cancel() also terminates the worker, which records
 * its failure as it exits, and the cancel's own transaction commits only at
 * its end: a crash in between left a job failed with 57P01, which the
 * launcher resumed to done behind the DBA's back.  So the cancel holds the
 * job's cancel lock (SPLITDB_CANCEL_LOCK_KEY and the job id, jobstate.h)
 * from before it signals the worker to its commit, and a worker terminated
 * while a cancel holds it records 57014 instead, in its own transaction,
 * committed before the cancel goes on: after a crash the job stays failed,
 * not resumed, and a second splitdb_cancel() ends it.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/jobexit.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "migrate/jobstate.h"
#include "migrate/worker_int.h"

/*
 * cancel_under_way
 *		Whether a splitdb_cancel() of the job holds its cancel lock.  In a
 *		transaction.
 */
static bool
cancel_under_way(int64 job_id)
{
	const char *params[2];

	params[0] = psprintf("%d", SPLITDB_CANCEL_LOCK_KEY);
	params[1] = psprintf("%d", (int32) job_id);
	splitdb_worker_sql("SELECT EXISTS (SELECT FROM pg_catalog.pg_locks l"
					   " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2"
					   "   AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d"
					   "                      WHERE d.datname = pg_catalog.current_database())"
					   "   AND l.classid = $1::pg_catalog.oid AND l.objid = $2::pg_catalog.oid)",
					   2, params);
	return strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1), "t") == 0;
}

/*
 * splitdb_worker_record_failure
 *		Mark the job failed with an error's message and SQLSTATE, in a fresh
 *		transaction (the caller has aborted the one that failed).  A
 *		termination (57P01) while a splitdb_cancel() of the job is under way
 *		is recorded as a stop by that cancel (57014), which the launcher
 *		does not resume.  A job that has ended (done, or over since) stays
 *		as it is: a worker stopped after the commit that made its job done
 *		(a termination, a shutdown or a cancel's signal taken at the next
 *		interrupt check) failed nothing, and a job read as failed then
 *		would let splitdb_cancel() drop the sibling's live tables.
 */
void
splitdb_worker_record_failure(int64 job_id, int sqlerrcode, const char *message)
{
	const char *params[4];

	splitdb_worker_begin("recording the failure");
	if (sqlerrcode == ERRCODE_ADMIN_SHUTDOWN && cancel_under_way(job_id))
	{
		sqlerrcode = ERRCODE_QUERY_CANCELED;
		message = psprintf("the worker (pid %d) was stopped by splitdb_cancel()", MyProcPid);
	}
	params[0] = psprintf(INT64_FORMAT, job_id);
	params[1] = message;
	params[2] = unpack_sql_state(sqlerrcode);
	params[3] = psprintf("%d", MyProcPid);
	splitdb_worker_sql("UPDATE splitdb.job SET state = 'failed', last_error = $2, last_sqlstate = $3,"
					   " worker_pid = $4::integer, finished_at = pg_catalog.clock_timestamp(),"
					   " updated_at = pg_catalog.clock_timestamp()"
					   " WHERE job_id = $1::bigint"
					   "   AND state NOT IN ('done', 'finalized', 'cancelled', 'rolled_back')", 4, params);
	splitdb_worker_commit();
}
