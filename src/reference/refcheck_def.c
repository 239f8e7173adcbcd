/*-------------------------------------------------------------------------
 *
 * refcheck_def.c
 *	  Definitions of cross-service reference ends: read from
 *	  splitdb.reference_end, cached per backend, forgotten when their
 *	  relation changes.
 *
 * A RefDef describes one trigger's end of a reference: its columns and types
 * here and in the other database, its actions, how it is reached.  It is read
 * once per trigger (splitdb_refcheck_get_def_for) into def_cxt, a context that
 * lives as long as the backend, and found again by trigger oid in def_hash.
 * The relcache callback marks the definitions of a changed relation invalid
 * and drops them from the hash; one that still has queued keys stays on the
 * list of all definitions (splitdb_refcheck_defs) until the transaction ends,
 * so its keys are checked with the definition they were queued with.
 * Definitions made for keys relayed back from another database
 * (splitdb_refcheck_relayed_def) live for one transaction.
 *
 * The queues of a definition (now, at_commit, relay) are transaction state:
 * splitdb_refcheck_defs_reset() empties them at the transaction's end.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/refcheck_def.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/partition.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "metadata/catalog.h"
#include "reference/refcheck_int.h"
#include "reference/refstats.h"

/* lookup entry: trigger oid -> definition */
typedef struct RefDefEntry
{
	Oid			tgoid;
	RefDef	   *def;
} RefDefEntry;

/* for the life of the backend: the definitions, and the memory they live in */
static HTAB *def_hash = NULL;
static RefDef *all_defs = NULL;
static MemoryContext def_cxt = NULL;

static void relcache_callback(Datum arg, Oid relid);

/*
 * splitdb_refcheck_defs_init
 *		Once per backend (splitdb_refcheck_register_callbacks): the
 *		definition cache and its invalidation.
 */
