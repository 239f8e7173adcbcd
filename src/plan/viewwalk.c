/*-------------------------------------------------------------------------
 *
 * viewwalk.c
 *	  What a view over a service's tables asks of them that a shim (a
 *	  postgres_fdw foreign table) cannot answer the same way.
 *
 * The plan (plan.c) re-points each view over owned tables to the shims at
 * the cutover; a view whose query uses TABLESAMPLE on an owned table, ONLY
 * on one with children, or a function on an owned table's row type would
 * then mean something else, so the plan shows it as a blocker.  This file
 * walks the view's rewritten query tree and names what it found.
 *
 * Invariants:
 * - Nothing here writes; the view is opened with AccessShareLock only, for
 *   the walk.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/plan/viewwalk.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "catalog/pg_inherits.h"
#include "lib/stringinfo.h"
#include "nodes/nodeFuncs.h"
#include "rewrite/rewriteHandler.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/rel.h"

#include "plan/viewwalk.h"

/* state of find_unservable() */
typedef struct UnservableContext
{
	List	   *owned;			/* OIDs of the service's tables */
	StringInfo	reasons;		/* what a shim cannot serve, comma-separated */
} UnservableContext;

/*
 * note_row_type_function
 *		Add a reason when function funcid takes or returns the row type of
 *		an owned table.  The function is bound to that type by OID, so it
 *		stays with the archived original, and the view re-pointed to the
 *		shim (whose row type is another) would find no such function.
 */
static void
note_row_type_function(Oid funcid, UnservableContext *cxt)
{
	Oid		   *argtypes;
	int			nargs;
	Oid			result = get_func_signature(funcid, &argtypes, &nargs);
	char	   *reason;
	ListCell   *lc;

	foreach(lc, cxt->owned)
	{
		Oid			relid = lfirst_oid(lc);
		Oid			rowtype = get_rel_type_id(relid);
		bool		uses = (result == rowtype);

		for (int i = 0; i < nargs && !uses; i++)
			uses = (argtypes[i] == rowtype);
		if (!uses)
			continue;
		reason = psprintf("function %s on the row type of %s",
						  format_procedure(funcid),
						  quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
													 get_rel_name(relid)));
		/* once per function, however often the view calls it */
		if (strstr(cxt->reasons->data, reason) != NULL)
			return;
		if (cxt->reasons->len > 0)
			appendStringInfoString(cxt->reasons, ", ");
		appendStringInfoString(cxt->reasons, reason);
		return;
	}
}

/*
 * find_unservable
 *		Walk a view's query for reads of owned tables that a foreign table
 *		cannot answer the same way: TABLESAMPLE, ONLY on a table with
 *		children (a foreign table has none, so ONLY would read them all), and
 *		calls of functions on an owned table's row type.
 */
static bool
find_unservable(Node *node, UnservableContext *cxt)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, find_unservable, cxt,
								 QTW_EXAMINE_RTES_BEFORE);
	if (IsA(node, RangeTblEntry))
	{
		RangeTblEntry *rte = (RangeTblEntry *) node;

		const char *what = NULL;

		if (rte->rtekind != RTE_RELATION ||
			!list_member_oid(cxt->owned, rte->relid))
			return false;
		if (rte->tablesample != NULL)
			what = "TABLESAMPLE";
		else if (!rte->inh && has_subclass(rte->relid))
			what = "ONLY";
		if (what == NULL)
			return false;

		if (cxt->reasons->len > 0)
			appendStringInfoString(cxt->reasons, ", ");
		appendStringInfo(cxt->reasons, "%s on %s", what,
						 quote_qualified_identifier(get_namespace_name(get_rel_namespace(rte->relid)),
													get_rel_name(rte->relid)));
		return false;
	}
	if (IsA(node, FuncExpr))
		note_row_type_function(((FuncExpr *) node)->funcid, cxt);
	return expression_tree_walker(node, find_unservable, cxt);
}

/*
 * splitdb_view_unservable
 *		Append to reasons, comma-separated, what view (a view or materialized
 *		view) asks of the tables in owned (a List of OIDs) that a foreign
 *		table cannot serve; nothing when there is none.
 *
 * reasons may hold text already: the first reason appended is then
 * preceded by ", ".
 */
void
splitdb_view_unservable(Oid view, List *owned, StringInfo reasons)
{
	UnservableContext cxt;
	Relation	rel;

	cxt.owned = owned;
	cxt.reasons = reasons;
	rel = table_open(view, AccessShareLock);
	(void) find_unservable((Node *) get_view_query(rel), &cxt);
	table_close(rel, AccessShareLock);
}
