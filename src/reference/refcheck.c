/*-------------------------------------------------------------------------
 *
 * refcheck.c
 *	  Cross-service reference triggers: foreign-key semantics across
 *	  databases.
 *
 * A foreign key whose two ends now live in different databases is enforced
 * by triggers on both ends, in every database that holds an end.  Each
 * database describes its ends in splitdb.reference_end; a trigger's
 * arguments are (reference id, side) and must name a row for the trigger's
 * own relation.
 *
 * Row triggers only queue: the referencing ("child") end queues the new key
 * of an inserted or updated row, the referenced ("parent") end queues the
 * old key of a deleted row and the old and new keys of an updated one.
 * Duplicate keys are queued once.  The queue is worked off by the statement
 * trigger splitdb.reference_flush() at the end of every statement, and at
 * commit for deferred references, with one statement per reference: the
 * keys travel as arrays and one remote round trip checks, locks or acts on
 * all of them.  A deferrable reference has constraint triggers on tables,
 * so PostgreSQL itself fires its events at commit (or at SET CONSTRAINTS
 * ... IMMEDIATE); shims are foreign tables, which cannot have constraint
 * triggers, so their deferred keys wait for commit in a queue of their own.
 *
 * The semantics are PostgreSQL's (ri_triggers.c):
 * - child: MATCH SIMPLE skips a key with a NULL column, MATCH FULL skips an
 *   all-NULL key and refuses a mixed one; the referenced row is locked FOR
 *   KEY SHARE in its database until commit.  A key that is missing is
 *   reported only if a row still carries it here, so a row deleted or
 *   changed again before a deferred check is not reported.
 * - parent: NO ACTION and RESTRICT refuse to remove a key that is still
 *   referenced (NO ACTION not when a row with the same key exists again by
 *   the time of the check); CASCADE, SET NULL and SET DEFAULT act in the
 *   other database (SET DEFAULT then checks that the default is present).
 * - violations raise SQLSTATE 23503 with PostgreSQL's messages; the detail
 *   names the other end's table and database.
 *
 * The statements run as the owner of the trigger's relation, like built-in
 * foreign keys.  In the other database they run through postgres_fdw's
 * connection for the writing role's user mapping when it has one, else the
 * owner's (enforcement_mapping), so they share the remote transaction of the
 * shims the role wrote through in the same transaction: they see its rows,
 * never wait for its locks, and commit and roll back with the local
 * transaction (savepoints included).
 *
 * Writes that a database receives from another one's enforcement or shims
 * come on sessions that proved where they come from (origin.c: a secret the
 * two databases share; the setting splitdb.origin only names the claim and
 * proves nothing).  The database where the write was issued enforces the
 * reference, so the receiving end skips: a sibling skips every reference for
 * writes that come from the source (the source has triggers on the shims),
 * and any database skips the references whose other end is the origin.
 * What such a write changes beyond a shim's own rows (an action's rows, and
 * rows that foreign keys and triggers change in turn) is handed back to the
 * database that wrote, which enforces it in its own transaction:
 * splitdb.reference_relay() for actions, splitdb.reference_relayed() after
 * a write through a shim.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/refcheck.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <dlfcn.h>

#include "access/htup_details.h"
#include "common/hashfn.h"
#include "access/xact.h"
#include "catalog/partition.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "foreign/foreign.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/plannodes.h"
#include "parser/parsetree.h"
#include "portability/instr_time.h"
#include "tcop/pquery.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/datum.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "metadata/catalog.h"
#include "remote/checkconn.h"
#include "compat.h"
#include "reference/fdwwatch.h"
#include "reference/origin.h"
#include "remote/prepared.h"
#include "reference/refcheck.h"
#include "remote/remote.h"
#include "splitdb.h"

PG_FUNCTION_INFO_V1(splitdb_reference_row);
PG_FUNCTION_INFO_V1(splitdb_reference_flush);
PG_FUNCTION_INFO_V1(splitdb_reference_relay);
PG_FUNCTION_INFO_V1(splitdb_reference_relayed);
PG_FUNCTION_INFO_V1(splitdb_shim_statement);

/* postgres_fdw's connection cache (connection.c), found at run time */
typedef PGconn *(*GetConnectionFn) (UserMapping *user, bool will_prep_stmt,
									void **state);

/* what a queued key asks for */
typedef enum PendingKind
{
	PENDING_CHECK,				/* child: the key must exist in the parent */
	PENDING_DELETE,				/* parent: a row with this key was deleted */
	PENDING_UPDATE				/* parent: a row's key changed from old to new */
} PendingKind;

typedef struct PendingKey
{
	char	   *ident;			/* kind and old key, serialized: the dedup key */
	PendingKind kind;
	char	  **old;			/* key values in text form, never NULL */
	char	  **new;			/* PENDING_UPDATE: the new key, NULLs allowed */
} PendingKey;

/* a queue of keys, without duplicates */
typedef struct PendingSet
{
	List	   *keys;
	HTAB	   *seen;			/* ident -> present */
} PendingSet;

/* one trigger's reference end, read from splitdb.reference_end */
typedef struct RefDef
{
	Oid			tgoid;			/* the trigger */
	Oid			relid;			/* its relation (a partition for a clone) */
	bool		valid;			/* false once the relation changed */
	int64		reference_id;
	char		side;			/* 'c' child, 'p' parent */
	char	   *conname;
	char	   *here;
	char	   *own_table;
	Oid			own_server;		/* InvalidOid: own_table is a table here */
	char	   *other_location;
	Oid			other_server;	/* InvalidOid: other_table is a table here */
	char	   *other_table;
	char	   *other_database;
	Oid			owner;			/* enforcement runs as this role */
	int			nkeys;
	char	  **own_cols;
	char	  **own_types;
	char	  **other_cols;
	char	  **other_types;
	AttrNumber *attnums;		/* own columns in the trigger's relation */
	Oid		   *typoutput;
	TypeCacheEntry **typcache;	/* parent side: equality of the key */
	bool		match_full;
	char		on_delete;
	char		on_update;
	int			nset;			/* ON DELETE SET NULL/DEFAULT columns, 0: all */
	char	  **set_cols;
	bool		shim_deferrable;	/* a shim end of a DEFERRABLE reference */
	bool		initially_deferred;
	bool		always;			/* checks writes from the source's shims too */
	bool		pin_output;		/* a key type's text form follows DateStyle & co */
	PendingSet	now;			/* checked at the end of the statement */
	PendingSet	at_commit;		/* checked at commit */
	PendingSet	relay;			/* skipped here, for the database that wrote */
	bool		relayed;		/* made for keys relayed back from elsewhere */
	char	   *single_sql;		/* single_key_sql(), once made */
	SplitdbRefCounter *counter;
	struct RefDef *next;
} RefDef;

/* lookup entry: trigger oid -> definition */
typedef struct RefDefEntry
{
	Oid			tgoid;
	RefDef	   *def;
} RefDefEntry;

static HTAB *def_hash = NULL;
static RefDef *all_defs = NULL;
static MemoryContext def_cxt = NULL;
static MemoryContext pending_cxt = NULL;
static bool callbacks_registered = false;
static bool fdw_callbacks_first = false;
static GetConnectionFn fdw_get_connection = NULL;

/* the role whose statement is being checked, while enforcement runs as the owner */
static Oid	caller_userid = InvalidOid;

/*
 * splitdb.origin, set by the server option of splitdb's servers: names where
 * a session's writes come from, trusted for nothing (origin.c decides)
 */
char	   *splitdb_origin = NULL;

/*
 * Keys checked on splitdb's own connections (checkconn.c) in this
 * transaction, per reference end and server: if the transaction then
 * writes to that server through postgres_fdw, they are checked again there
 * (hand_over), so that postgres_fdw's remote transaction holds their locks.
 * The list shares the queued keys, which live until the transaction ends
 * anyway: it costs a list cell per key.
 */
typedef struct FastChecked
{
	RefDef	   *def;
	Oid			serverid;
	Oid			writer;			/* the role whose statement was checked */
	List	   *keys;			/* PendingKey */
} FastChecked;

static List *fast_checked = NIL;

/*
 * Lookups of keys sent ahead by the BEFORE trigger of a referencing end
 * (send_ahead), at most one per end, waiting for the statement's check;
 * the end is known by reference, side and relation, as its BEFORE and
 * AFTER triggers each have a definition of their own.
 */
typedef struct AheadSent
{
	int64		reference_id;
	char		side;
	Oid			relid;
	uint64		id;				/* checkconn.c's handle */
	char	   *ident;			/* the key, as add_pending() idents it */
} AheadSent;

static List *ahead_sent = NIL;

/* servers this transaction used through postgres_fdw (fdwwatch.c, run_remote) */
static List *fdw_written = NIL;

/*
 * Servers whose rows this transaction changed or locked through
 * postgres_fdw beyond the checks' FOR KEY SHARE: writes and row marks
 * through foreign tables (fdwwatch.c) and splitdb's actions.  There,
 * postgres_fdw's remote transaction may hold rows that no other session
 * sees or may lock yet.
 */
static List *fdw_modified = NIL;

/*
 * Keys of referencing ends found (and locked FOR KEY SHARE) on
 * postgres_fdw's connection in this transaction.  postgres_fdw commits its
 * remote transactions at pre-commit, before the local commit makes the
 * referencing rows visible, so those locks would end too early for a
 * concurrent delete of the referenced row: hold_locks() takes them again
 * on splitdb's own connection, whose remote transaction ends after the
 * local commit (see "Locks past the commit" in docs/architecture.md).
 */
typedef struct HeldKeys
{
	RefDef	   *def;
	Oid			writer;			/* the role whose statement was checked */
	int			nest_level;		/* of the subtransaction that checked them */
	List	   *keys;			/* PendingKey */
} HeldKeys;

static List *fdw_checked = NIL;

/* what hold_locks() at pre-commit left for after postgres_fdw's commit */
static List *hold_late = NIL;

/*
 * Whether postgres_fdw was loaded in this backend before splitdb: its
 * transaction callback then runs after splitdb's late one, which therefore
 * cannot wait for postgres_fdw's commit (see hold_late_locks()).
 */
static bool fdw_loaded_first = false;

/*
 * The SET CONSTRAINTS of this transaction, newest first, for the deferrable
 * references whose end here is a shim (tables have constraint triggers,
 * which PostgreSQL defers itself).  Each is dropped with the subtransaction
 * it ran in, as PostgreSQL restores its own state then.
 */
typedef struct ConstraintsSet
{
	char	   *schemaname;		/* NULL: any schema */
	char	   *conname;		/* NULL: ALL */
	bool		deferred;
	int			nest_level;		/* of the subtransaction it ran in */
} ConstraintsSet;

static List *constraints_set = NIL;

/* splitdb.check_connection */
bool		splitdb_check_connection = true;

/* inside splitdb.reference_relay(): skipped keys go back to the caller */
static bool relaying = false;

/*
 * flush_set() calls running: the statement triggers of the rows their
 * actions change here leave the keys queued, and the running flush works
 * them off, so chains of actions do not nest.
 */
static int	flush_depth = 0;

static int	pin_search_path(void);
static bool output_follows_settings(Oid typid);
static void register_callbacks(void);
static void xact_callback(XactEvent event, void *arg);
static void subxact_callback(SubXactEvent event, SubTransactionId mySubid,
							 SubTransactionId parentSubid, void *arg);
static void relcache_callback(Datum arg, Oid relid);
static RefDef *get_def(TriggerData *td);
static RefDef *get_def_for(Trigger *tg, Relation rel);
static RefDef *load_def(Trigger *tg, Relation rel, int64 reference_id, char side);
static bool origin_skips(RefDef *def);
static void queue_child(RefDef *def, TriggerData *td, bool relay);
static void queue_parent(RefDef *def, TriggerData *td, bool relay);
static void add_pending(RefDef *def, PendingKind kind, char **old, char **new,
						bool relay);
static bool flush_all(bool at_commit);
static void fdw_uses(Oid serverid);
static void mark_modified(Oid serverid);
static bool fast_pass(bool at_commit);
static void send_ahead(TriggerData *td, Oid fn_oid);
static bool fast_eligible(RefDef *def, List *keys);
static void fast_check_one(RefDef *def, List *keys);
static void forget_ahead(void);
static void hand_over(Oid serverid);
static void relay_key(RefDef *acting, char **row);
static void emit_relayed(ReturnSetInfo *rsinfo);
static List *run_remote(RefDef *def, Oid server, const char *sql, int nparams,
						const char **values, bool prepare);
static void flush_set(RefDef *def, List *keys);
static void remember_fdw_checked(RefDef *def, List *keys, bool *found);
static void hold_locks(void);
static void late_xact_callback(XactEvent event, void *arg);
static void check_child_keys(RefDef *def, List *keys);
static void apply_parent_action(RefDef *def, List *keys, char action,
								bool is_update);

/* ----------------------------------------------------------------
 * SQL fragments
 * ---------------------------------------------------------------- */

