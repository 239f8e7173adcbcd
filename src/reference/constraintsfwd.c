/*-------------------------------------------------------------------------
 *
 * constraintsfwd.c
 *	  SET CONSTRAINTS ALL for the remote transactions that write through
 *	  shims.
 *
 * A moved table's own deferrable constraints (a foreign key between two
 * tables of the service, a deferrable unique key, a constraint trigger)
 * fire in the sibling, in the remote transaction that postgres_fdw keeps
 * for the local one.  PostgreSQL's SET CONSTRAINTS reaches only this
 * database's constraints: in the monolith, SET CONSTRAINTS ALL DEFERRED let
 * a transaction insert a referencing row before its referenced row, and
 * SET CONSTRAINTS ALL IMMEDIATE fired the pending checks; through the
 * shims, the sibling checked the first insert at once all the same, and
 * kept its pending checks for its commit.  So a transaction's SET
 * CONSTRAINTS ALL goes on to the remote transactions it writes through
 * shims: to those written so far when it runs, and the newest one still in
 * force to each remote transaction as the transaction's first write
 * through a shim there begins (fdwwatch.c tells of both).  postgres_fdw
 * mirrors subtransactions with savepoints in the remote transaction (taking
 * the connection makes the savepoints of the current level), so a SET
 * CONSTRAINTS sent inside a savepoint is undone there with it, as here.
 *
 * SET CONSTRAINTS that names constraints is not passed on: PostgreSQL looks
 * the names up in this database, where the sibling's own constraints do not
 * exist (operations.md, limits).  Writes through foreign tables that are
 * not shims get nothing: they are not splitdb's.
 *
 * The lists live in TopTransactionContext and are forgotten at the end of
 * the transaction.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/constraintsfwd.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "foreign/foreign.h"
#include "nodes/parsenodes.h"
#include "utils/memutils.h"

#include "reference/constraintsfwd.h"
#include "reference/fdwwatch.h"
#include "reference/origin.h"
#include "remote/remote.h"

/* a SET CONSTRAINTS ALL of this transaction */
typedef struct AllSet
{
	bool		deferred;
	int			nest_level;		/* of the subtransaction it ran in */
} AllSet;

/* a user mapping that this transaction wrote through */
typedef struct WrittenMapping
{
	Oid			serverid;
	Oid			userid;
	bool		shim;			/* through a shim: it gets the SET CONSTRAINTS */
	int			nest_level;		/* of the subtransaction that first wrote */
} WrittenMapping;

/* newest first: AllSet */
static List *all_sets = NIL;

/* WrittenMapping */
static List *written = NIL;

/*
 * send_all_set
 *		Send SET CONSTRAINTS ALL ... to the remote transaction of the user
 *		mapping, at the current subtransaction level.  A violation that an
 *		IMMEDIATE finds there is the error of the statement that caused it.
 */
static void
send_all_set(WrittenMapping *wm, bool deferred)
{
	PGconn	   *conn = splitdb_remote_fdw_connection(GetUserMapping(wm->userid, wm->serverid));

	splitdb_remote_command(conn, deferred ? "SET CONSTRAINTS ALL DEFERRED" :
						   "SET CONSTRAINTS ALL IMMEDIATE", 0, NULL, NULL);
}

/*
 * note_write
 *		A write through foreign table relid with userid's mapping has begun:
 *		the first one through a shim on that mapping gets the newest SET
 *		CONSTRAINTS ALL in force.
 */
static void
note_write(Oid serverid, Oid relid, Oid userid)
{
	WrittenMapping *wm = NULL;
	ListCell   *lc;

	foreach(lc, written)
	{
		WrittenMapping *w = lfirst(lc);

		if (w->serverid == serverid && w->userid == userid)
		{
			wm = w;
			break;
		}
	}
	if (wm != NULL && wm->shim)
		return;
	if (wm == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

		wm = palloc0(sizeof(WrittenMapping));
		wm->serverid = serverid;
		wm->userid = userid;
		wm->nest_level = GetCurrentTransactionNestLevel();
		written = lappend(written, wm);
		MemoryContextSwitchTo(old);
	}
	if (!splitdb_origin_is_shim(relid))
		return;
	wm->shim = true;
	if (all_sets != NIL)
		send_all_set(wm, ((AllSet *) linitial(all_sets))->deferred);
}

