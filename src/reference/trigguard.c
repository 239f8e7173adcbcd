/*-------------------------------------------------------------------------
 *
 * trigguard.c
 *	  Refusing the commands of a table owner that is no superuser that
 *	  would weaken a cross-service reference: on splitdb's reference
 *	  triggers, on the names the other database reads, on partitions,
 *	  inheritance children and casts of key types.
 *
 * A foreign key that crosses databases is enforced by ordinary triggers
 * (splitdb_ref_<id>_*, splitdb_reference_flush, splitdb_shim and the
 * constraint triggers of deferrable references).  A table's owner may
 * disable, drop or rename ordinary triggers on it, but the triggers of a
 * foreign key are system triggers, which only a superuser may disable, and
 * only the referencing table's owner may drop the constraint.  Without this
 * guard the owner of a referenced table could turn the reference off
 * (ALTER TABLE ... DISABLE TRIGGER, by name, USER or ALL; ENABLE REPLICA;
 * DROP TRIGGER; ALTER TRIGGER ... DEPENDS ON EXTENSION and then DROP
 * EXTENSION) and delete rows that another role's table still refers to.
 *
 * What becomes of a reference when a table with an end is dropped is
 * dropguard.c's.
 *
 * splitdb_guard_triggers, on ddl_command_start for ALTER TABLE, ALTER
 * FOREIGN TABLE, CREATE TRIGGER (CREATE OR REPLACE TRIGGER with the name of
 * one of splitdb's would put the owner's function in its place, which
 * PostgreSQL lets the owner do for every trigger but a constraint trigger,
 * an internal one and a partition's copy), DROP TRIGGER, ALTER TRIGGER,
 * ALTER SCHEMA, CREATE TABLE,
 * CREATE FOREIGN TABLE, CREATE CAST, and ALTER INDEX, ALTER VIEW, ALTER
 * MATERIALIZED VIEW and ALTER TYPE (PostgreSQL lets ALTER INDEX ... RENAME
 * rename a table, the others ... RENAME COLUMN or ATTRIBUTE rename a
 * table's column), looks at the parse tree before the command does
 * anything and refuses (42501), for a role that owns the relation and is
 * neither a superuser nor a member of the role that owns splitdb's
 * functions (the extension's owner, which installs and switches the
 * triggers), every command that would enable, disable, drop, rename or tie
 * to an extension one of splitdb's triggers, or drop or rename the
 * constraint of one.  A relation's partitions and inheritance children
 * count with it, since those commands recurse to them.  The reference's
 * mode is changed with splitdb_reference_mode(), by a superuser.
 *
 * The capture triggers that a cutover installs in the sibling
 * (splitdb.capture_changes) are splitdb's too: their log is what a
 * rollback replays, and after the cutover the table's owner owns the table
 * there, so it could disable one, write, and enable it ALWAYS again, and
 * the rollback would find the capture complete and leave those writes
 * behind.  An online job's capture in the source is left to the DDL guard
 * of the job's tables (ddlguard.c, 55006).
 *
 * The other database reads the table and its key columns by name, where a
 * foreign key follows OIDs; a table or column put in their place would be
 * read instead.  So the same roles may not rename a relation with such
 * triggers, move it to another schema, or rename, drop or retype one of
 * its key columns (splitdb.reference_end.own_columns), also through the
 * composite type of a typed table; and the owner of its schema, whoever
 * owns the relation, may not rename the schema.
 * Nor detach a partition from a referenced end: a foreign key checks the
 * rows that refer to it, the triggers see none.  Nor give such a relation
 * an inheritance child: the checks read the table with its children, whose
 * rows no trigger guards.  Nor create a cast from or to a key type of a
 * reference end here: the checks cast keys from and to text, as the mapped
 * role of the other database's writer, and would call its function.  Nor
 * rename such a type, move it, or rename one of its enum labels: the
 * databases compare keys as text, each with its own copy of the type.
 *
 * Invariants:
 * - Names are looked up under the session's search_path, as the command
 *   will look them up; the guard reads the catalogs directly, and its
 *   queries (of splitdb.reference_end) run under search_path pg_catalog,
 *   pg_temp, so no operator or function of the caller's takes part.
 * - Those queries read as of now (splitdb_catalog_exec_text_latest): a
 *   transaction whose snapshot is older than the cutover that installed an
 *   end is refused as any other, not let through.
 * - A role that does not own the relation gets PostgreSQL's own refusal.
 * - splitdb's background workers pass.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/trigguard.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_trigger.h"
#include "commands/event_trigger.h"
#include "commands/tablecmds.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "postmaster/bgworker.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "parser/parse_type.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "metadata/catalog.h"
#include "reference/trigguard.h"

PG_FUNCTION_INFO_V1(splitdb_guard_triggers);

/*
 * splitdb_function_owner
 *		The owner of funcid when it is one of splitdb's trigger functions
 *		(splitdb.reference_row, reference_flush, shim_statement, and
 *		capture_changes, which sets *capture), else InvalidOid.
 */