/*
 * splitdb_refcheck_keys_from
 *		"ROWS FROM (unnest($1::text[]), ...) WITH ORDINALITY AS k(v1, ..., i)",
 *		with n1..nn from $n+1..$2n after v1..vn when with_new.
 */
char *
splitdb_refcheck_keys_from(int nkeys, bool with_new)
{
	StringInfoData buf;
	int			nparams = with_new ? 2 * nkeys : nkeys;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "ROWS FROM (");
	for (int i = 1; i <= nparams; i++)
		appendStringInfo(&buf, "%spg_catalog.unnest($%d::pg_catalog.text[])", i > 1 ? ", " : "", i);
	appendStringInfoString(&buf, ") WITH ORDINALITY AS k(");
	for (int i = 1; i <= nkeys; i++)
		appendStringInfo(&buf, "v%d, ", i);
	if (with_new)
		for (int i = 1; i <= nkeys; i++)
			appendStringInfo(&buf, "n%d, ", i);
	appendStringInfoString(&buf, "i)");
	return buf.data;
}

/*
 * splitdb_refcheck_key_match
 *		"alias.c1 OPERATOR(pg_catalog.=) k.v1::type1 AND ...": the key columns of a table equal
 *		to the queued key, each value cast to the column's own type.
 */
char *
splitdb_refcheck_key_match(const char *alias, char **cols, char **types,
						   int nkeys)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < nkeys; i++)
		appendStringInfo(&buf, "%s%s.%s OPERATOR(pg_catalog.=) k.v%d::%s", i > 0 ? " AND " : "",
						 alias, quote_identifier(cols[i]), i + 1, types[i]);
	return buf.data;
}

/* ----------------------------------------------------------------
 * Definitions
 * ---------------------------------------------------------------- */

/* a text column of an SPI row, NULL for SQL NULL */
static char *
text_value(HeapTuple tuple, TupleDesc desc, int col)
{
	return SPI_getvalue(tuple, desc, col);
}

/*
 * relation_is_or_under
 *		True when relid is target, or a partition somewhere below it.
 */
static bool
relation_is_or_under(Oid relid, Oid target)
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
 *		splitdb.reference_end into a new definition in def_cxt, without the
 *		parts that need the trigger's relation.
 *
 * def->relid is the end's relation.  Returns NULL when there is no such
 * row.  Runs its own SPI connection.
 */
static RefDef *
read_end(int64 reference_id, char side)
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
	char	   *s;

	nest = pin_search_path();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT e.relid::pg_catalog.oid, e.constraint_name::pg_catalog.text, e.here,"
							  "  e.own_table, e.own_server::pg_catalog.text, e.own_columns::pg_catalog.text[],"
							  "  e.own_types, e.other_location, e.other_server::pg_catalog.text, e.other_table,"
							  "  e.other_columns::pg_catalog.text[], e.other_types, e.other_database,"
							  "  e.match_full, e.on_delete::pg_catalog.text, e.on_update::pg_catalog.text,"
							  "  e.set_columns::pg_catalog.text[], e.initially_deferred, c.relowner, e.always,"
							  "  e.is_deferrable"
							  " FROM splitdb.reference_end e JOIN pg_catalog.pg_class c ON c.oid = e.relid"
							  " WHERE e.reference_id = $1 AND e.side = $2",
							  2, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read splitdb.reference_end");
	if (SPI_processed != 1)
	{
		SPI_finish();
		AtEOXact_GUC(true, nest);
		return NULL;
	}
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;

	old = MemoryContextSwitchTo(def_cxt);
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
	RefDef	   *def = read_end(reference_id, side);
	MemoryContext old;

	if (def == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
				 errmsg("trigger \"%s\" on table \"%s\" names no cross-service reference",
						tg->tgname, RelationGetRelationName(rel)),
				 errdetail("splitdb.reference_end has no row for reference " INT64_FORMAT ", side \"%c\".",
						   reference_id, side),
				 errhint("Only splitdb creates triggers that call splitdb.reference_row(); drop this one.")));
	if (!relation_is_or_under(RelationGetRelid(rel), def->relid))
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
		def->typcache[i] = lookup_type_cache(att->atttypid, TYPECACHE_EQ_OPR_FINFO);
		if (output_follows_settings(att->atttypid))
			def->pin_output = true;
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
 * get_def
 *		The definition of the firing trigger, from the cache or the catalog.
 */
static RefDef *
get_def(TriggerData *td)
{
	return get_def_for(td->tg_trigger, td->tg_relation);
}

/*
 * get_def_for
 *		The definition of a trigger of splitdb's on a relation, from the
 *		cache or the catalog.
 */
static RefDef *
get_def_for(Trigger *tg, Relation rel)
{
	RefDefEntry *entry;
	bool		found;
	int64		reference_id;
	char		side;

	register_callbacks();
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

/* ----------------------------------------------------------------
 * Transactions
 * ---------------------------------------------------------------- */

/*
 * register_callbacks
 *		Once per backend: the definition cache, its invalidation, and the
 *		transaction callback that checks deferred keys at commit.
 */
static void
register_callbacks(void)
{
	HASHCTL		ctl;

	if (callbacks_registered)
		return;
	def_cxt = AllocSetContextCreate(TopMemoryContext, "splitdb references",
									ALLOCSET_SMALL_SIZES);
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(RefDefEntry);
	ctl.hcxt = def_cxt;
	def_hash = hash_create("splitdb reference triggers", 64, &ctl,
						   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	CacheRegisterRelcacheCallback(relcache_callback, (Datum) 0);
	RegisterXactCallback(xact_callback, NULL);
	RegisterSubXactCallback(subxact_callback, NULL);
	callbacks_registered = true;
}

/*
 * enforcement_mapping
 *		The user mapping enforcement uses on a server: the writing role's
 *		own (or PUBLIC) one when it has one, else the owner's.
 *
 * A role with a mapping may write the other database through shims, in
 * postgres_fdw's remote transaction for that mapping.  Checks and actions
 * there must see those rows and must not wait for their locks, which only
 * that remote transaction does (like PostgreSQL's own foreign keys, which
 * run in the writing session).  A role without one cannot have written
 * there, so enforcement runs as the owner, and the role needs no rights on
 * the server.
 */
static UserMapping *
enforcement_mapping(Oid serverid, Oid writer, Oid owner)
{
	if (OidIsValid(writer) &&
		(SearchSysCacheExists2(USERMAPPINGUSERSERVER, ObjectIdGetDatum(writer),
							   ObjectIdGetDatum(serverid)) ||
		 SearchSysCacheExists2(USERMAPPINGUSERSERVER, ObjectIdGetDatum(InvalidOid),
							   ObjectIdGetDatum(serverid))))
		return GetUserMapping(writer, serverid);
	return GetUserMapping(owner, serverid);
}

/*
 * fdw_connection
 *		postgres_fdw's connection to a server for enforcement_mapping(), in
 *		the remote transaction that mirrors this one.
 *
 * postgres_fdw registers its transaction callback with its first
 * connection; splitdb's must run before it at commit, while the remote
 * transactions are still open, so it is registered again after that.
 */
static PGconn *
fdw_connection(Oid serverid, Oid writer, Oid owner)
{
	PGconn	   *conn;

	if (fdw_get_connection == NULL)
		fdw_get_connection = (GetConnectionFn)
			load_external_function("$libdir/postgres_fdw", "GetConnection", true, NULL);
	conn = fdw_get_connection(enforcement_mapping(serverid, writer, owner), false, NULL);
	if (!fdw_callbacks_first)
	{
		UnregisterXactCallback(xact_callback, NULL);
		RegisterXactCallback(xact_callback, NULL);
		fdw_callbacks_first = true;
	}
	return conn;
}

/*
 * xact_context
 *		The memory of this transaction's queues and lists, made on first
 *		use; the pointers into it are reset at the transaction's end.
 */
static MemoryContext
xact_context(void)
{
	/* the transaction callback forgets what lives here */
	register_callbacks();
	if (pending_cxt == NULL)
		pending_cxt = AllocSetContextCreate(TopTransactionContext,
											"splitdb queued keys",
											ALLOCSET_DEFAULT_SIZES);
	return pending_cxt;
}

/*
 * reset_pending
 *		Forget every queued key (the memory goes with the transaction) and
 *		the definitions that were replaced.
 */
static void
reset_pending(void)
{
	RefDef	  **link = &all_defs;

	pending_cxt = NULL;
	ahead_sent = NIL;			/* checkconn.c drops the answers */
	fast_checked = NIL;
	fdw_written = NIL;
	fdw_modified = NIL;
	fdw_checked = NIL;
	hold_late = NIL;
	constraints_set = NIL;
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
 * xact_callback
 *		At commit, check what is still queued (deferred references, and keys
 *		of statements that fired no statement trigger); an error here aborts
 *		the commit.  At the end of a transaction, drop the queues.
 */
static void
xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			if (pending_cxt != NULL)
			{
				bool		pushed = false;
				ListCell   *lc;

				if (!ActiveSnapshotSet())
				{
					PushActiveSnapshot(GetTransactionSnapshot());
					pushed = true;
				}
				while (flush_all(true))
					;
				/* checks whose remote transaction failed: check them again */
				foreach(lc, splitdb_checkconn_failed_servers())
					fdw_uses(lfirst_oid(lc));
				/* postgres_fdw commits next: its checks' locks move first */
				if (event != XACT_EVENT_PRE_PREPARE)
					hold_locks();
				if (pushed)
					PopActiveSnapshot();
			}
			if (event == XACT_EVENT_PRE_PREPARE && splitdb_checkconn_any_active())
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot prepare a transaction that has checked cross-service references"),
						 errdetail("The checks hold locks in a remote transaction, which cannot be prepared."),
						 errhint("Set splitdb.check_connection to off in transactions that end with PREPARE TRANSACTION.")));
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			splitdb_prepared_forget();
			reset_pending();
			splitdb_checkconn_xact_end(false);
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PREPARE:
			reset_pending();
			splitdb_checkconn_xact_end(true);
			break;
	}
}

/*
 * subxact_callback
 *		A subtransaction that aborts takes its statements' queued keys with
 *		it: statement-time keys only come from statements that have not
 *		ended, which are inside it.  Commit-time keys stay; their check
 *		looks again at the rows, which the rollback restored.
 */
static void
subxact_callback(SubXactEvent event, SubTransactionId mySubid,
				 SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	ListCell   *lc;

	if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		/* a SET CONSTRAINTS of a released savepoint now belongs to its parent */
		foreach(lc, constraints_set)
		{
			ConstraintsSet *cs = lfirst(lc);

			if (cs->nest_level >= level)
				cs->nest_level = level - 1;
		}
		/* and so do the keys it checked */
		foreach(lc, fdw_checked)
		{
			HeldKeys   *hk = lfirst(lc);

			if (hk->nest_level >= level)
				hk->nest_level = level - 1;
		}
		return;
	}
	if (event != SUBXACT_EVENT_ABORT_SUB)
		return;
	foreach(lc, constraints_set)
	{
		if (((ConstraintsSet *) lfirst(lc))->nest_level >= level)
			constraints_set = foreach_delete_current(constraints_set, lc);
	}
	/* the rows whose keys it checked are gone: their locks need not outlive us */
	foreach(lc, fdw_checked)
	{
		if (((HeldKeys *) lfirst(lc))->nest_level >= level)
			fdw_checked = foreach_delete_current(fdw_checked, lc);
	}
	splitdb_prepared_forget();
	for (RefDef *def = all_defs; def != NULL; def = def->next)
	{
		memset(&def->now, 0, sizeof(PendingSet));
		memset(&def->relay, 0, sizeof(PendingSet));
	}
	forget_ahead();
	splitdb_checkconn_subxact_abort();
}

/* ----------------------------------------------------------------
 * Queueing
 * ---------------------------------------------------------------- */

/*
 * constraints_set_matches
 *		Whether a SET CONSTRAINTS entry names a reference end's constraint.
 */
static bool
constraints_set_matches(ConstraintsSet *cs, RefDef *def)
{
	char	   *nspname;

	if (cs->conname == NULL)
		return true;
	if (strcmp(cs->conname, def->conname) != 0)
		return false;
	if (cs->schemaname == NULL)
		return true;
	nspname = get_namespace_name(get_rel_namespace(def->relid));
	return nspname != NULL && strcmp(cs->schemaname, nspname) == 0;
}

/*
 * shim_deferred
 *		Whether the checks of a shim end of a deferrable reference wait for
 *		commit now: as the newest SET CONSTRAINTS that names it says, else
 *		as the reference was declared.
 */
static bool
shim_deferred(RefDef *def)
{
	ListCell   *lc;

	foreach(lc, constraints_set)
	{
		ConstraintsSet *cs = lfirst(lc);

		if (constraints_set_matches(cs, def))
			return cs->deferred;
	}
	return def->initially_deferred;
}

