/*-------------------------------------------------------------------------
 *
 * shimforms.c
 *	  Refusing, with their reason, the statement forms that postgres_fdw
 *	  cannot apply to a shim.
 *
 * After the cutover a moved table is a shim in the source: a postgres_fdw
 * foreign table.  Two statement forms that worked on the table fail on a
 * foreign table with messages that name something else: an INSERT ... ON
 * CONFLICT with a conflict target (which ON CONFLICT DO UPDATE needs) fails
 * with 42P10 "there is no unique or exclusion constraint matching the ON
 * CONFLICT specification", although the table has its key in the sibling,
 * and an UPDATE or DELETE ... WHERE CURRENT OF a cursor with 0A000 "WHERE
 * CURRENT OF is not supported for this table type".  The parse analysis
 * hook refuses them first on a shim, saying that the table moved and what
 * to do instead; an INSERT ... ON CONFLICT into an automatically updatable
 * view over a shim too, as it reaches the shim.  (MERGE is refused by
 * PostgreSQL's own parse analysis, before any hook, with "cannot execute
 * MERGE on relation", and so is ON CONFLICT ON CONSTRAINT, with "constraint
 * ... does not exist": those messages stay.)  Other foreign tables keep
 * PostgreSQL's messages.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/shimforms.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "catalog/pg_class.h"
#include "commands/trigger.h"
#include "foreign/foreign.h"
#include "nodes/parsenodes.h"
#include "nodes/primnodes.h"
#include "parser/analyze.h"
#include "parser/parsetree.h"
#include "rewrite/prs2lock.h"
#include "rewrite/rewriteHandler.h"
#include "utils/rel.h"
#include "utils/lsyscache.h"

#include "reference/origin.h"
#include "reference/shimforms.h"

static post_parse_analyze_hook_type prev_post_parse_analyze = NULL;

static void shimforms_post_parse_analyze(ParseState *pstate, Query *query,
										 JumbleState *jstate);

/*
 * splitdb_shimforms_init
 *		Install the parse analysis hook; from _PG_init.
 */
void
splitdb_shimforms_init(void)
{
	prev_post_parse_analyze = post_parse_analyze_hook;
	post_parse_analyze_hook = shimforms_post_parse_analyze;
}

/* views followed down to a shim, at most (a view over a view ...) */
#define MAX_VIEW_DEPTH	16

/*
 * instead_of
 *		True when view has an INSTEAD OF row trigger or an INSTEAD rule for
 *		cmd: then the rewriter does not write into its base relation.
 */
static bool
instead_of(Relation view, CmdType cmd)
{
	TriggerDesc *trig = view->trigdesc;
	RuleLock   *rules = view->rd_rules;

	if (trig != NULL &&
		((cmd == CMD_INSERT && trig->trig_insert_instead_row) ||
		 (cmd == CMD_UPDATE && trig->trig_update_instead_row) ||
		 (cmd == CMD_DELETE && trig->trig_delete_instead_row)))
		return true;
	for (int i = 0; rules != NULL && i < rules->numLocks; i++)
		if (rules->rules[i]->event == cmd && rules->rules[i]->isInstead)
			return true;
	return false;
}

/*
 * shim_under_view
 *		The shim that a write of kind cmd into relation relid lands in,
 *		following automatically updatable views down to their base
 *		relation, as the rewriter does; InvalidOid when none.  A view with
 *		an INSTEAD OF trigger or an INSTEAD rule for cmd is not followed:
 *		the application's code decides where those writes go.
 */
static Oid
shim_under_view(Oid relid, CmdType cmd, int depth)
{
	char		relkind = get_rel_relkind(relid);
	Relation	view;
	Query	   *viewquery;
	RangeTblRef *rtr;
	Oid			base = InvalidOid;

	if (relkind == RELKIND_FOREIGN_TABLE)
		return splitdb_origin_is_shim(relid) ? relid : InvalidOid;
	if (relkind != RELKIND_VIEW || depth >= MAX_VIEW_DEPTH)
		return InvalidOid;

	/* parse analysis holds a lock on the target already */
	view = table_open(relid, NoLock);
	if (!instead_of(view, cmd))
	{
		viewquery = get_view_query(view);
		if (view_query_is_auto_updatable(viewquery, false) == NULL &&
			list_length(viewquery->jointree->fromlist) == 1 &&
			IsA(linitial(viewquery->jointree->fromlist), RangeTblRef))
		{
			rtr = linitial_node(RangeTblRef, viewquery->jointree->fromlist);
			base = rt_fetch(rtr->rtindex, viewquery->rtable)->relid;
		}
	}
	table_close(view, NoLock);
	return OidIsValid(base) ? shim_under_view(base, cmd, depth + 1) : InvalidOid;
}

