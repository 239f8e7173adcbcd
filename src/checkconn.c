/*-------------------------------------------------------------------------
 *
 * checkconn.c
 *	  Connections of splitdb's own for the checks of referenced keys.
 *
 * A check that referenced keys exist only reads and locks (SELECT ... FOR
 * KEY SHARE).  On postgres_fdw's connection a transaction that inserts one
 * row would pay three round trips for it: postgres_fdw's START
 * TRANSACTION, the check, and postgres_fdw's COMMIT before the local one.
 * On a connection of splitdb's own it pays one: the BEGIN travels in one
 * pipeline with the checks of every reference to that database, and the
 * COMMIT is sent after the local commit without waiting; the next use of
 * the connection reads its answer.  The locks are so held until after the
 * local commit, which leaves no window between a remote and a local commit
 * for a concurrent delete of the referenced row.
 *
 * The remote transaction runs at the local isolation level, READ COMMITTED
 * included: each check then sees the latest committed version of the row
 * and locks it, like PostgreSQL's own foreign keys.
 *
 * One connection per user mapping: opened on first use with the options of
 * the server and the mapping under postgres_fdw's password rule, kept for
 * the life of the backend, and opened again, between transactions, after
 * the server or the mapping changed.  Whether a check may use it is for
 * refcheck.c to decide (not once the transaction wrote to that server
 * through postgres_fdw: only postgres_fdw's remote transaction sees those
 * writes).
 *
 * What a single-row write costs the other server is most of what it waits
 * for, so the connection keeps that small: it stays in pipeline mode, and
 * the next transaction's pipeline goes out behind the last one's COMMIT
 * without waiting for its answer; START TRANSACTION, COMMIT and ROLLBACK
 * are prepared like the lookups, so the other server parses nothing twice;
 * the remote session commits asynchronously (its transactions only lock
 * rows); and each connection waits on a wait set of its own, made once.
 *
 * A connection is, within a local transaction:
 *   idle      no remote transaction;
 *   in_xact   START TRANSACTION sent, the checks' locks held (failed: a
 *             remote error aborted the remote transaction, and its locks
 *             are gone);
 *   ending    COMMIT or ROLLBACK and a sync sent at the end of the local
 *             transaction, the answer not read yet.
 * It is busy while a pipeline is being sent or read; a transaction that
 * ends while it is busy (an error or a cancel in the middle) closes it, and
 * the other server rolls back.  Nothing here raises an error at the end of
 * a transaction.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/checkconn.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "foreign/foreign.h"
#include "libpq-fe.h"
#include "libpq/libpq-be-fe-helpers.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "checkconn.h"
#include "compat.h"
#include "prepared.h"
#include "remote.h"

typedef struct CheckConn
{
	Oid			umid;			/* hash key: the user mapping */
	Oid			serverid;
	PGconn	   *conn;			/* NULL: closed */
	WaitEventSet *wait;			/* the latch, postmaster death, the socket */
	uint32		server_hash;	/* syscache hash values, for invalidation */
	uint32		mapping_hash;
	bool		invalidated;	/* server or mapping changed: reopen when idle */
	bool		in_xact;
	bool		failed;
	bool		ending;
	bool		busy;
} CheckConn;

static HTAB *conn_hash = NULL;

static CheckConn *ready_conn(UserMapping *mapping, bool *reused);
static void open_conn(CheckConn *cc, UserMapping *mapping);
static bool read_ending(CheckConn *cc);
static void close_conn(CheckConn *cc);
static PGresult *get_result(CheckConn *cc);
static bool send_prepared(CheckConn *cc, const char *sql, bool *is_new);
static bool send_checks(CheckConn *cc, SplitdbCheckStmt *stmts, int n,
						const char **names, bool *prepare, bool begin,
						bool *begin_prepare);
static PGresult *take_result(CheckConn *cc, PGresult **first_error,
							 bool *lost);
static void inval_callback(Datum arg, int cacheid, uint32 hashvalue);

/*
 * begin_sql
 *		The remote transaction's isolation level is the local one.
 */
static const char *
begin_sql(void)
{
	if (IsolationIsSerializable())
		return "START TRANSACTION ISOLATION LEVEL SERIALIZABLE";
	if (IsolationUsesXactSnapshot())
		return "START TRANSACTION ISOLATION LEVEL REPEATABLE READ";
	return "START TRANSACTION ISOLATION LEVEL READ COMMITTED";
}