/*
 * splitdb_refcheck_constraints_set
 *		After PostgreSQL ran SET CONSTRAINTS (fdwwatch.c's utility hook).
 *
 * PostgreSQL has changed the deferral of the constraint triggers of tables,
 * and for IMMEDIATE fired the events they had deferred, whose keys are now
 * queued for the statement.  Here the same SET CONSTRAINTS reaches the
 * shims: it is remembered for the rest of the transaction, and for
 * IMMEDIATE the keys their ends had deferred join the statement's queue.
 * Then, as PostgreSQL checks a constraint made immediate at once, every
 * queued key is checked: a violation is the error of SET CONSTRAINTS.
 */
void
splitdb_refcheck_constraints_set(ConstraintsSetStmt *stmt)
{
	MemoryContext old = MemoryContextSwitchTo(xact_context());
	List	   *names = stmt->constraints;
	bool		pending = false;
	bool		pushed = false;
	ListCell   *lc;

	if (names == NIL)
		names = list_make1(NULL);
	foreach(lc, names)
	{
		RangeVar   *rv = lfirst(lc);
		ConstraintsSet *cs = palloc0(sizeof(ConstraintsSet));

		cs->schemaname = rv && rv->schemaname ? pstrdup(rv->schemaname) : NULL;
		cs->conname = rv ? pstrdup(rv->relname) : NULL;
		cs->deferred = stmt->deferred;
		cs->nest_level = GetCurrentTransactionNestLevel();
		constraints_set = lcons(cs, constraints_set);
	}
	MemoryContextSwitchTo(old);

	for (RefDef *def = all_defs; def != NULL; def = def->next)
	{
		if (!stmt->deferred && def->at_commit.keys != NIL && !shim_deferred(def))
		{
			ListCell   *kc;

			/* the keys deferred so far are checked now, in their order */
			foreach(kc, def->at_commit.keys)
			{
				PendingKey *pk = lfirst(kc);

				add_pending(def, pk->kind, pk->old, pk->new, false);
			}
			memset(&def->at_commit, 0, sizeof(PendingSet));
		}
		if (def->now.keys != NIL)
			pending = true;
	}
	if (!pending)
		return;
	/* as PostgreSQL, take a snapshot only when something is checked */
	if (!ActiveSnapshotSet())
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		pushed = true;
	}
	while (flush_all(false))
		;
	if (pushed)
		PopActiveSnapshot();
}

/*
 * origin_skips
 *		True when the write comes from the database that enforces this
 *		reference for it (see the file header): only a session that proved
 *		its origin (origin.c) is skipped.
 */
static bool
origin_skips(RefDef *def)
{
	const char *origin = splitdb_origin_proven();

	if (origin == NULL)
		return false;
	if (strcmp(origin, "source") == 0 && strcmp(def->here, "source") != 0 &&
		!def->always)
		return true;
	return strcmp(origin, def->other_location) == 0;
}

/*
 * output_follows_settings
 *		Whether the text form of a type's values depends on DateStyle,
 *		IntervalStyle or extra_float_digits: dates, times, intervals and
 *		floats, through domains.
 */
static bool
output_follows_settings(Oid typid)
{
	char		category;
	bool		preferred;

	typid = getBaseType(typid);
	if (typid == FLOAT4OID || typid == FLOAT8OID)
		return true;
	get_type_category_preferred(typid, &category, &preferred);
	return category == TYPCATEGORY_DATETIME || category == TYPCATEGORY_TIMESPAN;
}

/*
 * pin_output_settings
 *		Make the text form of keys one that any server reads back as the same
 *		value, whatever the session's settings: DateStyle ISO (a day-month
 *		order would otherwise be read as month-day there), IntervalStyle
 *		postgres, floats in their shortest exact form (extra_float_digits
 *		at least 1).  With the default settings nothing is set, so a row
 *		pays only for the nest level.  Returns the GUC nest level to give to
 *		AtEOXact_GUC().
 */
static int
pin_output_settings(void)
{
	int			nest = NewGUCNestLevel();

	if (DateStyle != USE_ISO_DATES)
		(void) set_config_option("datestyle", "ISO", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	if (IntervalStyle != INTSTYLE_POSTGRES)
		(void) set_config_option("intervalstyle", "postgres", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	if (extra_float_digits < 1)
		(void) set_config_option("extra_float_digits", "1", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	return nest;
}

/*
 * key_texts
 *		The key of a row in text form.  Returns the number of NULL columns;
 *		texts[i] is NULL for those.
 */
static int
key_texts(RefDef *def, TupleTableSlot *slot, char **texts)
{
	int			nnull = 0;
	int			nest = def->pin_output ? pin_output_settings() : -1;

	for (int i = 0; i < def->nkeys; i++)
	{
		bool		isnull;
		Datum		d = slot_getattr(slot, def->attnums[i], &isnull);

		if (isnull)
		{
			texts[i] = NULL;
			nnull++;
		}
		else
			texts[i] = OidOutputFunctionCall(def->typoutput[i], d);
	}
	if (nest >= 0)
		AtEOXact_GUC(true, nest);
	return nnull;
}

/*
 * keys_equal
 *		Whether an update left the key as it was.  The referencing side
 *		compares images, as PostgreSQL does; the referenced side uses the
 *		type's equality, so 1.0 -> 1.00 is no change.
 */
static bool
keys_equal(RefDef *def, TupleTableSlot *oldslot, TupleTableSlot *newslot)
{
	for (int i = 0; i < def->nkeys; i++)
	{
		bool		oldnull,
					newnull;
		Datum		o = slot_getattr(oldslot, def->attnums[i], &oldnull);
		Datum		n = slot_getattr(newslot, def->attnums[i], &newnull);
		Form_pg_attribute att = TupleDescAttr(oldslot->tts_tupleDescriptor,
											  def->attnums[i] - 1);

		if (oldnull || newnull)
		{
			if (oldnull != newnull)
				return false;
			continue;
		}
		if (def->side == 'p' && OidIsValid(def->typcache[i]->eq_opr_finfo.fn_oid))
		{
			if (!DatumGetBool(FunctionCall2Coll(&def->typcache[i]->eq_opr_finfo,
												att->attcollation, o, n)))
				return false;
		}
		else if (!datum_image_eq(o, n, att->attbyval, att->attlen))
			return false;
	}
	return true;
}

/* the violation PostgreSQL reports for a MATCH FULL key with some NULLs */
static void
report_match_full(RefDef *def, Relation rel)
{
	ereport(ERROR,
			(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
			 errmsg("insert or update on table \"%s\" violates foreign key constraint \"%s\"",
					RelationGetRelationName(rel), def->conname),
			 errdetail("MATCH FULL does not allow mixing of null and nonnull key values."),
			 errhint("Set every column of the key, or none.")));
}

/*
 * queue_child
 *		An inserted row, or an updated one whose key changed: queue its key
 *		for the check in the parent's database.
 */
static void
queue_child(RefDef *def, TriggerData *td, bool relay)
{
	TupleTableSlot *slot;
	char	  **texts;
	int			nnull;

	if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
		return;
	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
	{
		slot = td->tg_newslot;
		if (keys_equal(def, td->tg_trigslot, slot))
			return;
	}
	else
		slot = td->tg_trigslot;

	texts = palloc(sizeof(char *) * def->nkeys);
	nnull = key_texts(def, slot, texts);
	if (nnull == def->nkeys)
		return;
	if (nnull > 0)
	{
		if (def->match_full)
			report_match_full(def, td->tg_relation);
		return;					/* MATCH SIMPLE */
	}
	add_pending(def, PENDING_CHECK, texts, NULL, relay);
}

/*
 * queue_parent
 *		A deleted row, or an updated one whose key changed: queue the old key
 *		(and the new one) for the reference's action.
 */
static void
queue_parent(RefDef *def, TriggerData *td, bool relay)
{
	char	  **old;
	char	  **new = NULL;

	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		return;
	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event) &&
		keys_equal(def, td->tg_trigslot, td->tg_newslot))
		return;

	old = palloc(sizeof(char *) * def->nkeys);
	if (key_texts(def, td->tg_trigslot, old) > 0)
		return;					/* a key with a NULL is referenced by no row */
	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
	{
		new = palloc(sizeof(char *) * def->nkeys);
		key_texts(def, td->tg_newslot, new);
		add_pending(def, PENDING_UPDATE, old, new, relay);
	}
	else
		add_pending(def, PENDING_DELETE, old, NULL, relay);
}

/* dynahash over C strings */
static uint32
ident_hash(const void *key, Size keysize)
{
	const char *s = *(char *const *) key;

	return hash_bytes((const unsigned char *) s, (int) strlen(s));
}

static int
ident_match(const void *key1, const void *key2, Size keysize)
{
	return strcmp(*(char *const *) key1, *(char *const *) key2);
}

/*
 * key_ident
 *		What tells a queued key from another: its kind and old key.
 */
static char *
key_ident(PendingKind kind, char **old, int nkeys)
{
	StringInfoData ident;

	initStringInfo(&ident);
	appendStringInfoChar(&ident, "CDU"[kind]);
	for (int i = 0; i < nkeys; i++)
		appendStringInfo(&ident, "%zu:%s", strlen(old[i]), old[i]);
	return ident.data;
}

/*
 * add_pending
 *		Queue a key once.  old and new are copied into the transaction's
 *		queue memory.  relay: the key is not enforced here but handed back
 *		to the database that wrote (see splitdb_reference_relay).
 */
static void
add_pending(RefDef *def, PendingKind kind, char **old, char **new, bool relay)
{
	PendingSet *set = relay ? &def->relay : &def->now;
	char	   *ident;
	MemoryContext oldcxt;
	PendingKey *pk;
	bool		found;

	/*
	 * A shim cannot have constraint triggers: its deferred checks wait here.
	 * Only NO ACTION checks are deferred; actions never are.
	 */
	if (!relay && def->shim_deferrable && shim_deferred(def) &&
		(kind == PENDING_CHECK ||
		 (kind == PENDING_DELETE && def->on_delete == 'a') ||
		 (kind == PENDING_UPDATE && def->on_update == 'a')))
		set = &def->at_commit;

	oldcxt = MemoryContextSwitchTo(xact_context());

	/* the remote transaction must exist before commit, see fdw_connection */
	if (!relay && !fdw_callbacks_first &&
		(OidIsValid(def->other_server) || OidIsValid(def->own_server)))
		fdw_connection(OidIsValid(def->other_server) ? def->other_server : def->own_server,
					   GetUserId(), def->owner);

	if (set->seen == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(char *);
		ctl.entrysize = sizeof(char *);
		ctl.hash = ident_hash;
		ctl.match = ident_match;
		ctl.hcxt = pending_cxt;
		set->seen = hash_create("splitdb queued keys", 256, &ctl,
								HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
	}

	ident = key_ident(kind, old, def->nkeys);
	hash_search(set->seen, &ident, HASH_ENTER, &found);
	if (!found)
	{
		pk = palloc(sizeof(PendingKey));
		pk->ident = ident;
		pk->kind = kind;
		pk->old = palloc(sizeof(char *) * def->nkeys);
		pk->new = new ? palloc(sizeof(char *) * def->nkeys) : NULL;
		for (int i = 0; i < def->nkeys; i++)
		{
			pk->old[i] = pstrdup(old[i]);
			if (new)
				pk->new[i] = new[i] ? pstrdup(new[i]) : NULL;
		}
		set->keys = lappend(set->keys, pk);
	}
	else
		pfree(ident);
	MemoryContextSwitchTo(oldcxt);

	/* a referencing end checks early rather than grow without bound */
	if (!relay && def->side == 'c' && set == &def->now &&
		list_length(def->now.keys) >= SPLITDB_REFCHECK_MAX_PENDING)
	{
		List	   *keys = def->now.keys;

		memset(&def->now, 0, sizeof(PendingSet));
		if (fast_eligible(def, keys))
			fast_check_one(def, keys);
		else
			flush_set(def, keys);
	}
}

/* ----------------------------------------------------------------
 * Checking
 * ---------------------------------------------------------------- */

/*
 * key_arrays
 *		One text[] Datum per key column (new: the new keys of updates).
 */
static Datum *
key_arrays(RefDef *def, List *keys, bool new)
{
	int			n = list_length(keys);
	Datum	   *arrays = palloc(sizeof(Datum) * def->nkeys);

	for (int col = 0; col < def->nkeys; col++)
	{
		Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
		bool	   *nulls = palloc(sizeof(bool) * Max(n, 1));
		int			dims[1] = {n};
		int			lbs[1] = {1};
		int			row = 0;
		ListCell   *lc;

		foreach(lc, keys)
		{
			PendingKey *pk = lfirst(lc);
			char	   *v = new ? pk->new[col] : pk->old[col];

			nulls[row] = (v == NULL);
			elems[row] = v ? CStringGetTextDatum(v) : (Datum) 0;
			row++;
		}
		arrays[col] = PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs,
														 TEXTOID, -1, false, TYPALIGN_INT));
	}
	return arrays;
}

/* the text form of text[] Datums, for a remote statement's parameters */
static const char **
array_texts(Datum *arrays, int n)
{
	const char **values = palloc(sizeof(char *) * Max(n, 1));

	for (int i = 0; i < n; i++)
		values[i] = OidOutputFunctionCall(F_ARRAY_OUT, arrays[i]);
	return values;
}

