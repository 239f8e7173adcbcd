/*-------------------------------------------------------------------------
 *
 * ownership.c
 *	  Which service owns which table: splitdb_assign() and
 *	  splitdb_unassign().
 *
 * A table belongs to at most one service.  A partitioned table is assigned
 * with all of its partitions, which are recorded with partition_root set;
 * a partition is never assigned or unassigned on its own, since its rows
 * cannot live in another database than its parent's.
 *
 * Invariants:
 * - Every argument is checked before anything is written, and everything is
 *   written in the caller's transaction, so a refused call changes nothing.
 * - The service row is locked FOR SHARE, so splitdb_drop_service() cannot
 *   remove the service underneath; each table is locked ACCESS SHARE, so it
 *   cannot be dropped underneath.
 * - Two sessions assigning one table to two services race on the primary key
 *   of splitdb.owned_table: the loser waits, sees the winner's row and gets
 *   the "already owned" error, never a unique violation.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/metadata/ownership.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "catalog/catalog.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "commands/event_trigger.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "metadata/catalog.h"
#include "compat.h"
#include "splitdb.h"

PG_FUNCTION_INFO_V1(splitdb_assign);
PG_FUNCTION_INFO_V1(splitdb_unassign);
PG_FUNCTION_INFO_V1(splitdb_forget_dropped_tables);

static List *table_arguments(ArrayType *arr);
static char *rel_name(Oid relid);
static void check_assignable(Oid relid);
static void check_not_partition(Oid relid, const char *verb);

/*
 * table_arguments
 *		The OIDs of a regclass[] argument, in order, without duplicates.
 */
static List *
table_arguments(ArrayType *arr)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	List	   *result = NIL;

	deconstruct_array(arr, REGCLASSOID, sizeof(Oid), true, TYPALIGN_INT,
					  &elems, &nulls, &n);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("no tables given"),
				 errhint("Name at least one table.")));
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("table name cannot be null"),
					 errhint("Name every table of the list; remove the NULL.")));
		result = list_append_unique_oid(result, DatumGetObjectId(elems[i]));
	}
	return result;
}

/* "schema.table", quoted as needed, for messages */
static char *
rel_name(Oid relid)
{
	char	   *relname = get_rel_name(relid);

	if (relname == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid),
				 errhint("It may have been dropped while the call ran; try again.")));
	/* temporary schemas are numbered per backend: name them by their alias */
	if (isAnyTempNamespace(get_rel_namespace(relid)))
		return quote_qualified_identifier("pg_temp", relname);
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  relname);
}

/*
 * check_not_partition
 *		Refuse a partition named on its own.
 *
 * verb: "assign" or "unassign", for the message
 */
static void
check_not_partition(Oid relid, const char *verb)
{
	Oid			root;
	List	   *ancestors;

	if (!get_rel_relispartition(relid))
		return;

	ancestors = get_partition_ancestors(relid);
	root = llast_oid(ancestors);
	ereport(ERROR,
			(errcode(ERRCODE_WRONG_OBJECT_TYPE),
			 errmsg("cannot %s partition \"%s\" on its own", verb, rel_name(relid)),
			 errdetail("It is a partition of \"%s\".", rel_name(linitial_oid(ancestors))),
			 errhint("%s the partitioned table \"%s\"; its partitions go with it.",
					 strcmp(verb, "assign") == 0 ? "Assign" : "Unassign",
					 rel_name(root))));
}

/*
 * check_assignable
 *		Refuse anything that is not a user table that can move.
 *
 * The caller holds a lock on the relation.
 */
static void
check_assignable(Oid relid)
{
	char		relkind = get_rel_relkind(relid);
	Oid			extension;

	if (relkind == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid),
				 errhint("It may have been dropped while the call ran; try again.")));

	if (relid < FirstNormalObjectId || IsCatalogRelationOid(relid) ||
		IsToastNamespace(get_rel_namespace(relid)))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot assign system table \"%s\"", rel_name(relid)),
				 errdetail("System catalogs belong to the server, not to a service."),
				 errhint("Assign user tables only.")));

	extension = getExtensionOfObject(RelationRelationId, relid);
	if (OidIsValid(extension))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot assign table \"%s\" because it belongs to extension \"%s\"",
						rel_name(relid), get_extension_name(extension)),
				 errdetail("An extension's tables are created and dropped by the extension itself."),
				 errhint("Install the extension in the sibling database instead.")));

	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot assign \"%s\" because it is not a table", rel_name(relid)),
				 errdetail("Only tables and partitioned tables move to a service."),
				 errhint("Views and materialized views stay in the source and are re-pointed; assign the tables they read.")));

	if (get_rel_persistence(relid) == RELPERSISTENCE_TEMP)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot assign temporary table \"%s\"", rel_name(relid)),
				 errdetail("A temporary table lives only as long as its session."),
				 errhint("Assign permanent or unlogged tables only.")));

	check_not_partition(relid, "assign");
}

/*
 * splitdb_assign
 *		SQL: splitdb_assign(service name, VARIADIC tables regclass[])
 *		RETURNS integer
 *
 * Assigns each table, and every partition of a partitioned one, to the
 * service.  Tables the service already owns are skipped with a notice.
 * Returns the number of tables newly assigned, partitions included.
 */