static Oid
splitdb_function_owner(Oid funcid, bool *capture)
{
	Oid			nsp = get_namespace_oid("splitdb", true);
	HeapTuple	tup;
	Oid			owner = InvalidOid;

	if (!OidIsValid(nsp))
		return InvalidOid;
	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcid));
	if (!HeapTupleIsValid(tup))
		return InvalidOid;
	{
		Form_pg_proc proc = (Form_pg_proc) GETSTRUCT(tup);
		const char *name = NameStr(proc->proname);

		*capture = strcmp(name, "capture_changes") == 0;
		if (proc->pronamespace == nsp &&
			(strcmp(name, "reference_row") == 0 || strcmp(name, "reference_flush") == 0 ||
			 strcmp(name, "shim_statement") == 0 || *capture))
			owner = proc->proowner;
	}
	ReleaseSysCache(tup);
	return owner;
}

/*
 * relation_of
 *		The OID of the relation rv names, as the command will find it (0 if
 *		none), locked with lockmode, the lock the command takes on it, when
 *		the current user owns it.
 *
 * The guard runs before the command takes its lock.  Without the lock a
 * cutover that is installing an end on the relation, and holds it locked
 * until it commits, is not seen yet (its rows of splitdb.reference_end are
 * not committed), and the command, let through, waits for the cutover's
 * lock and then runs on the end.  Taken here, the lock waits for the
 * cutover, and the ends are read as of now afterwards.  A relation the
 * user does not own is not locked: PostgreSQL refuses the command before
 * it locks anything, and a role must not hold up another's table by
 * naming it.
 */
static Oid
relation_of(RangeVar *rv, LOCKMODE lockmode)
{
	Oid			relid;

	if (rv == NULL)
		return InvalidOid;
	relid = RangeVarGetRelid(rv, NoLock, true);
	if (lockmode == NoLock || !OidIsValid(relid) || !pg_class_ownercheck(relid, GetUserId()))
		return relid;
	LockRelationOid(relid, lockmode);
	/* the name may have gone to another relation while this waited */
	return RangeVarGetRelid(rv, NoLock, true);
}

/*
 * relation_not_index
 *		For ALTER INDEX ... RENAME, which PostgreSQL lets rename any relation:
 *		the relation rv names when it is no index, locked as relation_of()
 *		locks it (AccessExclusiveLock, the lock the rename then takes);
 *		InvalidOid for an index, which holds no trigger.
 */
static Oid
relation_not_index(RangeVar *rv)
{
	Oid			relid = RangeVarGetRelid(rv, NoLock, true);
	char		relkind = OidIsValid(relid) ? get_rel_relkind(relid) : RELKIND_INDEX;

	if (relkind == RELKIND_INDEX || relkind == RELKIND_PARTITIONED_INDEX)
		return InvalidOid;
	return relation_of(rv, AccessExclusiveLock);
}

/*
 * ends_query
 *		Whether splitdb.reference_end has a row for relid or a partitioned
 *		table above it that matches cond ($2 is arg).  The query runs under
 *		search_path pg_catalog, pg_temp.
 */
static bool
ends_query(Oid relid, const char *cond, const char *arg)
{
	List	   *rels = lcons_oid(relid, get_partition_ancestors(relid));
	StringInfoData ids;
	const char *params[2];
	ListCell   *lc;
	bool		found;
	int			nest;

	initStringInfo(&ids);
	appendStringInfoChar(&ids, '{');
	foreach(lc, rels)
		appendStringInfo(&ids, "%s%u", foreach_current_index(lc) > 0 ? "," : "", lfirst_oid(lc));
	appendStringInfoChar(&ids, '}');
	params[0] = ids.data;
	params[1] = arg;
	nest = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	splitdb_spi_connect();
	splitdb_catalog_exec_text_latest(psprintf("SELECT FROM splitdb.reference_end e"
											  " WHERE e.relid::pg_catalog.oid OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.oid[])"
											  "   AND %s LIMIT 1", cond),
									 2, params, true);
	found = SPI_processed > 0;
	SPI_finish();
	AtEOXact_GUC(true, nest);
	return found;
}

/*
 * job_capture_here
 *		Whether the capture of relid belongs to a job of this database (an
 *		online job's capture in the source, which the DDL guard of the job's
 *		tables refuses to change with 55006), rather than to a job of
 *		another (the reverse capture in a sibling, which only this guard
 *		keeps: its table's owner owns the table there).
 */
