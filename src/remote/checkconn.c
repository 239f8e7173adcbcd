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
 * A statement may also be sent ahead (splitdb_checkconn_send_ahead): the
 * other server runs it while this one goes on, and its answer is read
 * with the next pipeline, or when it is asked for (checkconn_ahead.c).
 *
 * Each connection keeps a queue of what it sent and has not read, in the
 * order the answers come: syncs, statements whose errors are relayed
 * (START TRANSACTION, PREPARE, the checks), statements whose errors are
 * only logged (the session's SET, COMMIT, ROLLBACK), and statements sent
 * ahead, whose answers are kept until they are taken.  A connection is,
 * within a local transaction:
 *   idle      no remote transaction;
 *   in_xact   START TRANSACTION sent, the checks' locks held (held: some
 *             that matter; failed: a remote error aborted the remote
 *             transaction, and its locks are gone).
 * At the end of the local transaction it sends COMMIT or ROLLBACK and a
 * sync, and the next use reads the answer.  It is busy while a pipeline is
 * being sent or read; when a transaction or subtransaction ends while it is
 * busy (an error or a cancel in the middle), what runs there is cancelled
 * and read to its end, and the remote transaction rolled back
 * (settle_conn); a connection that does not answer in time is closed.
 * Nothing here raises an error at the end of a transaction.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/remote/checkconn.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "foreign/foreign.h"
#include "libpq-fe.h"
#include "libpq/libpq-be-fe-helpers.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/latch.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "remote/checkconn.h"
#include "remote/checkconn_int.h"
#include "compat.h"
#include "remote/prepared.h"
#include "remote/remote.h"

HTAB	   *splitdb_checkconn_conns = NULL;
bool		(*splitdb_checkconn_prove_hook) (PGconn *conn, Oid serverid) = NULL;
void		(*splitdb_checkconn_close_hook) (PGconn *conn) = NULL;
static uint64 ahead_counter = 0;

static CheckConn *ready_conn(UserMapping *mapping, bool *reused);
static void open_conn(CheckConn *cc, UserMapping *mapping);
static void close_conn(CheckConn *cc);
static void settle_conn(CheckConn *cc);
static PGresult *get_result(CheckConn *cc);
static void push_item(CheckConn *cc, ItemKind kind, const char *sql, int index);
static bool send_prepared(CheckConn *cc, const char *sql, ItemKind kind);
static bool send_stmt(CheckConn *cc, SplitdbCheckStmt *stmt, ItemKind kind,
					  int index);
static bool send_sync(CheckConn *cc);
static bool send_begin(CheckConn *cc);
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

/* the syncs a connection sent and has not read the answer to */
static int
queued_syncs(CheckConn *cc)
{
	int			syncs = 0;
	ListCell   *lc;

	foreach(lc, cc->queue)
		syncs += ((Item *) lfirst(lc))->kind == ITEM_SYNC;
	return syncs;
}

/*
 * before_shmem_exit: close the connections once they answered what they owe
 * (drainclose.c); a busy one is left to the abort that follows (settle_conn)
 */
static void
checkconn_exit(int code, Datum arg)
{
	HASH_SEQ_STATUS scan;
	CheckConn  *cc;

	hash_seq_init(&scan, splitdb_checkconn_conns);
	while ((cc = hash_seq_search(&scan)) != NULL)
	{
		if (cc->conn == NULL || cc->busy)
			continue;
		splitdb_remote_close_drained(cc->conn, queued_syncs(cc), 1000);
		cc->conn = NULL;
	}
}

/*
 * ready_conn
 *		The connection of a user mapping, open and with no command in
 *		progress; *reused tells whether it was open before this call.  The
 *		answers to what was sent without a wait may still be unread.
 */
