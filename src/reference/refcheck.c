/*-------------------------------------------------------------------------
 *
 * refcheck.c
 *	  Cross-service reference triggers: foreign-key semantics across
 *	  databases.  The trigger entry points, and what _PG_init sets up.
 *
 * A foreign key whose two ends now live in different databases is enforced
 * by triggers on both ends, in every database that holds an end.  Each
 * database describes its ends in splitdb.reference_end; a trigger's
 * arguments are (reference id, side) and must name a row for the trigger's
 * own relation.
 *
 * The engine is split by concern, the files sharing refcheck_int.h:
 *
 *   refcheck.c             the trigger functions (this file) and the init
 *   refcheck_def.c         the definitions of reference ends, cached per
 *                          backend, and their invalidation
 *   refcheck_xact.c        the transaction state, its callbacks, and the
 *                          connection enforcement uses in the other database
 *   refcheck_queue.c       the key queues the row triggers fill
 *   refcheck_constraint.c  SET CONSTRAINTS for the deferred checks of shims
 *   refcheck_check.c       checks and actions: working a queue off
 *   refcheck_sql.c         the SQL of keys: lookups, key arrays, messages
 *   refcheck_relay.c       the relay of chains of actions between databases
 *   refcheck_fast.c        checks on splitdb's own connection (checkconn.c)
 *   refcheck_ahead.c       lookups sent ahead by the BEFORE row trigger
 *   refcheck_hold.c        locks held past postgres_fdw's commit
 *
 * Row triggers only queue (refcheck_queue.c); the statement trigger and the
 * commit work the queues off (refcheck_check.c).  Nothing here keeps state
 * of its own: what a transaction queued lives in refcheck_xact
 * (refcheck_xact.c), the definitions in refcheck_def.c's cache.
 *
 * fdwwatch.c sees the writes through foreign tables and SET CONSTRAINTS;
 * it does not know this engine: splitdb_refcheck_init() registers
 * fdwwatch_event() with it, as PostgreSQL's modules register transaction
 * callbacks.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/refcheck.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "reference/fdwwatch.h"
#include "reference/refcheck.h"
#include "reference/refcheck_int.h"
#include "splitdb.h"

PG_FUNCTION_INFO_V1(splitdb_reference_row);
PG_FUNCTION_INFO_V1(splitdb_reference_flush);
PG_FUNCTION_INFO_V1(splitdb_shim_statement);

/*
 * splitdb.origin, set by the server option of splitdb's servers: names where
 * a session's writes come from, trusted for nothing (origin.c decides)
 */
char	   *splitdb_origin = NULL;

/* splitdb.check_connection */
bool		splitdb_check_connection = true;

static void refuse_partition_truncate(Oid relid);

/*
 * fdwwatch_event
 *		fdwwatch.c's callback: a statement is about to write to (or lock
 *		rows of) a server through postgres_fdw, or writes a table (whose
 *		writer the keys of its deferred triggers keep), or PostgreSQL ran
 *		SET CONSTRAINTS, or a TRUNCATE names a table.
 */
static void
fdwwatch_event(SplitdbFdwWatchEvent event, Oid serverid, Oid relid, Oid userid,
			   ConstraintsSetStmt *stmt, void *arg)
{
	switch (event)
	{
		case SPLITDB_FDWWATCH_WRITE:
			splitdb_refcheck_fdw_writes(serverid);
			break;
		case SPLITDB_FDWWATCH_CONSTRAINTS_SET:
			splitdb_refcheck_constraints_set(stmt);
			splitdb_refcheck_deferred_fired(stmt);
			break;
		case SPLITDB_FDWWATCH_TABLE_WRITE:
			splitdb_refcheck_note_table_writer(relid, userid);
			splitdb_refcheck_note_deferrable(relid);
			break;
		case SPLITDB_FDWWATCH_WRITE_BEGUN:
			splitdb_refcheck_note_fdw_writer(serverid, userid);
			break;
		case SPLITDB_FDWWATCH_TRUNCATE:
			refuse_partition_truncate(relid);
			break;
	}
}