static bool
job_capture_here(Oid relid)
{
	const char *params[1] = {psprintf("%u", relid)};
	bool		found;
	int			nest;

	nest = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	splitdb_spi_connect();
	splitdb_catalog_exec_text_latest("SELECT FROM splitdb.capture c JOIN splitdb.job j"
									 "    ON j.job_id OPERATOR(pg_catalog.=) c.job_id"
									 " WHERE c.relid::pg_catalog.oid OPERATOR(pg_catalog.=) $1::pg_catalog.oid LIMIT 1",
									 1, params, true);
	found = SPI_processed > 0;
	SPI_finish();
	AtEOXact_GUC(true, nest);
	return found;
}

/* whether column is a key column of a reference end on relid (or above it) */
static bool
is_key_column(Oid relid, const char *column)
{
	return ends_query(relid, "$2::pg_catalog.name OPERATOR(pg_catalog.=) ANY (e.own_columns)", column);
}

/* whether relid (or a table above it) is the given side ("c" or "p") of a reference */
static bool
is_end_side(Oid relid, const char *side)
{
	return ends_query(relid, "e.side OPERATOR(pg_catalog.=) $2::pg_catalog.\"char\"", side);
}

/*
 * splitdb_trigger_in
 *		The name of a trigger of splitdb's on relid or on a partition or child
 *		of it that the command touches: the one named tgname, the one of the
 *		constraint named conname, or any when both are NULL; NULL when there
 *		is none, or when the current role is a member of the owner of
 *		splitdb's functions.  *on is set to the relation it is on, and
 *		*capture to whether it is a capture trigger (of a job of another
 *		database: job_capture_here()).  Whoever owns relid.
 */
static char *
splitdb_trigger_in(Oid relid, const char *tgname, const char *conname, Oid *on, bool *capture)
{
	List	   *relids;
	ListCell   *lc;
	Relation	tgrel;
	char	   *found = NULL;

	relids = find_all_inheritors(relid, NoLock, NULL);
	tgrel = table_open(TriggerRelationId, AccessShareLock);
	foreach(lc, relids)
	{
		ScanKeyData key;
		SysScanDesc scan;
		HeapTuple	tup;

		ScanKeyInit(&key, Anum_pg_trigger_tgrelid, BTEqualStrategyNumber, F_OIDEQ,
					ObjectIdGetDatum(lfirst_oid(lc)));
		scan = systable_beginscan(tgrel, TriggerRelidNameIndexId, true, NULL, 1, &key);
		while (found == NULL && HeapTupleIsValid(tup = systable_getnext(scan)))
		{
			Form_pg_trigger tg = (Form_pg_trigger) GETSTRUCT(tup);
			Oid			owner;

			if (tgname != NULL && strcmp(NameStr(tg->tgname), tgname) != 0)
				continue;
			if (conname != NULL)
			{
				char	   *name = OidIsValid(tg->tgconstraint) ?
					get_constraint_name(tg->tgconstraint) : NULL;

				if (name == NULL || strcmp(name, conname) != 0)
					continue;
			}
			owner = splitdb_function_owner(tg->tgfoid, capture);
			if (!OidIsValid(owner) || has_privs_of_role(GetUserId(), owner))
				continue;
			if (*capture && job_capture_here(tg->tgrelid))
				continue;
			found = pstrdup(NameStr(tg->tgname));
			*on = lfirst_oid(lc);
		}
		systable_endscan(scan);
		if (found != NULL)
			break;
	}
	table_close(tgrel, AccessShareLock);
	return found;
}

/*
 * splitdb_trigger_on
 *		splitdb_trigger_in() for a relation that the current role owns; NULL
 *		for a missing name or a relation it does not own (the command itself
 *		refuses with PostgreSQL's message).
 */
static char *
splitdb_trigger_on(Oid relid, const char *tgname, const char *conname, Oid *on, bool *capture)
{
	if (!OidIsValid(relid) || !pg_class_ownercheck(relid, GetUserId()))
		return NULL;
	return splitdb_trigger_in(relid, tgname, conname, on, capture);
}

/* raise 42501 if the command touches a trigger of splitdb's (splitdb_trigger_on) */
static void
refuse_on_relation(Oid relid, const char *tgname, const char *conname, const char *tag)
{
	Oid			on = InvalidOid;
	bool		capture = false;
	char	   *trigger = splitdb_trigger_on(relid, tgname, conname, &on, &capture);

	if (trigger != NULL && capture)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied: \"%s\" on table \"%s\" is a trigger of splitdb",
						trigger, get_rel_name(on)),
				 errdetail("%s would change splitdb's capture of the table's writes, which a rollback of its service replays.",
						   tag),
				 errhint("The capture goes with splitdb_finalize() of the service; until then only a superuser may change it.")));
	if (trigger != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied: \"%s\" on table \"%s\" is a trigger of splitdb",
						trigger, get_rel_name(on)),
				 errdetail("%s would change how a cross-service reference is enforced, as the system triggers of a foreign key would.",
						   tag),
				 errhint("Ask a superuser to change the reference's mode with splitdb_reference_mode().")));
}

