/*-------------------------------------------------------------------------
 *
 * fence.c
 *	  Fencing a migration job's sessions in its sibling from an earlier run.
 *
 * A worker killed in the middle of a step leaves its sibling sessions
 * behind: the sibling sees the connection close only when it next talks to
 * the client, so a CREATE INDEX, a COPY or the DDL transaction of a dead run
 * goes on, and may commit, while the next run works on the same objects.
 * Every session a run opens in the sibling therefore holds a shared
 * session-level advisory lock on the job there (the key of the job's lock
 * in the source, SPLITDB_JOB_LOCK_KEY and the job id), and each run, before
 * any step touches the sibling, fences: it ends the sessions of earlier
 * runs and takes the lock exclusively once, which only succeeds when none
 * is left.
 *
 * Invariants:
 * - After splitdb_fence_take() no session of an earlier run of the job is
 *   open in the sibling, so nothing it sent can commit later.  This holds
 *   for a sibling on this cluster and on another server alike: the sessions
 *   are found through pg_locks of the sibling's own server.
 * - A session is ended (pg_terminate_backend) only when it holds the job's
 *   lock, is splitdb's (application_name), and the sibling's role may signal
 *   it; any other holder is waited for, up to splitdb.fence_timeout, and
 *   then the run fails with an error naming the processes.
 * - Every connection of a run joins the fence (splitdb_fence_join) before
 *   it runs anything else.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/fence.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "migrate/fence.h"
#include "migrate/job.h"
#include "remote/remote.h"
#include "splitdb.h"

/* how often the fence looks again while an earlier session holds on */
#define FENCE_POLL_MS	100

/* the sibling's sessions, other than this one, that hold the job's lock */
#define HOLDERS_SQL \
	"  FROM pg_catalog.pg_locks l" \
	"  LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid" \
	" WHERE l.locktype = 'advisory' AND l.granted" \
	"   AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d" \
	"                      WHERE d.datname = pg_catalog.current_database())" \
	"   AND l.classid = $1::integer::oid AND l.objid = $2::integer::oid AND l.objsubid = 2" \
	"   AND l.pid <> pg_catalog.pg_backend_pid()"

/*
 * end_sessions
 *		Terminate the sibling's sessions of earlier runs that are splitdb's
 *		and that the sibling's role may signal, waiting up to timeout_ms for
 *		them to exit.  Returns how many were sent the signal.
 */
static int
end_sessions(PGconn *conn, const char *const *params, const char *service)
{
	PGresult   *res;
	int			n;

	res = splitdb_remote_exec(conn,
							  "SELECT pg_catalog.pg_terminate_backend(l.pid, $4::bigint)"
							  HOLDERS_SQL
							  "   AND a.application_name = $3"
							  "   AND (pg_catalog.pg_has_role(a.usesysid, 'MEMBER')"
							  "        OR (pg_catalog.pg_has_role('pg_signal_backend', 'MEMBER')"
							  "            AND NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r"
							  "                      WHERE r.oid = a.usesysid)))",
							  4, params, service);
	n = splitdb_remote_ntuples(res);
	splitdb_remote_clear(res);
	return n;
}

/*
 * holders
 *		The pids of the sessions that still hold the job's lock in the
 *		sibling, comma-separated.
 */
static char *
holders(PGconn *conn, const char *const *params, const char *service)
{
	char	   *pids;

	/* one row, never NULL: an aggregate, coalesced */
	pids = splitdb_remote_scalar(conn,
								 "SELECT coalesce(pg_catalog.string_agg(DISTINCT l.pid::pg_catalog.text, ', '), '')"
								 HOLDERS_SQL,
								 2, params, service);
	return pids;
}

/*
 * splitdb_fence_take
 *		Make sure no session of an earlier run of the job is left in the
 *		sibling, then mark conn as this run's.
 *
 * conn:       the run's first connection to the sibling, before any step
 *             used it
 * timeout_ms: how long to wait for sessions that cannot be ended; 0 does
 *             not wait
 *
 * Returns how many sessions of earlier runs were ended.  Raises
 * ERRCODE_LOCK_NOT_AVAILABLE, naming the processes, when some still hold
 * the job's lock after timeout_ms.  The wait is interruptible.
 */
int
splitdb_fence_take(PGconn *conn, int64 job_id, int timeout_ms,
				   const char *service)
{
	const char *params[4];
	TimestampTz deadline;
	int			ended;

	params[0] = psprintf("%d", SPLITDB_JOB_LOCK_KEY);
	params[1] = psprintf("%d", (int32) job_id);
	params[2] = SPLITDB_APPLICATION_NAME;
	params[3] = psprintf("%d", timeout_ms);
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);

	ended = end_sessions(conn, params, service);
	for (;;)
	{
		char	   *value;
		bool		locked;

		value = splitdb_remote_scalar(conn,
									  "SELECT pg_catalog.pg_try_advisory_lock($1::integer, $2::integer)",
									  2, params, service);
		locked = value != NULL && strcmp(value, "t") == 0;
		if (locked)
			break;
		if (GetCurrentTimestamp() >= deadline)
		{
			char	   *pids = holders(conn, params, service);

			ereport(ERROR,
					(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
					 errmsg("sessions of an earlier run of job " INT64_FORMAT " are still open in the sibling of service \"%s\"",
							job_id, service),
					 errdetail("Process(es) %s of the sibling's server still hold the job's advisory lock after %d ms; splitdb ends only its own sessions (application_name \"%s\") that the sibling's role may signal.",
							   pids[0] ? pids : "(gone now)", timeout_ms, SPLITDB_APPLICATION_NAME),
					 errhint("End them in the sibling with pg_terminate_backend(), or wait until they end, then call splitdb_migrate('%s') again; splitdb.fence_timeout sets how long a run waits.",
							 service)));
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 FENCE_POLL_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}

	/* this run's mark, held until its connection closes */
	splitdb_remote_command(conn,
						   "SELECT pg_catalog.pg_advisory_lock_shared($1::integer, $2::integer),"
						   " pg_catalog.pg_advisory_unlock($1::integer, $2::integer)",
						   2, params, service);
	return ended;
}

/*
 * splitdb_fence_join
 *		Mark another connection to the sibling as the run's, after
 *		splitdb_fence_take() on its first one.
 */
void
splitdb_fence_join(PGconn *conn, int64 job_id, const char *service)
{
	const char *params[2];

	params[0] = psprintf("%d", SPLITDB_JOB_LOCK_KEY);
	params[1] = psprintf("%d", (int32) job_id);
	splitdb_remote_command(conn,
						   "SELECT pg_catalog.pg_advisory_lock_shared($1::integer, $2::integer)",
						   2, params, service);
}
