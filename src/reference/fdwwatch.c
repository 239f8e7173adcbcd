/*-------------------------------------------------------------------------
 *
 * fdwwatch.c
 *	  Noticing the writes of a transaction through foreign tables.
 *
 * A check on splitdb's own connection (checkconn.c) runs in a remote
 * transaction of its own.  It must not run once the local transaction has
 * written to that server through postgres_fdw (a shim, or any foreign
 * table of the server): only postgres_fdw's remote transaction sees those
 * rows, and the check would wait for its locks.  And before such a write,
 * the locks the checks hold must move to postgres_fdw's transaction, or the
 * write would wait for them.  So every statement that is about to write
 * through a foreign table, or to lock its rows (SELECT ... FOR UPDATE and
 * the like), reports the table's server first to the callbacks registered
 * with splitdb_fdwwatch_register() (SPLITDB_FDWWATCH_WRITE): refcheck.c's
 * hands the locks over.  This file does not know the reference engine; the
 * engine registers with it, as PostgreSQL's modules register transaction
 * callbacks with xact.c.
 *
 * Writes are seen where they start: the executor (the result relations of
 * INSERT, UPDATE and DELETE, a view's base foreign table included, the
 * foreign partitions and inheritance children of a target, and row marks)
 * and the utility statements that reach foreign tables without it (COPY
 * FROM and TRUNCATE).  The utility hook also passes SET CONSTRAINTS on to
 * the callbacks (SPLITDB_FDWWATCH_CONSTRAINTS_SET), once PostgreSQL ran it,
 * for the deferred checks of shims, which have no constraint triggers, and
 * for the siblings' own deferrable constraints (constraintsfwd.c), which
 * also hears of each write through a foreign table once it has begun
 * (SPLITDB_FDWWATCH_WRITE_BEGUN), and each relation that a TRUNCATE names
 * before it runs (SPLITDB_FDWWATCH_TRUNCATE), for the partitions of
 * referenced ends (refcheck.c).
 *
 * The same writes decide what the receiving database may skip (origin.c): a
 * write through a shim goes out on a connection that proved it comes from
 * splitdb here, a write through any other foreign table on one that does not.
 * For the executor this is noted once the plan is started (its permissions
 * checked, postgres_fdw's connection taken), before any row goes out; for COPY
 * and TRUNCATE before they run.  The hooks are in place from the library's
 * load; a transaction during which the library was loaded may have written
 * before, so splitdb_fdwwatch_complete() says no for it.  In a database
 * without splitdb (no schema "splitdb"; the library may be preloaded for the
 * whole cluster) they do nothing.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/fdwwatch.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "nodes/plannodes.h"
#include "parser/parsetree.h"
#include "storage/proc.h"
#include "tcop/utility.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "metadata/catalog.h"
#include "compat.h"
#include "reference/fdwwatch.h"
#include "reference/origin.h"
#include "reference/shimguard.h"

static ExecutorStart_hook_type prev_executor_start = NULL;
static ProcessUtility_hook_type prev_process_utility = NULL;

/* the local transaction during which the library was loaded, if any */
static LocalTransactionId loaded_lxid = InvalidLocalTransactionId;

/* a callback registered with splitdb_fdwwatch_register(), for the backend */
typedef struct FdwWatchCallbackItem
{
	struct FdwWatchCallbackItem *next;
	SplitdbFdwWatchCallback callback;
	void	   *arg;
} FdwWatchCallbackItem;

static FdwWatchCallbackItem *callbacks = NULL;

static void watch_executor_start(QueryDesc *queryDesc, int eflags);
static void watch_process_utility(PlannedStmt *pstmt, const char *queryString,
								  bool readOnlyTree, ProcessUtilityContext context,
								  ParamListInfo params, QueryEnvironment *queryEnv,
								  DestReceiver *dest, QueryCompletion *qc);

/*
 * splitdb_fdwwatch_init
 *		Install the hooks; from _PG_init.
 */
void
splitdb_fdwwatch_init(void)
{
	if (MyProc != NULL && IsTransactionState())
		loaded_lxid = MyProc->lxid;
	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = watch_executor_start;
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = watch_process_utility;
}

/*
 * splitdb_fdwwatch_register
 *		Call callback(event, ..., arg) for every write through a foreign
 *		table and every SET CONSTRAINTS that this file sees, from now on
 *		and for the life of the backend (from _PG_init).
 *
 * Callbacks run in the order they were registered.  An error in one is the
 * error of the statement that caused the event.
 */
void
splitdb_fdwwatch_register(SplitdbFdwWatchCallback callback, void *arg)
{
	FdwWatchCallbackItem *item;
	FdwWatchCallbackItem **tail = &callbacks;

	item = MemoryContextAlloc(TopMemoryContext, sizeof(FdwWatchCallbackItem));
	item->next = NULL;
	item->callback = callback;
	item->arg = arg;
	while (*tail != NULL)
		tail = &(*tail)->next;
	*tail = item;
}