/*
 * target_shim
 *		The shim that query's result relation is, or that it writes into
 *		through automatically updatable views (shim_under_view), else
 *		InvalidOid.  *view is set to the view the statement names, or to
 *		InvalidOid when it names the shim.
 */
static Oid
target_shim(Query *query, Oid *view)
{
	Oid			relid;
	Oid			shim;

	*view = InvalidOid;
	if (query->resultRelation <= 0)
		return InvalidOid;
	relid = rt_fetch(query->resultRelation, query->rtable)->relid;
	shim = shim_under_view(relid, query->commandType, 0);
	if (OidIsValid(shim) && shim != relid)
		*view = relid;
	return shim;
}

/*
 * shim_detail
 *		The detail of a refusal: the table moved, and is a foreign table
 *		of its server here; view, when valid, is the view the statement
 *		named, which writes into it.
 */
static int
shim_detail(Oid relid, Oid view, const char *what)
{
	ForeignTable *ft = GetForeignTable(relid);
	ForeignServer *server = GetForeignServer(ft->serverid);

	if (OidIsValid(view))
		return errdetail("View \"%s\" writes into table \"%s\", which moved to another database; here it is a shim, a foreign table of server \"%s\", %s.",
						 get_rel_name(view), get_rel_name(relid), server->servername, what);
	return errdetail("Table \"%s\" moved to another database; here it is a shim, a foreign table of server \"%s\", %s.",
					 get_rel_name(relid), server->servername, what);
}

/*
 * check_query
 *		Refuse the forms of query, and of the queries of its WITH clause,
 *		that postgres_fdw cannot apply to a shim.  An INSERT ... ON
 *		CONFLICT into an automatically updatable view over a shim is
 *		refused too (it would reach the shim); WHERE CURRENT OF on a view
 *		is PostgreSQL's own refusal, which names the view.
 */
static void
check_query(Query *query)
{
	ListCell   *lc;
	Oid			relid;
	Oid			view;

	foreach(lc, query->cteList)
	{
		CommonTableExpr *cte = lfirst_node(CommonTableExpr, lc);

		if (IsA(cte->ctequery, Query))
			check_query((Query *) cte->ctequery);
	}

	if (query->commandType == CMD_INSERT && query->onConflict != NULL &&
		(query->onConflict->action == ONCONFLICT_UPDATE ||
		 query->onConflict->arbiterElems != NIL ||
		 OidIsValid(query->onConflict->constraint)) &&
		OidIsValid(relid = target_shim(query, &view)))
	{
		const char *kind = OidIsValid(view) ? "view" : "table";
		const char *name = get_rel_name(OidIsValid(view) ? view : relid);

		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 query->onConflict->action == ONCONFLICT_UPDATE ?
				 errmsg("cannot use INSERT ... ON CONFLICT DO UPDATE on %s \"%s\"", kind, name) :
				 errmsg("cannot use INSERT ... ON CONFLICT with a conflict target on %s \"%s\"", kind, name),
				 shim_detail(relid, view, "on which postgres_fdw infers no unique key"),
				 errhint("Run the statement in the database the table moved to, or use UPDATE and then INSERT ... ON CONFLICT DO NOTHING without a conflict target.")));
	}

	if ((query->commandType == CMD_UPDATE || query->commandType == CMD_DELETE) &&
		query->jointree != NULL && query->jointree->quals != NULL &&
		IsA(query->jointree->quals, CurrentOfExpr) &&
		OidIsValid(relid = target_shim(query, &view)) && !OidIsValid(view))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot use WHERE CURRENT OF on table \"%s\"", get_rel_name(relid)),
				 shim_detail(relid, InvalidOid, "into which a cursor cannot point"),
				 errhint("Update or delete the row by its key, or run the statement in the database the table moved to.")));
}

/*
 * shimforms_post_parse_analyze
 *		After parse analysis of a statement: refuse what check_query()
 *		refuses, then call the previous hook.
 */
static void
shimforms_post_parse_analyze(ParseState *pstate, Query *query, JumbleState *jstate)
{
	if (prev_post_parse_analyze)
		prev_post_parse_analyze(pstate, query, jstate);
	if (query->commandType == CMD_INSERT || query->commandType == CMD_UPDATE ||
		query->commandType == CMD_DELETE || query->cteList != NIL)
		check_query(query);
}
