/*-------------------------------------------------------------------------
 *
 * route.c
 *	  Which rows written through a shim land in a given partition.
 *
 * A foreign key declared on one partition of a moved partitioned table is a
 * reference of that partition alone, yet the source has one shim for the
 * whole partitioned table.  The source enforces such a reference with
 * triggers on that shim whose WHEN clause is the partition's constraint,
 * written over the trigger's NEW (or OLD) row: a row goes through the
 * partition's checks exactly when PostgreSQL would route it there.
 *
 * The condition is the partition constraint PostgreSQL derives from the
 * bounds of the partition and of its ancestors (for a DEFAULT partition,
 * the negation of its siblings' bounds), as the partitions stand when the
 * reference is installed.  It is deparsed with search_path = pg_catalog,
 * so every function, operator and type it names comes out schema-qualified
 * and means the same under the trigger's own search_path, and with
 * DateStyle ISO, IntervalStyle postgres and extra_float_digits 3, so its
 * constants read back as the same values whatever the session's settings.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/route.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/partcache.h"
#include "utils/ruleutils.h"

#include "splitdb.h"

PG_FUNCTION_INFO_V1(splitdb_partition_route);

/*
 * splitdb_partition_route
 *		SQL splitdb.partition_route(partition regclass, row_alias text):
 *		the partition's constraint as a boolean expression over row_alias
 *		(new or old), for the WHEN clause of a row trigger on a relation
 *		with the partition's column names.  NULL when the relation is not
 *		a partition.
 */
Datum
splitdb_partition_route(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	char	   *alias = text_to_cstring(PG_GETARG_TEXT_PP(1));
	Expr	   *qual;
	char	   *text;
	int			nest;

	if (strcmp(alias, "new") != 0 && strcmp(alias, "old") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid row alias \"%s\"", alias),
				 errhint("The row alias is \"new\" or \"old\".")));
	if (!get_rel_relispartition(relid))
		PG_RETURN_NULL();
	qual = get_partition_qual_relid(relid);
	if (qual == NULL)
		PG_RETURN_NULL();

	nest = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	/* constants print in a form any session reads back as the same value */
	(void) set_config_option("datestyle", "ISO", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("intervalstyle", "postgres", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("extra_float_digits", "3", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	text = deparse_expression((Node *) qual, deparse_context_for(alias, relid),
							  true, false);
	AtEOXact_GUC(true, nest);
	PG_RETURN_TEXT_P(cstring_to_text(text));
}