/*
 * note_constraints_set
 *		PostgreSQL ran SET CONSTRAINTS here: pass ALL on to the remote
 *		transactions written through shims so far, and remember it for
 *		those to come.
 */
static void
note_constraints_set(ConstraintsSetStmt *stmt)
{
	MemoryContext old;
	AllSet	   *as;
	ListCell   *lc;

	if (stmt->constraints != NIL)
		return;
	old = MemoryContextSwitchTo(TopTransactionContext);
	as = palloc(sizeof(AllSet));
	as->deferred = stmt->deferred;
	as->nest_level = GetCurrentTransactionNestLevel();
	all_sets = lcons(as, all_sets);
	MemoryContextSwitchTo(old);
	foreach(lc, written)
	{
		WrittenMapping *wm = lfirst(lc);

		if (wm->shim)
			send_all_set(wm, stmt->deferred);
	}
}

/* fdwwatch.c's callback */
static void
fdwwatch_event(SplitdbFdwWatchEvent event, Oid serverid, Oid relid, Oid userid,
			   ConstraintsSetStmt *stmt, void *arg)
{
	if (event == SPLITDB_FDWWATCH_WRITE_BEGUN)
		note_write(serverid, relid, userid);
	else if (event == SPLITDB_FDWWATCH_CONSTRAINTS_SET)
		note_constraints_set(stmt);
}

/* the transaction ends: its memory goes, forget the lists */
static void
xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			all_sets = NIL;
			written = NIL;
			break;
		default:
			break;
	}
}

/*
 * subxact_callback
 *		A subtransaction that aborts takes its SET CONSTRAINTS and first
 *		writes with it (postgres_fdw rolled the remote savepoint back); one
 *		that commits leaves them to its parent.
 */
static void
subxact_callback(SubXactEvent event, SubTransactionId mySubid,
				 SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	ListCell   *lc;

	if (event != SUBXACT_EVENT_COMMIT_SUB && event != SUBXACT_EVENT_ABORT_SUB)
		return;
	foreach(lc, all_sets)
	{
		AllSet	   *as = lfirst(lc);

		if (as->nest_level < level)
			continue;
		if (event == SUBXACT_EVENT_COMMIT_SUB)
			as->nest_level = level - 1;
		else
			all_sets = foreach_delete_current(all_sets, lc);
	}
	foreach(lc, written)
	{
		WrittenMapping *wm = lfirst(lc);

		if (wm->nest_level < level)
			continue;
		if (event == SUBXACT_EVENT_COMMIT_SUB)
			wm->nest_level = level - 1;
		else
			written = foreach_delete_current(written, lc);
	}
}

/*
 * splitdb_constraintsfwd_foreach_shim
 *		Call fn for each user mapping that this transaction wrote through a
 *		shim with, in the order of their first writes, each once.  fn must
 *		not write through foreign tables.
 */
void
splitdb_constraintsfwd_foreach_shim(SplitdbShimMappingFn fn)
{
	ListCell   *lc;

	foreach(lc, written)
	{
		WrittenMapping *wm = lfirst(lc);

		if (wm->shim)
			fn(wm->serverid, wm->userid);
	}
}

/*
 * splitdb_constraintsfwd_init
 *		From _PG_init, after splitdb_fdwwatch_init().
 */
void
splitdb_constraintsfwd_init(void)
{
	splitdb_fdwwatch_register(fdwwatch_event, NULL);
	RegisterXactCallback(xact_callback, NULL);
	RegisterSubXactCallback(subxact_callback, NULL);
}