/*
 * run_statement
 *		Run a statement on one end of the reference and return its rows as
 *		arrays of C strings.
 *
 * server: InvalidOid runs it here through SPI (the caller is connected);
 *         otherwise through postgres_fdw's connection to that server
 *         (fdw_connection: the writer's mapping, else the owner's).
 * params: text[] Datums, nparams of them.
 * prepare: a small lookup run again and again: prepared once per remote
 *          session (prepared.c), so the other server does not plan it again.
 * Counts a remote statement as a round trip, with its time.
 */
static List *
run_statement(RefDef *def, Oid server, const char *sql, int nparams,
			  Datum *params, bool prepare)
{
	const char **values;

	if (!OidIsValid(server))
	{
		Oid		   *types = palloc(sizeof(Oid) * nparams);
		int			rc;

		for (int i = 0; i < nparams; i++)
			types[i] = TEXTARRAYOID;
		rc = SPI_execute_with_args(sql, nparams, types, params, NULL, false, 0);
		if (rc < 0)
			elog(ERROR, "could not run \"%s\": %s", sql, SPI_result_code_string(rc));
		return splitdb_catalog_result_rows();
	}
	values = array_texts(params, nparams);
	return run_remote(def, server, sql, nparams, values, prepare);
}

/*
 * run_remote
 *		Run a statement with text parameters in another database, in the
 *		writer's remote transaction when it has one (see fdw_connection).
 *		Counts a round trip, with its time.  Returns the rows as arrays of
 *		C strings.
 */
static List *
run_remote(RefDef *def, Oid server, const char *sql, int nparams,
		   const char **values, bool prepare)
{
	PGconn	   *conn;
	PGresult   *res;
	List	   *rows;
	instr_time	start,
				duration;

	fdw_uses(server);
	conn = fdw_connection(server, caller_userid, def->owner);
	INSTR_TIME_SET_CURRENT(start);
	if (prepare)
		res = splitdb_prepared_exec(conn, sql, nparams, values, NULL);
	else
		res = splitdb_remote_exec(conn, sql, nparams, values, NULL);
	INSTR_TIME_SET_CURRENT(duration);
	INSTR_TIME_SUBTRACT(duration, start);
	splitdb_refstats_add(def->counter, 0, 0, 1, INSTR_TIME_GET_MICROSEC(duration));
	rows = splitdb_remote_result_rows(res);
	PQclear(res);
	return rows;
}

/*
 * swap_ends
 *		Turn this database's end of a reference into the other end, as seen
 *		from here: the other end's table becomes "own" (reached through the
 *		server this end names) and this end's table, here, becomes "other".
 */
static void
swap_ends(RefDef *def)
{
	MemoryContext old = MemoryContextSwitchTo(def_cxt);
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
 * relayed_def
 *		The definition that enforces, from here, the end (reference_id,
 *		side) of a table in another database whose key that database handed
 *		back.  It is this database's own row for that end when there is one
 *		(the source's end on the shim of that table), else this database's
 *		row for the opposite end, turned around: the other end is then here.
 *		Made once per transaction.
 */
static RefDef *
relayed_def(int64 reference_id, char side)
{
	RefDef	   *def;

	for (def = all_defs; def != NULL; def = def->next)
		if (def->relayed && def->valid && def->reference_id == reference_id &&
			def->side == side)
			return def;

	def = read_end(reference_id, side);
	if (def == NULL)
	{
		def = read_end(reference_id, side == 'c' ? 'p' : 'c');
		if (def == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
					 errmsg("another database handed back a key of cross-service reference " INT64_FORMAT ", which has no end in database \"%s\"",
							reference_id, get_database_name(MyDatabaseId)),
					 errhint("The databases disagree about where the reference's ends are; compare splitdb.reference_end in both.")));
		swap_ends(def);
	}
	def->relayed = true;
	def->next = all_defs;
	all_defs = def;
	return def;
}

/*
 * relay_key
 *		Queue here a key that another database skipped for us: one row of
 *		splitdb.reference_relay() (reference_id, side, kind, old, new).
 *		acting is the end whose action made the row.
 */
static void
relay_key(RefDef *acting, char **row)
{
	int64		reference_id = pg_strtoint64(row[0]);
	char		side = row[1][0];
	PendingKind kind;
	RefDef	   *def;
	char	  **old;
	char	  **new = NULL;
	int			n;

	/* the acting reference's new keys exist: its action just put them there */
	if (acting != NULL && reference_id == acting->reference_id && side == 'c')
		return;
	kind = (row[2][0] == 'c') ? PENDING_CHECK :
		(row[2][0] == 'd') ? PENDING_DELETE : PENDING_UPDATE;
	def = relayed_def(reference_id, side);
	old = splitdb_catalog_parse_text_array(row[3], &n);
	if (n != def->nkeys)
		elog(ERROR, "a relayed key of reference " INT64_FORMAT " has %d columns, not %d",
			 reference_id, n, def->nkeys);
	if (row[4] != NULL)
		new = splitdb_catalog_parse_text_array(row[4], &n);
	add_pending(def, kind, old, new, false);
}

/*
 * run_relayed
 *		Run a statement in the child's database through
 *		splitdb.reference_relay() there, and queue here the keys that the
 *		statement's rows left to this database (see
 *		splitdb_reference_relay).  Returns the statement's own rows.
 *		modifies: an action, which changes rows there (and needs a session
 *		that proved its origin, so that the keys it skips come back); else
 *		a lookup that only locks.
 */
static List *
run_relayed(RefDef *def, const char *sql, int nparams, Datum *params,
			bool modifies)
{
	const char **texts = array_texts(params, nparams);
	const char *values[2];
	List	   *own = NIL;
	ListCell   *lc;

	values[0] = sql;
	values[1] = splitdb_catalog_text_array((char **) texts, nparams);
	if (modifies)
	{
		/* the other database hands back what it skips only for a proved session */
		splitdb_refcheck_fdw_writes(def->other_server);
		splitdb_origin_prove_connection(fdw_connection(def->other_server, caller_userid,
													   def->owner),
										def->other_server);
	}
	foreach(lc, run_remote(def, def->other_server,
						   "SELECT r.reference_id, r.side, r.kind, r.old_key, r.new_key"
						   " FROM splitdb.reference_relay($1, $2) r",
						   2, values, false))
	{
		char	  **row = lfirst(lc);
		int			n;

		if (row[0] == NULL)
			own = lappend(own, splitdb_catalog_parse_text_array(row[3], &n));
		else
			relay_key(def, row);
	}
	return own;
}

/* a batch this small is looked up with small_batch_sql() */
#define SMALL_BATCH 64

/*
 * small_batch_sql
 *		The lookup of positions() for a batch of at most SMALL_BATCH keys,
 *		or NULL when the batch needs the join of key_batch_sql().
 *
 * The remote server plans these in a fraction of the time of the join
 * (the planning of the join costs more than its round trip): one key is
 * an equality on every key column; several keys of one column are an
 * "= ANY" of the keys, numbered with array_position().  array_position()
 * compares with the type's default equality, so two queued keys that are
 * equal values (1.0 and 1.00) number only the first; positions() looks
 * the rest up again with the join.
 */
static char *
small_batch_sql(RefDef *def, int n, const char *table, char **cols,
				char **types, bool lock, bool first_only)
{
	StringInfoData buf;

	if (n > SMALL_BATCH || (n > 1 && def->nkeys > 1))
		return NULL;
	initStringInfo(&buf);
	if (n == 1)
	{
		appendStringInfo(&buf, "SELECT 1 FROM %s t WHERE ", table);
		for (int i = 0; i < def->nkeys; i++)
			appendStringInfo(&buf, "%st.%s OPERATOR(pg_catalog.=) ($%d::pg_catalog.text[])[1]::%s",
							 i > 0 ? " AND " : "", quote_identifier(cols[i]), i + 1, types[i]);
		appendStringInfoString(&buf, " LIMIT 1");
	}
	else
		appendStringInfo(&buf,
						 "SELECT pg_catalog.array_position($1::pg_catalog.text[]::%s[], t.%s) AS i"
						 " FROM %s t WHERE t.%s OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.text[]::%s[])%s",
						 types[0], quote_identifier(cols[0]), table,
						 quote_identifier(cols[0]), types[0],
						 first_only ? " ORDER BY 1 LIMIT 1" : "");
	if (lock)
		appendStringInfoString(&buf, " FOR KEY SHARE OF t");
	return buf.data;
}

/* the lookup of positions() for a batch of any size: a join with the keys */
static char *
key_batch_sql(RefDef *def, const char *table, char **cols, char **types,
			  bool lock, bool first_only)
{
	return psprintf("SELECT k.i FROM %s JOIN %s t ON %s%s%s",
					splitdb_refcheck_keys_from(def->nkeys, false), table,
					splitdb_refcheck_key_match("t", cols, types, def->nkeys),
					first_only ? " ORDER BY k.i LIMIT 1" : "",
					lock ? " FOR KEY SHARE OF t" : "");
}

/*
 * mark_hits
 *		Set hit[i] for each position i (1..n) that a row of a lookup names
 *		in its first column; returns how many were set.
 */
static int
mark_hits(List *rows, int n, bool *hit)
{
	int			nhit = 0;
	ListCell   *lc;

	foreach(lc, rows)
	{
		char	   *v = ((char **) lfirst(lc))[0];
		int64		i = v ? pg_strtoint64(v) : 0;

		if (i >= 1 && i <= n && !hit[i])
		{
			hit[i] = true;
			nhit++;
		}
	}
	return nhit;
}

/*
 * positions
 *		The positions (1-based, as k.i numbers them) of the keys that have a
 *		matching row in a table, optionally locking those rows FOR KEY SHARE.
 *		Returns a bool array of list_length(keys) + 1 entries.
 */
static bool *
positions(RefDef *def, List *keys, bool other, bool lock, bool first_only)
{
	int			n = list_length(keys);
	bool	   *hit = palloc0(sizeof(bool) * (n + 1));
	Oid			server = other ? def->other_server : def->own_server;
	const char *table = other ? def->other_table : def->own_table;
	char	  **cols = other ? def->other_cols : def->own_cols;
	char	  **types = other ? def->other_types : def->own_types;
	char	   *sql;
	List	   *rows;
	List	   *again = NIL;
	bool		small;
	int		   *map;
	int			nhit = 0;
	ListCell   *lc;

	sql = small_batch_sql(def, n, table, cols, types, lock, first_only);
	small = (sql != NULL);
	if (!small)
		sql = key_batch_sql(def, table, cols, types, lock, first_only);
	rows = run_statement(def, server, sql, def->nkeys, key_arrays(def, keys, false), small);
	nhit = mark_hits(rows, n, hit);
	if (n <= 1 || def->nkeys > 1 || nhit == n || (first_only && nhit > 0) ||
		n > SMALL_BATCH)
		return hit;

	/* keys that array_position() did not number: look them up again */
	map = palloc(sizeof(int) * (n - nhit + 1));
	foreach(lc, keys)
	{
		int			pos = foreach_current_index(lc) + 1;

		if (!hit[pos])
		{
			again = lappend(again, lfirst(lc));
			map[list_length(again)] = pos;
		}
	}
	rows = run_statement(def, server,
						 key_batch_sql(def, table, cols, types, lock, first_only),
						 def->nkeys, key_arrays(def, again, false), false);
	foreach(lc, rows)
	{
		int64		i = pg_strtoint64(((char **) lfirst(lc))[0]);

		if (i >= 1 && i <= list_length(again))
			hit[map[i]] = true;
	}
	return hit;
}

/*
 * referencing_positions
 *		For NO ACTION and RESTRICT: whether rows of the referencing table
 *		still carry the keys, the first it finds locked FOR KEY SHARE, as
 *		positions(first_only) returns.
 *
 * In another database the lookup runs inside splitdb.reference_relay(),
 * which reads with the latest snapshot there: postgres_fdw's remote
 * transaction is REPEATABLE READ, and its snapshot may be older than a
 * referencing row whose transaction committed while this one waited for
 * the lock on the referenced row, which PostgreSQL's own check would see.
 */
static bool *
referencing_positions(RefDef *def, List *keys)
{
	int			n = list_length(keys);
	bool	   *hit;

	if (!OidIsValid(def->other_server))
		return positions(def, keys, true, true, true);
	hit = palloc0(sizeof(bool) * (n + 1));
	mark_hits(run_relayed(def,
						  key_batch_sql(def, def->other_table, def->other_cols,
										def->other_types, true, true),
						  def->nkeys, key_arrays(def, keys, false), false),
			  n, hit);
	return hit;
}

/* "(c1, c2)" and "(v1, v2)" of a key, for messages */
static char *
key_columns_text(char **cols, int nkeys)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '(');
	for (int i = 0; i < nkeys; i++)
		appendStringInfo(&buf, "%s%s", i > 0 ? ", " : "", cols[i]);
	appendStringInfoChar(&buf, ')');
	return buf.data;
}

