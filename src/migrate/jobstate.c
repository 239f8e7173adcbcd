/*-------------------------------------------------------------------------
 *
 * jobstate.c
 *	  A service's last job as the ways out of a migration read it:
 *	  splitdb_cancel(), splitdb_finalize(), splitdb_doctor().
 *
 * Invariants:
 * - The job is read with the latest snapshot and fresh backend statuses,
 *   so a state a worker committed a moment ago is seen whatever the
 *   caller's isolation level, and a job whose worker is gone reads as
 *   failed (splitdb.job_worker_gone()), as splitdb_status shows it.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/jobstate.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"

#include "metadata/catalog.h"
#include "migrate/jobstate.h"

/*
 * splitdb_jobstate_last
 *		The newest job of service; found is false when it has none.  Read
 *		with the latest snapshot (and backend statuses read afresh), so that
 *		rows a worker committed a moment ago are seen whatever the caller's
 *		isolation level.  The caller is connected to SPI; strings live in
 *		the SPI context.
 */
SplitdbJobState
splitdb_jobstate_last(const char *service)
{
	static const char *sql =
		"SELECT j.job_id,"
		"       CASE WHEN splitdb.job_worker_gone(j.state, j.worker_pid) THEN 'failed'"
		"            ELSE j.state END,"
		"       j.phase, coalesce(j.worker_pid, 0), j.last_error, j.last_sqlstate"
		"  FROM splitdb.job j WHERE j.service = $1"
		" ORDER BY j.job_id DESC LIMIT 1";
	Oid			types[1] = {NAMEOID};
	Datum		values[1];
	SPIPlanPtr	plan;
	Snapshot	snap;
	SplitdbJobState job = {0};
	int			rc;

	values[0] = DirectFunctionCall1(namein, CStringGetDatum(service));
	plan = SPI_prepare(sql, 1, types);
	if (plan == NULL)
		splitdb_spi_failed(sql, SPI_result);
	pgstat_clear_backend_activity_snapshot();
	snap = RegisterSnapshot(GetLatestSnapshot());
	rc = SPI_execute_snapshot(plan, values, NULL, snap, InvalidSnapshot, true, false, 1);
	UnregisterSnapshot(snap);
	if (rc != SPI_OK_SELECT)
		splitdb_spi_failed(sql, rc);
	if (SPI_processed == 1)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;

		job.found = true;
		job.job_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		job.state = SPI_getvalue(tup, desc, 2);
		job.phase = SPI_getvalue(tup, desc, 3);
		job.worker_pid = DatumGetInt32(SPI_getbinval(tup, desc, 4, &isnull));
		job.last_error = SPI_getvalue(tup, desc, 5);
		job.last_sqlstate = SPI_getvalue(tup, desc, 6);
	}
	return job;
}

/*
 * splitdb_jobstate_lock_service
 *		The lock that serializes splitdb_migrate() calls of a service, to the
 *		end of the caller's transaction: no job of the service starts or
 *		resumes meanwhile.
 */
void
splitdb_jobstate_lock_service(const char *service)
{
	Oid			types[2] = {INT4OID, TEXTOID};
	Datum		values[2] = {Int32GetDatum(SPLITDB_MIGRATE_LOCK_KEY), CStringGetTextDatum(service)};

	splitdb_spi_exec("SELECT pg_catalog.pg_advisory_xact_lock($1, pg_catalog.hashtext($2))",
					 2, types, values, NULL, false, 0);
}

/*
 * splitdb_jobstate_try_lock
 *		One try at the advisory lock (key, job_id), to the end of the
 *		caller's transaction (SPLITDB_JOB_LOCK_KEY, SPLITDB_CANCEL_LOCK_KEY).
 *		True when it was taken.  The caller is connected to SPI.
 */
bool
splitdb_jobstate_try_lock(int32 key, int64 job_id)
{
	Oid			types[2] = {INT4OID, INT4OID};
	Datum		values[2] = {Int32GetDatum(key), Int32GetDatum((int32) job_id)};
	bool		isnull;

	splitdb_spi_exec("SELECT pg_catalog.pg_try_advisory_xact_lock($1, $2)",
					 2, types, values, NULL, false, 1);
	return DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}
