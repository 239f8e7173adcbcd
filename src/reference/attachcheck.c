/*-------------------------------------------------------------------------
 *
 * attachcheck.c
 *	  The rows of a partition attached to a table that references another
 *	  database: checked as PostgreSQL checks them against a foreign key.
 *
 * ALTER TABLE ... ATTACH PARTITION clones the parent's row triggers onto
 * the partition, splitdb's among them, but fires none for the rows the
 * partition already holds; PostgreSQL validates those rows against each
 * foreign key of the parent before the command ends (23503 for a key that
 * the referenced table lacks).  splitdb does the same for the referencing
 * ends of cross-service references: at ddl_command_end, in the attaching
 * transaction, every row of each leaf under the attached partition queues
 * its key as an inserted row would (splitdb_refcheck_queue_child), and the
 * queue is checked in the other database at once, with the locks that an
 * insert's check takes.  A reference whose check is deferred until commit
 * is checked there, with the transaction's other keys.
 *
 * CREATE TABLE ... PARTITION OF makes an empty partition: nothing to check.
 * A foreign table's rows are in another database that no check reaches:
 * one under such a table is refused, as PostgreSQL refuses a foreign table
 * as a partition of a table with a foreign key.  A partition detached from
 * such a table keeps no check (PostgreSQL keeps a foreign key on it, but
 * drops the triggers it cloned): a NOTICE says so.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/attachcheck.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_trigger.h"
#include "commands/event_trigger.h"
#include "commands/trigger.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "reference/attachcheck.h"
#include "reference/refcheck_int.h"

/*
 * referencing_end
 *		Whether tg is the AFTER INSERT row trigger of a referencing end
 *		(arguments: the reference's id and "c"), and not disabled.  Not a
 *		deferrable end's immediate companion (splitdb_ref_<id>_c_handback),
 *		which names the same end: its rows would be read twice.
 */
static bool
referencing_end(Trigger *tg)
{
	return TRIGGER_FOR_ROW(tg->tgtype) && TRIGGER_FOR_INSERT(tg->tgtype) &&
		!TRIGGER_FOR_BEFORE(tg->tgtype) && !TRIGGER_FOR_INSTEAD(tg->tgtype) &&
		tg->tgenabled != TRIGGER_DISABLED && tg->tgnargs == 2 &&
		strcmp(tg->tgargs[1], "c") == 0 &&
		!splitdb_refcheck_handback_name(tg->tgname) &&
		splitdb_refcheck_function_is(tg->tgfoid, "reference_row");
}

/*
 * queue_rows
 *		Queue the key of every row of rel (a table, locked by the command)
 *		for the end that tg belongs to, as its trigger queues an inserted
 *		row's.  Each row's key texts are made in a context reset per row;
 *		the queue copies what it keeps.
 */
static void
queue_rows(Relation rel, Trigger *tg)
{
	RefDef	   *def = splitdb_refcheck_get_def_for(tg, rel);
	TriggerData td;
	Snapshot	snapshot = RegisterSnapshot(GetLatestSnapshot());
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	TableScanDesc scan = table_beginscan(rel, snapshot, 0, NULL);
	MemoryContext rowcxt = AllocSetContextCreate(CurrentMemoryContext,
												 "splitdb attached rows",
												 ALLOCSET_DEFAULT_SIZES);
	MemoryContext old;

	memset(&td, 0, sizeof(td));
	td.type = T_TriggerData;
	td.tg_event = TRIGGER_EVENT_INSERT | TRIGGER_EVENT_ROW;
	td.tg_relation = rel;
	td.tg_trigger = tg;
	td.tg_trigslot = slot;
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		CHECK_FOR_INTERRUPTS();
		old = MemoryContextSwitchTo(rowcxt);
		splitdb_refcheck_queue_child(def, &td, false, InvalidOid);
		MemoryContextSwitchTo(old);
		MemoryContextReset(rowcxt);
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	UnregisterSnapshot(snapshot);
	MemoryContextDelete(rowcxt);
}

/*
 * refuse_foreign
 *		A foreign table attached under a table with a referencing end: its
 *		rows are in yet another database, which no check reaches before
 *		they are written.  PostgreSQL refuses to attach one to a table with
 *		a foreign key; so does splitdb, with its message.
 */
static void
refuse_foreign(Relation rel, Trigger *tg)
{
	RefDef	   *def = splitdb_refcheck_get_def_for(tg, rel);

	ereport(ERROR,
			(errcode(ERRCODE_WRONG_OBJECT_TYPE),
			 errmsg("foreign key constraints are not supported on foreign tables"),
			 errdetail("Foreign table \"%s\" would be a partition of a table that references another database through cross-service reference \"%s\".",
					   RelationGetRelationName(rel), def->conname),
			 errhint("Attach a table instead, or copy the rows into a partition.")));
}

/*
 * queue_relation
 *		Queue the keys of the rows of relid (the attached partition) and of
 *		every leaf under it, for each referencing end whose trigger the
 *		attachment cloned onto it; refuse a foreign table among them.
 *		Returns whether any was queued.
 */
static bool
queue_relation(Oid relid)
{
	List	   *rels = find_all_inheritors(relid, NoLock, NULL);
	bool		any = false;
	ListCell   *lc;

	foreach(lc, rels)
	{
		Relation	rel = relation_open(lfirst_oid(lc), NoLock);
		char		relkind = rel->rd_rel->relkind;

		for (int i = 0; rel->trigdesc != NULL && i < rel->trigdesc->numtriggers; i++)
		{
			Trigger    *tg = &rel->trigdesc->triggers[i];

			if (!referencing_end(tg))
				continue;
			if (relkind == RELKIND_FOREIGN_TABLE)
				refuse_foreign(rel, tg);
			if (relkind == RELKIND_RELATION)
			{
				queue_rows(rel, tg);
				any = true;
			}
		}
		relation_close(rel, NoLock);
	}
	return any;
}

