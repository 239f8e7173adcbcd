/*-------------------------------------------------------------------------
 *
 * dropguard.c
 *	  A cross-service reference goes with a dropped table that holds one of
 *	  its ends, as a foreign key goes with its table: the event trigger
 *	  splitdb_guard_dropped_ends, on sql_drop.
 *
 * A foreign key goes with its referencing table, and keeps its referenced
 * table from being dropped without CASCADE, which drops the key.  The
 * other end of a cross-service reference is in another database, which the
 * drop cannot change, so the reference goes in two halves: in the database
 * of the drop, the ends that read the dropped table go with it, and the
 * table's own row of splitdb.reference_end stays; the other database's
 * lookups and actions that reach that row answer as if the key had gone
 * with the table (splitdb_refcheck_end_dropped: refcheck_lookup.c,
 * refcheck_act.c).  Its triggers there stay until the reference is turned
 * off (splitdb_reference_mode(), reference.c).
 *
 * Invariants:
 * - In the command's transaction: a rollback of the DROP brings every end
 *   back.
 * - A role that is no superuser drops what PostgreSQL lets it drop, and no
 *   more: a referenced table only with CASCADE (2BP01), never a shim that
 *   holds an end, nor a partition of a referenced end, whose rows would
 *   leave the referenced table unchecked.
 * - The ends it leaves are dropped with the rights of splitdb's catalog,
 *   for splitdb's own statements only, whatever the role.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/dropguard.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_authid.h"
#include "commands/event_trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "postmaster/bgworker.h"

#include "metadata/catalog.h"
#include "reference/trigguard.h"

PG_FUNCTION_INFO_V1(splitdb_guard_dropped_ends);

/*
 * ends_catalog_present
 *		Whether splitdb.reference_end is there to read: DROP EXTENSION
 *		splitdb takes the catalog along.  Connected to SPI.
 */
static bool
ends_catalog_present(void)
{
	splitdb_catalog_exec_text_latest("SELECT pg_catalog.to_regclass('splitdb.reference_end') IS NOT NULL",
									 0, NULL, true);
	return SPI_processed == 1 &&
		strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1), "t") == 0;
}

/*
 * forget_dropped_ends
 *		After a superuser's command dropped tables here that hold ends of
 *		cross-service references, as PostgreSQL takes a foreign key along
 *		with its table: the ends here whose other end was such a table (the
 *		end of a moved table on its shim, whose checks read this database)
 *		are dropped, triggers and row, and a NOTICE names each reference.
 *		The dropped table's own row stays: the other database's lookups and
 *		actions then answer as if the key had gone with it
 *		(splitdb_refcheck_end_dropped).  The source's artifact registry
 *		records the triggers that went as dropped, so that splitdb_doctor()
 *		does not report them missing.  In the command's transaction, so a
 *		rollback of the DROP brings them all back.
 */