/* tell every registered callback of an event */
static void
call_callbacks(SplitdbFdwWatchEvent event, Oid serverid, Oid relid, Oid userid,
			   ConstraintsSetStmt *stmt)
{
	for (FdwWatchCallbackItem *item = callbacks; item != NULL; item = item->next)
		item->callback(event, serverid, relid, userid, stmt, item->arg);
}

/*
 * splitdb_fdwwatch_complete
 *		Whether every write of this transaction through a foreign table was
 *		seen: false in the transaction that loaded the library.
 */
bool
splitdb_fdwwatch_complete(void)
{
	return loaded_lxid == InvalidLocalTransactionId || MyProc->lxid != loaded_lxid;
}

/*
 * note_relation
 *		A statement writes to (or locks rows of) relid: report its server
 *		to the callbacks when it is a foreign table, and those of the
 *		foreign tables below it.
 */
static void
note_relation(Oid relid)
{
	if (get_rel_relkind(relid) == RELKIND_FOREIGN_TABLE)
		call_callbacks(SPLITDB_FDWWATCH_WRITE, GetForeignServerIdByRelId(relid),
					   InvalidOid, InvalidOid, NULL);
	else if (has_subclass(relid))
	{
		ListCell   *lc;

		foreach(lc, find_all_inheritors(relid, NoLock, NULL))
		{
			Oid			child = lfirst_oid(lc);

			if (child != relid && get_rel_relkind(child) == RELKIND_FOREIGN_TABLE)
				call_callbacks(SPLITDB_FDWWATCH_WRITE,
							   GetForeignServerIdByRelId(child), InvalidOid,
							   InvalidOid, NULL);
		}
	}
}

/*
 * note_foreign_write
 *		A statement writes through foreign table relid with userid's user
 *		mapping: tell origin.c, then the callbacks.
 */
static void
note_foreign_write(Oid relid, Oid userid)
{
	splitdb_origin_note_write(relid, userid);
	call_callbacks(SPLITDB_FDWWATCH_WRITE_BEGUN, GetForeignServerIdByRelId(relid),
				   relid, userid, NULL);
}

/*
 * note_origin
 *		A statement writes through relid (or the tables below it) with
 *		userid's user mapping: tell origin.c and the callbacks about each
 *		foreign table, and the callbacks about relid when it is no foreign
 *		table (SPLITDB_FDWWATCH_TABLE_WRITE, with the current role, as which
 *		the table's triggers run).
 */
static void
note_origin(Oid relid, Oid userid)
{
	if (get_rel_relkind(relid) == RELKIND_FOREIGN_TABLE)
	{
		note_foreign_write(relid, userid);
		return;
	}
	call_callbacks(SPLITDB_FDWWATCH_TABLE_WRITE, InvalidOid, relid, GetUserId(), NULL);
	if (has_subclass(relid))
	{
		ListCell   *lc;

		foreach(lc, find_all_inheritors(relid, NoLock, NULL))
		{
			Oid			child = lfirst_oid(lc);

			if (child != relid && get_rel_relkind(child) == RELKIND_FOREIGN_TABLE)
				note_foreign_write(child, userid);
		}
	}
}

/*
 * note_plan_origin
 *		Tell origin.c about the foreign tables a started plan reads or
 *		writes through, with the role whose user mapping postgres_fdw uses:
 *		the view owner's for a view's base table, else the current user's.
 *		Reads first, so that a statement that reads through a foreign table
 *		other than a shim proves no connection to its server for a shim
 *		write: the read may run code of the reader's in the other database
 *		(origin.c, splitdb_origin_note_read).
 */
static void
note_plan_origin(PlannedStmt *stmt)
{
	ListCell   *lc;
	int			rti = 0;

	foreach(lc, stmt->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);
		Oid			userid;

		rti++;
		if (rte->rtekind != RTE_RELATION || rte->relkind != RELKIND_FOREIGN_TABLE ||
			list_member_int(stmt->resultRelations, rti))
			continue;
		userid = splitdb_compat_check_as_user(stmt, rte);
		splitdb_origin_note_read(rte->relid, OidIsValid(userid) ? userid : GetUserId());
	}
	foreach(lc, stmt->resultRelations)
	{
		RangeTblEntry *rte = rt_fetch(lfirst_int(lc), stmt->rtable);
		Oid			userid = splitdb_compat_check_as_user(stmt, rte);

		note_origin(rte->relid, OidIsValid(userid) ? userid : GetUserId());
	}
}

/*
 * note_plan
 *		Report the foreign tables a plan writes to or locks.
 */