/*
 * refuse_renaming
 *		Raise 42501 if relid has an end of a cross-service reference (a
 *		trigger of splitdb's) and, when column is not NULL, that column is
 *		one of its keys: the other database reads the table and its key
 *		columns by name, so a table or column put in their place would be
 *		read instead.  Only for a relation the current role owns, unless
 *		any_owner (a rename of its schema, which the schema's owner may do
 *		whoever owns the relation).
 */
static void
refuse_renaming(Oid relid, const char *column, const char *tag, bool any_owner)
{
	Oid			on = InvalidOid;
	bool		capture = false;

	if (!OidIsValid(relid))
		return;
	if ((any_owner ? splitdb_trigger_in(relid, NULL, NULL, &on, &capture) :
		 splitdb_trigger_on(relid, NULL, NULL, &on, &capture)) == NULL)
		return;
	if (column != NULL && !is_key_column(relid, column))
		return;
	if (capture && column == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied: splitdb captures the writes to table \"%s\"",
						get_rel_name(on)),
				 errdetail("%s would change the name that a rollback of its service reads the table by.",
						   tag),
				 errhint("The capture goes with splitdb_finalize() of the service; until then only a superuser may rename or move the table.")));
	if (column != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied: column \"%s\" of table \"%s\" is a key of a cross-service reference",
						column, get_rel_name(relid)),
				 errdetail("%s would change the column that the checks of the reference read by name; a foreign key follows its column.",
						   tag),
				 errhint("Only a superuser may change a key column of a cross-service reference.")));
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied: table \"%s\" holds an end of a cross-service reference",
					get_rel_name(on)),
			 errdetail("%s would change the name that the checks of the reference read the table by; a foreign key follows its table.",
					   tag),
			 errhint("Only a superuser may rename or move a table that holds an end of a cross-service reference.")));
}

/*
 * refuse_column_change
 *		refuse_renaming() of column on relid, and, when relid is a composite
 *		type, on each typed table of it that the current role owns (locked
 *		as the command locks it): ALTER TYPE ... RENAME, ALTER or DROP
 *		ATTRIBUTE ... CASCADE changes their columns too.
 */
static void
refuse_column_change(Oid relid, const char *column, const char *tag)
{
	Relation	classrel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	List	   *typed = NIL;
	ListCell   *lc;

	if (!OidIsValid(relid) || get_rel_relkind(relid) != RELKIND_COMPOSITE_TYPE)
	{
		refuse_renaming(relid, column, tag, false);
		return;
	}
	ScanKeyInit(&key, Anum_pg_class_reloftype, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(get_rel_type_id(relid)));
	classrel = table_open(RelationRelationId, AccessShareLock);
	scan = systable_beginscan(classrel, InvalidOid, false, NULL, 1, &key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
		typed = lappend_oid(typed, ((Form_pg_class) GETSTRUCT(tup))->oid);
	systable_endscan(scan);
	table_close(classrel, AccessShareLock);
	foreach(lc, typed)
	{
		if (!pg_class_ownercheck(lfirst_oid(lc), GetUserId()))
			continue;
		LockRelationOid(lfirst_oid(lc), AccessExclusiveLock);
		refuse_renaming(lfirst_oid(lc), column, tag, false);
	}
}

/* relation and trigger of a trigger's name list ([schema.]table.trigger) */
static void
refuse_named_trigger(List *names, const char *tag)
{
	List	   *relname = list_copy(names);
	const char *tgname = strVal(llast(names));

	relname = list_truncate(relname, list_length(relname) - 1);
	if (relname == NIL)
		return;
	refuse_on_relation(relation_of(makeRangeVarFromNameList(relname), AccessExclusiveLock),
					   tgname, NULL, tag);
}

/*
 * refuse_detach
 *		DETACH PARTITION from a referenced end: a foreign key refuses it
 *		while rows refer to the partition's rows; the triggers of a
 *		cross-service reference do not see it, so a role that is no
 *		superuser may not.  Nor from a table that a sibling's capture
 *		logs: the rows leave it without a write, so the capture logs none,
 *		and a rollback would restore them.  (ATTACH PARTITION and CREATE
 *		TABLE ... PARTITION OF clone splitdb's triggers onto the partition,
 *		and attachcheck.c checks the rows an attached one brings.)
 */
static void
refuse_detach(Oid relid, PartitionCmd *part, const char *tag)
{
	Oid			on = InvalidOid;
	bool		capture = false;
	Oid			partid = relation_of(part->name, NoLock);

	if (splitdb_trigger_on(relid, NULL, NULL, &on, &capture) == NULL || !OidIsValid(partid))
		return;
	if (capture)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied: splitdb captures the writes to table \"%s\"",
						get_rel_name(relid)),
				 errdetail("%s would take the rows of \"%s\" out of the table without a write that the capture logs: a rollback of its service would bring them back.",
						   tag, get_rel_name(partid)),
				 errhint("The capture goes with splitdb_finalize() of the service; until then only a superuser may detach a partition.")));
	if (!is_end_side(relid, "p"))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied: table \"%s\" holds an end of a cross-service reference",
					get_rel_name(relid)),
			 errdetail("%s would take the rows of \"%s\" out of the referenced table without a check of the rows that refer to them; a foreign key checks them.",
					   tag, get_rel_name(partid)),
			 errhint("Ask a superuser to detach it, and check with splitdb_orphans().")));
}

