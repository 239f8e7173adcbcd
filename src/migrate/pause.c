/*-------------------------------------------------------------------------
 *
 * pause.c
 *	  The test hooks' wait: a worker waits at a named point of its steps
 *	  while a session holds an advisory lock (splitdb.migrate_pause_at
 *	  here, splitdb.rollback_pause_at in rollback.c).
 *
 * A job started with the setting waits at the named point of its steps
 * (job.h, SplitdbPausePoint) while a session holds an advisory lock, so
 * that tests meet the worker there with writes, or kill it there.  Without
 * the setting a point costs one comparison.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/pause.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/backend_status.h"
#include "utils/wait_event.h"

#include "metadata/catalog.h"
#include "migrate/job.h"
#include "migrate/jobstate.h"
#include "migrate/pause.h"
#include "migrate/worker_int.h"

/*
 * splitdb_pause_while_locked
 *		Wait, the activity "paused at <name>", for as long as any session
 *		holds the advisory lock (key1, key2); the caller is in a
 *		transaction, connected to SPI.  The test hooks of the migration
 *		worker (below) and of the rollback's worker (rollback.c) wait here.
 */
void
splitdb_pause_while_locked(int32 key1, int32 key2, const char *name)
{
	Oid			types[2] = {INT4OID, INT4OID};
	Datum		values[2] = {Int32GetDatum(key1), Int32GetDatum(key2)};

	pgstat_report_activity(STATE_RUNNING, psprintf("paused at %s", name));
	for (;;)
	{
		bool		isnull;

		splitdb_spi_exec("SELECT pg_catalog.pg_try_advisory_xact_lock_shared($1, $2)",
						 2, types, values, NULL, false, 1);
		if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 20L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * splitdb_worker_pause_at
 *		Test hook: when the job was started with splitdb.migrate_pause_at
 *		naming point, wait here while a session holds the advisory lock
 *		(SPLITDB_MIGRATE_PAUSE_KEY, 0); tests meet the worker there with
 *		writes, or kill it there.  In a transaction of the worker.
 */
void
splitdb_worker_pause_at(SplitdbJob *job, int point, const char *name)
{
	if (job->pause_at != point)
		return;
	elog(LOG, "job " INT64_FORMAT " of service \"%s\" pauses at %s", job->job_id, job->service, name);
	splitdb_pause_while_locked(SPLITDB_MIGRATE_PAUSE_KEY, 0, name);
	elog(LOG, "job " INT64_FORMAT " of service \"%s\" goes on from %s", job->job_id, job->service, name);
}
