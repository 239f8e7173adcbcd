/*-------------------------------------------------------------------------
 *
 * drainclose.c
 *	  Reading a pipeline's answers to its syncs for a bounded time, without
 *	  servicing interrupts; closing a pipelined connection at the end of a
 *	  backend that way, without leaving the other server a reset.
 *
 * A connection that sends its COMMIT without waiting (checkconn.c) still
 * owes answers when its backend exits.  Closed with those unread, or with
 * them still on their way, the socket answers with a TCP reset, and the
 * other server logs "could not receive data from client: Connection reset
 * by peer" for every session of the application that made a check.  So
 * the answers are read first, for a bounded time, and libpq then sends its
 * Terminate message.
 *
 * An interrupted pipeline is cancelled and read to its sync the same way
 * before the error goes on: on a borrowed connection (between.c), and on a
 * check connection, which is then kept (checkconn.c).
 *
 * Invariants:
 * - Raises no error and services no interrupt: it runs in a
 *   before_shmem_exit callback, and while an error is on its way.
 * - Waits at most timeout_ms in all; a server that does not answer by then
 *   gets the reset.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/remote/drainclose.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "libpq-fe.h"
#include "libpq/libpq-be-fe-helpers.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "remote/remote.h"

/*
 * splitdb_remote_drain_syncs
 *		Read conn's results until syncs pipeline syncs have been answered;
 *		false when it fails or timeout_ms pass first.  Raises no error and
 *		services no interrupt.
 */
bool
splitdb_remote_drain_syncs(PGconn *conn, int syncs, int timeout_ms)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);

	while (syncs > 0 && PQstatus(conn) == CONNECTION_OK)
	{
		long		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
		PGresult   *res;

		if (left <= 0)
			return false;
		if (PQisBusy(conn))
		{
			(void) WaitLatchOrSocket(NULL, WL_SOCKET_READABLE | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
									 PQsocket(conn), left, SPLITDB_WAIT_EVENT_REMOTE);
			if (PQconsumeInput(conn) == 0)
				return false;
			continue;
		}
		res = PQgetResult(conn);
		if (res != NULL && PQresultStatus(res) == PGRES_PIPELINE_SYNC)
			syncs--;
		PQclear(res);
	}
	return syncs == 0;
}

/*
 * splitdb_remote_cancel_drain
 *		Cancel what runs on conn (a statement waiting for a lock), then read
 *		its results as splitdb_remote_drain_syncs() does; false when the
 *		pipeline could not be read to its last sync in time.  With no sync
 *		owed nothing runs there, and no cancel is sent.
 */
bool
splitdb_remote_cancel_drain(PGconn *conn, int syncs, int timeout_ms)
{
	PGcancel   *cancel = syncs > 0 ? PQgetCancel(conn) : NULL;
	char		errbuf[256];

	if (cancel != NULL)
	{
		(void) PQcancel(cancel, errbuf, sizeof(errbuf));
		PQfreeCancel(cancel);
	}
	return splitdb_remote_drain_syncs(conn, syncs, timeout_ms);
}

/*
 * splitdb_remote_close_drained
 *		Read conn's results until syncs pipeline syncs have been answered
 *		(or it fails, or timeout_ms pass), then close it.
 */
void
splitdb_remote_close_drained(PGconn *conn, int syncs, int timeout_ms)
{
	(void) splitdb_remote_drain_syncs(conn, syncs, timeout_ms);
	libpqsrv_disconnect(conn);
}