/*
 * refuse_inherit
 *		An inheritance child of a relation with an end (CREATE TABLE ...
 *		INHERITS, ALTER TABLE ... INHERIT): the other database reads the
 *		table with its children, as a foreign key does not (it reads ONLY
 *		the table), and a child has none of splitdb's triggers, so its rows
 *		would satisfy checks and could then be deleted unchecked.
 */
static void
refuse_inherit(RangeVar *parent, const char *tag)
{
	Oid			relid = relation_of(parent, ShareUpdateExclusiveLock);
	Oid			on = InvalidOid;
	bool		capture = false;

	if (splitdb_trigger_on(relid, NULL, NULL, &on, &capture) == NULL)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied: table \"%s\" holds an end of a cross-service reference",
					get_rel_name(relid)),
			 errdetail("%s would give it an inheritance child, whose rows the checks of the reference read and no trigger of splitdb's guards.",
					   tag),
			 errhint("Only a superuser may make an inheritance child of a table that holds an end of a cross-service reference.")));
}

/*
 * is_key_type
 *		Whether typid is a type that the keys of a reference end here
 *		compare as (splitdb.reference_end.own_types, other_types, which name
 *		it as text).  The query runs under search_path pg_catalog, pg_temp.
 */
static bool
is_key_type(Oid typid)
{
	const char *params[1];
	bool		found;
	int			nest;

	params[0] = psprintf("%u", typid);
	nest = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	splitdb_spi_connect();
	splitdb_catalog_exec_text_latest("SELECT FROM splitdb.reference_end e"
									 " WHERE splitdb.key_type($1::pg_catalog.oid) OPERATOR(pg_catalog.=)"
									 "       ANY (e.own_types OPERATOR(pg_catalog.||) e.other_types) LIMIT 1",
									 1, params, true);
	found = SPI_processed > 0;
	SPI_finish();
	AtEOXact_GUC(true, nest);
	return found;
}

/*
 * refuse_cast
 *		CREATE CAST from or to a type that the keys of a reference end here
 *		compare as (is_key_type): the checks cast keys from text to that
 *		type and back, in this database as the mapped role of another
 *		database's writer, so a cast function of the type's owner would run
 *		with that role's rights.  A foreign key casts nothing.
 */
static void
refuse_cast(CreateCastStmt *stmt, const char *tag)
{
	Oid			types[2];

	types[0] = typenameTypeId(NULL, stmt->sourcetype);
	types[1] = typenameTypeId(NULL, stmt->targettype);
	for (int i = 0; i < 2; i++)
	{
		if (is_key_type(types[i]))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied: type %s is a key type of a cross-service reference",
							format_type_be(types[i])),
					 errdetail("%s would give the checks of the reference, which cast keys from and to text, a function to call with the rights of the roles whose writes they check.",
							   tag),
					 errhint("Only a superuser may create a cast from or to a key type of a cross-service reference.")));
	}
}

/*
 * refuse_key_type_change
 *		ALTER TYPE ... RENAME VALUE, RENAME TO or SET SCHEMA of a type that
 *		the keys of a reference end here compare as, by its owner: the
 *		databases compare keys as text, each with its own copy of the type,
 *		so an enum label renamed here points the other database's rows at
 *		another row, or at none (a foreign key compares the label's OID,
 *		which the rename keeps), and the checks name the type, so a renamed
 *		or moved type fails every check of the other database.  A type the
 *		role does not own gets PostgreSQL's own refusal.
 */
static void
refuse_key_type_change(Oid typid, const char *tag)
{
	if (!OidIsValid(typid) || !pg_type_ownercheck(typid, GetUserId()) || !is_key_type(typid))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied: type %s is a key type of a cross-service reference",
					format_type_be(typid)),
			 errdetail("%s would change the names or labels by which the checks of the reference, which compare keys as text across databases, find the keys; a foreign key follows their OIDs.",
					   tag),
			 errhint("Only a superuser may rename a key type of a cross-service reference, its labels, or move it.")));
}