/*
 * note_detached
 *		A partition detached from a table with referencing ends: PostgreSQL
 *		keeps a foreign key of the partitioned table on the detached one,
 *		as a constraint of its own, but the copies of splitdb's triggers go
 *		with the partition's place (PostgreSQL drops the triggers it
 *		cloned).  Say so, once per reference, so that no one takes the
 *		table's new rows for checked.
 */
static void
note_detached(Oid parentid, Oid partid)
{
	Relation	parent;

	if (!OidIsValid(parentid))
		return;
	parent = relation_open(parentid, NoLock);
	for (int i = 0; parent->trigdesc != NULL && i < parent->trigdesc->numtriggers; i++)
	{
		Trigger    *tg = &parent->trigdesc->triggers[i];
		RefDef	   *def;

		if (!referencing_end(tg))
			continue;
		def = splitdb_refcheck_get_def_for(tg, parent);
		ereport(NOTICE,
				(errmsg("table \"%s\" no longer checks cross-service reference \"%s\"",
						get_rel_name(partid), def->conname),
				 errdetail("Detached from \"%s\", it loses the triggers that check its rows' keys in database \"%s\"; PostgreSQL would keep the foreign key on it.",
						   RelationGetRelationName(parent), def->other_database),
				 errhint("Write no rows into it, or attach it again, where its rows are checked; splitdb_orphans() does not read it.")));
	}
	relation_close(parent, NoLock);
}

/*
 * partition_commands
 *		The partitions that the ALTER TABLE parsetree attaches or detaches
 *		(subtype), looked up under the session's search_path as the command
 *		looked them up; names that find nothing are left out.  NIL for any
 *		other command.
 */
static List *
partition_commands(Node *parsetree, AlterTableType subtype)
{
	List	   *found = NIL;
	ListCell   *lc;

	if (!IsA(parsetree, AlterTableStmt) || ((AlterTableStmt *) parsetree)->objtype != OBJECT_TABLE)
		return NIL;
	foreach(lc, ((AlterTableStmt *) parsetree)->cmds)
	{
		AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);
		Oid			partid;

		if (cmd->subtype != subtype)
			continue;
		partid = RangeVarGetRelid(((PartitionCmd *) cmd->def)->name, NoLock, true);
		if (OidIsValid(partid))
			found = lappend_oid(found, partid);
	}
	return found;
}

/*
 * splitdb_partitions_made
 *		The partitions that the command parsetree made or attached, as the
 *		command found them: the one CREATE [FOREIGN] TABLE ... PARTITION OF
 *		made (with foreign_only, only a foreign table), found in the schema
 *		it was created in, so that a temporary table of the same name does
 *		not stand in for it; those ALTER TABLE ... ATTACH PARTITION
 *		attached, under the session's search_path.  Names that find nothing
 *		are left out.
 */
List *
splitdb_partitions_made(Node *parsetree, bool foreign_only)
{
	CreateStmt *cs;
	Oid			relid;

	if (IsA(parsetree, CreateForeignTableStmt))
		cs = &((CreateForeignTableStmt *) parsetree)->base;
	else if (IsA(parsetree, CreateStmt) && !foreign_only)
		cs = (CreateStmt *) parsetree;
	else
		return partition_commands(parsetree, AT_AttachPartition);
	if (cs->partbound == NULL)
		return NIL;
	relid = get_relname_relid(cs->relation->relname,
							  RangeVarGetCreationNamespace(cs->relation));
	return OidIsValid(relid) ? list_make1_oid(relid) : NIL;
}

/*
 * splitdb_check_attached_partitions
 *		From the ddl_command_end event trigger (ddlguard.c's guard_ddl), for
 *		an ALTER TABLE: check the rows of each partition it attached against
 *		the cross-service references of its new parent's referencing ends;
 *		a key that the other database lacks fails the command with 23503.
 *		A foreign table attached there, or made a partition by CREATE
 *		FOREIGN TABLE ... PARTITION OF, is refused (refuse_foreign()).
 *
 * Called under the session's search_path: the command's names, often
 * unqualified in an application's migration scripts, are looked up as the
 * command looked them up (splitdb_partitions_made()); the checks then run under
 * search_path pg_catalog, pg_temp, as a reference's triggers run them.
 *
 * The partitions are locked by the command (ACCESS EXCLUSIVE; the parent
 * SHARE UPDATE EXCLUSIVE), so no row comes or goes while this reads them.
 */
void
splitdb_check_attached_partitions(EventTriggerData *trigdata)
{
	List	   *attached = NIL;
	List	   *detached = NIL;
	Oid			parent = InvalidOid;
	bool		any = false;
	int			nest;
	ListCell   *lc;

	if (trigdata->parsetree == NULL)
		return;
	/* a plain table made a partition is empty: nothing to check */
	attached = splitdb_partitions_made(trigdata->parsetree, true);
	detached = partition_commands(trigdata->parsetree, AT_DetachPartition);
	if (attached == NIL && detached == NIL)
		return;
	if (detached != NIL)
		parent = RangeVarGetRelid(((AlterTableStmt *) trigdata->parsetree)->relation, NoLock, true);
	nest = splitdb_refcheck_pin_search_path();
	foreach(lc, attached)
		any |= queue_relation(lfirst_oid(lc));
	foreach(lc, detached)
		note_detached(parent, lfirst_oid(lc));
	if (any)
		while (splitdb_refcheck_flush_all(false))
			;
	AtEOXact_GUC(true, nest);
}
