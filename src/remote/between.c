/*-------------------------------------------------------------------------
 *
 * between.c
 *	  One statement between two others on a borrowed connection
 *	  (postgres_fdw's), in one round trip.
 *
 * A check in the other database runs on postgres_fdw's connection inside
 * the writer's remote transaction with a setting of its own
 * (refcheck_check.c: SET LOCAL row_security = off before the lookup, the
 * session's value again after it).  Sent one by one, that is three round
 * trips; here the three go out in one pipeline (libpq's pipeline mode) and
 * their answers are read together.
 *
 * Invariants:
 * - The connection is left as found: out of pipeline mode, no result
 *   unread, in the same remote transaction.  A remote error of any of the
 *   three is read to the pipeline's end before it is relayed (the remote
 *   transaction is then aborted, as after any failed statement, and the
 *   local error aborts it).
 * - An interrupt (a cancel, a statement timeout) while the answers are
 *   awaited cancels the remote statement and reads the pipeline to its end
 *   for at most SPLITDB_DRAIN_TIMEOUT_MS (remote.h) before the error goes
 *   on, as postgres_fdw does for its own statements.  A server that does not answer by then
 *   leaves the connection in pipeline mode: postgres_fdw's abort then
 *   fails to clean it up and closes it, and the next use opens another.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/remote/between.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "libpq-fe.h"
#include "libpq/libpq-be-fe-helpers.h"

#include "compat.h"
#include "remote/remote.h"

/*
 * drain_pipeline
 *		After an interrupt: cancel what runs on conn, read every answer up
 *		to the pipeline's sync and leave pipeline mode, for at most
 *		SPLITDB_DRAIN_TIMEOUT_MS.  Raises no error and services no interrupt: it
 *		runs while an error is on its way.
 */
static void
drain_pipeline(PGconn *conn)
{
	if (PQpipelineStatus(conn) == PQ_PIPELINE_OFF)
		return;
	if (splitdb_remote_cancel_drain(conn, 1, SPLITDB_DRAIN_TIMEOUT_MS))
		(void) PQexitPipelineMode(conn);
}

/*
 * next_answer
 *		The answer of the next statement of the pipeline (its last result,
 *		which libpq ends with a NULL), read interruptibly; NULL when the
 *		connection broke.
 */
static PGresult *
next_answer(PGconn *conn)
{
	return libpqsrv_get_result_last(conn, SPLITDB_WAIT_EVENT_REMOTE);
}

/*
 * splitdb_remote_exec_between
 *		Run one statement with text parameters between two statements
 *		without parameters (before and after: settings, say), the three in
 *		one round trip, and return the middle one's result (the caller's
 *		to PQclear()).  A remote error of any of them is relayed with its
 *		SQLSTATE, the statement that failed and service naming it.
 *
 * conn: a borrowed connection with no command in progress, out of
 *       pipeline mode
 * name: the statement prepared on conn to run (sql only names it in an
 *       error), or NULL to send sql itself
 */
PGresult *
splitdb_remote_exec_between(PGconn *conn, const char *before, const char *after,
							const char *name, const char *sql, int nparams,
							const char *const *values, const char *service)
{
	const char *texts[3] = {before, sql, after};
	PGresult   *volatile answers[3] = {NULL, NULL, NULL};
	PGresult   *volatile sync = NULL;
	int			failed = -1;

	if (!PQenterPipelineMode(conn))
		splitdb_remote_report(NULL, conn, before, service);
	if (!PQsendQueryParams(conn, before, 0, NULL, NULL, NULL, NULL, 0) ||
		!(name != NULL ?
		  PQsendQueryPrepared(conn, name, nparams, values, NULL, NULL, 0) :
		  PQsendQueryParams(conn, sql, nparams, NULL, values, NULL, NULL, 0)) ||
		!PQsendQueryParams(conn, after, 0, NULL, NULL, NULL, NULL, 0) ||
		!PQpipelineSync(conn))
	{
		/* a connection that cannot send is broken: postgres_fdw closes it */
		splitdb_remote_report(NULL, conn, sql, service);
	}

	PG_TRY();
	{
		for (int i = 0; i < 3; i++)
			answers[i] = next_answer(conn);
		sync = libpqsrv_get_result(conn, SPLITDB_WAIT_EVENT_REMOTE);
	}
	PG_CATCH();
	{
		for (int i = 0; i < 3; i++)
			PQclear(answers[i]);
		drain_pipeline(conn);
		PG_RE_THROW();
	}
	PG_END_TRY();

	if (sync != NULL && PQresultStatus(sync) == PGRES_PIPELINE_SYNC)
		(void) PQexitPipelineMode(conn);
	PQclear(sync);

	/* the first statement that did not succeed is the one to relay */
	for (int i = 0; i < 3 && failed < 0; i++)
		if (answers[i] == NULL ||
			(PQresultStatus(answers[i]) != PGRES_COMMAND_OK &&
			 PQresultStatus(answers[i]) != PGRES_TUPLES_OK))
			failed = i;
	if (failed >= 0)
	{
		PGresult   *res = answers[failed];

		for (int i = 0; i < 3; i++)
			if (i != failed)
				PQclear(answers[i]);
		splitdb_remote_report(res, conn, texts[failed], service);
	}
	PQclear(answers[0]);
	PQclear(answers[2]);
	return answers[1];
}
