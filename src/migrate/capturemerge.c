/*-------------------------------------------------------------------------
 *
 * capturemerge.c
 *	  Knowing, in a capture trigger, that a MERGE into a partitioned table
 *	  is the statement that fired it.
 *
 * PostgreSQL 15 leaves out of a MERGE's transition tables the rows that its
 * UPDATE action moves to another partition: the UPDATE statement trigger of
 * the partitioned target sees neither their old nor their new image, and
 * the INSERT one, which fires only when the MERGE has an INSERT action,
 * sees their new image alone.  The capture's keys would then miss the old
 * key of every such row (the replay would keep it beside the new one) or
 * the row altogether.  So the executor hooks here note each MERGE whose
 * target is a partitioned table while it runs, from ExecutorStart to
 * ExecutorEnd (its AFTER statement triggers fire in ExecutorFinish, in
 * between), and the capture trigger asks splitdb_capturemerge_running()
 * and logs a T for such a statement: its table is replayed whole.
 *
 * Invariants:
 * - An entry lives from the MERGE's ExecutorStart to its ExecutorEnd; one
 *   that an error skipped goes with the (sub)transaction that was aborted,
 *   and all of them at the end of the top transaction.  An entry left over
 *   can only make a capture log a T it did not need, never log less.
 * - Nothing here reads or writes a table: one syscache lookup of the
 *   target's relkind per MERGE, nothing for any other statement.
 * - The hooks are in place from the library's load.  A backend that loads
 *   splitdb only when a capture trigger first runs (a server that does not
 *   preload it) cannot have seen a MERGE that started before: until the end
 *   of that transaction, every capture trigger of a partitioned table
 *   counts as a MERGE's.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/capturemerge.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_class.h"
#include "executor/executor.h"
#include "nodes/pg_list.h"
#include "nodes/plannodes.h"
#include "parser/parsetree.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "migrate/capture.h"
#include "migrate/capture_int.h"

/* a MERGE into a partitioned table, while its executor runs */
typedef struct SplitdbMergeRun
{
	QueryDesc  *query;			/* the MERGE's query, to find it at its end */
	Oid			target;			/* the partitioned table it names */
	int			nest_level;		/* the (sub)transaction it started in */
} SplitdbMergeRun;

static List *merge_runs = NIL;	/* of SplitdbMergeRun *, in TopMemoryContext */

/*
 * the library was loaded inside the current transaction (by a capture
 * trigger, say): a MERGE that had started by then went unseen
 */
static bool loaded_mid_xact = false;

static ExecutorStart_hook_type prev_executor_start = NULL;
static ExecutorEnd_hook_type prev_executor_end = NULL;

/*
 * merge_target
 *		The partitioned table that query, a MERGE, names as its target, or
 *		InvalidOid when it is a MERGE into anything else, or no MERGE.
 */
static Oid
merge_target(QueryDesc *query)
{
	PlannedStmt *stmt = query->plannedstmt;
	ModifyTable *mt;
	Index		rti;
	Oid			relid;

	if (query->operation != CMD_MERGE || stmt == NULL ||
		stmt->planTree == NULL || !IsA(stmt->planTree, ModifyTable))
		return InvalidOid;
	mt = (ModifyTable *) stmt->planTree;
	rti = mt->rootRelation > 0 ? mt->rootRelation : mt->nominalRelation;
	if (rti == 0 || rti > list_length(stmt->rtable))
		return InvalidOid;
	relid = rt_fetch(rti, stmt->rtable)->relid;
	return get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE ? relid : InvalidOid;
}

/* ExecutorStart: note a MERGE into a partitioned table once it has started */
static void
merge_executor_start(QueryDesc *query, int eflags)
{
	Oid			target;

	if (prev_executor_start)
		prev_executor_start(query, eflags);
	else
		standard_ExecutorStart(query, eflags);

	if ((eflags & EXEC_FLAG_EXPLAIN_ONLY) == 0 && OidIsValid(target = merge_target(query)))
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
		SplitdbMergeRun *run = palloc(sizeof(SplitdbMergeRun));

		run->query = query;
		run->target = target;
		run->nest_level = GetCurrentTransactionNestLevel();
		merge_runs = lappend(merge_runs, run);
		MemoryContextSwitchTo(old);
	}
}

/* ExecutorEnd: the MERGE has ended */
static void
merge_executor_end(QueryDesc *query)
{
	ListCell   *lc;

	foreach(lc, merge_runs)
	{
		SplitdbMergeRun *run = lfirst(lc);

		if (run->query == query)
		{
			merge_runs = foreach_delete_current(merge_runs, lc);
			pfree(run);
			break;
		}
	}
	if (prev_executor_end)
		prev_executor_end(query);
	else
		standard_ExecutorEnd(query);
}

/* forget the MERGEs that started at nest_level or deeper */
static void
forget_runs(int nest_level)
{
	ListCell   *lc;

	foreach(lc, merge_runs)
	{
		SplitdbMergeRun *run = lfirst(lc);

		if (run->nest_level >= nest_level)
		{
			merge_runs = foreach_delete_current(merge_runs, lc);
			pfree(run);
		}
	}
}

static void
merge_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_COMMIT ||
		event == XACT_EVENT_PARALLEL_ABORT || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_PREPARE)
	{
		forget_runs(0);
		loaded_mid_xact = false;
	}
}

static void
merge_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		forget_runs(GetCurrentTransactionNestLevel());
}

/*
 * splitdb_capturemerge_init
 *		Install the hooks and callbacks; from _PG_init.
 */
void
splitdb_capturemerge_init(void)
{
	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = merge_executor_start;
	prev_executor_end = ExecutorEnd_hook;
	ExecutorEnd_hook = merge_executor_end;
	RegisterXactCallback(merge_xact_callback, NULL);
	RegisterSubXactCallback(merge_subxact_callback, NULL);
	loaded_mid_xact = IsTransactionState();
}

/*
 * splitdb_capturemerge_running
 *		Whether a MERGE into the partitioned table relid may be running in
 *		this backend: a capture trigger that fires on relid may then have
 *		been given incomplete transition tables.  True for any partitioned
 *		table until the end of the transaction in which the library was
 *		loaded, since a MERGE that started before could not be seen.
 */
bool
splitdb_capturemerge_running(Oid relid)
{
	ListCell   *lc;

	if (loaded_mid_xact && get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE)
		return true;

	foreach(lc, merge_runs)
	{
		if (((SplitdbMergeRun *) lfirst(lc))->target == relid)
			return true;
	}
	return false;
}