/*
 * splitdb_refcheck_init
 *		From _PG_init, after splitdb_fdwwatch_init(): hear of fdwwatch.c's
 *		events, and register the transaction callback that must run after
 *		postgres_fdw's (refcheck_hold.c).
 */
void
splitdb_refcheck_init(void)
{
	splitdb_fdwwatch_register(fdwwatch_event, NULL);
	splitdb_refcheck_hold_init();
	splitdb_refcheck_lookup_init();
}

/* ----------------------------------------------------------------
 * Trigger functions
 * ---------------------------------------------------------------- */

/*
 * handed_back
 *		Whether the row that a trigger of an end that skips the write (the
 *		writer enforces it) sees must go back to the writer now, through the
 *		relay queue that splitdb.reference_relayed() empties after the
 *		shim's statement.  cmd: the client's statement's command on the
 *		trigger's table (splitdb_refcheck_statement_writes).
 *
 * A key declared on one partition of a moved table (or referencing one) has
 * no row triggers on the source's shim for UPDATE and DELETE (postgres_fdw
 * would then change the remote partitioned table by ctid, which its
 * partitions repeat), only INSERT triggers routed to the partition ("always"
 * ends, reference.c).  So the rows that an UPDATE or DELETE through the
 * shim writes in such a partition (a changed key; a row moved in or out,
 * which PostgreSQL deletes from one partition and inserts into another) go
 * back, and the source checks or acts on them in the writer's transaction,
 * as its own foreign key would.
 */
static bool
handed_back(RefDef *def, CmdType cmd)
{
	return def->always && (cmd == CMD_UPDATE || cmd == CMD_DELETE);
}

/*
 * handback_trigger
 *		Whether the trigger is an end's splitdb_ref_<id>_<side>_handback:
 *		the immediate companion of a deferrable end's constraint trigger
 *		(install_reference_ends()).  In a session whose origin the end skips
 *		it decides, at the end of the statement, which rows go back to the
 *		writer; the constraint trigger fires at this database's commit (or
 *		at a SET CONSTRAINTS), outside the statement that the writer's
 *		shim trigger follows with splitdb.reference_relayed(), when a key
 *		handed back would be handed to no one.
 */
static bool
handback_trigger(TriggerData *td)
{
	return splitdb_refcheck_handback_name(td->tg_trigger->tgname);
}

/*
 * splitdb_refcheck_handback_name
 *		Whether a trigger's name is that of a deferrable end's immediate
 *		companion, splitdb_ref_<id>_<side>_handback, which names the same
 *		end as the end's constraint trigger.
 */
bool
splitdb_refcheck_handback_name(const char *tgname)
{
	size_t		len = strlen(tgname);

	return len > 9 && strcmp(tgname + len - 9, "_handback") == 0;
}

/*
 * splitdb_refcheck_function_is
 *		Whether funcid is splitdb.<name>() (reference_row, reference_flush),
 *		the function of one of splitdb's triggers.
 */
bool
splitdb_refcheck_function_is(Oid funcid, const char *name)
{
	Oid			nsp = get_namespace_oid("splitdb", true);
	HeapTuple	tup;
	bool		is;

	if (!OidIsValid(nsp))
		return false;
	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcid));
	if (!HeapTupleIsValid(tup))
		return false;
	is = ((Form_pg_proc) GETSTRUCT(tup))->pronamespace == nsp &&
		strcmp(NameStr(((Form_pg_proc) GETSTRUCT(tup))->proname), name) == 0;
	ReleaseSysCache(tup);
	return is;
}

/*
 * row_writer
 *		The role whose statement wrote the row a trigger fired for: for a
 *		constraint trigger, which PostgreSQL may fire at commit or at a
 *		later SET CONSTRAINTS ... IMMEDIATE under another role (after SET
 *		ROLE, or outside the SECURITY DEFINER function that wrote), the
 *		role of the last statement that wrote the table; InvalidOid for
 *		the current role (splitdb_refcheck_add_pending).  Its user mapping
 *		is the one whose remote transaction holds what that statement wrote
 *		through shims, which the check must see.
 */
