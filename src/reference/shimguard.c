/*-------------------------------------------------------------------------
 *
 * shimguard.c
 *	  Refusing the writes a shim cannot apply safely.
 *
 * A shim is one postgres_fdw foreign table for a moved table.  When
 * postgres_fdw cannot send an UPDATE or DELETE to the other database as one
 * statement (the shim has row triggers for it, such as the ends of
 * cross-service references, or a condition cannot run remotely), it reads
 * the rows and changes each one "WHERE ctid = $1".  A ctid names a row
 * within one table; the partitions of a partitioned table each have their
 * own, so on the shim of a partitioned table such a statement would also
 * change the rows of other partitions that happen to have the same ctid.
 * Before such a statement starts, splitdb_shimguard_check() refuses it; a
 * statement that postgres_fdw sends whole ("direct modify") is left alone,
 * and so is every write in the sibling itself.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/shimguard.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "nodes/bitmapset.h"
#include "nodes/plannodes.h"
#include "parser/parsetree.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "metadata/catalog.h"
#include "reference/shimguard.h"

/*
 * shim_of_partitioned
 *		Whether relid is the shim of a partitioned table that a migration
 *		moved: a foreign table named as one in splitdb.job_table, read
 *		under the newest snapshot, so that a transaction whose snapshot is
 *		older than the cutover is refused too.
 */
static bool
shim_of_partitioned(Oid relid)
{
	char	   *name;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	/* in the writer's session: operators qualified, past its search_path */
	const char *sql = "SELECT 1 FROM splitdb.job_table jt"
		" WHERE jt.relkind OPERATOR(pg_catalog.=) 'p' AND jt.partition_root IS NULL"
		"   AND jt.table_name OPERATOR(pg_catalog.=) $1 LIMIT 1";
	bool		found;
	int			rc;

	if (get_rel_relkind(relid) != RELKIND_FOREIGN_TABLE)
		return false;
	name = psprintf("%s.%s", quote_identifier(get_namespace_name(get_rel_namespace(relid))),
					quote_identifier(get_rel_name(relid)));
	values[0] = CStringGetTextDatum(name);
	splitdb_spi_connect();
	rc = splitdb_spi_exec_latest(sql, 1, types, values, NULL, 1);
	if (rc != SPI_OK_SELECT)
		splitdb_spi_failed(sql, rc);
	found = SPI_processed > 0;
	SPI_finish();
	return found;
}

/*
 * check_modify
 *		Refuse a ModifyTable that would change the rows of a partitioned
 *		table's shim one at a time.
 */
static void
check_modify(PlannedStmt *stmt, ModifyTable *mt)
{
	int			i = 0;
	ListCell   *lc;

	if (mt->operation != CMD_UPDATE && mt->operation != CMD_DELETE)
		return;
	foreach(lc, mt->resultRelations)
	{
		RangeTblEntry *rte = rt_fetch(lfirst_int(lc), stmt->rtable);

		if (!bms_is_member(i++, mt->fdwDirectModifyPlans) &&
			rte->relkind == RELKIND_FOREIGN_TABLE && shim_of_partitioned(rte->relid))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot %s the rows of shim \"%s\" one at a time",
							mt->operation == CMD_UPDATE ? "update" : "delete",
							get_rel_name(rte->relid)),
					 errdetail("The shim stands for a partitioned table in another database, and postgres_fdw would change each row \"WHERE ctid = $1\" there, which the table's partitions repeat: rows of other partitions would change too."),
					 errhint("Run the statement in the service's database, or write it so that postgres_fdw sends it whole: no row triggers on the shim for it, only conditions that can run remotely (EXPLAIN VERBOSE then shows no ctid in its Remote SQL).")));
	}
}

/*
 * splitdb_shimguard_check
 *		Before a plan starts (fdwwatch.c's executor hook): refuse it if one
 *		of its UPDATE or DELETE nodes (the statement's own, or a
 *		data-modifying WITH) would change a partitioned table's shim row by
 *		row.
 */
void
splitdb_shimguard_check(PlannedStmt *stmt)
{
	ListCell   *lc;

	if (IsA(stmt->planTree, ModifyTable))
		check_modify(stmt, (ModifyTable *) stmt->planTree);
	foreach(lc, stmt->subplans)
	{
		Plan	   *plan = lfirst(lc);

		if (plan != NULL && IsA(plan, ModifyTable))
			check_modify(stmt, (ModifyTable *) plan);
	}
}
