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
 * to do instead.  (MERGE is refused by PostgreSQL's own parse analysis,
 * before any hook, with "cannot execute MERGE on relation": that message
 * stays.)  Other foreign tables keep PostgreSQL's messages.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/shimforms.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_class.h"
#include "foreign/foreign.h"
#include "nodes/parsenodes.h"
#include "nodes/primnodes.h"
#include "parser/analyze.h"
#include "parser/parsetree.h"
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

/*
 * target_shim
 *		The result relation of query when it is a shim, else InvalidOid.
 *		Only a foreign table is looked up further.
 */
static Oid
target_shim(Query *query)
{
	Oid			relid;

	if (query->resultRelation <= 0)
		return InvalidOid;
	relid = rt_fetch(query->resultRelation, query->rtable)->relid;
	if (get_rel_relkind(relid) != RELKIND_FOREIGN_TABLE || !splitdb_origin_is_shim(relid))
		return InvalidOid;
	return relid;
}

/*
 * shim_detail
 *		The detail of a refusal: the table moved, and is a foreign table
 *		of its server here.
 */
static int
shim_detail(Oid relid, const char *what)
{
	ForeignTable *ft = GetForeignTable(relid);
	ForeignServer *server = GetForeignServer(ft->serverid);

	return errdetail("Table \"%s\" moved to another database; here it is a shim, a foreign table of server \"%s\", %s.",
					 get_rel_name(relid), server->servername, what);
}

/*
 * check_query
 *		Refuse the forms of query, and of the queries of its WITH clause,
 *		that postgres_fdw cannot apply to a shim.
 */
static void
check_query(Query *query)
{
	ListCell   *lc;
	Oid			relid;

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
		OidIsValid(relid = target_shim(query)))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 query->onConflict->action == ONCONFLICT_UPDATE ?
				 errmsg("cannot use INSERT ... ON CONFLICT DO UPDATE on table \"%s\"",
						get_rel_name(relid)) :
				 errmsg("cannot use INSERT ... ON CONFLICT with a conflict target on table \"%s\"",
						get_rel_name(relid)),
				 shim_detail(relid, "on which postgres_fdw infers no unique key"),
				 errhint("Run the statement in the database the table moved to, or use UPDATE and then INSERT ... ON CONFLICT DO NOTHING without a conflict target.")));

	if ((query->commandType == CMD_UPDATE || query->commandType == CMD_DELETE) &&
		query->jointree != NULL && query->jointree->quals != NULL &&
		IsA(query->jointree->quals, CurrentOfExpr) &&
		OidIsValid(relid = target_shim(query)))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot use WHERE CURRENT OF on table \"%s\"", get_rel_name(relid)),
				 shim_detail(relid, "into which a cursor cannot point"),
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
