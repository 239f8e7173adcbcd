/*-------------------------------------------------------------------------
 *
 * prepared.c
 *	  Prepared statements on connections that splitdb borrows
 *	  (postgres_fdw's), so that a statement run again and again is parsed
 *	  and planned once per remote session.
 *
 * Each connection has its own list of the statements prepared on it, named
 * "splitdb_<n>" with n unique in this backend.  A connection is known by
 * its PGconn and its remote backend's pid: postgres_fdw may close a
 * connection and open another, which starts an empty list.
 *
 * postgres_fdw runs DEALLOCATE ALL at the end of a transaction that aborted
 * (or had a subtransaction abort) after it prepared statements of its own:
 * at the commit of a transaction with a failed subtransaction too, so
 * statements prepared after the failure go as well.  After any abort, and
 * at such a commit, splitdb_prepared_forget() therefore marks every list
 * as doubtful, and the next use of a connection asks the remote server
 * which of its statements still exist (pg_prepared_statements), once.  Only
 * lookups that the caller marks as small and frequent are prepared, so a
 * list holds a few statements per reference end.
 *
 * Connections of splitdb's own (checkconn.c) use the same lists through
 * splitdb_prepared_name(): nothing else runs on them, so their lists are
 * never doubtful, and they send the PREPARE in the pipeline of its first
 * use instead of waiting for it; one that did not run there is forgotten
 * alone (splitdb_prepared_forget_name).
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/remote/prepared.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "libpq-fe.h"
#include "nodes/pg_list.h"
#include "utils/memutils.h"

#include "remote/prepared.h"
#include "remote/remote.h"
#include "splitdb.h"

/* one statement prepared on a connection */
typedef struct PreparedStmt
{
	char	   *sql;
	char		name[NAMEDATALEN];
} PreparedStmt;

/* the statements of one remote session */
typedef struct PreparedConn
{
	PGconn	   *conn;
	int			pid;			/* the remote backend: a new one starts empty */
	bool		doubtful;		/* an abort may have deallocated them all */
	List	   *stmts;			/* PreparedStmt */
} PreparedConn;

static MemoryContext prepared_cxt = NULL;
static List *prepared_conns = NIL;
static uint64 prepared_counter = 0;

static PreparedConn *conn_entry(PGconn *conn);
static void confirm_statements(PreparedConn *pc);
static PreparedStmt *prepare_statement(PreparedConn *pc, const char *sql,
									   int nparams, const char *service);

/* forget the statements of a connection's list */
static void
free_statements(PreparedConn *pc)
{
	ListCell   *lc;

	foreach(lc, pc->stmts)
		pfree(((PreparedStmt *) lfirst(lc))->sql);
	list_free_deep(pc->stmts);
	pc->stmts = NIL;
}

/*
 * conn_entry
 *		The list of a connection, emptied when the remote session changed.
 */
static PreparedConn *
conn_entry(PGconn *conn)
{
	int			pid = PQbackendPID(conn);
	PreparedConn *pc = NULL;
	ListCell   *lc;
	MemoryContext oldcxt;

	if (prepared_cxt == NULL)
		prepared_cxt = AllocSetContextCreate(TopMemoryContext,
											 "splitdb prepared statements",
											 ALLOCSET_SMALL_SIZES);
	foreach(lc, prepared_conns)
	{
		PreparedConn *candidate = lfirst(lc);

		if (candidate->conn == conn)
		{
			pc = candidate;
			break;
		}
	}
	oldcxt = MemoryContextSwitchTo(prepared_cxt);
	if (pc == NULL)
	{
		pc = palloc0(sizeof(PreparedConn));
		pc->conn = conn;
		prepared_conns = lappend(prepared_conns, pc);
	}
	MemoryContextSwitchTo(oldcxt);
	if (pc->pid != pid)
	{
		free_statements(pc);
		pc->pid = pid;
		pc->doubtful = false;
	}
	return pc;
}

/*
 * confirm_statements
 *		Keep only the statements that the remote session still has.
 */
static void
confirm_statements(PreparedConn *pc)
{
	static const char *sql =
		"SELECT name FROM pg_catalog.pg_prepared_statements"
		" WHERE name OPERATOR(pg_catalog.~~) 'splitdb\\_%'";
	PGresult   *res = splitdb_remote_exec(pc->conn, sql, 0, NULL, NULL);
	List	   *kept = NIL;
	ListCell   *lc;

	MemoryContext oldcxt = MemoryContextSwitchTo(prepared_cxt);

	foreach(lc, pc->stmts)
	{
		PreparedStmt *ps = lfirst(lc);
		bool		exists = false;

		for (int row = 0; row < PQntuples(res) && !exists; row++)
			exists = (strcmp(PQgetvalue(res, row, 0), ps->name) == 0);
		if (exists)
			kept = lappend(kept, ps);
		else
		{
			pfree(ps->sql);
			pfree(ps);
		}
	}
	MemoryContextSwitchTo(oldcxt);
	PQclear(res);
	list_free(pc->stmts);
	pc->stmts = kept;
	pc->doubtful = false;
}

/*
 * prepare_statement
 *		Prepare sql (nparams text parameters) on the connection, remember it.
 */