/*
 * ready_conn
 *		The connection of a user mapping, open and with no command in
 *		progress; *reused tells whether it was open before this call.  The
 *		answer to what was sent without a wait (read_ending) may still be
 *		unread.
 */
static CheckConn *
ready_conn(UserMapping *mapping, bool *reused)
{
	CheckConn  *cc;
	bool		found;

	if (conn_hash == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(CheckConn);
		conn_hash = hash_create("splitdb check connections", 8, &ctl,
								HASH_ELEM | HASH_BLOBS);
		CacheRegisterSyscacheCallback(FOREIGNSERVEROID, inval_callback, (Datum) 0);
		CacheRegisterSyscacheCallback(USERMAPPINGOID, inval_callback, (Datum) 0);
	}
	cc = hash_search(conn_hash, &mapping->umid, HASH_ENTER, &found);
	if (!found)
	{
		memset(cc, 0, sizeof(CheckConn));
		cc->umid = mapping->umid;
	}
	if (cc->conn != NULL && !cc->in_xact &&
		(cc->invalidated || PQstatus(cc->conn) == CONNECTION_BAD))
		close_conn(cc);
	*reused = (cc->conn != NULL);
	if (cc->conn == NULL)
		open_conn(cc, mapping);
	return cc;
}

/*
 * open_conn
 *		Open the connection of a user mapping, under postgres_fdw's password
 *		rule, and put it in pipeline mode for good.
 *
 * The session commits asynchronously: its transactions only lock rows,
 * which nothing needs to find again after a crash, so a COMMIT there need
 * not wait for its WAL to reach disk.  The SET goes out without a wait, as
 * the end of a transaction does (the connection starts "ending"), and its
 * answer is read in front of the first checks.  Raises ERROR when the
 * server cannot be reached.
 */