static CheckConn *
ready_conn(UserMapping *mapping, bool *reused)
{
	CheckConn  *cc;
	bool		found;

	if (splitdb_checkconn_conns == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(CheckConn);
		splitdb_checkconn_conns = hash_create("splitdb check connections", 8, &ctl,
								HASH_ELEM | HASH_BLOBS);
		CacheRegisterSyscacheCallback(FOREIGNSERVEROID, inval_callback, (Datum) 0);
		CacheRegisterSyscacheCallback(USERMAPPINGOID, inval_callback, (Datum) 0);
		before_shmem_exit(checkconn_exit, (Datum) 0);
	}
	cc = hash_search(splitdb_checkconn_conns, &mapping->umid, HASH_ENTER, &found);
	if (!found)
	{
		memset(cc, 0, sizeof(CheckConn));
		cc->umid = mapping->umid;
	}
	if (cc->conn != NULL && !cc->in_xact &&
		(cc->invalidated || cc->ending || PQstatus(cc->conn) == CONNECTION_BAD))
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
 * not wait for its WAL to reach disk.  It runs with row_security off: a
 * lookup in a table whose policies apply to the mapped role fails (42501)
 * instead of running the functions of another role's policies with the
 * mapped role's rights (PostgreSQL's foreign keys read the table as its
 * owner, to whom they do not apply).  The settings go out without a wait, as
 * the end of a transaction does, and its answer is read in front of the
 * first checks.  Raises ERROR when the server cannot be reached.
 */