static PreparedStmt *
prepare_statement(PreparedConn *pc, const char *sql, int nparams,
				  const char *service)
{
	PreparedStmt *ps;
	MemoryContext oldcxt = MemoryContextSwitchTo(prepared_cxt);

	ps = palloc0(sizeof(PreparedStmt));
	snprintf(ps->name, NAMEDATALEN, "splitdb_" UINT64_FORMAT, ++prepared_counter);
	ps->sql = pstrdup(sql);
	MemoryContextSwitchTo(oldcxt);

	splitdb_remote_prepare(pc->conn, ps->name, sql, nparams, service);

	oldcxt = MemoryContextSwitchTo(prepared_cxt);
	pc->stmts = lappend(pc->stmts, ps);
	MemoryContextSwitchTo(oldcxt);
	return ps;
}

/*
 * splitdb_prepared_exec
 *		Run sql with text parameters as a statement prepared on the
 *		connection, preparing it on first use; the result as
 *		splitdb_remote_exec() gives it, remote errors relayed the same way.
 *
 * conn: a connection with no command in progress, inside the remote
 *       transaction the statement belongs to.
 */
PGresult *
splitdb_prepared_exec(PGconn *conn, const char *sql, int nparams,
					  const char *const *values, const char *service)
{
	const char *name = splitdb_prepared_ensure(conn, sql, nparams, service);

	return splitdb_remote_exec_prepared(conn, name, sql, nparams, values, service);
}

/*
 * splitdb_prepared_ensure
 *		The name of sql prepared on a borrowed connection, preparing it
 *		there now (a round trip) if it is not yet; the caller runs it.
 *
 * conn: as for splitdb_prepared_exec().
 */
const char *
splitdb_prepared_ensure(PGconn *conn, const char *sql, int nparams,
						const char *service)
{
	PreparedConn *pc = conn_entry(conn);
	PreparedStmt *ps = NULL;
	ListCell   *lc;

	if (pc->doubtful && pc->stmts != NIL)
		confirm_statements(pc);
	pc->doubtful = false;
	foreach(lc, pc->stmts)
	{
		PreparedStmt *candidate = lfirst(lc);

		if (strcmp(candidate->sql, sql) == 0)
		{
			ps = candidate;
			break;
		}
	}
	if (ps == NULL)
		ps = prepare_statement(pc, sql, nparams, service);
	return ps->name;
}

/*
 * splitdb_prepared_name
 *		The name of sql prepared on a connection of splitdb's own.  When it
 *		is not prepared yet, a name is chosen and remembered, *is_new is
 *		set, and the caller must send the PREPARE before its first use.
 */
const char *
splitdb_prepared_name(PGconn *conn, const char *sql, bool *is_new)
{
	PreparedConn *pc = conn_entry(conn);
	PreparedStmt *ps;
	MemoryContext oldcxt;
	ListCell   *lc;

	foreach(lc, pc->stmts)
	{
		ps = lfirst(lc);
		if (strcmp(ps->sql, sql) == 0)
		{
			*is_new = false;
			return ps->name;
		}
	}
	oldcxt = MemoryContextSwitchTo(prepared_cxt);
	ps = palloc0(sizeof(PreparedStmt));
	snprintf(ps->name, NAMEDATALEN, "splitdb_" UINT64_FORMAT, ++prepared_counter);
	ps->sql = pstrdup(sql);
	pc->stmts = lappend(pc->stmts, ps);
	MemoryContextSwitchTo(oldcxt);
	*is_new = true;
	return ps->name;
}

/*
 * splitdb_prepared_drop
 *		Forget the statements of a connection that is closed, or whose
 *		pipeline failed before its PREPAREs may have run.
 */
void
splitdb_prepared_drop(PGconn *conn)
{
	ListCell   *lc;

	foreach(lc, prepared_conns)
	{
		PreparedConn *pc = lfirst(lc);

		if (pc->conn != conn)
			continue;
		prepared_conns = foreach_delete_current(prepared_conns, lc);
		free_statements(pc);
		pfree(pc);
		return;
	}
}

/*
 * splitdb_prepared_forget_name
 *		A PREPARE of a connection of splitdb's own that failed, or that its
 *		pipeline skipped after an error: forget that one statement, so that
 *		its next use prepares it again.  The connection's other statements
 *		stay: forgetting them would leave them in the remote session, under
 *		names nothing uses again, for the rest of its life.
 */
void
splitdb_prepared_forget_name(PGconn *conn, const char *name)
{
	ListCell   *lc;

	foreach(lc, prepared_conns)
	{
		PreparedConn *pc = lfirst(lc);
		ListCell   *sc;

		if (pc->conn != conn)
			continue;
		foreach(sc, pc->stmts)
		{
			PreparedStmt *ps = lfirst(sc);

			if (strcmp(ps->name, name) != 0)
				continue;
			pc->stmts = foreach_delete_current(pc->stmts, sc);
			pfree(ps->sql);
			pfree(ps);
			return;
		}
	}
}

/*
 * splitdb_prepared_forget
 *		After an abort (of a transaction or a subtransaction), or the commit
 *		of a transaction in which a subtransaction aborted: the statements
 *		of every connection may be gone.
 */
void
splitdb_prepared_forget(void)
{
	ListCell   *lc;

	foreach(lc, prepared_conns)
		((PreparedConn *) lfirst(lc))->doubtful = true;
}