void
splitdb_refcheck_defs_init(void)
{
	HASHCTL		ctl;

	def_cxt = AllocSetContextCreate(TopMemoryContext, "splitdb references",
									ALLOCSET_SMALL_SIZES);
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(RefDefEntry);
	ctl.hcxt = def_cxt;
	def_hash = hash_create("splitdb reference triggers", 64, &ctl,
						   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	CacheRegisterRelcacheCallback(relcache_callback, (Datum) 0);
}

/*
 * splitdb_refcheck_defs
 *		The first of every definition in use, linked by next: those of the
 *		triggers, the replaced ones that may still have queued keys, and
 *		those made for relayed keys in this transaction.
 */
RefDef *
splitdb_refcheck_defs(void)
{
	return all_defs;
}

/*
 * set_fk_collate
 *		On the referenced side, for key column i of collation coll: when
 *		coll is nondeterministic, the referencing rows compare under it, as
 *		PostgreSQL's foreign keys compare them (ri_GenerateQualCollation),
 *		whatever the referencing column's collation.  Only where the
 *		referencing table is in the source or here, which have every
 *		collation of the referenced table; a sibling may lack it, and there
 *		the referencing column's collation applies (a limit).
 */
static void
set_fk_collate(RefDef *def, int i, Oid coll)
{
	HeapTuple	tup;
	Form_pg_collation form;

	if (def->side != 'p' || !OidIsValid(coll) || get_collation_isdeterministic(coll))
		return;
	if (OidIsValid(def->other_server) && strcmp(def->other_location, "source") != 0)
		return;
	tup = SearchSysCache1(COLLOID, ObjectIdGetDatum(coll));
	if (!HeapTupleIsValid(tup))
		return;
	form = (Form_pg_collation) GETSTRUCT(tup);
	if (def->fk_collates == NULL)
		def->fk_collates = palloc0(sizeof(char *) * def->nkeys);
	def->fk_collates[i] = psprintf(" COLLATE %s.%s",
								   quote_identifier(get_namespace_name(form->collnamespace)),
								   quote_identifier(NameStr(form->collname)));
	ReleaseSysCache(tup);
}

/* the earliest queue of a definition that flush_all would work off */
static uint64
first_queued(RefDef *def, bool at_commit)
{
	uint64		seq = def->now.keys != NIL ? def->now.seq : PG_UINT64_MAX;

	if (at_commit && def->at_commit.keys != NIL && def->at_commit.seq < seq)
		seq = def->at_commit.seq;
	return seq;
}

/* list_sort()'s comparator has no argument: the queues it compares */
static bool sorting_at_commit = false;

static int
queue_order_cmp(const ListCell *a, const ListCell *b)
{
	uint64		sa = first_queued(lfirst(a), sorting_at_commit);
	uint64		sb = first_queued(lfirst(b), sorting_at_commit);

	return sa < sb ? -1 : (sa > sb ? 1 : 0);
}

/*
 * splitdb_refcheck_defs_in_queue_order
 *		The definitions with queued keys (at_commit: the commit-time ones
 *		too), the one whose keys were queued first first, so that the checks
 *		at commit report the violation that PostgreSQL, which fires deferred
 *		events in queue order, reports first.
 */
List *
splitdb_refcheck_defs_in_queue_order(bool at_commit)
{
	List	   *defs = NIL;

	for (RefDef *def = all_defs; def != NULL; def = def->next)
		if (first_queued(def, at_commit) != PG_UINT64_MAX)
			defs = lappend(defs, def);
	sorting_at_commit = at_commit;
	list_sort(defs, queue_order_cmp);
	return defs;
}

/* the memory definitions live in, for the life of the backend */
MemoryContext
splitdb_refcheck_def_context(void)
{
	return def_cxt;
}

/*
 * splitdb_refcheck_defs_reset
 *		At the end of a transaction: empty the queues of every definition,
 *		and forget those that were replaced or made for relayed keys (their
 *		few bytes stay in def_cxt).
 */
void
splitdb_refcheck_defs_reset(void)
{
	RefDef	  **link = &all_defs;

	while (*link != NULL)
	{
		RefDef	   *def = *link;

		memset(&def->now, 0, sizeof(PendingSet));
		memset(&def->at_commit, 0, sizeof(PendingSet));
		memset(&def->relay, 0, sizeof(PendingSet));
		if (!def->valid || def->relayed)
		{
			*link = def->next;
			continue;			/* its few bytes stay in def_cxt */
		}
		link = &def->next;
	}
}

/*
 * output_follows_settings
 *		Whether the text form of a type's values depends on DateStyle,
 *		IntervalStyle or extra_float_digits: dates, times, intervals and
 *		floats, through domains, and the arrays, ranges, multiranges and
 *		composite types that hold them (a date[] key under DateStyle 'SQL,
 *		DMY' prints 4 March as 04/03/2024, which another server reads as 3
 *		April or refuses).
 */
static bool row_output_follows_settings(Oid typid);
static void set_fk_collate(RefDef *def, int i, Oid coll);

static bool
output_follows_settings(Oid typid)
{
	char		category;
	bool		preferred;
	Oid			inner;

	check_stack_depth();
	typid = getBaseType(typid);
	if (typid == FLOAT4OID || typid == FLOAT8OID)
		return true;
	get_type_category_preferred(typid, &category, &preferred);
	if (category == TYPCATEGORY_DATETIME || category == TYPCATEGORY_TIMESPAN)
		return true;
	if (OidIsValid(inner = get_element_type(typid)))
		return output_follows_settings(inner);
	if (type_is_range(typid))
		return output_follows_settings(get_range_subtype(typid));
	if (type_is_multirange(typid))
		return output_follows_settings(get_multirange_range(typid));
	if (OidIsValid(get_typ_typrelid(typid)))
		return row_output_follows_settings(typid);
	return false;
}

/*
 * row_output_follows_settings
 *		output_follows_settings() for a composite type: whether any of its
 *		columns' text forms follow the settings.
 */
static bool
row_output_follows_settings(Oid typid)
{
	TupleDesc	desc = lookup_rowtype_tupdesc(typid, -1);
	bool		follows = false;

	for (int i = 0; i < desc->natts && !follows; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped)
			follows = output_follows_settings(att->atttypid);
	}
	ReleaseTupleDesc(desc);
	return follows;
}