static char *
key_values_text(char **values, int nkeys)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '(');
	for (int i = 0; i < nkeys; i++)
		appendStringInfo(&buf, "%s%s", i > 0 ? ", " : "", values[i] ? values[i] : "null");
	appendStringInfoChar(&buf, ')');
	return buf.data;
}

/* the name of a queued end for messages: the relation's name, like PostgreSQL */
static const char *
own_name(RefDef *def)
{
	char	   *name = get_rel_name(def->relid);

	return name ? name : def->own_table;
}

/*
 * check_child_keys
 *		The referenced rows must exist in the parent's database; lock them
 *		there until commit.
 */
static void
check_child_keys(RefDef *def, List *keys)
{
	int			n = list_length(keys);
	bool	   *found = positions(def, keys, true, true, false);
	List	   *missing = NIL;
	bool	   *still;
	int			i = 0;
	ListCell   *lc;

	foreach(lc, keys)
	{
		if (!found[++i])
			missing = lappend(missing, lfirst(lc));
	}
	if (OidIsValid(def->other_server))
		remember_fdw_checked(def, keys, found);
	if (missing == NIL)
	{
		splitdb_refstats_add(def->counter, n, 0, 0, 0);
		return;
	}

	/* report only keys that a row here still carries */
	still = positions(def, missing, false, false, true);
	i = 0;
	foreach(lc, missing)
	{
		PendingKey *pk = lfirst(lc);

		if (!still[++i])
			continue;
		splitdb_refstats_add(def->counter, n, 1, 0, 0);
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg("insert or update on table \"%s\" violates foreign key constraint \"%s\"",
						own_name(def), def->conname),
				 errdetail("Key %s=%s is not present in table %s of database \"%s\".",
						   key_columns_text(def->own_cols, def->nkeys),
						   key_values_text(pk->old, def->nkeys),
						   def->other_table, def->other_database),
				 errhint("The referenced table is in another database since the split; insert the referenced row there first.")));
	}
	splitdb_refstats_add(def->counter, n, 0, 0, 0);
}

/*
 * report_still_referenced
 *		The violation of NO ACTION and RESTRICT.
 */
static void
report_still_referenced(RefDef *def, PendingKey *pk)
{
	splitdb_refstats_add(def->counter, 0, 1, 0, 0);
	ereport(ERROR,
			(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
			 errmsg("update or delete on table \"%s\" violates foreign key constraint \"%s\" on table %s",
					own_name(def), def->conname, def->other_table),
			 errdetail("Key %s=%s is still referenced from table %s of database \"%s\".",
					   key_columns_text(def->own_cols, def->nkeys),
					   key_values_text(pk->old, def->nkeys),
					   def->other_table, def->other_database),
			 errhint("Delete or change the referencing rows in database \"%s\" first.",
					 def->other_database)));
}

/*
 * check_defaults_present
 *		After SET DEFAULT: the keys the referencing rows now carry must exist
 *		here, as PostgreSQL checks them.
 */
static void
check_defaults_present(RefDef *def, List *rows)
{
	List	   *keys = NIL;
	bool	   *found;
	int			i = 0;
	ListCell   *lc;

	foreach(lc, rows)
	{
		char	  **row = lfirst(lc);
		int			nnull = 0;
		PendingKey *pk;

		for (int c = 0; c < def->nkeys; c++)
			nnull += (row[c] == NULL);
		if (nnull == def->nkeys)
			continue;
		if (nnull > 0 && !def->match_full)
			continue;
		pk = palloc0(sizeof(PendingKey));
		pk->old = row;
		keys = lappend(keys, pk);
	}
	if (keys == NIL)
		return;
	found = positions(def, keys, false, true, false);
	foreach(lc, keys)
	{
		PendingKey *pk = lfirst(lc);

		if (found[++i])
			continue;
		splitdb_refstats_add(def->counter, 0, 1, 0, 0);
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg("insert or update on table %s violates foreign key constraint \"%s\"",
						def->other_table, def->conname),
				 errdetail("Key %s=%s is not present in table \"%s\".",
						   key_columns_text(def->other_cols, def->nkeys),
						   key_values_text(pk->old, def->nkeys), own_name(def)),
				 errhint("ON DELETE/UPDATE SET DEFAULT needs the default key to exist in table \"%s\".",
						 own_name(def))));
	}
}

/*
 * apply_parent_action
 *		Apply one referential action to the referencing rows of the given old
 *		keys, in the child's database, with one statement.
 */
static void
apply_parent_action(RefDef *def, List *keys, char action, bool is_update)
{
	int			n = list_length(keys);
	char	   *from = splitdb_refcheck_keys_from(def->nkeys, is_update && action == 'c');
	char	   *match = splitdb_refcheck_key_match("t", def->other_cols,
												   def->other_types, def->nkeys);
	StringInfoData sql;
	Datum	   *params;
	int			nparams = def->nkeys;

	if (action == 'a' || action == 'r')
	{
		List	   *gone = keys;
		bool	   *hit;
		int			i = 0;
		ListCell   *lc;

		/* NO ACTION: a key that exists again here is no longer removed */
		if (action == 'a')
		{
			bool	   *again = positions(def, keys, false, false, false);

			gone = NIL;
			foreach(lc, keys)
			{
				if (!again[++i])
					gone = lappend(gone, lfirst(lc));
			}
			if (gone == NIL)
			{
				splitdb_refstats_add(def->counter, n, 0, 0, 0);
				return;
			}
		}
		hit = referencing_positions(def, gone);
		/* the keys count as checked whether or not one is refused */
		splitdb_refstats_add(def->counter, n, 0, 0, 0);
		i = 0;
		foreach(lc, gone)
		{
			if (hit[++i])
				report_still_referenced(def, lfirst(lc));
		}
		return;
	}

	initStringInfo(&sql);
	if (action == 'c' && !is_update)
		appendStringInfo(&sql, "DELETE FROM %s t USING %s WHERE %s",
						 def->other_table, from, match);
	else
	{
		appendStringInfo(&sql, "UPDATE %s t SET ", def->other_table);
		for (int c = 0; c < def->nkeys; c++)
		{
			bool		set = true;

			/* ON DELETE SET NULL/DEFAULT (cols): only those columns */
			if (!is_update && def->nset > 0)
			{
				set = false;
				for (int s = 0; s < def->nset; s++)
					if (strcmp(def->set_cols[s], def->other_cols[c]) == 0)
						set = true;
			}
			if (!set)
				continue;
			if (sql.data[sql.len - 1] != ' ')
				appendStringInfoString(&sql, ", ");
			if (action == 'c')
				appendStringInfo(&sql, "%s = k.n%d::%s", quote_identifier(def->other_cols[c]),
								 c + 1, def->other_types[c]);
			else
				appendStringInfo(&sql, "%s = %s", quote_identifier(def->other_cols[c]),
								 action == 'n' ? "NULL" : "DEFAULT");
		}
		appendStringInfo(&sql, " FROM %s WHERE %s", from, match);
		if (action == 'd')
		{
			appendStringInfoString(&sql, " RETURNING ");
			for (int c = 0; c < def->nkeys; c++)
				appendStringInfo(&sql, "%st.%s::pg_catalog.text", c > 0 ? ", " : "",
								 quote_identifier(def->other_cols[c]));
		}
	}

	params = key_arrays(def, keys, false);
	if (is_update && action == 'c')
	{
		Datum	   *news = key_arrays(def, keys, true);
		Datum	   *all = palloc(sizeof(Datum) * 2 * def->nkeys);

		memcpy(all, params, sizeof(Datum) * def->nkeys);
		memcpy(all + def->nkeys, news, sizeof(Datum) * def->nkeys);
		params = all;
		nparams = 2 * def->nkeys;
	}
	{
		List	   *rows;

		/* another database relays what its triggers leave to this one */
		if (OidIsValid(def->other_server))
			rows = run_relayed(def, sql.data, nparams, params, true);
		else
			rows = run_statement(def, InvalidOid, sql.data, nparams, params, false);
		splitdb_refstats_add(def->counter, n, 0, 0, 0);
		if (action == 'd')
			check_defaults_present(def, rows);
	}
}

/*
 * pin_search_path
 *		Resolve every name of splitdb's statements in pg_catalog, whatever
 *		the session's search_path: the statements run with the owner's
 *		rights.  Returns the GUC nest level to give to AtEOXact_GUC().  Set
 *		once per batch, not in the function's definition, so that row
 *		triggers do not pay for it on every row.
 */
static int
pin_search_path(void)
{
	int			nest = NewGUCNestLevel();

	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	return nest;
}

/*
 * flush_set
 *		Check or act on a batch of queued keys of one reference end, as the
 *		owner of its relation.
 */
static void
flush_set(RefDef *def, List *keys)
{
	Oid			save_userid;
	int			save_sec;
	List	   *deletes = NIL;
	List	   *updates = NIL;
	ListCell   *lc;
	int			nest;
	Oid			prev_caller;

	if (keys == NIL)
		return;

	GetUserIdAndSecContext(&save_userid, &save_sec);
	prev_caller = caller_userid;
	caller_userid = save_userid;
	SetUserIdAndSecContext(def->owner,
						   save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_NOFORCE_RLS);
	nest = pin_search_path();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	flush_depth++;
	PG_TRY();
	{
		if (def->side == 'c')
			check_child_keys(def, keys);
		else
		{
			foreach(lc, keys)
			{
				PendingKey *pk = lfirst(lc);

				if (pk->kind == PENDING_DELETE)
					deletes = lappend(deletes, pk);
				else
					updates = lappend(updates, pk);
			}
			if (deletes != NIL)
				apply_parent_action(def, deletes, def->on_delete, false);
			if (updates != NIL)
				apply_parent_action(def, updates, def->on_update, true);
		}
	}
	PG_FINALLY();
	{
		flush_depth--;
	}
	PG_END_TRY();

	SPI_finish();
	AtEOXact_GUC(true, nest);
	SetUserIdAndSecContext(save_userid, save_sec);
	caller_userid = prev_caller;
}

/* ----------------------------------------------------------------
 * Checks on splitdb's own connections
 * ---------------------------------------------------------------- */

/* a batch of keys of one referencing end, for fast_pass() */
typedef struct FastBatch
{
	RefDef	   *def;
	List	   *keys;
	UserMapping *mapping;
} FastBatch;

/*
 * checkconn_usable
 *		Whether keys of a referencing end may be checked on splitdb's own
 *		connection (checkconn.c): its parent is in another database that
 *		this transaction has not written to through postgres_fdw
 *		(fdwwatch.c).  A check there holds its locks until after the local
 *		commit, with no round trips of postgres_fdw's own.
 */
static bool
checkconn_usable(RefDef *def)
{
	return def->side == 'c' && OidIsValid(def->other_server) &&
		splitdb_check_connection && !IsInParallelMode() &&
		splitdb_fdwwatch_complete() &&
		!list_member_oid(fdw_written, def->other_server) &&
		!splitdb_checkconn_failed(def->other_server);
}

/*
 * fast_eligible
 *		Whether a batch of keys of an end may be checked on splitdb's own
 *		connection: checkconn_usable() and at least one key.
 */
static bool
fast_eligible(RefDef *def, List *keys)
{
	return keys != NIL && checkconn_usable(def);
}

/*
 * single_key_sql
 *		The lookup of one key on splitdb's own connection, which locks the
 *		row it finds: "SELECT 1 FROM t WHERE t.c1 = $1::type1 AND ... LIMIT
 *		1 FOR KEY SHARE OF t".  Each parameter is a key column's text,
 *		read by the input function of the type the column compares as.
 */
static char *
single_key_sql(RefDef *def)
{
	StringInfoData buf;
	MemoryContext old;

	if (def->single_sql != NULL)
		return def->single_sql;
	old = MemoryContextSwitchTo(def_cxt);
	initStringInfo(&buf);
	appendStringInfo(&buf, "SELECT 1 FROM %s t WHERE ", def->other_table);
	for (int i = 0; i < def->nkeys; i++)
		appendStringInfo(&buf, "%st.%s OPERATOR(pg_catalog.=) $%d::%s",
						 i > 0 ? " AND " : "", quote_identifier(def->other_cols[i]),
						 i + 1, def->other_types[i]);
	appendStringInfoString(&buf, " LIMIT 1 FOR KEY SHARE OF t");
	MemoryContextSwitchTo(old);
	def->single_sql = buf.data;
	return buf.data;
}

/*
 * remember_checked
 *		Keep keys checked on splitdb's own connection, for hand_over().
 */
static void
remember_checked(RefDef *def, List *keys)
{
	MemoryContext old = MemoryContextSwitchTo(xact_context());
	FastChecked *fc = palloc(sizeof(FastChecked));

	fc->def = def;
	fc->serverid = def->other_server;
	fc->writer = GetUserId();
	fc->keys = list_copy(keys);
	fast_checked = lappend(fast_checked, fc);
	MemoryContextSwitchTo(old);
}

/*
 * fast_check
 *		Check the batches of one user mapping in one pipeline on its own
 *		connection: one round trip for all of them.  Keys found are locked
 *		there until the end of the transaction; keys not found are checked
 *		again the usual way (flush_set), which reports them.
 */