static void
forget_dropped_ends(void)
{
	List	   *rows;
	ListCell   *lc;

	splitdb_spi_connect();
	if (!ends_catalog_present())
	{
		SPI_finish();
		return;
	}
	splitdb_catalog_exec_text_latest("SELECT g.reference_id::text, g.constraint_name::text, g.own_table,"
									 "       g.other_table, g.other_database,"
									 "       CASE g.side WHEN 'c' THEN 'referencing' ELSE 'referenced' END"
									 "  FROM splitdb.reference_end g"
									 "  JOIN pg_event_trigger_dropped_objects() d"
									 "    ON d.classid = 'pg_class'::regclass AND d.objsubid = 0"
									 "   AND d.objid = g.relid"
									 " WHERE g.own_server IS NULL"
									 " ORDER BY g.reference_id, g.side",
									 0, NULL, true);
	rows = splitdb_catalog_result_rows();
	/* most drops hold no end: nothing below would change anything */
	if (rows == NIL)
	{
		SPI_finish();
		return;
	}
	foreach(lc, rows)
	{
		char	  **row = (char **) lfirst(lc);

		ereport(NOTICE,
				(errmsg("cross-service reference %s (\"%s\") checks nothing any more: its %s table %s was dropped",
						row[0], row[1], row[5], row[2]),
				 errdetail("Its other end, table %s in database \"%s\", finds from now on what it would find if the foreign key had gone with the table.",
						   row[3], row[4]),
				 errhint("splitdb_reference_mode(%s, 'off') takes its triggers off there.", row[0])));
	}
	/* the source's registry: its triggers went with it, not missing */
	splitdb_catalog_exec_text("UPDATE splitdb.artifact a SET dropped_at = pg_catalog.clock_timestamp()"
							  "  FROM pg_event_trigger_dropped_objects() d"
							  " WHERE a.service IS NULL AND a.kind = 'trigger' AND a.dropped_at IS NULL"
							  "   AND d.classid = 'pg_class'::regclass AND d.objsubid = 0"
							  "   AND a.parent = d.object_identity"
							  "   AND EXISTS (SELECT FROM splitdb.reference_end g WHERE g.relid = d.objid"
							  "                  AND g.own_server IS NULL)",
							  0, NULL, false);
	splitdb_catalog_exec_text("SELECT splitdb.drop_reference_end(e.reference_id, e.side)"
									 "  FROM splitdb.reference_end e"
									 "  JOIN splitdb.reference_end g ON g.reference_id = e.reference_id"
									 "   AND g.side <> e.side AND g.own_server IS NULL"
									 "  JOIN pg_event_trigger_dropped_objects() d"
									 "    ON d.classid = 'pg_class'::regclass AND d.objsubid = 0"
									 "   AND d.objid = g.relid"
									 " WHERE e.other_server IS NULL",
									 0, NULL, false);
	SPI_finish();
}

/*
 * drops_with_cascade
 *		Whether the command drops what depends on what it drops: DROP ...
 *		CASCADE, DROP OWNED ... CASCADE.  Any other command is taken as
 *		RESTRICT.
 */
static bool
drops_with_cascade(Node *parsetree)
{
	if (parsetree != NULL && IsA(parsetree, DropStmt))
		return ((DropStmt *) parsetree)->behavior == DROP_CASCADE;
	if (parsetree != NULL && IsA(parsetree, DropOwnedStmt))
		return ((DropOwnedStmt *) parsetree)->behavior == DROP_CASCADE;
	return false;
}

/*
 * splitdb_guard_dropped_ends
 *		SQL: event trigger on sql_drop.  A command that dropped a table here
 *		holding an end of a cross-service reference drops the reference as
 *		PostgreSQL drops a foreign key with its table: the ends left here
 *		that read that table go, and the table's own row stays, so that the
 *		other database's lookups and actions find what they would find
 *		without the key (forget_dropped_ends).  For a role that is no
 *		superuser it refuses (2BP01), as PostgreSQL refuses, the drop of a
 *		referenced table without CASCADE (DROP ... CASCADE, DROP SCHEMA or
 *		DROP OWNED ... CASCADE take it); and whatever the route, the drop of
 *		a shim holding an end (the writes through it are checked there) or
 *		of a partition of a referenced end (found by the reference's trigger
 *		cloned onto it), whose rows would leave the referenced table without
 *		a check of the rows that refer to them, as DETACH PARTITION's would
 *		(refuse_detach).  A superuser's drop is not refused.
 *
 * The relations are gone from the catalog by now; splitdb.reference_end
 * still names their OIDs, and is read as of now.
 */