/*
 * This database's end (reference_id $1, side $2) of a reference, with the
 * owner of its relation (read_end)
 */
static const char *const sql_read_end =
"SELECT e.relid::pg_catalog.oid, e.constraint_name::pg_catalog.text, e.here,"
"  e.own_table, e.own_server::pg_catalog.text, e.own_columns::pg_catalog.text[],"
"  e.own_types, e.other_location, e.other_server::pg_catalog.text, e.other_table,"
"  e.other_columns::pg_catalog.text[], e.other_types, e.other_database,"
"  e.match_full, e.on_delete::pg_catalog.text, e.on_update::pg_catalog.text,"
"  e.set_columns::pg_catalog.text[], e.initially_deferred, c.relowner, e.always,"
"  e.is_deferrable"
" FROM splitdb.reference_end e JOIN pg_catalog.pg_class c ON c.oid = e.relid"
" WHERE e.reference_id = $1 AND e.side = $2";

/* a text column of an SPI row, NULL for SQL NULL */
static char *
text_value(HeapTuple tuple, TupleDesc desc, int col)
{
	return SPI_getvalue(tuple, desc, col);
}

/*
 * splitdb_refcheck_relation_is_or_under
 *		True when relid is target, or a partition somewhere below it.
 */
bool
splitdb_refcheck_relation_is_or_under(Oid relid, Oid target)
{
	List	   *ancestors;

	if (relid == target)
		return true;
	if (!get_rel_relispartition(relid))
		return false;
	ancestors = get_partition_ancestors(relid);
	return list_member_oid(ancestors, target);
}

/*
 * read_end
 *		Read this database's end (reference_id, side) of a reference from
 *		splitdb.reference_end into a new definition in cxt, without the
 *		parts that need the trigger's relation.
 *
 * def->relid is the end's relation.  Returns NULL when there is no such
 * row.  Runs its own SPI connection, and reads under the newest snapshot,
 * as PostgreSQL found the trigger (splitdb_spi_exec_latest).
 */
static RefDef *
read_end(int64 reference_id, char side, MemoryContext cxt)
{
	Oid			types[2] = {INT8OID, CHAROID};
	Datum		values[2] = {Int64GetDatum(reference_id), CharGetDatum(side)};
	RefDef	   *def = NULL;
	HeapTuple	tup;
	TupleDesc	desc;
	MemoryContext old;
	bool		isnull;
	int			n;
	int			nest;
	int			rc;
	char	   *s;

	nest = splitdb_refcheck_pin_search_path();
	splitdb_spi_connect();
	rc = splitdb_spi_exec_latest(sql_read_end, 2, types, values, NULL, 1);
	if (rc != SPI_OK_SELECT)
		splitdb_spi_failed(sql_read_end, rc);
	if (SPI_processed != 1)
	{
		SPI_finish();
		AtEOXact_GUC(true, nest);
		return NULL;
	}
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;

	old = MemoryContextSwitchTo(cxt);
	def = palloc0(sizeof(RefDef));
	def->relid = DatumGetObjectId(SPI_getbinval(tup, desc, 1, &isnull));
	def->valid = true;
	def->reference_id = reference_id;
	def->side = side;
	def->conname = text_value(tup, desc, 2);
	def->here = text_value(tup, desc, 3);
	def->own_table = text_value(tup, desc, 4);
	s = text_value(tup, desc, 5);
	def->own_server = s ? get_foreign_server_oid(s, false) : InvalidOid;
	def->own_cols = splitdb_catalog_array_elems(tup, desc, 6, &def->nkeys);
	def->own_types = splitdb_catalog_array_elems(tup, desc, 7, &n);
	def->other_location = text_value(tup, desc, 8);
	s = text_value(tup, desc, 9);
	def->other_server = s ? get_foreign_server_oid(s, false) : InvalidOid;
	def->other_table = text_value(tup, desc, 10);
	def->other_cols = splitdb_catalog_array_elems(tup, desc, 11, &n);
	def->other_types = splitdb_catalog_array_elems(tup, desc, 12, &n);
	def->other_database = text_value(tup, desc, 13);
	def->match_full = DatumGetBool(SPI_getbinval(tup, desc, 14, &isnull));
	def->on_delete = text_value(tup, desc, 15)[0];
	def->on_update = text_value(tup, desc, 16)[0];
	def->set_cols = splitdb_catalog_array_elems(tup, desc, 17, &def->nset);
	def->initially_deferred = DatumGetBool(SPI_getbinval(tup, desc, 18, &isnull));
	def->owner = DatumGetObjectId(SPI_getbinval(tup, desc, 19, &isnull));
	def->always = DatumGetBool(SPI_getbinval(tup, desc, 20, &isnull));
	def->shim_deferrable = DatumGetBool(SPI_getbinval(tup, desc, 21, &isnull));
	def->counter = splitdb_refstats_get(reference_id, side);
	MemoryContextSwitchTo(old);

	SPI_finish();
	AtEOXact_GUC(true, nest);
	return def;
}