static void
open_conn(CheckConn *cc, UserMapping *mapping)
{
	ForeignServer *server = GetForeignServer(mapping->serverid);
	PGconn	   *conn = splitdb_remote_connect_mapping(server, mapping, NULL, true);
	WaitEventSet *wait;

	/* proved once per remote session, before its pipelines (origin.c) */
	if (splitdb_checkconn_prove_hook != NULL)
	{
		PG_TRY();
		{
			(void) splitdb_checkconn_prove_hook(conn, mapping->serverid);
		}
		PG_CATCH();
		{
			if (splitdb_checkconn_close_hook != NULL)
				splitdb_checkconn_close_hook(conn);
			libpqsrv_disconnect(conn);
			PG_RE_THROW();
		}
		PG_END_TRY();
	}
	if (!PQenterPipelineMode(conn) ||
		!PQsendQueryParams(conn, "SELECT pg_catalog.set_config('synchronous_commit', 'off', false),"
						   " pg_catalog.set_config('row_security', 'off', false)",
						   0, NULL, NULL, NULL, NULL, 0) ||
		!PQpipelineSync(conn))
	{
		char	   *msg = pchomp(PQerrorMessage(conn));

		if (splitdb_checkconn_close_hook != NULL)
			splitdb_checkconn_close_hook(conn);
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

	PQsetNoticeReceiver(conn, splitdb_checkconn_notice, cc);
	cc->conn = conn;
	cc->wait = wait;
	cc->ending = false;
	push_item(cc, ITEM_QUIET, NULL, 0);
	push_item(cc, ITEM_SYNC, NULL, 0);
	cc->serverid = mapping->serverid;
	cc->server_hash = GetSysCacheHashValue1(FOREIGNSERVEROID,
											ObjectIdGetDatum(mapping->serverid));
	cc->mapping_hash = GetSysCacheHashValue1(USERMAPPINGOID,
											 ObjectIdGetDatum(mapping->umid));
	cc->invalidated = false;
}

/* free an item, and the result it kept */
void
splitdb_checkconn_free_item(Item *it)
{
	PQclear(it->result);
	if (it->sql)
		pfree(it->sql);
	if (it->prepares)
		pfree(it->prepares);
	pfree(it);
}

/* free a list of items */
static void
free_items(List *items)
{
	ListCell   *lc;

	foreach(lc, items)
		splitdb_checkconn_free_item(lfirst(lc));
	list_free(items);
}

/*
 * close_conn
 *		Close a connection and forget its state, and what it had sent; the
 *		other server rolls back a transaction left open.  Raises no error.
 */
static void
close_conn(CheckConn *cc)
{
	if (cc->conn != NULL)
	{
		splitdb_prepared_drop(cc->conn);
		if (splitdb_checkconn_close_hook != NULL)
			splitdb_checkconn_close_hook(cc->conn);
		libpqsrv_disconnect(cc->conn);
	}
	if (cc->wait != NULL)
		FreeWaitEventSet(cc->wait);
	free_items(cc->queue);
	free_items(cc->ahead);
	cc->queue = NIL;
	cc->ahead = NIL;
	cc->conn = NULL;
	cc->wait = NULL;
	cc->in_xact = false;
	cc->held = false;
	cc->failed = false;
	cc->busy = false;
}

/*
 * lose_conn
 *		Close a connection that failed; if it held locks that matter, its
 *		remote transaction counts as failed, so that refcheck.c checks those
 *		keys again.
 */
void
splitdb_checkconn_lose(CheckConn *cc)
{
	bool		held = cc->held;

	close_conn(cc);
	cc->failed = held;
}

/*
 * settle_conn
 *		A connection that an error or a cancel left in the middle of a
 *		pipeline: cancel what runs there (a check waiting for a lock) and
 *		read the answers up to its last sync, for a bounded time
 *		(drainclose.c); then roll back its remote transaction and deallocate
 *		its statements (the pipeline's PREPAREs may or may not have run),
 *		without waiting.  Closed instead, the other server would go on
 *		waiting for the lock in a session nobody reads, and log the lost
 *		client once it got it.  When that fails, it is closed (lose_conn);
 *		so it is, once its answers are read, when the backend exits.
 *		If it held locks that matter, its remote transaction counts as
 *		failed, as splitdb_checkconn_lose() has it.  Raises no error.
 */
static void
settle_conn(CheckConn *cc)
{
	bool		held = cc->held;

	if (!splitdb_remote_cancel_drain(cc->conn, queued_syncs(cc), SPLITDB_DRAIN_TIMEOUT_MS) ||
		(cc->in_xact &&
		 !PQsendQueryParams(cc->conn, "ROLLBACK", 0, NULL, NULL, NULL, NULL, 0)) ||
		!PQsendQueryParams(cc->conn, "DEALLOCATE ALL", 0, NULL, NULL, NULL, NULL, 0) ||
		!PQpipelineSync(cc->conn))
	{
		splitdb_checkconn_lose(cc);
		return;
	}
	if (proc_exit_inprogress)
	{
		/* a FATAL error in the middle, after checkconn_exit(): close it now */
		(void) splitdb_remote_drain_syncs(cc->conn, 1, 1000);
		close_conn(cc);
		return;
	}
	splitdb_prepared_drop(cc->conn);
	free_items(cc->queue);
	free_items(cc->ahead);
	cc->queue = cc->ahead = NIL;
	if (cc->in_xact)
		push_item(cc, ITEM_QUIET, NULL, 0);
	push_item(cc, ITEM_QUIET, NULL, 0);
	push_item(cc, ITEM_SYNC, NULL, 0);
	cc->in_xact = cc->held = cc->busy = false;
	cc->failed = held;
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

/* queue an item for what was just sent */
static void
push_item(CheckConn *cc, ItemKind kind, const char *sql, int index)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	Item	   *it = palloc0(sizeof(Item));

	it->kind = kind;
	it->index = index;
	it->sql = sql ? pstrdup(sql) : NULL;
	if (kind == ITEM_AHEAD)
	{
		it->id = ++ahead_counter;
		it->wanted = true;
	}
	cc->queue = lappend(cc->queue, it);
	MemoryContextSwitchTo(old);
}

/*
 * fatal_error
 *		Whether an error ends the remote session (FATAL, PANIC): libpq may
 *		not have seen the connection close yet.
 */
static bool
fatal_error(PGresult *res)
{
	const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);

	return severity != NULL &&
		(strcmp(severity, "FATAL") == 0 || strcmp(severity, "PANIC") == 0);
}