/*
 * refuse_shim_options
 *		Raise 42501 if options (the DefElems of ALTER FOREIGN TABLE ...
 *		OPTIONS, or of ALTER COLUMN ... OPTIONS when column is not NULL)
 *		set, add or drop the remote table's or column's name on a relation
 *		with one of splitdb's triggers that the current role owns: a shim.
 *		postgres_fdw lets a foreign table's owner point it at another
 *		table, or swap its columns, and the sibling skips its own checks of
 *		what a proved shim's statement writes there, trusting the source's
 *		triggers, which check the shim's own table and columns.  Its other
 *		options (batch_size, fetch_size, ...) stay the owner's.
 */
static void
refuse_shim_options(Oid relid, List *options, const char *column, const char *tag)
{
	ListCell   *lc;
	Oid			on = InvalidOid;
	bool		capture = false;

	foreach(lc, options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (column != NULL ? strcmp(def->defname, "column_name") != 0 :
			strcmp(def->defname, "schema_name") != 0 && strcmp(def->defname, "table_name") != 0)
			continue;
		if (splitdb_trigger_on(relid, NULL, NULL, &on, &capture) == NULL)
			return;
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied: option \"%s\" of foreign table \"%s\" names what splitdb's triggers enforce",
						def->defname, get_rel_name(relid)),
				 errdetail("%s would point the foreign table at another remote %s than the one its cross-service references are checked for.",
						   tag, column != NULL ? "column" : "table"),
				 errhint("Only a superuser may change the remote name of a table or column that splitdb's triggers guard.")));
	}
}

/*
 * ALTER TABLE: the subcommands that switch, or drop the constraint of, a
 * trigger, and those that rename what a shim reads
 */
static void
refuse_alter_table(AlterTableStmt *stmt, const char *tag)
{
	Oid			relid = InvalidOid;
	ListCell   *lc;

	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);

		/* ADD COLUMN ... OPTIONS (column_name ...): a remote name too */
		if (cmd->subtype == AT_AddColumn && IsA(cmd->def, ColumnDef) &&
			((ColumnDef *) cmd->def)->fdwoptions != NIL)
		{
			if (!OidIsValid(relid))
				relid = relation_of(stmt->relation, AlterTableGetLockLevel(stmt->cmds));
			refuse_shim_options(relid, ((ColumnDef *) cmd->def)->fdwoptions,
								((ColumnDef *) cmd->def)->colname, tag);
			continue;
		}
		switch (cmd->subtype)
		{
			case AT_EnableTrig:
			case AT_EnableAlwaysTrig:
			case AT_EnableReplicaTrig:
			case AT_DisableTrig:
			case AT_EnableTrigAll:
			case AT_DisableTrigAll:
			case AT_EnableTrigUser:
			case AT_DisableTrigUser:
			case AT_DropConstraint:
			case AT_DropColumn:
			case AT_AlterColumnType:
			case AT_DetachPartition:
			case AT_AddInherit:
			case AT_GenericOptions:
			case AT_AlterColumnGenericOptions:
				break;
			default:
				continue;
		}
		if (!OidIsValid(relid))
			relid = relation_of(stmt->relation, AlterTableGetLockLevel(stmt->cmds));
		if (cmd->subtype == AT_GenericOptions)
			refuse_shim_options(relid, (List *) cmd->def, NULL, tag);
		else if (cmd->subtype == AT_AlterColumnGenericOptions)
			refuse_shim_options(relid, (List *) cmd->def, cmd->name, tag);
		else if (cmd->subtype == AT_AddInherit)
			refuse_inherit((RangeVar *) cmd->def, tag);
		else if (cmd->subtype == AT_DetachPartition)
			refuse_detach(relid, (PartitionCmd *) cmd->def, tag);
		else if (cmd->subtype == AT_DropColumn || cmd->subtype == AT_AlterColumnType)
			refuse_column_change(relid, cmd->name, tag);
		else if (cmd->subtype == AT_DropConstraint)
			refuse_on_relation(relid, NULL, cmd->name, tag);
		else if (cmd->subtype == AT_EnableTrig || cmd->subtype == AT_EnableAlwaysTrig ||
				 cmd->subtype == AT_EnableReplicaTrig || cmd->subtype == AT_DisableTrig)
			refuse_on_relation(relid, cmd->name, NULL, tag);
		else
			refuse_on_relation(relid, NULL, NULL, tag);
	}
}