static Oid
row_writer(TriggerData *td)
{
	if (!td->tg_trigger->tgdeferrable)
		return InvalidOid;
	return splitdb_refcheck_table_writer(RelationGetRelid(td->tg_relation));
}

/*
 * splitdb_reference_row
 *		AFTER ROW trigger of a reference end: queue the key.  BEFORE INSERT
 *		OR UPDATE ROW trigger of a referencing end: send its lookup ahead
 *		(refcheck_ahead.c), and keep the row as it is.
 */
Datum
splitdb_reference_row(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	RefDef	   *def;
	bool		relay;
	CmdType		cmd;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		TRIGGER_FIRED_INSTEAD(td->tg_event) ||
		(TRIGGER_FIRED_BEFORE(td->tg_event) && TRIGGER_FIRED_BY_DELETE(td->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("splitdb.reference_row() must be fired AFTER ... FOR EACH ROW, or BEFORE INSERT OR UPDATE ... FOR EACH ROW"),
				 errhint("Only splitdb creates triggers that call splitdb.reference_row(); drop this one.")));

	if (TRIGGER_FIRED_BEFORE(td->tg_event))
	{
		splitdb_refcheck_send_ahead(td, fcinfo->flinfo->fn_oid);
		return PointerGetDatum(TRIGGER_FIRED_BY_UPDATE(td->tg_event) ?
							   td->tg_newtuple : td->tg_trigtuple);
	}
	def = splitdb_refcheck_get_def(td);
	relay = splitdb_refcheck_origin_skips(def);
	if (handback_trigger(td) ? !relay : (relay && td->tg_trigger->tgdeferrable))
		return PointerGetDatum(NULL);	/* the other trigger of the end decides */
	cmd = (relay && !refcheck_xact.relaying) ?
		splitdb_refcheck_statement_writes(td) : CMD_UNKNOWN;
	if (cmd != CMD_UNKNOWN && !handed_back(def, cmd))
		return PointerGetDatum(NULL);	/* the writer's shim triggers saw it */
	if (def->side == 'c')
		splitdb_refcheck_queue_child(def, td, relay, row_writer(td));
	else
		splitdb_refcheck_queue_parent(def, td, relay, row_writer(td));
	return PointerGetDatum(NULL);
}

/*
 * splitdb_shim_statement
 *		AFTER INSERT OR UPDATE OR DELETE statement trigger of every shim:
 *		take back what the other database's foreign keys and triggers
 *		changed in turn (splitdb_refcheck_take_relayed), and work it off.
 */
Datum
splitdb_shim_statement(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_STATEMENT(td->tg_event) ||
		td->tg_relation->rd_rel->relkind != RELKIND_FOREIGN_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("splitdb.shim_statement() must be fired FOR EACH STATEMENT on a foreign table"),
				 errhint("Only splitdb creates triggers that call splitdb.shim_statement(); drop this one.")));
	splitdb_refcheck_register_callbacks();
	splitdb_refcheck_take_relayed(td->tg_relation);
	if (refcheck_xact.flush_depth > 0)
		return PointerGetDatum(NULL);	/* the running flush goes on */
	while (splitdb_refcheck_flush_all(false))
		;
	return PointerGetDatum(NULL);
}

/*
 * refuse_truncate
 *		PostgreSQL's refusal of a TRUNCATE of a table that a foreign key
 *		references, for rel, which holds the referenced end def (a
 *		TRUNCATE of it, or of a partition of it).
 */
static void
refuse_truncate(RefDef *def, Relation rel)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("cannot truncate a table referenced in a foreign key constraint"),
			 errdetail("Table \"%s\" of database \"%s\" references table \"%s\" through cross-service reference \"%s\".",
					   splitdb_refcheck_table_name(def->other_table), def->other_database,
					   RelationGetRelationName(rel), def->conname),
			 errhint("Delete the rows instead, or set the reference's mode to off with splitdb_reference_mode(" INT64_FORMAT ", 'off') and check splitdb_orphans() afterwards.",
					 def->reference_id)));
}

