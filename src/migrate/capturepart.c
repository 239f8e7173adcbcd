/*-------------------------------------------------------------------------
 *
 * capturepart.c
 *	  Change capture of the partitions made or attached, after the
 *	  capture was installed, under a relation that captures.
 *
 * A service's partitioned table in its sibling keeps getting partitions
 * between the cutover and splitdb_finalize(): an application's monthly
 * CREATE TABLE ... PARTITION OF, an ATTACH PARTITION of a table loaded
 * apart.  PostgreSQL copies no statement trigger onto a new partition, so
 * the writes straight into it would go unlogged, and a rollback would
 * lose them.  At ddl_command_end (ddlguard.c's guard_ddl), such a
 * partition, and every relation under it, gets the capture of its parent:
 * the same log, key columns and job (splitdb.capture_partition), and the
 * rows an attached partition brings are logged as inserted.  The rollback
 * then makes the partition in the archived original before it replays
 * (rollback.c).
 *
 * A foreign table is refused as such a partition, or under one (an attached
 * partitioned table): its rows live in another database, which no capture
 * reaches, and reading them as the log's owner would use that role's user
 * mapping.
 *
 * Invariants:
 * - The capture is installed in the command's own transaction: no write
 *   to the new partition can commit before it.
 * - It is installed as the owner of the parent's log (the role that
 *   installed the capture, a superuser of the sibling), inside a
 *   security-restricted operation: the command's role needs no right on
 *   splitdb's objects, and gets none.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/capturepart.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/partition.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_class.h"
#include "commands/event_trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"

#include "metadata/catalog.h"
#include "migrate/capture.h"
#include "reference/attachcheck.h"
#include "splitdb.h"

/* a partition the command made or attached, and its parent */
typedef struct NewPartition
{
	Oid			part;
	Oid			parent;
} NewPartition;

/*
 * new_partitions
 *		The partitions the command made or attached (attachcheck.c looks
 *		them up as the command did), each with its parent.
 */
static List *
new_partitions(Node *parsetree)
{
	List	   *found = NIL;
	ListCell   *lc;

	foreach(lc, splitdb_partitions_made(parsetree, false))
	{
		Oid			relid = lfirst_oid(lc);
		NewPartition *p;

		if (!get_rel_relispartition(relid))
			continue;
		p = palloc(sizeof(NewPartition));
		p->part = relid;
		p->parent = get_partition_parent(relid, true);
		found = lappend(found, p);
	}
	return found;
}

/*
 * log_owner
 *		The owner of the log that relid captures into, or InvalidOid when
 *		it does not capture.  Connected to SPI.
 */
static Oid
log_owner(Oid relid)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(relid)};
	bool		isnull;

	splitdb_spi_exec("SELECT l.relowner FROM splitdb.capture c"
					 "  JOIN pg_catalog.pg_class l ON l.oid OPERATOR(pg_catalog.=) c.log"
					 " WHERE c.relid OPERATOR(pg_catalog.=) $1::pg_catalog.oid::pg_catalog.regclass",
					 1, types, values, NULL, true, 1);
	if (SPI_processed == 0)
		return InvalidOid;
	return DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * capture_partition
 *		Give p the capture of its parent (splitdb.capture_partition), as the
 *		parent's log's owner; a foreign table is refused.  Nothing when the
 *		parent does not capture.  Connected to SPI.
 */
static void
capture_partition(const NewPartition *p)
{
	Oid			owner = log_owner(p->parent);
	Oid			types[2] = {OIDOID, OIDOID};
	Datum		values[2] = {ObjectIdGetDatum(p->parent), ObjectIdGetDatum(p->part)};
	Oid			save_userid;
	int			save_sec;
	ListCell   *lc;

	if (!OidIsValid(owner))
		return;
	/* the partition, or one under it (an attached partitioned table) */
	foreach(lc, find_all_inheritors(p->part, NoLock, NULL))
	{
		if (get_rel_relkind(lfirst_oid(lc)) == RELKIND_FOREIGN_TABLE)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("foreign table \"%s\" cannot be a partition of \"%s\", whose writes splitdb captures",
							get_rel_name(lfirst_oid(lc)), get_rel_name(p->parent)),
					 errdetail("A rollback of the service brings back the rows written here since its migration, and the rows of a foreign table are in another database."),
					 errhint("Attach it once the service's migration is finalized (splitdb_finalize() in the source database).")));
	}

	GetUserIdAndSecContext(&save_userid, &save_sec);
	/* an error on the way resets the user at abort */
	SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	splitdb_spi_exec("SELECT splitdb.capture_partition($1::pg_catalog.oid::pg_catalog.regclass,"
					 "                                 $2::pg_catalog.oid::pg_catalog.regclass)",
					 2, types, values, NULL, false, 1);
	SetUserIdAndSecContext(save_userid, save_sec);
}

/*
 * splitdb_capture_new_partitions
 *		From the ddl_command_end event trigger (ddlguard.c's guard_ddl):
 *		each partition the command made or attached under a relation that
 *		captures gets its capture (see the file's header).  Called under
 *		the session's search_path, which the command's names were looked
 *		up under; splitdb's queries run under pg_catalog, pg_temp.
 */
void
splitdb_capture_new_partitions(EventTriggerData *trigdata)
{
	List	   *parts;
	ListCell   *lc;
	int			nest;

	if (trigdata->parsetree == NULL)
		return;
	parts = new_partitions(trigdata->parsetree);
	if (parts == NIL)
		return;
	nest = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	splitdb_spi_connect();
	foreach(lc, parts)
	{
		NewPartition *p = (NewPartition *) lfirst(lc);

		if (OidIsValid(p->parent))
			capture_partition(p);
	}
	SPI_finish();
	AtEOXact_GUC(true, nest);
}