static void
fast_check(List *batches, UserMapping *mapping)
{
	int			n = list_length(batches);
	SplitdbCheckStmt *stmts = palloc0(sizeof(SplitdbCheckStmt) * n);
	instr_time	start,
				duration;
	uint64		share;
	ListCell   *lc;

	foreach(lc, batches)
	{
		FastBatch  *b = lfirst(lc);
		SplitdbCheckStmt *st = &stmts[foreach_current_index(lc)];

		st->nparams = b->def->nkeys;
		if (list_length(b->keys) == 1)
		{
			st->sql = single_key_sql(b->def);
			st->values = (const char **) ((PendingKey *) linitial(b->keys))->old;
		}
		else
		{
			/* a small batch is an "= ANY" lookup, which plans fast; else a join */
			st->sql = small_batch_sql(b->def, list_length(b->keys), b->def->other_table,
									  b->def->other_cols, b->def->other_types, true, false);
			if (st->sql == NULL)
				st->sql = key_batch_sql(b->def, b->def->other_table, b->def->other_cols,
										b->def->other_types, true, false);
			st->values = array_texts(key_arrays(b->def, b->keys, false), b->def->nkeys);
		}
	}

	INSTR_TIME_SET_CURRENT(start);
	splitdb_checkconn_run(mapping, stmts, n, NULL);
	INSTR_TIME_SET_CURRENT(duration);
	INSTR_TIME_SUBTRACT(duration, start);
	share = INSTR_TIME_GET_MICROSEC(duration) / n;

	foreach(lc, batches)
	{
		FastBatch  *b = lfirst(lc);
		SplitdbCheckStmt *st = &stmts[foreach_current_index(lc)];
		int			nkeys = list_length(b->keys);
		bool	   *hit = palloc0(sizeof(bool) * (nkeys + 1));
		List	   *found = NIL;
		List	   *missing = NIL;
		ListCell   *kc;

		mark_hits(splitdb_remote_result_rows(st->result), nkeys, hit);
		PQclear(st->result);
		foreach(kc, b->keys)
		{
			if (hit[foreach_current_index(kc) + 1])
				found = lappend(found, lfirst(kc));
			else
				missing = lappend(missing, lfirst(kc));
		}
		splitdb_refstats_add(b->def->counter, list_length(found), 0, 1, share);
		if (found != NIL)
			remember_checked(b->def, found);
		if (missing != NIL)
			flush_set(b->def, missing);
	}
}

/* ----------------------------------------------------------------
 * Locks past the commit
 *
 * A referencing row becomes visible at the local commit; until then the
 * lock on its referenced row must hold, or a concurrent delete of that row
 * finds no referencing row and leaves one without it.  splitdb's own
 * connection ends its remote transaction after the local commit, but
 * postgres_fdw commits its own at pre-commit.  So the keys found on
 * postgres_fdw's connection are locked again on splitdb's own (hold_locks):
 * at pre-commit, while postgres_fdw's remote transaction still holds them
 * (FOR KEY SHARE does not conflict with FOR KEY SHARE, so no gap opens); a
 * row that only postgres_fdw's remote transaction sees (written through a
 * shim in this transaction) or that it locked more strongly, once
 * postgres_fdw has committed (late_xact_callback).  A key gone by then was
 * deleted by a concurrent transaction that won the race: this one fails.
 * ---------------------------------------------------------------- */

/* keys per statement of hold_locks() */
#define HOLD_CHUNK 10000

/*
 * remember_fdw_checked
 *		Keep the keys that a check on postgres_fdw's connection found
 *		(found[1..n], as positions() returns), for hold_locks().
 */
static void
remember_fdw_checked(RefDef *def, List *keys, bool *found)
{
	MemoryContext old = MemoryContextSwitchTo(xact_context());
	HeldKeys   *hk = palloc(sizeof(HeldKeys));
	ListCell   *lc;

	hk->def = def;
	hk->writer = OidIsValid(caller_userid) ? caller_userid : GetUserId();
	hk->nest_level = GetCurrentTransactionNestLevel();
	hk->keys = NIL;
	foreach(lc, keys)
	{
		if (found[foreach_current_index(lc) + 1])
			hk->keys = lappend(hk->keys, lfirst(lc));
	}
	if (hk->keys != NIL)
		fdw_checked = lappend(fdw_checked, hk);
	MemoryContextSwitchTo(old);
}

/*
 * hold_sql
 *		Lock the referenced rows of a batch of keys FOR KEY SHARE; returns
 *		the positions of the keys found.  skip_locked: leave out a row that
 *		postgres_fdw's remote transaction of this one locked more strongly
 *		(waiting for it would wait for ourselves).
 */
static char *
hold_sql(RefDef *def, bool skip_locked)
{
	return psprintf("SELECT k.i FROM %s JOIN %s t ON %s FOR KEY SHARE OF t%s",
					splitdb_refcheck_keys_from(def->nkeys, false), def->other_table,
					splitdb_refcheck_key_match("t", def->other_cols, def->other_types,
											   def->nkeys),
					skip_locked ? " SKIP LOCKED" : "");
}

/*
 * run_holds
 *		Lock the keys of a list of HeldKeys on splitdb's own connections,
 *		one pipeline per user mapping, at most HOLD_CHUNK keys a statement.
 *		Returns the keys not found, as HeldKeys.
 */
static List *
run_holds(List *held, bool skip_locked)
{
	List	   *chunks = NIL;
	List	   *missing = NIL;
	ListCell   *lc;

	/* one statement per chunk, cut in one walk of each list */
	foreach(lc, held)
	{
		HeldKeys   *hk = lfirst(lc);
		HeldKeys   *chunk = NULL;
		ListCell   *kc;

		foreach(kc, hk->keys)
		{
			if (chunk == NULL || list_length(chunk->keys) == HOLD_CHUNK)
			{
				chunk = palloc(sizeof(HeldKeys));
				*chunk = *hk;
				chunk->keys = NIL;
				chunks = lappend(chunks, chunk);
			}
			chunk->keys = lappend(chunk->keys, lfirst(kc));
		}
	}

	while (chunks != NIL)
	{
		HeldKeys   *first = linitial(chunks);
		UserMapping *mapping = enforcement_mapping(first->def->other_server,
												   first->writer, first->def->owner);
		List	   *group = NIL;
		List	   *rest = NIL;
		SplitdbCheckStmt *stmts;

		foreach(lc, chunks)
		{
			HeldKeys   *hk = lfirst(lc);

			if (enforcement_mapping(hk->def->other_server, hk->writer,
									hk->def->owner)->umid == mapping->umid)
				group = lappend(group, hk);
			else
				rest = lappend(rest, hk);
		}
		stmts = palloc0(sizeof(SplitdbCheckStmt) * list_length(group));
		foreach(lc, group)
		{
			HeldKeys   *hk = lfirst(lc);
			SplitdbCheckStmt *st = &stmts[foreach_current_index(lc)];

			st->sql = hold_sql(hk->def, skip_locked);
			st->nparams = hk->def->nkeys;
			st->values = array_texts(key_arrays(hk->def, hk->keys, false), hk->def->nkeys);
		}
		splitdb_checkconn_run(mapping, stmts, list_length(group), NULL);
		foreach(lc, group)
		{
			HeldKeys   *hk = lfirst(lc);
			SplitdbCheckStmt *st = &stmts[foreach_current_index(lc)];
			int			n = list_length(hk->keys);
			bool	   *hit = palloc0(sizeof(bool) * (n + 1));
			HeldKeys   *miss = NULL;
			ListCell   *kc;

			mark_hits(splitdb_remote_result_rows(st->result), n, hit);
			PQclear(st->result);
			splitdb_refstats_add(hk->def->counter, 0, 0, 1, 0);
			foreach(kc, hk->keys)
			{
				if (hit[foreach_current_index(kc) + 1])
					continue;
				if (miss == NULL)
				{
					miss = palloc(sizeof(HeldKeys));
					*miss = *hk;
					miss->keys = NIL;
					missing = lappend(missing, miss);
				}
				miss->keys = lappend(miss->keys, lfirst(kc));
			}
		}
		chunks = rest;
	}
	return missing;
}

/*
 * still_carried
 *		The keys of hk that a row of the referencing end still carries, as
 *		the owner of its relation: a row deleted or changed later in the
 *		transaction (by a CASCADE of its own delete of the referenced row,
 *		say) needs no lock any more.
 */
static List *
still_carried(HeldKeys *hk)
{
	RefDef	   *def = hk->def;
	Oid			save_userid;
	int			save_sec;
	Oid			prev_caller = caller_userid;
	int			nest;
	bool	   *carried;
	List	   *keys = NIL;
	ListCell   *lc;

	GetUserIdAndSecContext(&save_userid, &save_sec);
	caller_userid = hk->writer;
	SetUserIdAndSecContext(def->owner,
						   save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_NOFORCE_RLS);
	nest = pin_search_path();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	carried = positions(def, hk->keys, false, false, false);
	SPI_finish();
	AtEOXact_GUC(true, nest);
	SetUserIdAndSecContext(save_userid, save_sec);
	caller_userid = prev_caller;

	foreach(lc, hk->keys)
	{
		if (carried[foreach_current_index(lc) + 1])
			keys = lappend(keys, lfirst(lc));
	}
	return keys;
}

/*
 * hold_locks
 *		At pre-commit, before postgres_fdw commits: lock again on splitdb's
 *		own connections the keys found on postgres_fdw's; what is not found
 *		there yet, and still carried by a row here, waits for
 *		late_xact_callback().
 */
static void
hold_locks(void)
{
	MemoryContext old;
	List	   *missing;
	ListCell   *lc;

	if (fdw_checked == NIL)
		return;
	missing = run_holds(fdw_checked, true);
	fdw_checked = NIL;
	foreach(lc, missing)
	{
		HeldKeys   *hk = lfirst(lc);

		hk->keys = still_carried(hk);
		if (hk->keys == NIL)
			continue;
		old = MemoryContextSwitchTo(xact_context());
		hold_late = lappend(hold_late, hk);
		MemoryContextSwitchTo(old);
	}
}

/*
 * report_not_held
 *		A key checked earlier in the transaction is gone at commit: a
 *		concurrent transaction deleted or changed the referenced row once
 *		postgres_fdw had committed, and won the race.
 */
static void
report_not_held(HeldKeys *hk)
{
	RefDef	   *def = hk->def;
	PendingKey *pk = linitial(hk->keys);

	splitdb_refstats_add(def->counter, 0, 1, 0, 0);
	ereport(ERROR,
			(errcode(IsolationUsesXactSnapshot() ? ERRCODE_T_R_SERIALIZATION_FAILURE :
					 ERRCODE_FOREIGN_KEY_VIOLATION),
			 errmsg("insert or update on table \"%s\" violates foreign key constraint \"%s\"",
					own_name(def), def->conname),
			 errdetail("Key %s=%s is no longer present in table %s of database \"%s\": a concurrent transaction deleted or changed it before this one committed.",
					   key_columns_text(def->own_cols, def->nkeys),
					   key_values_text(pk->old, def->nkeys),
					   def->other_table, def->other_database),
			 errhint("The referenced table is in another database since the split; insert the referenced row there first, or retry the transaction.")));
}

/*
 * late_xact_callback
 *		At pre-commit, after postgres_fdw has committed its remote
 *		transactions: lock what hold_locks() could not, now that those
 *		rows are committed, or fail the commit.
 *
 * Transaction callbacks run newest first.  This one is registered when
 * the library loads, before postgres_fdw's (registered with its first
 * connection), so it runs after it; unless postgres_fdw was loaded first,
 * in which case a row that only its remote transaction could see cannot be
 * held, and the commit is refused rather than left unprotected.
 */
static void
late_xact_callback(XactEvent event, void *arg)
{
	List	   *late = hold_late;
	List	   *missing;

	if ((event != XACT_EVENT_PRE_COMMIT && event != XACT_EVENT_PARALLEL_PRE_COMMIT) ||
		late == NIL)
		return;
	hold_late = NIL;

	/*
	 * postgres_fdw has not committed yet: a key not found is one that only
	 * its remote transaction sees (the writes of the transaction during
	 * which splitdb loaded went unseen, so fdw_modified cannot tell).
	 */
	if (fdw_loaded_first)
	{
		HeldKeys   *hk = linitial(late);

		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot hold the lock on key %s=%s of table %s past the commit",
						key_columns_text(hk->def->other_cols, hk->def->nkeys),
						key_values_text(((PendingKey *) linitial(hk->keys))->old,
										hk->def->nkeys),
						hk->def->other_table),
				 errdetail("This transaction wrote or locked that row through postgres_fdw, which this session loaded before splitdb, so postgres_fdw commits after splitdb's last check."),
				 errhint("Add splitdb to shared_preload_libraries or session_preload_libraries, or write the referenced row in a transaction of its own.")));
	}
	missing = run_holds(late, false);
	if (missing != NIL)
		report_not_held(linitial(missing));
}