/*
 * explain_converted_constraint
 *		ALTER TABLE ... DROP CONSTRAINT name, where the table has no such
 *		constraint but holds the referencing end of a cross-service
 *		reference that was that foreign key: the cutover dropped the
 *		constraint, so PostgreSQL would say no more than that it does not
 *		exist.  Say what became of it: PostgreSQL's error (42704) with a
 *		detail and a hint, or, with IF EXISTS, a NOTICE before PostgreSQL's
 *		own.  For every role; it reads and changes nothing else.  The query
 *		runs under search_path pg_catalog, pg_temp.
 */
static void
explain_converted_constraint(AlterTableStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);
		const char *params[2];
		Oid			relid;
		char	   *reference_id = NULL;
		int			nest;

		if (cmd->subtype != AT_DropConstraint || cmd->name == NULL)
			continue;
		relid = RangeVarGetRelid(stmt->relation, NoLock, true);
		if (!OidIsValid(relid) ||
			OidIsValid(get_relation_constraint_oid(relid, cmd->name, true)))
			continue;

		params[0] = psprintf("%u", relid);
		params[1] = cmd->name;
		nest = NewGUCNestLevel();
		(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
		splitdb_spi_connect();
		splitdb_catalog_exec_text_latest("SELECT e.reference_id::pg_catalog.text FROM splitdb.reference_end e"
										 " WHERE e.relid OPERATOR(pg_catalog.=) $1::pg_catalog.oid"
										 "   AND e.side OPERATOR(pg_catalog.=) 'c'"
										 "   AND e.constraint_name OPERATOR(pg_catalog.=) $2::pg_catalog.name"
										 " LIMIT 1",
										 2, params, true);
		if (SPI_processed > 0)
			reference_id = pstrdup(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
		SPI_finish();
		AtEOXact_GUC(true, nest);
		if (reference_id == NULL)
			continue;

		ereport(cmd->missing_ok ? NOTICE : ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("constraint \"%s\" of relation \"%s\" does not exist",
						cmd->name, get_rel_name(relid)),
				 errdetail("It became cross-service reference %s when its tables were split between databases; splitdb enforces it with triggers, not as a constraint.",
						   reference_id),
				 errhint("To stop enforcing it, a superuser calls splitdb_reference_mode(%s, 'off') in the source database.",
						 reference_id)));
	}
}

/*
 * ALTER SCHEMA ... RENAME: refuse_renaming() for each relation of the
 * schema, whoever owns it.  PostgreSQL lets a schema's owner rename it
 * over other roles' tables, which a foreign key follows by OID; the checks
 * of a cross-service reference read the table by name, so the schema's
 * owner could otherwise put a schema of its own, with a table of the same
 * name and rows of its choosing, in the place of the one they read.
 */
static void
refuse_schema_rename(const char *schema, const char *tag)
{
	Oid			nsp = get_namespace_oid(schema, true);
	Relation	classrel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	List	   *relids = NIL;
	ListCell   *lc;

	if (!OidIsValid(nsp))
		return;

	/*
	 * RENAME takes no lock on the schema's tables; a cutover that installs
	 * an end on one of them holds this lock on the schema (cutover.c), so
	 * the rename waits for it here and then sees the end.  Only a schema
	 * the role owns: PostgreSQL refuses the others.
	 */
	if (!pg_namespace_ownercheck(nsp, GetUserId()))
		return;
	LockDatabaseObject(NamespaceRelationId, nsp, 0, AccessExclusiveLock);
	classrel = table_open(RelationRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_class_relnamespace, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(nsp));
	scan = systable_beginscan(classrel, InvalidOid, false, NULL, 1, &key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_class rel = (Form_pg_class) GETSTRUCT(tup);

		if (rel->relhastriggers)
			relids = lappend_oid(relids, rel->oid);
	}
	systable_endscan(scan);
	table_close(classrel, AccessShareLock);
	foreach(lc, relids)
		refuse_renaming(lfirst_oid(lc), NULL, tag, true);
}

/*
 * splitdb_trigguard_passes
 *		Whether the guards let the command through without looking: for a
 *		superuser and for splitdb's background workers.  Raises 39P01 when
 *		the function is not called as an event trigger.  dropguard.c's too.
 */
bool
splitdb_trigguard_passes(FunctionCallInfo fcinfo)
{
	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function can only be called as an event trigger"),
				 errhint("Only splitdb's own event triggers call it.")));
	return superuser() || (MyBgworkerEntry != NULL &&
						   strcmp(MyBgworkerEntry->bgw_library_name, "splitdb") == 0);
}

/*
 * splitdb_guard_triggers
 *		SQL: event trigger on ddl_command_start.  Refuses a command of a role
 *		that is no superuser on one of splitdb's triggers (see the file's
 *		comment).
 */
