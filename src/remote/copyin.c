/*-------------------------------------------------------------------------
 *
 * copyin.c
 *	  Writing a COPY ... FROM STDIN into another database over several
 *	  connections at once.
 *
 * The copy (migrate/copy.c) streams a batch's rows to the sibling over one
 * or more connections, each carrying one COPY.  This module owns the libpq
 * side: start the COPY, offer chunks of data to whichever connection has
 * sent what it was given, wait (interruptibly) for a socket to drain or a
 * result to arrive, and end each COPY and read its result.
 *
 * Invariants:
 * - Never more than one offered chunk waits in a connection's libpq buffer
 *   beyond what its socket took, whatever the size of the batch.
 * - Every wait is on the sockets and the latch together, so a cancel or
 *   SIGTERM ends it.
 * - A COPY that fails in the sibling is relayed with its SQLSTATE.  On any
 *   error the caller closes the connection, which makes the sibling roll
 *   the COPY back.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/remote/copyin.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/socket.h>

#include "libpq/libpq-be-fe-helpers.h"
#include "miscadmin.h"
#include "storage/latch.h"

#include "compat.h"
#include "remote/remote.h"

/*
 * The send buffer asked for on a Unix-domain socket that carries COPY data:
 * the kernel grants at most twice net.core.wmem_max.
 */
#define COPY_SEND_BUFFER	(4 * 1024 * 1024)

/*
 * widen_send_buffer
 *		Ask for a larger send buffer on conn's socket when it is a
 *		Unix-domain socket (a sibling on this host).
 *
 * Why: the socket's buffer is the only queue between the worker, which
 * reads and encodes the rows, and the sibling's backends, which parse and
 * write them; the default (net.core.wmem_default, about 200 kB) holds a few
 * milliseconds of rows.  On a machine with fewer free cores than processes,
 * whichever side the scheduler takes off its core leaves the other waiting
 * within those milliseconds: the sibling's backends in ClientRead, the
 * worker for a socket to drain.  A buffer of megabytes lets each side run
 * on through the other's time off the core.  A TCP socket is left alone:
 * the kernel sizes its buffers to the link, and a size set here would fix
 * it.  Failure only leaves the default: the copy is as correct, if slower.
 */
static void
widen_send_buffer(PGconn *conn)
{
	int			sock = PQsocket(conn);
	struct sockaddr_storage addr;
	socklen_t	addrlen = sizeof(addr);
	int			size = COPY_SEND_BUFFER;

	if (sock < 0 || getsockname(sock, (struct sockaddr *) &addr, &addrlen) != 0 ||
		addr.ss_family != AF_UNIX)
		return;
	(void) setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
}

/*
 * splitdb_remote_copy_begin
 *		Start a COPY ... FROM STDIN in the sibling.
 *
 * conn:    an open connection with no command in progress
 * sql:     the COPY statement; identifiers quoted
 * service: names the service in the error context
 *
 * Afterwards the caller sends data with splitdb_remote_copy_offer() and ends
 * with splitdb_remote_copy_end_send() and splitdb_remote_copy_result().  On an error the caller should close the
 * connection, which makes the sibling roll the COPY back.
 */
void
splitdb_remote_copy_begin(PGconn *conn, const char *sql, const char *service)
{
	PGresult   *res;

	widen_send_buffer(conn);
	if (!PQsendQuery(conn, sql))
		splitdb_remote_report(NULL, conn, sql, service);
	res = libpqsrv_get_result(conn, SPLITDB_WAIT_EVENT_REMOTE);
	if (res == NULL || PQresultStatus(res) != PGRES_COPY_IN)
	{
		/* drain what follows the error, keep the first result's fields */
		PGresult   *next;

		while ((next = libpqsrv_get_result(conn, SPLITDB_WAIT_EVENT_REMOTE)) != NULL)
			PQclear(next);
		splitdb_remote_report(res, conn, sql, service);
	}
	PQclear(res);
}

/* a COPY whose data, or its end (at_end), could not be sent: the link is gone */
static void
copy_send_failed(PGconn *conn, const char *service, bool at_end)
{
	ereport(ERROR,
			(errcode(ERRCODE_CONNECTION_FAILURE),
			 at_end ? errmsg("could not finish sending data to the sibling of service \"%s\"", service) :
			 errmsg("could not send data to the sibling of service \"%s\"", service),
			 errdetail_internal("%s", pchomp(PQerrorMessage(conn))),
			 errhint("Check that the sibling's server is running, then try again; a migration resumes its copy with the next splitdb_migrate().")));
}