/*
 * splitdb_refcheck_init
 *		From _PG_init: the transaction callback that must run after
 *		postgres_fdw's (see late_xact_callback).
 */
void
splitdb_refcheck_init(void)
{
	char	   *path;

	/* in the postmaster, no backend can have used postgres_fdw yet */
	if (!process_shared_preload_libraries_in_progress)
	{
		path = psprintf("%s/postgres_fdw%s", pkglib_path, DLSUFFIX);
		if (dlopen(path, RTLD_NOW | RTLD_NOLOAD) != NULL)
			fdw_loaded_first = true;
		pfree(path);
	}
	RegisterXactCallback(late_xact_callback, NULL);
}

/*
 * fast_check_one
 *		fast_check() for the keys of one end.
 */
static void
fast_check_one(RefDef *def, List *keys)
{
	FastBatch  *b = palloc(sizeof(FastBatch));

	b->def = def;
	b->keys = keys;
	b->mapping = enforcement_mapping(def->other_server, GetUserId(), def->owner);
	fast_check(list_make1(b), b->mapping);
}

/* the lookup sent ahead for an end, or NULL */
static AheadSent *
find_ahead_sent(RefDef *def)
{
	ListCell   *lc;

	foreach(lc, ahead_sent)
	{
		AheadSent  *as = lfirst(lc);

		if (as->reference_id == def->reference_id && as->side == def->side &&
			as->relid == def->relid)
			return as;
	}
	return NULL;
}

/*
 * trigger_fires
 *		Whether a trigger fires in this session, as PostgreSQL decides
 *		(session_replication_role and ENABLE/DISABLE TRIGGER).
 */
static bool
trigger_fires(Trigger *tg)
{
	if (SessionReplicationRole == SESSION_REPLICATION_ROLE_REPLICA)
		return tg->tgenabled == TRIGGER_FIRES_ON_REPLICA ||
			tg->tgenabled == TRIGGER_FIRES_ALWAYS;
	return tg->tgenabled == TRIGGER_FIRES_ON_ORIGIN ||
		tg->tgenabled == TRIGGER_FIRES_ALWAYS;
}

/*
 * ahead_key
 *		The key of the row for an end whose lookup may go ahead: a
 *		referencing end, with its parent in another database reachable on
 *		splitdb's own connection, whose key has no NULL (those the AFTER
 *		trigger decides) and, for an update, changed.  NULL when it may
 *		not.
 */
static char **
ahead_key(RefDef *def, TriggerData *td)
{
	TupleTableSlot *slot = td->tg_trigslot;
	char	  **texts;

	if (def->side != 'c' || def->shim_deferrable || find_ahead_sent(def) != NULL ||
		origin_skips(def) || !checkconn_usable(def))
		return NULL;
	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
	{
		slot = td->tg_newslot;
		if (keys_equal(def, td->tg_trigslot, slot))
			return NULL;
	}
	texts = palloc(sizeof(char *) * def->nkeys);
	return key_texts(def, slot, texts) == 0 ? texts : NULL;
}

/*
 * send_ahead
 *		BEFORE ROW trigger of a referencing end: send the lookups of the
 *		row's keys to the parents' databases now, on splitdb's own
 *		connections, so that the other servers find and lock the rows
 *		while this one writes its own; fast_pass() takes the answers.  The
 *		first such trigger of a row sends for every end of the relation
 *		whose BEFORE trigger fires (fn_oid is the trigger function): one
 *		pipeline and one sync per connection.  At most one key per end is
 *		out at a time, so a statement of many rows sends only its first.
 *
 * The keys sent are only a guess: a later BEFORE trigger may change them,
 * or drop the row.  fast_pass() uses an answer only for a key the
 * statement queued, and only when the row was found; else the key is
 * checked as usual.  A guess that was wrong leaves a parent row locked FOR
 * KEY SHARE until commit, which only makes a concurrent delete of it wait.
 */
static void
send_ahead(TriggerData *td, Oid fn_oid)
{
	TriggerDesc *trigdesc = td->tg_relation->trigdesc;
	int			event = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ?
		TRIGGER_TYPE_UPDATE : TRIGGER_TYPE_INSERT;
	int			n = 0;
	RefDef	  **defs;
	char	 ***keys;
	UserMapping **mappings;
	bool	   *done;
	SplitdbCheckStmt *stmts;
	int		   *which;
	uint64	   *ids;
	MemoryContext old;

	/* an earlier BEFORE trigger of the row sent for this end too */
	if (trigdesc == NULL || find_ahead_sent(get_def(td)) != NULL)
		return;
	defs = palloc(sizeof(RefDef *) * trigdesc->numtriggers);
	keys = palloc(sizeof(char **) * trigdesc->numtriggers);
	mappings = palloc(sizeof(UserMapping *) * trigdesc->numtriggers);
	for (int i = 0; i < trigdesc->numtriggers; i++)
	{
		Trigger    *tg = &trigdesc->triggers[i];
		RefDef	   *def;

		if (tg->tgfoid != fn_oid || !trigger_fires(tg) ||
			!TRIGGER_TYPE_MATCHES(tg->tgtype, TRIGGER_TYPE_ROW, TRIGGER_TYPE_BEFORE, event))
			continue;
		def = get_def_for(tg, td->tg_relation);
		if ((keys[n] = ahead_key(def, td)) == NULL)
			continue;
		defs[n] = def;
		mappings[n] = enforcement_mapping(def->other_server, GetUserId(), def->owner);
		n++;
	}

	/* one pipeline per connection */
	done = palloc0(sizeof(bool) * Max(n, 1));
	stmts = palloc0(sizeof(SplitdbCheckStmt) * Max(n, 1));
	which = palloc(sizeof(int) * Max(n, 1));
	ids = palloc(sizeof(uint64) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		int			m = 0;

		if (done[i])
			continue;
		for (int j = i; j < n; j++)
		{
			if (done[j] || mappings[j]->umid != mappings[i]->umid)
				continue;
			done[j] = true;
			stmts[m].sql = single_key_sql(defs[j]);
			stmts[m].nparams = defs[j]->nkeys;
			stmts[m].values = (const char **) keys[j];
			which[m++] = j;
		}
		splitdb_checkconn_send_ahead(mappings[i], stmts, m, ids);

		/* what went out, remembered for the transaction */
		old = MemoryContextSwitchTo(xact_context());
		for (int k = 0; k < m; k++)
		{
			RefDef	   *def = defs[which[k]];
			AheadSent  *as;

			if (ids[k] == 0)
				continue;
			as = palloc(sizeof(AheadSent));
			as->reference_id = def->reference_id;
			as->side = def->side;
			as->relid = def->relid;
			as->id = ids[k];
			as->ident = key_ident(PENDING_CHECK, keys[which[k]], def->nkeys);
			ahead_sent = lappend(ahead_sent, as);
		}
		MemoryContextSwitchTo(old);
	}
}

/* free an entry of ahead_sent */
static void
free_ahead_sent(AheadSent *as)
{
	pfree(as->ident);
	pfree(as);
}

/* the lookups sent ahead are not wanted: their answers are dropped unread */
static void
forget_ahead(void)
{
	ListCell   *lc;

	foreach(lc, ahead_sent)
	{
		AheadSent  *as = lfirst(lc);

		splitdb_checkconn_forget_ahead(as->id);
		free_ahead_sent(as);
	}
	list_free(ahead_sent);
	ahead_sent = NIL;
}

/*
 * take_queued
 *		Take the key of an ident out of a queue; NULL when it is not there.
 */
static PendingKey *
take_queued(PendingSet *set, char *ident)
{
	ListCell   *lc;

	if (set->seen == NULL || hash_search(set->seen, &ident, HASH_FIND, NULL) == NULL)
		return NULL;
	foreach(lc, set->keys)
	{
		PendingKey *pk = lfirst(lc);

		if (strcmp(pk->ident, ident) == 0)
		{
			set->keys = foreach_delete_current(set->keys, lc);
			hash_search(set->seen, &ident, HASH_REMOVE, NULL);
			return pk;
		}
	}
	return NULL;
}

/* a queued key whose lookup went out ahead, for fast_pass() */
typedef struct AheadKey
{
	RefDef	   *def;
	PendingKey *pk;
	uint64		id;
} AheadKey;

/*
 * match_ahead
 *		The queued key of an end whose lookup went out ahead, taken out of
 *		its queue, or NULL: then the answer is not wanted.
 */
static AheadKey *
match_ahead(RefDef *def)
{
	AheadSent  *as = find_ahead_sent(def);
	PendingKey *pk;
	AheadKey   *a;
	MemoryContext old;

	if (as == NULL || def->relayed || !fast_eligible(def, def->now.keys) ||
		(pk = take_queued(&def->now, as->ident)) == NULL)
		return NULL;
	a = palloc(sizeof(AheadKey));
	a->def = def;
	a->pk = pk;
	a->id = as->id;
	old = MemoryContextSwitchTo(xact_context());
	ahead_sent = list_delete_ptr(ahead_sent, as);
	MemoryContextSwitchTo(old);
	free_ahead_sent(as);
	return a;
}

/*
 * take_ahead_answers
 *		The answers to the lookups sent ahead for queued keys: a key found
 *		is locked there, and remembered like the keys of fast_check(); a
 *		key not found (or whose answer was lost) is checked again the usual
 *		way, which reports it.
 */
static void
take_ahead_answers(List *aheads)
{
	ListCell   *lc;

	foreach(lc, aheads)
	{
		AheadKey   *a = lfirst(lc);
		instr_time	start,
					duration;
		PGresult   *res;
		bool		found;

		INSTR_TIME_SET_CURRENT(start);
		res = splitdb_checkconn_take_ahead(a->id, NULL);
		INSTR_TIME_SET_CURRENT(duration);
		INSTR_TIME_SUBTRACT(duration, start);
		found = (res != NULL && PQntuples(res) > 0);
		PQclear(res);
		if (found)
		{
			splitdb_refstats_add(a->def->counter, 1, 0, 1,
								 INSTR_TIME_GET_MICROSEC(duration));
			remember_checked(a->def, list_make1(a->pk));
		}
		else
			flush_set(a->def, list_make1(a->pk));
	}
}

/*
 * fast_pass
 *		Check the queued keys that may be checked on splitdb's own
 *		connections (fast_eligible), grouped per user mapping, and take the
 *		answers to the lookups sent ahead for them.  Returns true when it
 *		checked any.
 */
static bool
fast_pass(bool at_commit)
{
	List	   *batches = NIL;
	List	   *aheads = NIL;

	for (RefDef *def = all_defs; def != NULL; def = def->next)
	{
		/* a key sent ahead is checked by its answer, if it was queued */
		AheadKey   *a = ahead_sent != NIL ? match_ahead(def) : NULL;

		if (a != NULL)
			aheads = lappend(aheads, a);

		for (int which = 0; which < (at_commit ? 2 : 1); which++)
		{
			PendingSet *set = which == 0 ? &def->now : &def->at_commit;
			FastBatch  *b;

			if (!fast_eligible(def, set->keys))
				continue;
			b = palloc(sizeof(FastBatch));
			b->def = def;
			b->keys = set->keys;
			b->mapping = enforcement_mapping(def->other_server, GetUserId(), def->owner);
			memset(set, 0, sizeof(PendingSet));
			batches = lappend(batches, b);
		}
	}
	/* what no queued key matched: a row dropped, a key changed, or not queued yet */
	forget_ahead();
	if (batches == NIL && aheads == NIL)
		return false;

	/* the answers sent ahead are read with these pipelines */
	while (batches != NIL)
	{
		UserMapping *mapping = ((FastBatch *) linitial(batches))->mapping;
		List	   *group = NIL;
		List	   *rest = NIL;
		ListCell   *lc;

		foreach(lc, batches)
		{
			FastBatch  *b = lfirst(lc);

			if (b->mapping->umid == mapping->umid)
				group = lappend(group, b);
			else
				rest = lappend(rest, b);
		}
		fast_check(group, mapping);
		batches = rest;
	}
	take_ahead_answers(aheads);
	return true;
}

/*
 * hand_over
 *		Before a write to a server through postgres_fdw: check again, on
 *		postgres_fdw's connection, the keys checked on splitdb's own, so
 *		that postgres_fdw's remote transaction holds their locks, then end
 *		splitdb's.  Also after a remote error ended splitdb's transaction,
 *		whose locks are gone.
 */
static void
hand_over(Oid serverid)
{
	List	   *mine = NIL;
	ListCell   *lc;

	foreach(lc, fast_checked)
	{
		FastChecked *fc = lfirst(lc);

		if (fc->serverid != serverid)
			continue;
		mine = lappend(mine, fc);
		fast_checked = foreach_delete_current(fast_checked, lc);
	}
	foreach(lc, mine)
	{
		FastChecked *fc = lfirst(lc);
		Oid			save_userid;
		int			save_sec;

		/* as the writer of the first check, so through the same mapping */
		GetUserIdAndSecContext(&save_userid, &save_sec);
		SetUserIdAndSecContext(fc->writer, save_sec | SECURITY_LOCAL_USERID_CHANGE);
		flush_set(fc->def, fc->keys);
		SetUserIdAndSecContext(save_userid, save_sec);
	}
	splitdb_checkconn_end_server(serverid);
}