static void
note_plan(PlannedStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->resultRelations)
	{
		RangeTblEntry *rte = rt_fetch(lfirst_int(lc), stmt->rtable);

		note_relation(rte->relid);
	}
	foreach(lc, stmt->rowMarks)
	{
		PlanRowMark *mark = lfirst(lc);
		RangeTblEntry *rte = rt_fetch(mark->rti, stmt->rtable);

		if (rte->rtekind == RTE_RELATION && mark->strength != LCS_NONE &&
			rte->relkind == RELKIND_FOREIGN_TABLE)
			note_relation(rte->relid);
	}
}

/* whether this database has splitdb: its schema, looked up in the syscache */
static bool
splitdb_here(void)
{
	return OidIsValid(get_namespace_oid("splitdb", true));
}

static void
watch_executor_start(QueryDesc *queryDesc, int eflags)
{
	PlannedStmt *stmt = queryDesc->plannedstmt;

	/* a partitioned table's shim changed row by row: refused before anything */
	if ((eflags & EXEC_FLAG_EXPLAIN_ONLY) == 0 && stmt->resultRelations != NIL &&
		splitdb_here())
		splitdb_shimguard_check(stmt);

	if ((eflags & EXEC_FLAG_EXPLAIN_ONLY) == 0 &&
		(stmt->resultRelations != NIL || stmt->rowMarks != NIL) &&
		splitdb_here())
		note_plan(stmt);

	if (prev_executor_start)
		prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);

	if ((eflags & EXEC_FLAG_EXPLAIN_ONLY) == 0 && splitdb_here())
		note_plan_origin(stmt);
}

/*
 * note_range_var
 *		The relation a RangeVar of a utility statement names, if any, which
 *		the statement writes through with the current user's mapping.
 */
static void
note_range_var(RangeVar *rv, bool writes)
{
	Oid			relid = RangeVarGetRelid(rv, NoLock, true);

	if (OidIsValid(relid))
	{
		note_relation(relid);
		if (writes)
			note_origin(relid, GetUserId());
	}
}

/* the owner of relid, whose user mapping postgres_fdw's ANALYZE uses */
static Oid
rel_owner(Oid relid)
{
	Oid			owner = splitdb_catalog_relowner(relid);

	if (!OidIsValid(owner))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	return owner;
}

/*
 * note_analyze
 *		ANALYZE reads the foreign tables it names (and those below them)
 *		with the user mapping of each one's owner, as postgres_fdw does;
 *		without a list it skips foreign tables.
 */
static void
note_analyze(VacuumStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->rels)
	{
		VacuumRelation *vrel = lfirst(lc);
		Oid			relid;
		ListCell   *lc2;

		if (vrel->relation == NULL)
			continue;
		relid = RangeVarGetRelid(vrel->relation, NoLock, true);
		if (!OidIsValid(relid))
			continue;
		foreach(lc2, find_all_inheritors(relid, NoLock, NULL))
		{
			Oid			child = lfirst_oid(lc2);

			if (get_rel_relkind(child) == RELKIND_FOREIGN_TABLE)
				splitdb_origin_note_read(child, rel_owner(child));
		}
	}
}

static void
watch_process_utility(PlannedStmt *pstmt, const char *queryString,
					  bool readOnlyTree, ProcessUtilityContext context,
					  ParamListInfo params, QueryEnvironment *queryEnv,
					  DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *node = pstmt->utilityStmt;

	if (IsA(node, VacuumStmt) && !((VacuumStmt *) node)->is_vacuumcmd &&
		IsTransactionState() && splitdb_here())
		note_analyze((VacuumStmt *) node);
	else if (IsA(node, CopyStmt) && ((CopyStmt *) node)->is_from &&
		((CopyStmt *) node)->relation != NULL && IsTransactionState() &&
		splitdb_here())
		note_range_var(((CopyStmt *) node)->relation, true);
	else if (IsA(node, TruncateStmt) && IsTransactionState() && splitdb_here())
	{
		ListCell   *lc;

		foreach(lc, ((TruncateStmt *) node)->relations)
		{
			Oid			relid = RangeVarGetRelid(lfirst(lc), NoLock, true);

			if (OidIsValid(relid))
				call_callbacks(SPLITDB_FDWWATCH_TRUNCATE, InvalidOid, relid, GetUserId(), NULL);
			note_range_var(lfirst(lc), true);
		}
	}

	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context,
							 params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);

	/* SET CONSTRAINTS also reaches the deferred checks of shims */
	if (IsA(node, ConstraintsSetStmt) && IsTransactionState() && splitdb_here())
		call_callbacks(SPLITDB_FDWWATCH_CONSTRAINTS_SET, InvalidOid, InvalidOid,
					   InvalidOid, (ConstraintsSetStmt *) node);
}