static void
open_conn(CheckConn *cc, UserMapping *mapping)
{
	ForeignServer *server = GetForeignServer(mapping->serverid);
	PGconn	   *conn = splitdb_remote_connect_mapping(server, mapping, NULL, true);
	WaitEventSet *wait;

	if (!PQenterPipelineMode(conn) ||
		!PQsendQueryParams(conn, "SET synchronous_commit TO off",
						   0, NULL, NULL, NULL, NULL, 0) ||
		!PQpipelineSync(conn))
	{
		char	   *msg = pchomp(PQerrorMessage(conn));

		libpqsrv_disconnect(conn);
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not set up a session for checks of cross-service references on server \"%s\"",
						server->servername),
				 errdetail_internal("%s", msg),
				 errhint("Check that the database of the server is running; the statement can be retried.")));
	}

	/* one wait set for the life of the connection, not one per wait */
	wait = CreateWaitEventSet(TopMemoryContext, 3);
	AddWaitEventToSet(wait, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(wait, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	AddWaitEventToSet(wait, WL_SOCKET_READABLE, PQsocket(conn), NULL, NULL);

	cc->conn = conn;
	cc->wait = wait;
	cc->ending = true;
	cc->serverid = mapping->serverid;
	cc->server_hash = GetSysCacheHashValue1(FOREIGNSERVEROID,
											ObjectIdGetDatum(mapping->serverid));
	cc->mapping_hash = GetSysCacheHashValue1(USERMAPPINGOID,
											 ObjectIdGetDatum(mapping->umid));
	cc->invalidated = false;
}

/*
 * get_result
 *		The next result of the connection, as libpqsrv_get_result() gives
 *		it, waiting on the connection's own wait set.  The wait is
 *		interruptible.
 */
static PGresult *
get_result(CheckConn *cc)
{
	while (PQisBusy(cc->conn))
	{
		WaitEvent	event;

		if (WaitEventSetWait(cc->wait, -1, &event, 1, SPLITDB_WAIT_EVENT_REMOTE) == 1 &&
			(event.events & WL_LATCH_SET))
		{
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
		if (PQconsumeInput(cc->conn) == 0)
			break;				/* trouble: PQgetResult() tells */
	}
	return PQgetResult(cc->conn);
}

/*
 * read_ending
 *		Read the answer to what was sent without a wait: the COMMIT or
 *		ROLLBACK at the end of the last transaction, or the session's SET
 *		when it opened.  Returns false when the connection failed; an error
 *		of the statement itself (a COMMIT that fails ends the remote
 *		transaction all the same, as ROLLBACK does) is only logged.
 */
static bool
read_ending(CheckConn *cc)
{
	PGresult   *res;
	bool		ok = true;
	int			nulls = 0;

	cc->busy = true;
	/* the statement's result and its end, then the sync */
	while (ok)
	{
		res = get_result(cc);
		if (res == NULL)
		{
			/* one NULL ends a statement's results; two mean trouble */
			if (++nulls > 1 || PQstatus(cc->conn) == CONNECTION_BAD)
				ok = false;
			continue;
		}
		nulls = 0;
		if (PQresultStatus(res) == PGRES_PIPELINE_SYNC)
		{
			PQclear(res);
			break;
		}
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
		{
			elog(DEBUG1, "splitdb: check connection: a statement sent without a wait failed: %s",
				 PQresultErrorMessage(res));
			if (PQstatus(cc->conn) == CONNECTION_BAD)
				ok = false;
		}
		PQclear(res);
	}
	cc->busy = false;
	cc->ending = false;
	return ok;
}

/*
 * close_conn
 *		Close a connection and forget its state; the other server rolls back
 *		a transaction left open.  Raises no error.
 */
static void
close_conn(CheckConn *cc)
{
	if (cc->conn != NULL)
	{
		splitdb_prepared_drop(cc->conn);
		libpqsrv_disconnect(cc->conn);
	}
	if (cc->wait != NULL)
		FreeWaitEventSet(cc->wait);
	cc->conn = NULL;
	cc->wait = NULL;
	cc->in_xact = false;
	cc->failed = false;
	cc->ending = false;
	cc->busy = false;
}

/*
 * send_prepared
 *		Queue sql, a statement without parameters, as a statement prepared
 *		on the connection, its PREPARE in front the first time (*is_new).
 *		Returns false when libpq refused it.
 */
static bool
send_prepared(CheckConn *cc, const char *sql, bool *is_new)
{
	const char *name = splitdb_prepared_name(cc->conn, sql, is_new);

	if (*is_new && !PQsendPrepare(cc->conn, name, sql, 0, NULL))
		return false;
	return PQsendQueryPrepared(cc->conn, name, 0, NULL, NULL, NULL, 0) == 1;
}

/*
 * send_checks
 *		Send [START TRANSACTION,] each statement (with its PREPARE when new)
 *		and a sync, behind whatever the pipeline still holds.  Returns false
 *		when the connection failed.
 */
static bool
send_checks(CheckConn *cc, SplitdbCheckStmt *stmts, int n,
			const char **names, bool *prepare, bool begin, bool *begin_prepare)
{
	PGconn	   *conn = cc->conn;

	*begin_prepare = false;
	if (begin && !send_prepared(cc, begin_sql(), begin_prepare))
		return false;
	for (int i = 0; i < n; i++)
	{
		if (prepare[i] &&
			!PQsendPrepare(conn, names[i], stmts[i].sql, stmts[i].nparams, NULL))
			return false;
		if (!PQsendQueryPrepared(conn, names[i], stmts[i].nparams, stmts[i].values,
								 NULL, NULL, 0))
			return false;
	}
	return PQpipelineSync(conn) == 1;
}

/*
 * take_result
 *		Read the result of the next statement of the pipeline.  Returns it
 *		when it succeeded; else NULL, keeping the first error in
 *		*first_error (a statement after it is only "aborted"), or setting
 *		*lost when the connection failed.
 */
static PGresult *
take_result(CheckConn *cc, PGresult **first_error, bool *lost)
{
	PGresult   *res = get_result(cc);
	PGresult   *next;

	if (res == NULL)
	{
		*lost = true;
		return NULL;
	}
	/* each statement's results end with a NULL */
	while ((next = get_result(cc)) != NULL)
		PQclear(next);
	switch (PQresultStatus(res))
	{
		case PGRES_TUPLES_OK:
		case PGRES_COMMAND_OK:
			return res;
		case PGRES_PIPELINE_ABORTED:
			PQclear(res);
			return NULL;
		default:
			if (PQstatus(cc->conn) == CONNECTION_BAD)
				*lost = true;
			if (*first_error == NULL)
				*first_error = res;
			else
				PQclear(res);
			return NULL;
	}
}

/*
 * splitdb_checkconn_run
 *		Run statements in the remote transaction of a user mapping's check
 *		connection, as one pipeline: one round trip.
 *
 * mapping: whose connection (and credentials)
 * stmts:   n statements with text parameters; each is prepared once per
 *          remote session.  On return each result is a PGresult of status
 *          PGRES_TUPLES_OK or PGRES_COMMAND_OK that the caller must PQclear().
 * service: names the service in an error's context (may be NULL)
 *
 * Begins the remote transaction when this local transaction has none
 * there yet; it ends with the local one (splitdb_checkconn_xact_end).  The
 * pipeline goes out behind the end of the last transaction, whose answer
 * is read first.  A remote error is relayed with its SQLSTATE, after which
 * the remote transaction is failed (splitdb_checkconn_failed_servers) and
 * must not be used again.  A connection found broken when a transaction
 * begins is opened again once.
 */
void
splitdb_checkconn_run(UserMapping *mapping, SplitdbCheckStmt *stmts, int n,
					  const char *service)
{
	for (int attempt = 0;; attempt++)
	{
		bool		reused;
		CheckConn  *cc = ready_conn(mapping, &reused);
		bool		begin = !cc->in_xact;
		bool	   *prepare = palloc0(sizeof(bool) * n);
		const char **names = palloc(sizeof(char *) * n);
		bool		begin_prepare;
		PGresult   *first_error = NULL;
		const char *error_sql = NULL;
		bool		lost = false;
		PGresult   *res;
		char	   *msg;

		if (cc->failed)
			elog(ERROR, "check connection used after a failed check");
		for (int i = 0; i < n; i++)
			names[i] = splitdb_prepared_name(cc->conn, stmts[i].sql, &prepare[i]);

		cc->busy = true;
		if (send_checks(cc, stmts, n, names, prepare, begin, &begin_prepare) &&
			(!cc->ending || read_ending(cc)))
		{
			cc->busy = true;
			cc->in_xact = true;
			if (begin_prepare && (res = take_result(cc, &first_error, &lost)) != NULL)
				PQclear(res);
			if (begin && !lost && (res = take_result(cc, &first_error, &lost)) != NULL)
				PQclear(res);
			if (first_error != NULL && error_sql == NULL)
				error_sql = begin_sql();
			for (int i = 0; i < n && !lost; i++)
			{
				if (prepare[i] && (res = take_result(cc, &first_error, &lost)) != NULL)
					PQclear(res);
				stmts[i].result = lost ? NULL : take_result(cc, &first_error, &lost);
				if (first_error != NULL && error_sql == NULL)
					error_sql = stmts[i].sql;
			}
			if (!lost)
			{
				res = get_result(cc);
				if (res == NULL || PQresultStatus(res) != PGRES_PIPELINE_SYNC)
					lost = true;
				PQclear(res);
			}
		}
		else
			lost = true;
		cc->busy = false;

		if (first_error == NULL && !lost)
			return;
		for (int i = 0; i < n; i++)
		{
			PQclear(stmts[i].result);
			stmts[i].result = NULL;
		}
		if (!lost)
		{
			/* a statement failed: the remote transaction is over */
			cc->failed = true;
			splitdb_prepared_drop(cc->conn);
			splitdb_remote_report(first_error, cc->conn, error_sql, service);
		}

		/* the connection failed: try a fresh one if nothing was held on it */
		msg = pchomp(PQerrorMessage(cc->conn));
		PQclear(first_error);
		close_conn(cc);
		if (!begin)
			cc->failed = true;	/* the locks of the earlier checks are gone */
		if (begin && reused && attempt == 0)
			continue;
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("lost the connection to server \"%s\" while checking cross-service references",
						GetForeignServer(mapping->serverid)->servername),
				 errdetail_internal("%s", msg),
				 errhint("Check that the database of the server is running; the statement can be retried.")));
	}
}