/*
 * load_def
 *		Read the reference end a trigger names and check that it belongs to
 *		the trigger's relation.
 *
 * Returns a definition allocated in def_cxt.  Raises ERROR when the row is
 * missing or is for another relation: such a trigger was not made by
 * splitdb.
 */
static RefDef *
load_def(Trigger *tg, Relation rel, int64 reference_id, char side)
{
	RefDef	   *def = read_end(reference_id, side, def_cxt);
	MemoryContext old;

	if (def == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
				 errmsg("trigger \"%s\" on table \"%s\" names no cross-service reference",
						tg->tgname, RelationGetRelationName(rel)),
				 errdetail("splitdb.reference_end has no row for reference " INT64_FORMAT ", side \"%c\".",
						   reference_id, side),
				 errhint("Only splitdb creates triggers that call splitdb.reference_row(); drop this one.")));
	if (!splitdb_refcheck_relation_is_or_under(RelationGetRelid(rel),
											   def->relid))
		ereport(ERROR,
				(errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
				 errmsg("trigger \"%s\" on table \"%s\" names a cross-service reference of another table",
						tg->tgname, RelationGetRelationName(rel)),
				 errhint("Only splitdb creates triggers that call splitdb.reference_row(); drop this one.")));

	old = MemoryContextSwitchTo(def_cxt);
	def->tgoid = tg->tgoid;
	def->relid = RelationGetRelid(rel);
	/* tables have constraint triggers: PostgreSQL defers their events */
	def->shim_deferrable = def->shim_deferrable &&
		rel->rd_rel->relkind == RELKIND_FOREIGN_TABLE;
	def->attnums = palloc(sizeof(AttrNumber) * def->nkeys);
	def->typoutput = palloc(sizeof(Oid) * def->nkeys);
	def->outfinfo = palloc(sizeof(FmgrInfo) * def->nkeys);
	def->typcache = palloc(sizeof(TypeCacheEntry *) * def->nkeys);
	for (int i = 0; i < def->nkeys; i++)
	{
		Form_pg_attribute att;
		bool		varlena;

		def->attnums[i] = get_attnum(def->relid, def->own_cols[i]);
		if (def->attnums[i] == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" of cross-service reference \"%s\" does not exist in table \"%s\"",
							def->own_cols[i], def->conname, RelationGetRelationName(rel)),
					 errhint("A column of a cross-service reference was dropped or renamed; set the reference's mode to off with splitdb_reference_mode().")));
		att = TupleDescAttr(RelationGetDescr(rel), def->attnums[i] - 1);
		getTypeOutputInfo(att->atttypid, &def->typoutput[i], &varlena);
		fmgr_info_cxt(def->typoutput[i], &def->outfinfo[i], def_cxt);
		def->typcache[i] = lookup_type_cache(att->atttypid, TYPECACHE_EQ_OPR_FINFO);
		if (output_follows_settings(att->atttypid))
			def->pin_output = true;
		set_fk_collate(def, i, att->attcollation);
	}
	MemoryContextSwitchTo(old);
	return def;
}

