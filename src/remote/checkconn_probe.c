/*-------------------------------------------------------------------------
 *
 * checkconn_probe.c
 *	  Whether the remote session of a check connection is still there, from
 *	  what its socket already received: before the local commit, a session
 *	  that ended since its checks took their locks with it.
 *
 * A session that pg_terminate_backend() ends sends its FATAL message, then
 * releases its locks, and closes its socket only after: between the two, a
 * concurrent delete of a row it had locked may go through while the socket
 * still reads as open.  libpq hands a message that comes while no statement
 * runs to the connection's notice receiver, which marks the connection.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/remote/checkconn_probe.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "libpq-fe.h"
#include "utils/hsearch.h"

#include "remote/checkconn.h"
#include "remote/checkconn_int.h"

static bool session_gone(CheckConn *cc);

/*
 * splitdb_checkconn_notice
 *		The notice receiver of a check connection (open_conn() in
 *		checkconn.c), which libpq also hands what the other server sends
 *		while no statement runs: the FATAL of a session that ends
 *		(pg_terminate_backend(), a shutdown) marks the connection
 *		(cc->ending).  Everything goes to the log at DEBUG1.  Raises no
 *		error.
 */
void
splitdb_checkconn_notice(void *arg, const PGresult *res)
{
	const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);

	if (severity != NULL &&
		(strcmp(severity, "FATAL") == 0 || strcmp(severity, "PANIC") == 0))
		((CheckConn *) arg)->ending = true;
	elog(DEBUG1, "remote notice: %s", PQresultErrorMessage(res));
}

/*
 * session_gone
 *		Whether what the socket of an idle connection already received says
 *		that its remote session is over.  Raises no error.
 */
static bool
session_gone(CheckConn *cc)
{
	/* a second read sees the end of the stream behind a last message */
	if (!PQconsumeInput(cc->conn) || !PQconsumeInput(cc->conn))
		return true;
	/* parsing what came hands a FATAL to splitdb_checkconn_notice */
	(void) PQisBusy(cc->conn);
	return cc->ending || PQstatus(cc->conn) == CONNECTION_BAD;
}

/*
 * splitdb_checkconn_probe
 *		Before the local commit: whether each connection that holds locks
 *		that matter is still there, from what its socket already received
 *		(no round trip): the end of the stream, or the FATAL message that a
 *		session sends before it releases its locks, its socket still open.
 *		A remote session terminated since its checks, or
 *		a server that went away, took their locks with it, and a concurrent
 *		delete of a referenced row may have gone through since: the
 *		connection is lost and its remote transaction counts as failed
 *		(splitdb_checkconn_failed_servers), so that the keys are checked
 *		again before the commit.  Raises no error.
 */
void
splitdb_checkconn_probe(void)
{
	HASH_SEQ_STATUS scan;
	CheckConn  *cc;

	if (splitdb_checkconn_conns == NULL)
		return;
	hash_seq_init(&scan, splitdb_checkconn_conns);
	while ((cc = hash_seq_search(&scan)) != NULL)
	{
		if (cc->conn != NULL && cc->held && !cc->busy && session_gone(cc))
			splitdb_checkconn_lose(cc);
	}
}