/*
 * find_conn
 *		Whether a connection to a server (any server for InvalidOid) has a
 *		remote transaction open in this local one, or, with failed, one
 *		that a remote error ended.
 */
static bool
find_conn(Oid serverid, bool failed)
{
	HASH_SEQ_STATUS scan;
	CheckConn  *cc;
	bool		found = false;

	if (conn_hash == NULL)
		return false;
	hash_seq_init(&scan, conn_hash);
	while ((cc = hash_seq_search(&scan)) != NULL)
		if ((failed ? cc->failed : cc->in_xact) &&
			(cc->serverid == serverid || !OidIsValid(serverid)))
			found = true;
	return found;
}

/* whether a connection to a server has a remote transaction open */
bool
splitdb_checkconn_active(Oid serverid)
{
	return find_conn(serverid, false);
}

/* whether any connection has a remote transaction open */
bool
splitdb_checkconn_any_active(void)
{
	return find_conn(InvalidOid, false);
}

/* whether a remote error ended a check transaction on a server */
bool
splitdb_checkconn_failed(Oid serverid)
{
	return find_conn(serverid, true);
}

/*
 * splitdb_checkconn_failed_servers
 *		The servers whose remote transaction a remote error ended in this
 *		local transaction: the locks of its earlier checks are gone.
 */