Datum
splitdb_assign(PG_FUNCTION_ARGS)
{
	char	   *service = pstrdup(NameStr(*PG_GETARG_NAME(0)));
	List	   *tables;
	List	   *work = NIL;
	List	   *roots = NIL;
	ListCell   *lc;
	ListCell   *lr;
	int			added = 0;

	splitdb_require_superuser("splitdb_assign");
	tables = table_arguments(PG_GETARG_ARRAYTYPE_P(1));

	splitdb_spi_connect();
	(void) splitdb_catalog_get_service(service, SPLITDB_LOCK_SHARE, false);
	splitdb_catalog_require_no_job(service, "assign tables to");

	/* check everything before writing anything */
	foreach(lc, tables)
	{
		Oid			relid = lfirst_oid(lc);
		List	   *members;
		ListCell   *lm;

		LockRelationOid(relid, AccessShareLock);
		check_assignable(relid);

		/* the table itself first, then its partitions, parents first */
		members = find_all_inheritors(relid, AccessShareLock, NULL);
		foreach(lm, members)
		{
			Oid			member = lfirst_oid(lm);
			char	   *owner;

			/* inheritance children (not partitions) are not ours to take */
			if (member != relid && !get_rel_relispartition(member))
				continue;
			if (get_rel_relkind(member) == RELKIND_FOREIGN_TABLE)
				ereport(ERROR,
						(errcode(ERRCODE_WRONG_OBJECT_TYPE),
						 errmsg("cannot assign partitioned table \"%s\" because its partition \"%s\" is a foreign table",
								rel_name(relid), rel_name(member)),
						 errdetail("The rows of a foreign partition live in another database already."),
						 errhint("Detach the foreign partition first.")));

			owner = splitdb_catalog_owner_of(member);
			if (owner != NULL && strcmp(owner, service) != 0)
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_OBJECT),
						 errmsg("table \"%s\" is already owned by service \"%s\"",
								rel_name(member), owner),
						 errhint("A table belongs to one service at most; unassign it from service \"%s\" first with splitdb_unassign().",
								 owner)));
			work = lappend_oid(work, member);
			roots = lappend_oid(roots, member == relid ? InvalidOid : relid);
		}
	}

	forboth(lc, work, lr, roots)
	{
		Oid			relid = lfirst_oid(lc);
		char	   *owner;

		if (splitdb_catalog_insert_owned(relid, service, lfirst_oid(lr)))
		{
			added++;
			continue;
		}

		/* someone owns it: a concurrent assign, or ourselves */
		owner = splitdb_catalog_owner_of(relid);
		if (owner != NULL && strcmp(owner, service) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("table \"%s\" is already owned by service \"%s\"",
							rel_name(relid), owner),
					 errhint("A table belongs to one service at most; unassign it from service \"%s\" first with splitdb_unassign().",
							 owner)));
		if (!OidIsValid(lfirst_oid(lr)))
			ereport(NOTICE,
					(errmsg("table \"%s\" is already owned by service \"%s\", skipping",
							rel_name(relid), service)));
	}

	SPI_finish();
	PG_RETURN_INT32(added);
}

/*
 * splitdb_unassign
 *		SQL: splitdb_unassign(service name, VARIADIC tables regclass[])
 *		RETURNS integer
 *
 * Takes each table, with the partitions that came with it, away from the
 * service.  Every table must be owned by that service.  Returns the number
 * of tables removed, partitions included.
 */
Datum
splitdb_unassign(PG_FUNCTION_ARGS)
{
	char	   *service = pstrdup(NameStr(*PG_GETARG_NAME(0)));
	List	   *tables;
	ListCell   *lc;
	int			removed = 0;

	splitdb_require_superuser("splitdb_unassign");
	tables = table_arguments(PG_GETARG_ARRAYTYPE_P(1));

	splitdb_spi_connect();
	(void) splitdb_catalog_get_service(service, SPLITDB_LOCK_SHARE, false);
	splitdb_catalog_require_no_job(service, "unassign tables from");

	foreach(lc, tables)
	{
		Oid			relid = lfirst_oid(lc);
		char	   *owner;

		LockRelationOid(relid, AccessShareLock);
		owner = splitdb_catalog_owner_of(relid);
		if (owner == NULL || strcmp(owner, service) != 0)
		{
			check_not_partition(relid, "unassign");
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("table \"%s\" is not owned by service \"%s\"",
							rel_name(relid), service),
					 owner ? errdetail("It is owned by service \"%s\".", owner) :
					 errdetail("No service owns it."),
					 errhint("splitdb.owned_table lists the tables each service owns.")));
		}
		if (OidIsValid(splitdb_catalog_partition_root_of(relid)))
			check_not_partition(relid, "unassign");
	}

	foreach(lc, tables)
		removed += splitdb_catalog_delete_owned(lfirst_oid(lc), service);

	SPI_finish();
	PG_RETURN_INT32(removed);
}

/*
 * splitdb_forget_dropped_tables
 *		SQL: event trigger on sql_drop (SECURITY DEFINER).  Deletes the
 *		ownership rows of the tables the command dropped.
 *
 * As of now, not under the command's snapshot: a DROP in a REPEATABLE READ
 * transaction older than the table's splitdb_assign() would not see the row
 * the assign committed, and leave it naming a dropped table, which keeps
 * splitdb_drop_service() refusing.
 */
Datum
splitdb_forget_dropped_tables(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function splitdb.forget_dropped_tables() must be called as an event trigger"),
				 errhint("Only splitdb's event trigger splitdb_forget_dropped_tables calls it.")));
	splitdb_spi_connect();
	splitdb_catalog_exec_text_latest("DELETE FROM splitdb.owned_table o"
									 " USING pg_catalog.pg_event_trigger_dropped_objects() d"
									 " WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass"
									 "   AND d.objsubid = 0"
									 "   AND o.relid::pg_catalog.oid = d.objid",
									 0, NULL, false);
	SPI_finish();
	PG_RETURN_VOID();
}