/* a reference id from a trigger argument: digits only */
static bool
parse_id(const char *s, int64 *id)
{
	char	   *end;

	if (s[0] < '0' || s[0] > '9')
		return false;
	errno = 0;
	*id = strtoi64(s, &end, 10);
	return errno == 0 && *end == '\0';
}

/*
 * splitdb_refcheck_get_def
 *		The definition of the firing trigger, from the cache or the catalog.
 */
RefDef *
splitdb_refcheck_get_def(TriggerData *td)
{
	return splitdb_refcheck_get_def_for(td->tg_trigger, td->tg_relation);
}

/*
 * splitdb_refcheck_get_def_for
 *		The definition of a trigger of splitdb's on a relation, from the
 *		cache or the catalog.
 */
RefDef *
splitdb_refcheck_get_def_for(Trigger *tg, Relation rel)
{
	RefDefEntry *entry;
	bool		found;
	int64		reference_id;
	char		side;

	splitdb_refcheck_register_callbacks();
	entry = hash_search(def_hash, &tg->tgoid, HASH_FIND, &found);
	if (found && entry->def->valid)
		return entry->def;

	if (tg->tgnargs != 2 ||
		!parse_id(tg->tgargs[0], &reference_id) ||
		(strcmp(tg->tgargs[1], "c") != 0 && strcmp(tg->tgargs[1], "p") != 0))
		ereport(ERROR,
				(errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
				 errmsg("trigger \"%s\" on table \"%s\" has invalid arguments",
						tg->tgname, RelationGetRelationName(rel)),
				 errhint("Only splitdb creates triggers that call its reference functions; drop this one.")));
	side = tg->tgargs[1][0];

	{
		RefDef	   *def = load_def(tg, rel, reference_id, side);

		def->next = all_defs;
		all_defs = def;
		entry = hash_search(def_hash, &tg->tgoid, HASH_ENTER, &found);
		entry->def = def;
		return def;
	}
}

/*
 * relcache_callback
 *		A relation changed (its triggers among others): forget the
 *		definitions of its triggers.  Queued keys stay with the old
 *		definition until they are checked.
 */
static void
relcache_callback(Datum arg, Oid relid)
{
	for (RefDef *def = all_defs; def != NULL; def = def->next)
	{
		if (!def->valid || (OidIsValid(relid) && def->relid != relid))
			continue;
		def->valid = false;
		if (def_hash != NULL)
			hash_search(def_hash, &def->tgoid, HASH_REMOVE, NULL);
	}
}

/*
 * swap_ends
 *		Turn this database's end of a reference into the other end, as seen
 *		from here: the other end's table becomes "own" (reached through the
 *		server this end names) and this end's table, here, becomes "other".
 *		What it allocates goes to cxt, def's context.
 */
static void
swap_ends(RefDef *def, MemoryContext cxt)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	char	   *t;
	char	  **a;
	Oid			o;

	t = def->own_table;
	def->own_table = def->other_table;
	def->other_table = t;
	o = def->own_server;
	def->own_server = def->other_server;
	def->other_server = o;
	a = def->own_cols;
	def->own_cols = def->other_cols;
	def->other_cols = a;
	a = def->own_types;
	def->own_types = def->other_types;
	def->other_types = a;
	t = def->here;
	def->here = def->other_location;
	def->other_location = t;
	def->other_database = get_database_name(MyDatabaseId);
	def->side = (def->side == 'c') ? 'p' : 'c';
	def->relid = InvalidOid;
	def->counter = splitdb_refstats_get(def->reference_id, def->side);
	MemoryContextSwitchTo(old);
}

/*
 * splitdb_refcheck_relayed_def
 *		The definition that enforces, from here, the end (reference_id,
 *		side) of a table in another database whose key that database handed
 *		back.  It is this database's own row for that end when there is one
 *		(the source's end on the shim of that table), else this database's
 *		row for the opposite end, turned around: the other end is then here.
 *		Made once per transaction.
 */