List *
splitdb_checkconn_failed_servers(void)
{
	HASH_SEQ_STATUS scan;
	CheckConn  *cc;
	List	   *servers = NIL;

	if (conn_hash == NULL)
		return NIL;
	hash_seq_init(&scan, conn_hash);
	while ((cc = hash_seq_search(&scan)) != NULL)
		if (cc->failed)
			servers = list_append_unique_oid(servers, cc->serverid);
	return servers;
}

/*
 * send_end
 *		End a connection's remote transaction: send COMMIT (ROLLBACK when
 *		commit is false or a remote error ended the transaction) and a sync
 *		without waiting, and mark the connection "ending".  A connection in
 *		the middle of a pipeline, or one the command cannot be sent on, is
 *		closed instead, which makes the other server roll back.  Raises no
 *		error.
 */
static void
send_end(CheckConn *cc, bool commit)
{
	bool		is_new;

	if (cc->busy)
	{
		close_conn(cc);
		return;
	}
	if (!cc->in_xact)
	{
		cc->failed = false;
		return;
	}
	cc->in_xact = false;
	if (!send_prepared(cc, commit && !cc->failed ? "COMMIT" : "ROLLBACK", &is_new) ||
		!PQpipelineSync(cc->conn))
	{
		close_conn(cc);
		return;
	}
	cc->failed = false;
	cc->ending = true;
}

/*
 * splitdb_checkconn_end_server
 *		End now, and wait for, the remote transactions open on a server
 *		(their locks handed over to postgres_fdw's connection).
 */
void
splitdb_checkconn_end_server(Oid serverid)
{
	HASH_SEQ_STATUS scan;
	CheckConn  *cc;

	if (conn_hash == NULL)
		return;
	hash_seq_init(&scan, conn_hash);
	while ((cc = hash_seq_search(&scan)) != NULL)
	{
		if (cc->serverid != serverid)
			continue;
		send_end(cc, true);
		if (cc->ending && !read_ending(cc))
			close_conn(cc);
	}
}

/*
 * splitdb_checkconn_xact_end
 *		At the end of the local transaction (after its commit, or at its
 *		abort): end every remote transaction without waiting (send_end).
 *		Raises no error: the local transaction is already over.
 */
void
splitdb_checkconn_xact_end(bool commit)
{
	HASH_SEQ_STATUS scan;
	CheckConn  *cc;

	if (conn_hash == NULL)
		return;
	hash_seq_init(&scan, conn_hash);
	while ((cc = hash_seq_search(&scan)) != NULL)
		send_end(cc, commit);
}

/*
 * inval_callback
 *		A server or user mapping changed: its connections reopen when they
 *		are next used outside a remote transaction.
 */
static void
inval_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	HASH_SEQ_STATUS scan;
	CheckConn  *cc;

	hash_seq_init(&scan, conn_hash);
	while ((cc = hash_seq_search(&scan)) != NULL)
	{
		if (hashvalue == 0 ||
			(cacheid == FOREIGNSERVEROID && cc->server_hash == hashvalue) ||
			(cacheid == USERMAPPINGOID && cc->mapping_hash == hashvalue))
			cc->invalidated = true;
	}
}
