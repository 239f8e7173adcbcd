/*-------------------------------------------------------------------------
 *
 * copyout.c
 *	  Reading a COPY ... TO STDOUT of another database, row by row.
 *
 * The rollback's replay (migrate/replay.c) reads the sibling's rows as one
 * COPY and feeds them to a local COPY FROM.  This module owns the libpq
 * side: start the COPY, hand over each row as it arrives (waiting on the
 * socket and the latch, so a cancel or SIGTERM ends a wait), and check the
 * COPY's end.
 *
 * Invariants:
 * - Only one row is held at a time (libpq's buffer, copied into the
 *   caller's), whatever the number of rows.
 * - A COPY that fails in the other database is relayed with its SQLSTATE;
 *   an error of the caller's while a COPY is under way leaves the
 *   connection in the COPY: the caller closes it on its error path, as it
 *   does on any error.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/remote/copyout.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "libpq/libpq-be-fe-helpers.h"
#include "miscadmin.h"
#include "storage/latch.h"

#include "compat.h"
#include "remote/remote.h"

/*
 * splitdb_remote_copy_out_begin
 *		Start sql, a COPY ... TO STDOUT, on conn (no command in progress; in
 *		the transaction open there, if any).  A refused COPY is relayed.
 */
void
splitdb_remote_copy_out_begin(PGconn *conn, const char *sql, const char *service)
{
	PGresult   *res;

	if (!PQsendQuery(conn, sql))
		splitdb_remote_report(NULL, conn, sql, service);
	res = libpqsrv_get_result(conn, SPLITDB_WAIT_EVENT_REMOTE);
	if (res == NULL || PQresultStatus(res) != PGRES_COPY_OUT)
	{
		PGresult   *next;

		while ((next = libpqsrv_get_result(conn, SPLITDB_WAIT_EVENT_REMOTE)) != NULL)
			PQclear(next);
		splitdb_remote_report(res, conn, sql, service);
	}
	PQclear(res);
}

/*
 * splitdb_remote_copy_out_row
 *		The next row of the COPY that splitdb_remote_copy_out_begin()
 *		started: its bytes are appended to buf, and their number returned;
 *		-1 once the COPY has ended and its result was checked (sql names it
 *		in an error).
 */
int
splitdb_remote_copy_out_row(PGconn *conn, StringInfo buf, const char *sql,
							const char *service)
{
	for (;;)
	{
		char	   *data = NULL;
		int			n = PQgetCopyData(conn, &data, 1);

		if (n > 0)
		{
			appendBinaryStringInfo(buf, data, n);
			PQfreemem(data);
			return n;
		}
		if (n == -1)
		{
			PGresult   *res = libpqsrv_get_result_last(conn, SPLITDB_WAIT_EVENT_REMOTE);

			if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK)
				splitdb_remote_report(res, conn, sql, service);
			PQclear(res);
			return -1;
		}
		if (n < -1)
			splitdb_remote_report(NULL, conn, sql, service);

		/* nothing whole yet: wait for the socket, interruptibly */
		(void) WaitLatchOrSocket(MyLatch,
								 WL_LATCH_SET | WL_SOCKET_READABLE | WL_EXIT_ON_PM_DEATH,
								 PQsocket(conn), -1L, SPLITDB_WAIT_EVENT_REMOTE);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (!PQconsumeInput(conn))
			splitdb_remote_report(NULL, conn, sql, service);
	}
}