RefDef *
splitdb_refcheck_relayed_def(int64 reference_id, char side)
{
	RefDef	   *def;

	for (def = all_defs; def != NULL; def = def->next)
		if (def->relayed && def->valid && def->reference_id == reference_id &&
			def->side == side)
			return def;

	def = read_end(reference_id, side, def_cxt);
	if (def == NULL)
	{
		def = read_end(reference_id, side == 'c' ? 'p' : 'c', def_cxt);
		if (def == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
					 errmsg("another database handed back a key of cross-service reference " INT64_FORMAT ", which has no end in database \"%s\"",
							reference_id, get_database_name(MyDatabaseId)),
					 errhint("The databases disagree about where the reference's ends are; compare splitdb.reference_end in both.")));
		swap_ends(def, def_cxt);
	}
	def->relayed = true;
	def->next = all_defs;
	all_defs = def;
	return def;
}

/*
 * splitdb_refcheck_end_dropped
 *		Whether this database's end (reference_id, side) is of a table here
 *		(not a shim) that was dropped: its row in splitdb.reference_end is
 *		left, its relation is not.  Only a superuser's DROP gets there
 *		(trigguard.c, splitdb_guard_dropped_ends), which PostgreSQL would
 *		have taken the foreign key along with: the other database's checks
 *		then find what they would find without it.  Read under the newest
 *		snapshot, as read_end reads.
 */
bool
splitdb_refcheck_end_dropped(int64 reference_id, char side)
{
	static const char *const sql =
		"SELECT FROM splitdb.reference_end e"
		" WHERE e.reference_id = $1 AND e.side = $2 AND e.own_server IS NULL"
		"   AND NOT EXISTS (SELECT FROM pg_catalog.pg_class c WHERE c.oid = e.relid)";
	Oid			types[2] = {INT8OID, CHAROID};
	Datum		values[2] = {Int64GetDatum(reference_id), CharGetDatum(side)};
	bool		dropped;
	int			nest;
	int			rc;

	nest = splitdb_refcheck_pin_search_path();
	splitdb_spi_connect();
	rc = splitdb_spi_exec_latest(sql, 2, types, values, NULL, 1);
	if (rc != SPI_OK_SELECT)
		splitdb_spi_failed(sql, rc);
	dropped = SPI_processed == 1;
	SPI_finish();
	AtEOXact_GUC(true, nest);
	return dropped;
}

/*
 * splitdb_refcheck_acting_def
 *		For an action that another database asks this one to apply
 *		(splitdb.reference_relay_action()): the referenced end of reference
 *		reference_id as seen from here, made from this database's own
 *		referencing end, whose table is here (not a shim): the other end is
 *		then that table, here.  def->relid is that table.  NULL when this
 *		database holds no such end.  Lives in the caller's memory context,
 *		on no list: it queues nothing.
 */
RefDef *
splitdb_refcheck_acting_def(int64 reference_id)
{
	RefDef	   *def = read_end(reference_id, 'c', CurrentMemoryContext);
	Oid			relid;

	if (def == NULL || OidIsValid(def->own_server))
		return NULL;
	relid = def->relid;
	swap_ends(def, CurrentMemoryContext);
	def->relid = relid;
	return def;
}

/*
 * splitdb_refcheck_reading_def
 *		For a lookup that another database asks this one for
 *		(splitdb.reference_lookup()): this database's end (reference_id,
 *		side), whose table is here (not a shim), turned around as
 *		splitdb_refcheck_acting_def() turns it: the table here is "other",
 *		the end that asks is "own".  *relid is the table here.  NULL when
 *		this database holds no such end.  Lives in cxt, on no list.
 */
RefDef *
splitdb_refcheck_reading_def(int64 reference_id, char side, MemoryContext cxt,
							 Oid *relid)
{
	RefDef	   *def = read_end(reference_id, side, cxt);

	if (def == NULL || OidIsValid(def->own_server))
		return NULL;
	*relid = def->relid;
	swap_ends(def, cxt);
	return def;
}