/*
 * read_item
 *		Read the answer to one item.  A statement's result is kept where its
 *		item says; an error is kept in rs (the first one to relay) or logged
 *		(ITEM_QUIET).  A statement after an error, up to the next sync, is
 *		only "aborted"; a PREPARE that failed or was skipped is forgotten,
 *		the connection's other statements stay prepared.
 */
static void
read_item(CheckConn *cc, Item *it, ReadState *rs)
{
	PGresult   *res = get_result(cc);
	PGresult   *next;

	if (res == NULL)
	{
		rs->lost = true;
		return;
	}
	if (it->kind == ITEM_SYNC)
	{
		if (PQresultStatus(res) != PGRES_PIPELINE_SYNC)
			rs->lost = true;
		PQclear(res);
		return;
	}
	/* each statement's results end with a NULL */
	while ((next = get_result(cc)) != NULL)
		PQclear(next);

	switch (PQresultStatus(res))
	{
		case PGRES_TUPLES_OK:
		case PGRES_COMMAND_OK:
			break;
		case PGRES_PIPELINE_ABORTED:
			if (it->prepares)
				splitdb_prepared_forget_name(cc->conn, it->prepares);
			PQclear(res);
			res = NULL;
			break;
		default:
			if (PQstatus(cc->conn) == CONNECTION_BAD || fatal_error(res))
				rs->lost = true;
			if (it->prepares)
				splitdb_prepared_forget_name(cc->conn, it->prepares);
			if (it->kind == ITEM_AHEAD && !it->wanted)
			{
				/* a guess that went wrong: it ended the remote transaction */
				rs->ahead_failed = true;
				cc->failed = true;
			}
			if (it->kind == ITEM_QUIET || (it->kind == ITEM_AHEAD && !it->wanted))
				elog(DEBUG1, "check connection: a statement sent without a wait failed: %s",
					 PQresultErrorMessage(res));
			else if (rs->first_error == NULL)
			{
				rs->first_error = res;
				if (it->kind == ITEM_OWN && rs->stmts != NULL)
					rs->error_sql = pstrdup(rs->stmts[it->index].sql);
				else
					rs->error_sql = it->sql ? pstrdup(it->sql) : NULL;
				res = NULL;
			}
			PQclear(res);
			res = NULL;
			break;
	}

	if (it->kind == ITEM_OWN && rs->stmts != NULL)
		rs->stmts[it->index].result = res;
	else if (it->kind == ITEM_AHEAD && it->wanted)
	{
		it->result = res;
		if (res != NULL)
			cc->held = true;
		return;
	}
	else
		PQclear(res);
}

/*
 * drain
 *		Read the answers to what the connection sent, in order, up to the
 *		item upto (NULL: all of them).  Kept ITEM_AHEAD items move to the
 *		connection's ahead list.  Returns false when the connection failed.
 */
bool
splitdb_checkconn_drain(CheckConn *cc, Item *upto, ReadState *rs)
{
	MemoryContext old;

	cc->busy = true;
	while (cc->queue != NIL && !rs->lost)
	{
		Item	   *it = linitial(cc->queue);
		bool		last = (it == upto);

		read_item(cc, it, rs);
		old = MemoryContextSwitchTo(TopMemoryContext);
		cc->queue = list_delete_first(cc->queue);
		if (it->kind == ITEM_AHEAD && it->wanted && !rs->lost)
			cc->ahead = lappend(cc->ahead, it);
		else
			splitdb_checkconn_free_item(it);
		MemoryContextSwitchTo(old);
		if (last)
			break;
	}
	cc->busy = false;
	return !rs->lost;
}

/*
 * send_prepared
 *		Send sql, a statement without parameters, as a statement prepared
 *		on the connection, its PREPARE in front the first time, and queue
 *		their items.  Returns false when libpq refused it.
 */
static bool
send_prepared(CheckConn *cc, const char *sql, ItemKind kind)
{
	SplitdbCheckStmt stmt = {sql, 0, NULL, NULL, NULL, NULL};

	return send_stmt(cc, &stmt, kind, 0);
}