Datum
splitdb_guard_dropped_ends(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata = (EventTriggerData *) fcinfo->context;
	bool		cascade;
	List	   *rows = NIL;
	ListCell   *lc;
	Oid			save_userid;
	int			save_sec;

	if (splitdb_trigguard_passes(fcinfo))
	{
		if (superuser() && MyBgworkerEntry == NULL)
			forget_dropped_ends();
		PG_RETURN_VOID();
	}
	cascade = drops_with_cascade(trigdata->parsetree);

	/* search_path is pg_catalog, pg_temp (the function's SET clause) */
	splitdb_spi_connect();
	if (!ends_catalog_present())
	{
		SPI_finish();
		PG_RETURN_VOID();
	}
	splitdb_catalog_exec_text_latest("SELECT x.kind, x.identity, x.reference_id::text, x.constraint_name::text,"
									 "       x.why, x.other_table, x.other_database"
									 "  FROM (SELECT 0 AS pref, d.object_type AS kind, d.object_identity AS identity,"
									 "               e.reference_id, e.side, e.constraint_name,"
									 "               CASE WHEN e.own_server IS NOT NULL THEN 'shim'"
									 "                    WHEN e.side = 'p' THEN 'referenced' END AS why,"
									 "               e.other_table, e.other_database"
									 "          FROM pg_event_trigger_dropped_objects() d"
									 "          JOIN splitdb.reference_end e ON e.relid::oid = d.objid"
									 "         WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0"
									 "        UNION ALL"
									 "        SELECT 1, 'table', split_part(d.object_identity, ' on ', 2),"
									 "               e.reference_id, e.side, e.constraint_name, 'partition',"
									 "               e.other_table, e.other_database"
									 "          FROM pg_event_trigger_dropped_objects() d"
									 "          JOIN splitdb.reference_end e ON e.side = 'p'"
									 "           AND d.object_identity LIKE"
									 "               'splitdb\\_ref\\_' || e.reference_id || '\\_p on %'"
									 "         WHERE d.classid = 'pg_trigger'::regclass"
									 /* not when the end itself goes with it */
									 "           AND NOT EXISTS (SELECT FROM pg_event_trigger_dropped_objects() t"
									 "                            WHERE t.classid = 'pg_class'::regclass"
									 "                              AND t.objsubid = 0 AND t.objid = e.relid)) x"
									 " WHERE x.why IS NOT NULL"
									 " ORDER BY x.reference_id, x.side, x.pref",
									 0, NULL, true);
	rows = splitdb_catalog_result_rows();
	foreach(lc, rows)
	{
		/* raised while connected: the strings live in SPI's memory */
		char	  **row = (char **) lfirst(lc);

		if (strcmp(row[4], "referenced") == 0 && cascade)
			continue;
		if (strcmp(row[4], "referenced") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
					 errmsg("cannot drop %s %s because other objects depend on it", row[0], row[1]),
					 errdetail("Cross-service reference %s (\"%s\") on table %s in database \"%s\" depends on %s %s.",
							   row[2], row[3], row[5], row[6], row[0], row[1]),
					 errhint("Use DROP ... CASCADE to drop the dependent objects too.")));
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("cannot drop %s %s because cross-service reference %s depends on it",
						row[0], row[1], row[2]),
				 strcmp(row[4], "shim") == 0 ?
				 errdetail("Reference %s (\"%s\") has an end on this shim, which checks the writes that come through it.",
						   row[2], row[3]) :
				 errdetail("Reference %s (\"%s\") is on the partitioned table above it, whose other end, in another database, refers to the partition's rows.",
						   row[2], row[3]),
				 errhint("Ask a superuser to turn the reference off with splitdb_reference_mode(%s, 'off') and to drop the %s.",
						 row[2], row[0])));
	}
	SPI_finish();

	/*
	 * What PostgreSQL lets the role drop, with the foreign key: the ends it
	 * leaves go as a superuser's drop takes them, with the rights of
	 * splitdb's catalog, which the role lacks (the ends of the shim of
	 * another role's table among them, as PostgreSQL drops a foreign key's
	 * triggers on the referenced table).  Only splitdb's own statements
	 * run so.
	 */
	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID,
						   save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	PG_TRY();
	{
		forget_dropped_ends();
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_userid, save_sec);
	}
	PG_END_TRY();
	PG_RETURN_VOID();
}