/*
 * is_truncate_guard
 *		Whether tg is a referenced end's BEFORE TRUNCATE statement trigger
 *		(splitdb.reference_flush(), install_reference_ends()) that fires in
 *		this session: enabled (not in mode off), and for the session's
 *		replication role, as PostgreSQL would fire it.
 */
static bool
is_truncate_guard(Trigger *tg)
{
	if (!TRIGGER_FOR_TRUNCATE(tg->tgtype) || !TRIGGER_FOR_BEFORE(tg->tgtype) ||
		tg->tgenabled == TRIGGER_DISABLED ||
		(SessionReplicationRole == SESSION_REPLICATION_ROLE_REPLICA ?
		 tg->tgenabled == TRIGGER_FIRES_ON_ORIGIN :
		 tg->tgenabled == TRIGGER_FIRES_ON_REPLICA))
		return false;
	return splitdb_refcheck_function_is(tg->tgfoid, "reference_flush");
}

/*
 * refuse_partition_truncate
 *		TRUNCATE names relid (fdwwatch.c, before it runs): when relid is a
 *		partition, at any depth, of a referenced end here, refuse it as the
 *		end's BEFORE TRUNCATE trigger refuses a TRUNCATE of the end itself.
 *		That trigger is a statement trigger, which PostgreSQL fires for the
 *		relations a TRUNCATE empties, not for their ancestors, and does not
 *		copy onto a partition, so a partition, made by the cutover or added
 *		since by its owner, was emptied without a check of the rows that
 *		refer to it; PostgreSQL refuses it under a foreign key.  Nothing for
 *		a role that may not truncate relid (PostgreSQL's own refusal
 *		follows) nor for splitdb's background workers.
 *
 * The lock TRUNCATE takes on relid is taken before the catalogs are read:
 * without it a transaction whose catalog cache predates an ATTACH PARTITION
 * that committed since would take relid for a table of its own, and then
 * wait for the lock of a writer that referred to its rows meanwhile.
 */
static void
refuse_partition_truncate(Oid relid)
{
	ListCell   *lc;

	if (pg_class_aclcheck(relid, GetUserId(), ACL_TRUNCATE) != ACLCHECK_OK ||
		(MyBgworkerEntry != NULL && strcmp(MyBgworkerEntry->bgw_library_name, "splitdb") == 0))
		return;
	/* TRUNCATE's own lock, taken first: an ATTACH that commits meanwhile is seen */
	LockRelationOid(relid, AccessExclusiveLock);
	if (!get_rel_relispartition(relid))
		return;
	foreach(lc, get_partition_ancestors(relid))
	{
		Relation	rel = relation_open(lfirst_oid(lc), AccessShareLock);

		for (int i = 0; rel->trigdesc != NULL && i < rel->trigdesc->numtriggers; i++)
		{
			Trigger    *tg = &rel->trigdesc->triggers[i];

			if (is_truncate_guard(tg))
				refuse_truncate(splitdb_refcheck_get_def_for(tg, rel), rel);
		}
		relation_close(rel, AccessShareLock);
	}
}

/*
 * splitdb_reference_flush
 *		AFTER STATEMENT trigger: check the keys the statement queued.  As a
 *		BEFORE TRUNCATE trigger of a referenced table: refuse, as PostgreSQL
 *		refuses to truncate a table a foreign key references.
 */
Datum
splitdb_reference_flush(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_STATEMENT(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("splitdb.reference_flush() must be fired FOR EACH STATEMENT"),
				 errhint("Only splitdb creates triggers that call splitdb.reference_flush(); drop this one.")));

	if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
		refuse_truncate(splitdb_refcheck_get_def(td), td->tg_relation);

	splitdb_refcheck_register_callbacks();
	if (refcheck_xact.flush_depth > 0)
		return PointerGetDatum(NULL);	/* the running flush goes on */
	while (splitdb_refcheck_flush_all(false))
		;
	return PointerGetDatum(NULL);
}