/*
 * send_stmt
 *		Send a statement as a prepared one, its PREPARE in front the first
 *		time on this connection, and queue their items.  Returns false when
 *		libpq refused it.
 */
static bool
send_stmt(CheckConn *cc, SplitdbCheckStmt *stmt, ItemKind kind, int index)
{
	bool		is_new;
	const char *name;

	if (stmt->bind != NULL)
		stmt->bind(cc->conn, stmt);
	name = splitdb_prepared_name(cc->conn, stmt->sql, &is_new);

	if (is_new)
	{
		if (!PQsendPrepare(cc->conn, name, stmt->sql, stmt->nparams, NULL))
			return false;
		push_item(cc, ITEM_CHECKED, stmt->sql, 0);
		((Item *) llast(cc->queue))->prepares = MemoryContextStrdup(TopMemoryContext, name);
	}
	if (!PQsendQueryPrepared(cc->conn, name, stmt->nparams, stmt->values,
							 NULL, NULL, 0))
		return false;
	push_item(cc, kind, kind == ITEM_OWN ? NULL : stmt->sql, index);
	return true;
}

/*
 * send_begin
 *		Before the statements of a pipeline: START TRANSACTION when this
 *		local transaction has no remote one there yet, and the session's
 *		lock_timeout when it is set and the remote transaction does not
 *		have it yet (SET LOCAL), so that a check waits for a lock there no
 *		longer than PostgreSQL's foreign key waits here.  Returns false when
 *		libpq refused them.
 */
static bool
send_begin(CheckConn *cc)
{
	char		value[32];
	const char *values[1] = {value};
	SplitdbCheckStmt stmt = {"SELECT pg_catalog.set_config('lock_timeout', $1, true)", 1, values, NULL, NULL, NULL};

	if (!cc->in_xact)
	{
		if (!send_prepared(cc, begin_sql(), ITEM_CHECKED))
			return false;
		cc->in_xact = true;
		cc->lock_timeout = 0;
	}
	if (LockTimeout == cc->lock_timeout)
		return true;
	snprintf(value, sizeof(value), "%d", LockTimeout);
	cc->lock_timeout = LockTimeout;
	return send_stmt(cc, &stmt, ITEM_CHECKED, 0);
}

/* send a pipeline sync, and queue its item */
static bool
send_sync(CheckConn *cc)
{
	if (!PQpipelineSync(cc->conn))
		return false;
	push_item(cc, ITEM_SYNC, NULL, 0);
	return true;
}

/*
 * splitdb_checkconn_run
 *		Run statements in the remote transaction of a user mapping's check
 *		connection, as one pipeline: one round trip.
 *
 * mapping: whose connection (and credentials)
 * stmts:   n statements with text parameters (n may be 0: then only what
 *          was sent ahead is read); each is prepared once per remote
 *          session.  On return each result is a PGresult of status
 *          PGRES_TUPLES_OK or PGRES_COMMAND_OK that the caller must PQclear().
 * service: names the service in an error's context (may be NULL)
 *
 * Begins the remote transaction when this local transaction has none
 * there yet; it ends with the local one (splitdb_checkconn_xact_end).  The
 * pipeline goes out behind whatever the connection sent without a wait
 * (the end of the last transaction, statements sent ahead), whose answers
 * are read first.  A remote error is relayed with its SQLSTATE, after which
 * the remote transaction is failed (splitdb_checkconn_failed_servers) and
 * must not be used again.  A connection found broken when nothing that
 * matters was held on it is opened again once.
 */