/*
 * splitdb_remote_copy_offer
 *		Hand len bytes of COPY data to conn, if conn has sent everything it
 *		was given before; never waits.
 *
 * Returns false, having taken nothing, while earlier data is still on its
 * way: the caller offers the data to another connection, or waits with
 * splitdb_remote_wait_writable().  So each connection holds at most one
 * offer beyond what its socket took, and memory stays bounded.  The
 * connection is in libpq's nonblocking mode from the first offer until
 * splitdb_remote_copy_end_send().
 */
bool
splitdb_remote_copy_offer(PGconn *conn, const char *data, int len,
						  const char *service)
{
	int			pending;
	int			put;

	if (!PQisnonblocking(conn) && PQsetnonblocking(conn, 1) != 0)
		copy_send_failed(conn, service, false);
	pending = PQflush(conn);
	if (pending < 0)
		copy_send_failed(conn, service, false);
	if (pending > 0)
		return false;
	put = PQputCopyData(conn, data, len);
	if (put < 0)
		copy_send_failed(conn, service, false);
	if (put == 0)
		return false;
	if (PQflush(conn) < 0)
		copy_send_failed(conn, service, false);
	return true;
}

/*
 * wait_sockets
 *		Wait, interruptibly, until the socket of one of conns (those with
 *		which[i], or all when which is NULL) reports event
 *		(WL_SOCKET_WRITEABLE or WL_SOCKET_READABLE), or the latch is set.
 */
static void
wait_sockets(PGconn *const *conns, const bool *which, int nconns, int event)
{
	WaitEventSet *set;
	WaitEvent	occurred;

	/* nothing in between may raise an error: the set is freed below */
	set = CreateWaitEventSet(CurrentMemoryContext, nconns + 2);
	AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	for (int i = 0; i < nconns; i++)
		if (which == NULL || which[i])
			AddWaitEventToSet(set, event, PQsocket(conns[i]), NULL, NULL);
	(void) WaitEventSetWait(set, -1, &occurred, 1, SPLITDB_WAIT_EVENT_REMOTE);
	FreeWaitEventSet(set);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

/*
 * splitdb_remote_wait_writable
 *		Wait, interruptibly, until the socket of one of conns can take more
 *		data or the latch is set.  The caller then offers again.
 */
void
splitdb_remote_wait_writable(PGconn *const *conns, int nconns)
{
	wait_sockets(conns, NULL, nconns, WL_SOCKET_WRITEABLE);
}

/*
 * splitdb_remote_wait_ready
 *		Wait, interruptibly, until one of the connections marked busy has
 *		its result whole (PQisBusy false), and return its index.  The
 *		caller reads the result with splitdb_remote_finish(), which then
 *		does not wait.  A lost connection is relayed as an error.
 */
int
splitdb_remote_wait_ready(PGconn *const *conns, const bool *busy, int nconns,
						  const char *service)
{
	for (;;)
	{
		int			nbusy = 0;

		for (int i = 0; i < nconns; i++)
		{
			if (!busy[i])
				continue;
			if (!PQconsumeInput(conns[i]))
				splitdb_remote_report(NULL, conns[i], "(reading a result)", service);
			if (!PQisBusy(conns[i]))
				return i;
			nbusy++;
		}
		if (nbusy == 0)
			elog(ERROR, "no remote statement is under way");
		wait_sockets(conns, busy, nconns, WL_SOCKET_READABLE);
	}
}

/*
 * splitdb_remote_copy_end_send
 *		Send what is left of the COPY data, then the end of the COPY,
 *		without waiting for the sibling to accept it: the caller ends every
 *		stream first, so they finish side by side, then collects each result
 *		with splitdb_remote_copy_result().
 */
void
splitdb_remote_copy_end_send(PGconn *conn, const char *service)
{
	if (PQisnonblocking(conn))
	{
		int			pending;

		while ((pending = PQflush(conn)) > 0)
			splitdb_remote_wait_writable(&conn, 1);
		if (pending < 0 || PQsetnonblocking(conn, 0) != 0)
			copy_send_failed(conn, service, false);
	}
	CHECK_FOR_INTERRUPTS();
	if (PQputCopyEnd(conn, NULL) != 1)
		copy_send_failed(conn, service, true);
}

/*
 * splitdb_remote_copy_result
 *		Wait for the sibling to accept (and, outside a transaction block,
 *		commit) a COPY ended by splitdb_remote_copy_end_send().
 *
 * sql: the COPY statement, for the error context.  A rejected COPY is
 * relayed with the sibling's SQLSTATE.
 */
void
splitdb_remote_copy_result(PGconn *conn, const char *sql, const char *service)
{
	PGresult   *res = libpqsrv_get_result_last(conn, SPLITDB_WAIT_EVENT_REMOTE);

	if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK)
		splitdb_remote_report(res, conn, sql, service);
	PQclear(res);
}