Datum
splitdb_guard_triggers(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata = (EventTriggerData *) fcinfo->context;
	Node	   *tree;
	const char *tag;

	bool		passes = splitdb_trigguard_passes(fcinfo);

	tree = trigdata->parsetree;
	if (IsA(tree, AlterTableStmt))
		explain_converted_constraint((AlterTableStmt *) tree);
	if (passes)
		PG_RETURN_VOID();
	tag = GetCommandTagName(trigdata->tag);
	if (IsA(tree, AlterTableStmt))
		refuse_alter_table((AlterTableStmt *) tree, tag);
	else if (IsA(tree, CreateCastStmt))
		refuse_cast((CreateCastStmt *) tree, tag);
	else if (IsA(tree, AlterEnumStmt) && ((AlterEnumStmt *) tree)->oldVal != NULL)
		refuse_key_type_change(LookupTypeNameOid(NULL, makeTypeNameFromNameList(((AlterEnumStmt *) tree)->typeName), true),
							   tag);
	else if ((IsA(tree, CreateStmt) || IsA(tree, CreateForeignTableStmt)) &&
			 ((CreateStmt *) tree)->partbound == NULL)
	{
		/* CREATE FOREIGN TABLE ... INHERITS: CreateForeignTableStmt starts with a CreateStmt */
		ListCell   *lc;

		foreach(lc, ((CreateStmt *) tree)->inhRelations)
			refuse_inherit((RangeVar *) lfirst(lc), tag);
	}
	else if (IsA(tree, CreateTrigStmt) && ((CreateTrigStmt *) tree)->replace)
	{
		/* CREATE OR REPLACE TRIGGER with the name of one of splitdb's */
		CreateTrigStmt *stmt = (CreateTrigStmt *) tree;

		refuse_on_relation(relation_of(stmt->relation, ShareRowExclusiveLock), stmt->trigname,
						   NULL, tag);
	}
	else if (IsA(tree, DropStmt) && ((DropStmt *) tree)->removeType == OBJECT_TRIGGER)
	{
		ListCell   *lc;

		foreach(lc, ((DropStmt *) tree)->objects)
			refuse_named_trigger((List *) lfirst(lc), tag);
	}
	else if (IsA(tree, RenameStmt))
	{
		RenameStmt *stmt = (RenameStmt *) tree;

		if (stmt->renameType == OBJECT_TRIGGER)
			refuse_on_relation(relation_of(stmt->relation, AccessExclusiveLock), stmt->subname, NULL, tag);
		else if (stmt->renameType == OBJECT_TABCONSTRAINT)
			refuse_on_relation(relation_of(stmt->relation, AccessExclusiveLock), NULL, stmt->subname, tag);
		else if (stmt->renameType == OBJECT_TABLE || stmt->renameType == OBJECT_FOREIGN_TABLE)
			refuse_renaming(relation_of(stmt->relation, AccessExclusiveLock), NULL, tag, false);
		else if (stmt->renameType == OBJECT_INDEX)
			refuse_renaming(relation_not_index(stmt->relation), NULL, tag, false);
		else if (stmt->renameType == OBJECT_COLUMN || stmt->renameType == OBJECT_ATTRIBUTE)
			refuse_column_change(relation_of(stmt->relation, AccessExclusiveLock), stmt->subname, tag);
		else if (stmt->renameType == OBJECT_SCHEMA)
			refuse_schema_rename(stmt->subname, tag);
		else if (stmt->renameType == OBJECT_TYPE)
			refuse_key_type_change(LookupTypeNameOid(NULL, makeTypeNameFromNameList((List *) stmt->object), true),
								   tag);
	}
	else if (IsA(tree, AlterObjectSchemaStmt) &&
			 (((AlterObjectSchemaStmt *) tree)->objectType == OBJECT_TABLE ||
			  ((AlterObjectSchemaStmt *) tree)->objectType == OBJECT_FOREIGN_TABLE))
		refuse_renaming(relation_of(((AlterObjectSchemaStmt *) tree)->relation, AccessExclusiveLock),
						NULL, tag, false);
	else if (IsA(tree, AlterObjectSchemaStmt) &&
			 ((AlterObjectSchemaStmt *) tree)->objectType == OBJECT_TYPE)
		refuse_key_type_change(LookupTypeNameOid(NULL, makeTypeNameFromNameList((List *) ((AlterObjectSchemaStmt *) tree)->object), true),
							   tag);
	else if (IsA(tree, AlterObjectDependsStmt) &&
			 ((AlterObjectDependsStmt *) tree)->objectType == OBJECT_TRIGGER)
	{
		AlterObjectDependsStmt *stmt = (AlterObjectDependsStmt *) tree;

		refuse_on_relation(relation_of(stmt->relation, AccessExclusiveLock),
						   strVal(linitial((List *) stmt->object)), NULL, tag);
	}
	PG_RETURN_VOID();
}