/*
 * splitdb_refcheck_fdw_writes
 *		The transaction is about to write to a server through postgres_fdw
 *		(a shim, splitdb's own actions, any foreign table: fdwwatch.c), or
 *		a check on splitdb's connection to it failed.  From now on checks
 *		of keys there take postgres_fdw's connection, which sees those
 *		writes; the locks taken so far move there first.
 */
void
splitdb_refcheck_fdw_writes(Oid serverid)
{
	mark_modified(serverid);
	fdw_uses(serverid);
}

/*
 * mark_modified
 *		postgres_fdw's remote transaction on a server is about to change or
 *		lock rows there (see fdw_modified).
 */
static void
mark_modified(Oid serverid)
{
	MemoryContext old;

	if (list_member_oid(fdw_modified, serverid))
		return;
	old = MemoryContextSwitchTo(xact_context());
	fdw_modified = lappend_oid(fdw_modified, serverid);
	MemoryContextSwitchTo(old);
}

/*
 * fdw_uses
 *		The transaction is about to use a server through postgres_fdw:
 *		later checks of keys there take postgres_fdw's connection, and
 *		the locks taken so far on splitdb's own move there first.
 */
static void
fdw_uses(Oid serverid)
{
	MemoryContext old;

	if (list_member_oid(fdw_written, serverid))
		return;
	old = MemoryContextSwitchTo(xact_context());
	fdw_written = lappend_oid(fdw_written, serverid);
	MemoryContextSwitchTo(old);
	if (splitdb_checkconn_active(serverid) || splitdb_checkconn_failed(serverid))
		hand_over(serverid);
}

/*
 * flush_all
 *		Work off every queue of statement-time keys (and, at commit, the
 *		commit-time ones).  Returns true when anything was worked off: the
 *		actions may have queued more.
 */
static bool
flush_all(bool at_commit)
{
	bool		any = fast_pass(at_commit);

	for (RefDef *def = all_defs; def != NULL; def = def->next)
	{
		List	   *keys = def->now.keys;

		if (keys != NIL)
		{
			memset(&def->now, 0, sizeof(PendingSet));
			flush_set(def, keys);
			any = true;
		}
		if (at_commit && def->at_commit.keys != NIL)
		{
			keys = def->at_commit.keys;
			memset(&def->at_commit, 0, sizeof(PendingSet));
			flush_set(def, keys);
			any = true;
		}
	}
	return any;
}

/*
 * statement_writes
 *		Whether relid (or a table it is a partition of) is a table that the
 *		statement the client sent writes: a shim's own rows.  Rows of other
 *		tables were changed in turn, by foreign keys (which queue their
 *		rows' triggers in the same statement) or by triggers.
 */
static bool
statement_writes(Oid relid)
{
	ListCell   *lc;

	if (ActivePortal == NULL)
		return false;
	foreach(lc, ActivePortal->stmts)
	{
		PlannedStmt *ps = (PlannedStmt *) lfirst(lc);
		ListCell   *rc;

		if (!IsA(ps, PlannedStmt) || ps->commandType == CMD_SELECT ||
			ps->commandType == CMD_UTILITY)
			continue;
		foreach(rc, ps->resultRelations)
		{
			RangeTblEntry *rte = rt_fetch(lfirst_int(rc), ps->rtable);

			if (relation_is_or_under(relid, rte->relid))
				return true;
		}
	}
	return false;
}

/*
 * take_relayed
 *		After an UPDATE or DELETE through a shim: queue here the keys that
 *		the other database left to this one for the rows that its foreign
 *		keys and triggers changed in turn (the shim's own rows come through
 *		the shim's triggers).
 */
static void
take_relayed(Relation shim)
{
	ForeignServer *server = GetForeignServer(GetForeignTable(RelationGetRelid(shim))->serverid);
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(server->servername)};
	PGconn	   *conn;
	PGresult   *res;
	ListCell   *lc;
	bool		any;
	int			nest;

	/* nothing to take where the sibling holds no end */
	nest = pin_search_path();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT FROM splitdb.reference_end WHERE own_server = $1::pg_catalog.name"
							  " OR other_server = $1::pg_catalog.name LIMIT 1",
							  1, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read splitdb.reference_end");
	any = (SPI_processed > 0);
	SPI_finish();
	AtEOXact_GUC(true, nest);
	if (!any)
		return;

	conn = fdw_connection(server->serverid, GetUserId(), shim->rd_rel->relowner);
	res = splitdb_remote_exec(conn,
							  "SELECT r.reference_id, r.side, r.kind, r.old_key, r.new_key"
							  " FROM splitdb.reference_relayed() r",
							  0, NULL, NULL);
	foreach(lc, splitdb_remote_result_rows(res))
		relay_key(NULL, lfirst(lc));
	PQclear(res);
}

/* ----------------------------------------------------------------
 * Trigger functions
 * ---------------------------------------------------------------- */

/*
 * splitdb_reference_row
 *		AFTER ROW trigger of a reference end: queue the key.  BEFORE INSERT
 *		OR UPDATE ROW trigger of a referencing end: send its lookup ahead
 *		(send_ahead), and keep the row as it is.
 */
Datum
splitdb_reference_row(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	RefDef	   *def;
	bool		relay;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		TRIGGER_FIRED_INSTEAD(td->tg_event) ||
		(TRIGGER_FIRED_BEFORE(td->tg_event) && TRIGGER_FIRED_BY_DELETE(td->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("splitdb.reference_row() must be fired AFTER ... FOR EACH ROW, or BEFORE INSERT OR UPDATE ... FOR EACH ROW")));

	if (TRIGGER_FIRED_BEFORE(td->tg_event))
	{
		send_ahead(td, fcinfo->flinfo->fn_oid);
		return PointerGetDatum(TRIGGER_FIRED_BY_UPDATE(td->tg_event) ?
							   td->tg_newtuple : td->tg_trigtuple);
	}
	def = get_def(td);
	relay = origin_skips(def);
	if (relay && !relaying && statement_writes(RelationGetRelid(td->tg_relation)))
		return PointerGetDatum(NULL);	/* the writer's shim triggers saw it */
	if (def->side == 'c')
		queue_child(def, td, relay);
	else
		queue_parent(def, td, relay);
	return PointerGetDatum(NULL);
}

/*
 * splitdb_shim_statement
 *		AFTER UPDATE OR DELETE statement trigger of every shim: take back
 *		what the other database's foreign keys and triggers changed in turn
 *		(take_relayed), and work it off.
 */
Datum
splitdb_shim_statement(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_STATEMENT(td->tg_event) ||
		td->tg_relation->rd_rel->relkind != RELKIND_FOREIGN_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("splitdb.shim_statement() must be fired FOR EACH STATEMENT on a foreign table")));
	register_callbacks();
	take_relayed(td->tg_relation);
	if (flush_depth > 0)
		return PointerGetDatum(NULL);	/* the running flush goes on */
	while (flush_all(false))
		;
	return PointerGetDatum(NULL);
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
				 errmsg("splitdb.reference_flush() must be fired FOR EACH STATEMENT")));

	if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
	{
		RefDef	   *def = get_def(td);

		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot truncate a table referenced in a foreign key constraint"),
				 errdetail("Table %s of database \"%s\" references table \"%s\" through cross-service reference \"%s\".",
						   def->other_table, def->other_database,
						   RelationGetRelationName(td->tg_relation), def->conname),
				 errhint("Delete the rows instead, or set the reference's mode to off with splitdb_reference_mode(" INT64_FORMAT ", 'off') and check splitdb_orphans() afterwards.",
						 def->reference_id)));
	}

	register_callbacks();
	if (flush_depth > 0)
		return PointerGetDatum(NULL);	/* the running flush goes on */
	while (flush_all(false))
		;
	return PointerGetDatum(NULL);
}

/*
 * splitdb_reference_relay
 *		splitdb.reference_relay(statement, params): run an action statement
 *		that another database's enforcement applies here, and hand back the
 *		keys that this database's triggers skipped because the write came
 *		from that database.
 *
 * A write that comes from another database's enforcement carries its
 * splitdb.origin, and the ends here whose other end is that database (or
 * every end, for the source) skip it: that database enforces them, in the
 * transaction that sees its own writes.  For a shim write it does so with
 * its shim's triggers.  An action statement (CASCADE, SET NULL, SET
 * DEFAULT) passes no shim, so the rows it changes here, and those that
 * foreign keys here change in turn, come back as rows of this function:
 * the caller queues them on its own ends, and the chain of actions goes on
 * there.
 *
 * params holds the statement's text[] parameters in text form.  Returns
 * first the statement's own rows (reference_id NULL, the columns in
 * old_key), then one row per skipped key: reference_id, side, kind ('c'
 * check, 'd' delete, 'u' update), old_key and new_key.  The statement runs
 * with the caller's rights.
 */
Datum
splitdb_reference_relay(PG_FUNCTION_ARGS)
{
	char	   *sql = text_to_cstring(PG_GETARG_TEXT_PP(0));
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	  **texts;
	Oid		   *types;
	Datum	   *values;
	int			nparams;
	bool		was_relaying = relaying;
	int			rc = 0;
	ListCell   *lc;

	InitMaterializedSRF(fcinfo, 0);
	register_callbacks();
	texts = splitdb_catalog_text_items(PG_GETARG_ARRAYTYPE_P(1), &nparams);
	types = palloc(sizeof(Oid) * Max(nparams, 1));
	values = palloc(sizeof(Datum) * Max(nparams, 1));
	for (int i = 0; i < nparams; i++)
	{
		if (texts[i] == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("parameter %d of splitdb.reference_relay() is null", i + 1),
					 errhint("splitdb's enforcement in another database calls this function; pass each parameter of the statement as a text[] in text form.")));
		types[i] = TEXTARRAYOID;
		values[i] = OidInputFunctionCall(F_ARRAY_IN, texts[i], TEXTOID, -1);
	}

	/* search_path is pinned by the function's SET clause */
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	relaying = true;
	PG_TRY();
	{
		SPIPlanPtr	plan = SPI_prepare(sql, nparams, types);

		if (plan == NULL)
			elog(ERROR, "could not prepare \"%s\": %s", sql,
				 SPI_result_code_string(SPI_result));

		/*
		 * With the latest snapshot, as PostgreSQL's foreign keys act: the
		 * caller's remote transaction is REPEATABLE READ, and a referencing
		 * row committed after its snapshot (while the caller waited for the
		 * lock on the referenced row) must be seen and acted on.
		 */
		CommandCounterIncrement();
		rc = SPI_execute_snapshot(plan, values, NULL, GetLatestSnapshot(),
								  InvalidSnapshot, false, true, 0);
	}
	PG_FINALLY();
	{
		relaying = was_relaying;
	}
	PG_END_TRY();
	if (rc < 0)
		elog(ERROR, "could not run \"%s\": %s", sql, SPI_result_code_string(rc));

	/* the statement's own rows */
	foreach(lc, splitdb_catalog_result_rows())
	{
		Datum		out[5] = {0};
		bool		nulls[5] = {true, true, true, false, true};

		out[3] = splitdb_catalog_text_array_datum(lfirst(lc), SPI_tuptable->tupdesc->natts);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, nulls);
	}
	SPI_finish();

	emit_relayed(rsinfo);
	return (Datum) 0;
}

/*
 * emit_relayed
 *		Return the keys left to the caller as rows of rsinfo's tuplestore,
 *		and forget them here.
 */
static void
emit_relayed(ReturnSetInfo *rsinfo)
{
	for (RefDef *def = all_defs; def != NULL; def = def->next)
	{
		ListCell   *lc;

		foreach(lc, def->relay.keys)
		{
			PendingKey *pk = lfirst(lc);
			Datum		out[5];
			bool		nulls[5] = {false, false, false, false, pk->new == NULL};

			out[0] = Int64GetDatum(def->reference_id);
			out[1] = CharGetDatum(def->side);
			out[2] = CharGetDatum("cdu"[pk->kind]);
			out[3] = splitdb_catalog_text_array_datum(pk->old, def->nkeys);
			if (pk->new != NULL)
				out[4] = splitdb_catalog_text_array_datum(pk->new, def->nkeys);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, nulls);
		}
		memset(&def->relay, 0, sizeof(PendingSet));
	}
}

/*
 * splitdb_reference_relayed
 *		splitdb.reference_relayed(): the keys that the references here
 *		skipped, since the last call, for rows that the foreign keys and
 *		triggers of this database changed in turn while applying a write
 *		that came through a shim: rows as splitdb.reference_relay()
 *		returns them after the statement's own.
 */
Datum
splitdb_reference_relayed(PG_FUNCTION_ARGS)
{
	InitMaterializedSRF(fcinfo, 0);
	register_callbacks();
	emit_relayed((ReturnSetInfo *) fcinfo->resultinfo);
	return (Datum) 0;
}