void
splitdb_checkconn_run(UserMapping *mapping, SplitdbCheckStmt *stmts, int n,
					  const char *service)
{
	for (int attempt = 0;; attempt++)
	{
		bool		reused;
		CheckConn  *cc = ready_conn(mapping, &reused);
		bool		fresh = !cc->held;
		bool		sent = true;
		ReadState	rs = {stmts, NULL, NULL, false};
		char	   *msg;

		if (cc->failed)
			elog(ERROR, "check connection used after a failed check");

		cc->busy = true;
		sent = send_begin(cc);
		for (int i = 0; i < n && sent; i++)
			sent = send_stmt(cc, &stmts[i], ITEM_OWN, i);
		if (sent)
			sent = send_sync(cc);
		if (!sent || !splitdb_checkconn_drain(cc, NULL, &rs))
			rs.lost = true;
		cc->busy = false;

		if (rs.first_error == NULL && !rs.lost)
		{
			cc->held = true;
			return;
		}
		for (int i = 0; i < n; i++)
		{
			PQclear(stmts[i].result);
			stmts[i].result = NULL;
		}
		if (rs.ahead_failed && !rs.lost)
		{
			/*
			 * A lookup sent ahead, wanted no more (a wrong guess), failed and
			 * these ran in the aborted transaction: roll it back, run them in
			 * a new one; if locks that matter went with it, the connection
			 * counts as failed and the results are empty (the caller checks
			 * the keys the usual way, as keys not found).
			 */
			PQclear(rs.first_error);
			settle_conn(cc);
			if (!cc->failed && attempt == 0)
				continue;
			return;
		}
		if (!rs.lost)
		{
			/* a statement failed: the remote transaction is over */
			cc->failed = true;
			splitdb_remote_report(rs.first_error, cc->conn, rs.error_sql, service);
		}

		/* the connection failed: try a fresh one if nothing was held on it */
		msg = pchomp(PQerrorMessage(cc->conn));
		PQclear(rs.first_error);
		splitdb_checkconn_lose(cc);
		if (fresh && reused && attempt == 0)
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
 * splitdb_checkconn_send_ahead
 *		Send n statements in the remote transaction of a user mapping's
 *		check connection, and a sync, without waiting for their answers:
 *		the other server runs them while this one goes on.  Sets ids[i] to
 *		a handle for splitdb_checkconn_take_ahead(), or to 0 when nothing
 *		was sent (the connection is in use or its remote transaction
 *		failed).
 *
 * The statements are only a head start: whatever becomes of them, the
 * caller must be able to do without their answers.  Raises ERROR only when
 * the connection cannot be opened.
 */
void
splitdb_checkconn_send_ahead(UserMapping *mapping, SplitdbCheckStmt *stmts,
							 int n, uint64 *ids)
{
	bool		reused;
	CheckConn  *cc = ready_conn(mapping, &reused);
	bool		sent = true;

	memset(ids, 0, sizeof(uint64) * n);
	if (cc->failed || cc->busy)
		return;
	cc->busy = true;
	sent = send_begin(cc);
	for (int i = 0; i < n && sent; i++)
	{
		sent = send_stmt(cc, &stmts[i], ITEM_AHEAD, 0);
		if (sent)
			ids[i] = ((Item *) llast(cc->queue))->id;
	}
	if (sent)
		sent = send_sync(cc);
	cc->busy = false;
	if (!sent)
	{
		memset(ids, 0, sizeof(uint64) * n);
		splitdb_checkconn_lose(cc);
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

	if (splitdb_checkconn_conns == NULL)
		return false;
	hash_seq_init(&scan, splitdb_checkconn_conns);
	while ((cc = hash_seq_search(&scan)) != NULL)
		if ((failed ? cc->failed : cc->in_xact) &&
			(cc->serverid == serverid || !OidIsValid(serverid)))
			found = true;
	return found;
}

/*
 * whether a connection to a server (any server for InvalidOid:
 * splitdb_checkconn_any_active()) has a remote transaction open
 */
bool
splitdb_checkconn_active(Oid serverid)
{
	return find_conn(serverid, false);
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

	if (splitdb_checkconn_conns == NULL)
		return NIL;
	hash_seq_init(&scan, splitdb_checkconn_conns);
	while ((cc = hash_seq_search(&scan)) != NULL)
		if (cc->failed)
			servers = list_append_unique_oid(servers, cc->serverid);
	return servers;
}

/*
 * send_end
 *		End a connection's remote transaction: send COMMIT (ROLLBACK when
 *		commit is false or a remote error ended the transaction) and a sync
 *		without waiting.  Answers still due to what was sent ahead are
 *		wanted no more, and their errors only logged; a sync goes out after
 *		them first, so that the COMMIT runs even after one of them failed.
 *		A connection in the middle of a pipeline, or with a statement sent
 *		ahead still unanswered (splitdb_checkconn_ahead_pending: it may wait for a lock there,
 *		and the session's next checks would wait behind it), is settled
 *		instead (settle_conn: cancelled, read, rolled back); one the command
 *		cannot be sent on is closed, which makes the other server roll back.
 *		Raises no error.
 */
static void
send_end(CheckConn *cc, bool commit)
{
	ListCell   *lc;

	if (cc->busy || (cc->conn != NULL && splitdb_checkconn_ahead_pending(cc)))
		settle_conn(cc);
	free_items(cc->ahead);
	cc->ahead = NIL;
	if (!cc->in_xact)
	{
		cc->failed = false;
		return;
	}
	foreach(lc, cc->queue)
	{
		Item	   *it = lfirst(lc);

		if (it->kind == ITEM_CHECKED || it->kind == ITEM_AHEAD)
			it->kind = ITEM_QUIET;
	}
	cc->in_xact = false;
	cc->held = false;
	if ((cc->queue != NIL && ((Item *) llast(cc->queue))->kind != ITEM_SYNC &&
		 !send_sync(cc)) ||
		!send_prepared(cc, commit && !cc->failed ? "COMMIT" : "ROLLBACK", ITEM_QUIET) ||
		!send_sync(cc))
	{
		close_conn(cc);
		return;
	}
	cc->failed = false;
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

	if (splitdb_checkconn_conns == NULL)
		return;
	hash_seq_init(&scan, splitdb_checkconn_conns);
	while ((cc = hash_seq_search(&scan)) != NULL)
	{
		ReadState	rs = {NULL, NULL, NULL, false};

		if (cc->serverid != serverid)
			continue;
		send_end(cc, true);
		if (cc->conn != NULL && !splitdb_checkconn_drain(cc, NULL, &rs))
			close_conn(cc);
	}
}

/*
 * splitdb_checkconn_subxact_abort
 *		A subtransaction aborted: a connection it left in the middle of a
 *		pipeline (an error or a cancel while sending or reading), or with a
 *		statement sent ahead still unanswered (splitdb_checkconn_ahead_pending), is settled
 *		(settle_conn: cancelled, read, rolled back).  If it held locks that
 *		matter, its remote transaction counts as failed, so that refcheck.c
 *		checks those keys again.  Raises no error.
 */
void
splitdb_checkconn_subxact_abort(void)
{
	HASH_SEQ_STATUS scan;
	CheckConn  *cc;

	if (splitdb_checkconn_conns == NULL)
		return;
	hash_seq_init(&scan, splitdb_checkconn_conns);
	while ((cc = hash_seq_search(&scan)) != NULL)
		if (cc->busy || (cc->conn != NULL && splitdb_checkconn_ahead_pending(cc)))
			settle_conn(cc);
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

	if (splitdb_checkconn_conns == NULL)
		return;
	hash_seq_init(&scan, splitdb_checkconn_conns);
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

	hash_seq_init(&scan, splitdb_checkconn_conns);
	while ((cc = hash_seq_search(&scan)) != NULL)
	{
		if (hashvalue == 0 ||
			(cacheid == FOREIGNSERVEROID && cc->server_hash == hashvalue) ||
			(cacheid == USERMAPPINGOID && cc->mapping_hash == hashvalue))
			cc->invalidated = true;
	}
}
