/*-------------------------------------------------------------------------
 *
 * refcheck_lookup.c
 *	  The lookups of reference checks in another database, as the owner of
 *	  the table they read there.
 *
 * PostgreSQL runs a foreign key's lookups as the owner of the table they
 * read (ri_triggers.c, ri_PerformCheck): the referenced table's owner for
 * the check of a referencing row, the referencing table's for the NO
 * ACTION and RESTRICT checks of a referenced row, with row-level security
 * not forced.  A writer needs no right on the table read, and the table's
 * policies never hide a row from the check.  When that table is in another
 * database, the database that enforces the reference asks that one for the
 * lookup with splitdb.reference_lookup(), which runs it as the owner of the
 * table there.  Reading as another role is a right, so the receiving end
 * grants it as splitdb.reference_relay_action() grants an action
 * (refcheck_act.c):
 *
 * - the request names a reference, the end whose table is read, a few
 *   flags (lock, first only, skip locked, same types, latest snapshot) and
 *   the keys, never a statement: the receiving end makes the lookup itself
 *   from its own row of that end (whose table must be here, not a shim)
 *   with the functions the issuing end uses (refcheck_sql.c), plans it
 *   once per reference, end, flags and shape (one key, "= ANY", the join)
 *   and keeps the plan for the life of the backend;
 * - the session must have proved its origin (origin.c), and the request
 *   must carry a MAC under the session's key over a counter that only
 *   grows and the whole request: a client cannot call it, nor code that
 *   runs inside the proved session, nor can a request be made twice.  A
 *   refused request runs nothing: no row is locked.
 *
 * The function returns the positions (1-based) of the keys found, as the
 * lookups of refcheck_sql.c return them, so the callers read its rows as
 * before.  splitdb's own check connections (checkconn.c) are proved as they
 * open, and a lookup on them is bound to its connection as it is sent
 * (lookup_bind: the counter and MAC belong to that session), so their
 * pipelines and the lookups sent ahead keep their round trips.  On
 * postgres_fdw's connection the lookup goes out when that connection is
 * proved (the transaction has not read or written another foreign table of
 * that server); on a connection that proved nothing (no secret shared, or
 * that transaction) the issuing end sends the lookup of today, which runs
 * with the mapped role's rights.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/refcheck_lookup.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"

#include "metadata/catalog.h"
#include "reference/origin.h"
#include "reference/refcheck_int.h"
#include "reference/refstats.h"
#include "remote/checkconn.h"
#include "remote/prepared.h"
#include "remote/remote.h"
#include "compat.h"

PG_FUNCTION_INFO_V1(splitdb_reference_lookup);

/* the statement that carries a request; its parameters: LookupRequest.values */
#define LOOKUP_SQL \
	"SELECT l.p FROM splitdb.reference_lookup($1::pg_catalog.int8," \
	" $2::pg_catalog.\"char\", $3::pg_catalog.int4, $4::pg_catalog.text[]," \
	" $5::pg_catalog.text[], $6::pg_catalog.int8, $7::pg_catalog.text) l(p)"
#define LOOKUP_NPARAMS 7

/* ----------------------------------------------------------------
 * The request
 * ---------------------------------------------------------------- */

/*
 * request_text
 *		The text a lookup request's MAC covers: its counter, reference, end
 *		read, flags, and its two arrays in array_out()'s form, each after its
 *		length in bytes.  "lookup" keeps it apart from an action's request.
 */
static char *
request_text(int64 counter, int64 reference_id, char side, int flags,
			 const char *collations, const char *keys)
{
	return psprintf("splitdb lookup " INT64_FORMAT " " INT64_FORMAT " %c %d %zu %s %zu %s",
					counter, reference_id, side, flags, strlen(collations),
					collations, strlen(keys), keys);
}

/*
 * A lookup as the issuing end sends it: the request's parts, and the lookup
 * of today for a connection that proved nothing.
 */
typedef struct LookupRequest
{
	int64		reference_id;
	char		side[2];		/* the end read there, as text */
	char		flags[12];
	const char *collations;		/* text[] in array_out()'s form */
	const char *keys;			/* text[] of the columns' text[] literals */
	const char *fallback_sql;	/* NULL: the caller falls back itself */
	int			fallback_nparams;
	const char **fallback_values;
	const char *values[LOOKUP_NPARAMS];
} LookupRequest;

/* the end of the reference opposite def's */
static char
other_side(RefDef *def)
{
	return def->side == 'c' ? 'p' : 'c';
}

/*
 * outer_literal
 *		A text[] literal of n column literals (each a text[] literal, so
 *		always double-quoted), as array_out() writes it: elements quoted,
 *		'"' and '\' escaped.
 */
static char *
outer_literal(const char *const *columns, int n)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (int i = 0; i < n; i++)
	{
		if (i > 0)
			appendStringInfoChar(&buf, ',');
		appendStringInfoChar(&buf, '"');
		for (const char *c = columns[i]; *c != '\0'; c++)
		{
			if (*c == '"' || *c == '\\')
				appendStringInfoChar(&buf, '\\');
			appendStringInfoChar(&buf, *c);
		}
		appendStringInfoChar(&buf, '"');
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/*
 * collations_text
 *		The request's collations: for a lookup of referencing rows that
 *		compares with the referenced key's types, the referenced key's
 *		nondeterministic collations by name (NULL elements for the others);
 *		else none.
 */
static const char *
collations_text(RefDef *def, char side, int flags)
{
	char	  **names;
	bool		any = false;

	if (side != 'c' || (flags & SPLITDB_LOOKUP_SAME_TYPES) || def->fk_collates == NULL)
		return "{}";
	names = palloc0(sizeof(char *) * def->nkeys);
	for (int i = 0; i < def->nkeys; i++)
		if (def->fk_collates[i] != NULL)
		{
			names[i] = def->fk_collates[i] + strlen(" COLLATE ");
			any = true;
		}
	if (!any)
		return "{}";
	return OidOutputFunctionCall(F_ARRAY_OUT,
								 splitdb_catalog_text_array_datum(names, def->nkeys));
}

/*
 * make_request
 *		A request for def's lookup of the end side, with flags
 *		(SPLITDB_LOOKUP_*) and the keys as one text[] literal per key column.
 */
static LookupRequest *
make_request(RefDef *def, char side, int flags, const char *const *columns)
{
	LookupRequest *rq = palloc0(sizeof(LookupRequest));

	rq->reference_id = def->reference_id;
	rq->side[0] = side;
	snprintf(rq->flags, sizeof(rq->flags), "%d", flags);
	rq->collations = collations_text(def, side, flags);
	rq->keys = outer_literal(columns, def->nkeys);
	return rq;
}

/*
 * sign_request
 *		Fill rq->values for conn, a connection its session proved: the next
 *		counter of that session and the MAC of the request under its key.
 *		Returns false, and fills nothing, when conn is not proved.
 */
static bool
sign_request(PGconn *conn, LookupRequest *rq)
{
	int64		counter = splitdb_origin_next_action(conn);
	int			flags = atoi(rq->flags);

	if (counter == 0)
		return false;
	rq->values[0] = psprintf(INT64_FORMAT, rq->reference_id);
	rq->values[1] = rq->side;
	rq->values[2] = rq->flags;
	rq->values[3] = rq->collations;
	rq->values[4] = rq->keys;
	rq->values[5] = psprintf(INT64_FORMAT, counter);
	rq->values[6] = splitdb_origin_sign(conn,
										request_text(counter, rq->reference_id,
													 rq->side[0], flags,
													 rq->collations, rq->keys));
	return true;
}

/*
 * lookup_bind
 *		SplitdbCheckStmt.bind of a lookup on a check connection: the signed
 *		request on a proved connection, else the lookup of today.
 */
static void
lookup_bind(PGconn *conn, SplitdbCheckStmt *st)
{
	LookupRequest *rq = st->bind_arg;

	if (sign_request(conn, rq))
	{
		st->sql = LOOKUP_SQL;
		st->nparams = LOOKUP_NPARAMS;
		st->values = rq->values;
		return;
	}
	st->sql = rq->fallback_sql;
	st->nparams = rq->fallback_nparams;
	st->values = rq->fallback_values;
}

/*
 * splitdb_refcheck_lookup_stmt
 *		Make st, a lookup of def's other end that the caller set up as today
 *		(sql, nparams, values: the lookup with the mapped role's rights),
 *		go out as a request of splitdb.reference_lookup() on a check
 *		connection that proved its origin.  flags: SPLITDB_LOOKUP_*;
 *		columns: the keys, one text[] literal per key column.
 */
void
splitdb_refcheck_lookup_stmt(SplitdbCheckStmt *st, RefDef *def, int flags,
							 const char *const *columns)
{
	LookupRequest *rq = make_request(def, other_side(def), flags, columns);

	rq->fallback_sql = st->sql;
	rq->fallback_nparams = st->nparams;
	rq->fallback_values = st->values;
	st->bind = lookup_bind;
	st->bind_arg = rq;
}

/*
 * splitdb_refcheck_one_key_columns
 *		One key's texts (NULL: a NULL column) as one-element text[] literals,
 *		one per key column, for splitdb_refcheck_lookup_stmt().
 */
const char **
splitdb_refcheck_one_key_columns(char **texts, int nkeys)
{
	PendingKey	pk;

	memset(&pk, 0, sizeof(pk));
	pk.old = texts;
	return splitdb_refcheck_key_literals_n(nkeys, list_make1(&pk), false);
}

/*
 * splitdb_refcheck_lookup_remote
 *		Run def's lookup of the end side in the other database (server) on
 *		postgres_fdw's connection, as the owner of the table there, when
 *		that connection is proved or can be (origin.c); *done tells whether
 *		it ran.  flags: SPLITDB_LOOKUP_*; keys: PendingKey.  Returns the
 *		rows, positions in their first column.  Counts a round trip, with
 *		its time.  Not done, the caller runs the lookup of today.
 */
List *
splitdb_refcheck_lookup_remote(RefDef *def, Oid server, char side, int flags,
							   List *keys, bool *done)
{
	PGconn	   *conn;
	PGresult   *res;
	List	   *rows;
	LookupRequest *rq;
	instr_time	start,
				duration;

	*done = false;
	splitdb_refcheck_fdw_uses(server);
	conn = splitdb_refcheck_fdw_connection(server, refcheck_xact.caller_userid,
										   def->owner);
	splitdb_origin_prove_connection(conn, server);
	rq = make_request(def, side, flags,
					  splitdb_refcheck_key_literals(def, keys, false));
	if (!sign_request(conn, rq))
		return NIL;
	INSTR_TIME_SET_CURRENT(start);
	res = splitdb_prepared_exec(conn, LOOKUP_SQL, LOOKUP_NPARAMS, rq->values, NULL);
	INSTR_TIME_SET_CURRENT(duration);
	INSTR_TIME_SUBTRACT(duration, start);
	splitdb_refstats_add(def->counter, 0, 0, 1, INSTR_TIME_GET_MICROSEC(duration));
	rows = splitdb_remote_result_rows(res);
	splitdb_remote_clear(res);
	*done = true;
	return rows;
}

/* ----------------------------------------------------------------
 * The receiving end
 * ---------------------------------------------------------------- */

/* the shapes of a lookup, as refcheck_sql.c makes them */
typedef enum LookupShape
{
	SHAPE_ONE,					/* one key */
	SHAPE_ANY,					/* a small batch of one column: "= ANY" */
	SHAPE_JOIN					/* the join with the keys */
} LookupShape;

/* an end read here, made from this database's row of it */
typedef struct LookupEndKey
{
	int64		reference_id;
	char		side;
} LookupEndKey;

typedef struct LookupEnd
{
	LookupEndKey key;			/* hash key */
	RefDef	   *def;			/* turned around: the table here is "other" */
	Oid			relid;			/* the table here */
	Oid			owner;			/* its owner, who runs the lookups */
	ItemPointerData row_tid;	/* the version of its splitdb.reference_end */
	TransactionId row_xmin;		/* row read: see end_row_version */
} LookupEnd;

/* a kept plan */
typedef struct LookupPlanKey
{
	int64		reference_id;
	char		side;
	int			flags;
	int			shape;
} LookupPlanKey;

typedef struct LookupPlan
{
	LookupPlanKey key;
	char	   *collations;		/* the request's, which the plan compares under */
	SPIPlanPtr	plan;
} LookupPlan;

static HTAB *lookup_ends = NULL;
static HTAB *lookup_plans = NULL;
static MemoryContext lookup_cxt = NULL;
static bool lookup_stale = false;

/* a table changed (its owner, its columns, its triggers on install): start again */
static void
lookup_relcache_callback(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS scan;
	LookupEnd  *le;

	if (lookup_ends == NULL || lookup_stale)
		return;
	if (!OidIsValid(relid))
	{
		lookup_stale = true;
		return;
	}
	hash_seq_init(&scan, lookup_ends);
	while ((le = hash_seq_search(&scan)) != NULL)
		if (le->relid == relid)
			lookup_stale = true;
}

/*
 * lookup_cache_ready
 *		The caches, made on first use and made again after a table they
 *		depend on changed: kept plans freed, definitions forgotten.
 */
static void
lookup_cache_ready(void)
{
	HASHCTL		ctl;

	if (lookup_ends != NULL && !lookup_stale)
		return;
	if (lookup_plans != NULL)
	{
		HASH_SEQ_STATUS scan;
		LookupPlan *lp;

		hash_seq_init(&scan, lookup_plans);
		while ((lp = hash_seq_search(&scan)) != NULL)
			if (lp->plan != NULL)
				SPI_freeplan(lp->plan);
		hash_destroy(lookup_plans);
		hash_destroy(lookup_ends);
		MemoryContextReset(lookup_cxt);
	}
	else
	{
		lookup_cxt = AllocSetContextCreate(TopMemoryContext, "splitdb lookups",
										   ALLOCSET_SMALL_SIZES);
		CacheRegisterRelcacheCallback(lookup_relcache_callback, (Datum) 0);
	}
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(LookupEndKey);
	ctl.entrysize = sizeof(LookupEnd);
	ctl.hcxt = lookup_cxt;
	lookup_ends = hash_create("splitdb lookup ends", 16, &ctl,
							  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(LookupPlanKey);
	ctl.entrysize = sizeof(LookupPlan);
	ctl.hcxt = lookup_cxt;
	lookup_plans = hash_create("splitdb lookup plans", 16, &ctl,
							   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	lookup_stale = false;
}

/*
 * end_row_version
 *		The version of this database's row of the end (reference_id, side)
 *		in splitdb.reference_end as of now, as read_end() reads it (under
 *		the request's older snapshot the version would not match the one
 *		read, and every request would read the end again): its tid and raw
 *		xmin (a freeze does not change it).  False when there is none.  A
 *		write of that row alone (a reinstall, splitdb_reference_mode(), a
 *		finalize or rollback that drops the end, a superuser's UPDATE)
 *		changes no table, so no relcache callback tells of it: lookup_end
 *		compares this version with the one it read, one index probe per
 *		request and no round trip.
 */
static bool
end_row_version(int64 reference_id, char side, ItemPointer tid, TransactionId *xmin)
{
	Oid			nsp = get_namespace_oid("splitdb", false);
	Oid			relid = get_relname_relid("reference_end", nsp);
	Relation	rel;
	ScanKeyData key[2];
	SysScanDesc scan;
	HeapTuple	tup;
	Snapshot	snap;
	bool		found = false;

	if (!OidIsValid(relid))
		return false;
	rel = table_open(relid, AccessShareLock);
	ScanKeyInit(&key[0], 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(reference_id));
	ScanKeyInit(&key[1], 2, BTEqualStrategyNumber, F_CHAREQ, CharGetDatum(side));
	snap = RegisterSnapshot(GetLatestSnapshot());
	scan = systable_beginscan(rel, RelationGetPrimaryKeyIndex(rel), true,
							  snap, 2, key);
	if (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		*tid = tup->t_self;
		*xmin = HeapTupleHeaderGetRawXmin(tup->t_data);
		found = true;
	}
	systable_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * lookup_end
 *		This database's end (reference_id, side), whose table is here,
 *		turned around (refcheck_def.c); read once, then kept while its row
 *		in splitdb.reference_end stays the version read (end_row_version):
 *		once it changed, every kept end and plan is forgotten and the end
 *		read again.  NULL when its table here was dropped
 *		(splitdb_refcheck_end_dropped); raises 42704 when there is none.
 */
static LookupEnd *
lookup_end(int64 reference_id, char side)
{
	LookupEndKey key;
	LookupEnd  *le;
	bool		found;
	RefDef	   *def;
	Oid			relid;
	ItemPointerData tid;
	TransactionId xmin = InvalidTransactionId;
	bool		has_row;

	ItemPointerSetInvalid(&tid);
	memset(&key, 0, sizeof(key));
	key.reference_id = reference_id;
	key.side = side;
	has_row = end_row_version(reference_id, side, &tid, &xmin);
	le = hash_search(lookup_ends, &key, HASH_FIND, NULL);
	if (le != NULL && has_row && ItemPointerEquals(&le->row_tid, &tid) &&
		TransactionIdEquals(le->row_xmin, xmin))
		return le;
	if (le != NULL)
	{
		/* its row changed: start again (plans of its shapes included) */
		lookup_stale = true;
		lookup_cache_ready();
	}
	def = has_row ? splitdb_refcheck_reading_def(reference_id, side, lookup_cxt, &relid) : NULL;
	if (def == NULL && has_row && splitdb_refcheck_end_dropped(reference_id, side))
		return NULL;
	if (def == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("cross-service reference " INT64_FORMAT " has no %s table in database \"%s\"",
						reference_id, side == 'p' ? "referenced" : "referencing",
						get_database_name(MyDatabaseId)),
				 errhint("The databases disagree about where the reference's ends are; compare splitdb.reference_end in both.")));
	le = hash_search(lookup_ends, &key, HASH_ENTER, &found);
	le->def = def;
	le->relid = relid;
	le->row_tid = tid;
	le->row_xmin = xmin;
	le->owner = splitdb_catalog_relowner(relid);
	if (!OidIsValid(le->owner))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	return le;
}

/*
 * lookup_sql
 *		The lookup of le's table here in shape, for a batch of n keys, as
 *		the issuing end would make it (refcheck_check.c,
 *		splitdb_refcheck_positions; refcheck_hold.c for SKIP LOCKED).
 */
static char *
lookup_sql(LookupEnd *le, int flags, LookupShape shape, int n)
{
	RefDef	   *def = le->def;
	bool		lock = (flags & SPLITDB_LOOKUP_LOCK) != 0;
	bool		first_only = (flags & SPLITDB_LOOKUP_FIRST) != 0;
	char	  **valtypes = (flags & SPLITDB_LOOKUP_SAME_TYPES) ? NULL : def->own_types;
	char	   *sql = NULL;

	if (shape != SHAPE_JOIN)
		sql = splitdb_refcheck_small_batch_sql(def, shape == SHAPE_ONE ? 1 : n,
											   def->other_table, def->other_cols,
											   def->other_types, valtypes, lock,
											   first_only);
	if (sql == NULL)
		sql = splitdb_refcheck_key_batch_sql(def, def->other_table, def->other_cols,
											 def->other_types, valtypes, lock,
											 first_only);
	if (lock && (flags & SPLITDB_LOOKUP_SKIP_LOCKED))
		sql = psprintf("%s SKIP LOCKED", sql);
	return sql;
}

/*
 * lookup_plan
 *		The kept plan of le's lookup with flags, in shape (SHAPE_ANY only
 *		when refcheck_sql.c makes that shape for this end), under the
 *		request's collations; prepared as the owner, who runs it.  The
 *		caller is connected to SPI, as the owner.
 */
static SPIPlanPtr
lookup_plan(LookupEnd *le, int flags, LookupShape shape, int n,
			const char *collations, char **colls)
{
	LookupPlanKey key;
	LookupPlan *lp;
	bool		found;
	Oid		   *types;
	char	   *sql;
	SPIPlanPtr	plan;

	memset(&key, 0, sizeof(key));
	key.reference_id = le->key.reference_id;
	key.side = le->key.side;
	key.flags = flags;
	key.shape = shape;
	lp = hash_search(lookup_plans, &key, HASH_ENTER, &found);
	if (found && lp->plan != NULL && strcmp(lp->collations, collations) == 0)
		return lp->plan;
	if (!found)
	{
		lp->plan = NULL;
		lp->collations = NULL;
	}
	if (lp->plan != NULL)
		SPI_freeplan(lp->plan);
	lp->plan = NULL;
	le->def->fk_collates = splitdb_refcheck_collate_clauses(colls, le->def->nkeys);
	sql = lookup_sql(le, flags, shape, n);
	types = palloc(sizeof(Oid) * le->def->nkeys);
	for (int i = 0; i < le->def->nkeys; i++)
		types[i] = TEXTARRAYOID;

	/*
	 * The join is planned for each batch with its keys, as the statement of
	 * the issuing end was (an unnamed statement, planned at bind): a generic
	 * plan takes the keys' unnest() for 100 rows, and probes the index once
	 * per key where a batch of 100,000 wants a hash join.
	 */
	plan = SPI_prepare_cursor(sql, le->def->nkeys, types,
							  shape == SHAPE_JOIN ? CURSOR_OPT_CUSTOM_PLAN : 0);
	if (plan == NULL)
		splitdb_spi_failed(sql, SPI_result);
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "could not keep the plan of a lookup");
	lp->plan = plan;
	lp->collations = MemoryContextStrdup(lookup_cxt, collations);
	return plan;
}

/*
 * run_plan
 *		Run a kept lookup with the keys' text[] Datums (the latest snapshot
 *		with SPLITDB_LOOKUP_LATEST), and mark hit[i] for each position found
 *		(1..n).  Returns how many it marked.
 */
static int
run_plan(SPIPlanPtr plan, Datum *params, int flags, int n, bool *hit)
{
	int			rc;
	int			nhit = 0;

	if (flags & SPLITDB_LOOKUP_LATEST)
	{
		CommandCounterIncrement();
		rc = SPI_execute_snapshot(plan, params, NULL, GetLatestSnapshot(),
								  InvalidSnapshot, false, false, 0);
	}
	else
		rc = SPI_execute_plan(plan, params, NULL, false, 0);
	if (rc < 0)
		elog(ERROR, "could not run a lookup of cross-service reference keys: %s",
			 SPI_result_code_string(rc));
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		char	   *v = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1);
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
 * unhit_params
 *		The keys' text[] Datums (elems: each column's elements, nulls) cut
 *		down to the positions not hit; their positions in map (1-based).
 */
static Datum *
unhit_params(int nkeys, int n, Datum **elems, bool **nulls, bool *hit,
			 int *map, int *m)
{
	Datum	   *params = palloc(sizeof(Datum) * nkeys);

	*m = 0;
	for (int i = 1; i <= n; i++)
		if (!hit[i])
			map[++(*m)] = i;
	for (int c = 0; c < nkeys; c++)
	{
		Datum	   *e = palloc(sizeof(Datum) * Max(*m, 1));
		bool	   *nl = palloc(sizeof(bool) * Max(*m, 1));
		int			dims[1] = {*m};
		int			lbs[1] = {1};

		for (int j = 1; j <= *m; j++)
		{
			e[j - 1] = elems[c][map[j] - 1];
			nl[j - 1] = nulls[c][map[j] - 1];
		}
		params[c] = PointerGetDatum(construct_md_array(e, nl, 1, dims, lbs, TEXTOID,
													   -1, false, TYPALIGN_INT));
	}
	return params;
}

/*
 * run_lookup
 *		The positions of the keys (params: one text[] per key column, n
 *		keys) that le's table here holds, found as the issuing end's lookup
 *		finds them, as the owner of the table with row-level security not
 *		forced: PostgreSQL's foreign keys read so (ri_PerformCheck).  A batch
 *		"= ANY" did not number in full is looked up again with the join, as
 *		splitdb_refcheck_positions() does.  Returns hit, n + 1 entries.
 */
static bool *
run_lookup(LookupEnd *le, int flags, const char *collations, char **colls,
		   Datum *params, int n)
{
	int			nkeys = le->def->nkeys;
	bool	   *hit = palloc0(sizeof(bool) * (n + 1));
	LookupShape shape = n == 1 ? SHAPE_ONE : SHAPE_ANY;
	Oid			save_userid;
	int			save_sec;
	int			nhit;

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(le->owner, save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_NOFORCE_RLS);
	splitdb_spi_connect();
	/* this call's memory: set again before each use */
	le->def->fk_collates = splitdb_refcheck_collate_clauses(colls, nkeys);
	if (shape == SHAPE_ANY &&
		splitdb_refcheck_small_batch_sql(le->def, n, le->def->other_table,
										 le->def->other_cols, le->def->other_types,
										 (flags & SPLITDB_LOOKUP_SAME_TYPES) ?
										 NULL : le->def->own_types,
										 false, false) == NULL)
		shape = SHAPE_JOIN;
	nhit = run_plan(lookup_plan(le, flags, shape, n, collations, colls),
					params, flags, n, hit);
	if (shape == SHAPE_ANY && nhit < n &&
		!((flags & SPLITDB_LOOKUP_FIRST) && nhit > 0))
	{
		Datum	  **elems = palloc(sizeof(Datum *) * nkeys);
		bool	  **nulls = palloc(sizeof(bool *) * nkeys);
		int		   *map = palloc(sizeof(int) * (n + 1));
		bool	   *again;
		Datum	   *rest;
		int			m;
		int			cnt;

		for (int c = 0; c < nkeys; c++)
			deconstruct_array(DatumGetArrayTypeP(params[c]), TEXTOID, -1, false,
							  TYPALIGN_INT, &elems[c], &nulls[c], &cnt);
		rest = unhit_params(nkeys, n, elems, nulls, hit, map, &m);
		again = palloc0(sizeof(bool) * (m + 1));
		(void) run_plan(lookup_plan(le, flags, SHAPE_JOIN, m, collations, colls),
						rest, flags, m, again);
		for (int j = 1; j <= m; j++)
			if (again[j])
				hit[map[j]] = true;
	}
	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec);
	le->def->fk_collates = NULL;
	return hit;
}

/*
 * request_params
 *		The keys of a request as one text[] Datum per key column, n keys in
 *		each.  Raises 22023 for a request that does not fit le's end.
 */
static Datum *
request_params(LookupEnd *le, char **columns, int ncolumns, int ncolls, int *n)
{
	RefDef	   *def = le->def;
	Datum	   *params = palloc(sizeof(Datum) * Max(ncolumns, 1));

	*n = -1;
	for (int c = 0; c < ncolumns && c < def->nkeys; c++)
	{
		ArrayType  *a;
		int			len;

		if (columns[c] == NULL)
		{
			*n = -1;
			break;
		}
		params[c] = OidInputFunctionCall(F_ARRAY_IN, columns[c], TEXTOID, -1);
		a = DatumGetArrayTypeP(params[c]);
		len = ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a));
		if (ARR_NDIM(a) > 1 || (*n >= 0 && len != *n))
		{
			*n = -1;
			break;
		}
		*n = len;
	}
	if (ncolumns != def->nkeys || *n < 0 || (ncolls != 0 && ncolls != def->nkeys))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid lookup request for cross-service reference \"%s\"",
						def->conname),
				 errdetail("%d key columns with %d collations; the reference has %d key columns here, each given as a text[] of the same length.",
						   ncolumns, ncolls, def->nkeys),
				 errhint("The databases disagree about the reference; compare splitdb.reference_end in both.")));
	return params;
}

/*
 * dropped_end_answer
 *		The answer to a lookup of an end whose table was dropped here, as if
 *		the foreign key had gone with it: a referencing table holds none of
 *		the keys (nothing refers to them any more), a referenced table holds
 *		all of them (nothing is checked any more).  Nothing is locked.
 */
static void
dropped_end_answer(ReturnSetInfo *rsinfo, char side, ArrayType *keys)
{
	char	  **columns;
	int			ncolumns;
	int			n = 0;

	if (side != 'p')
		return;
	columns = splitdb_catalog_text_items(keys, &ncolumns);
	if (ncolumns > 0 && columns[0] != NULL)
	{
		ArrayType  *a = DatumGetArrayTypeP(OidInputFunctionCall(F_ARRAY_IN, columns[0],
																  TEXTOID, -1));

		n = ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a));
	}
	for (int i = 1; i <= n; i++)
	{
		Datum		v = Int64GetDatum(i);
		bool		isnull = false;

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &v, &isnull);
	}
}

/*
 * splitdb_reference_lookup
 *		splitdb.reference_lookup(reference_id, side, flags, collations,
 *		keys, counter, mac): the positions (1-based) of the keys that the
 *		table of this database's end (reference_id, side) holds, looked up
 *		as the owner of that table.
 *
 * side: 'p' the referenced table (a check of referencing keys), 'c' the
 * referencing one (NO ACTION, RESTRICT, a referencing row's key still
 * carried); flags: SPLITDB_LOOKUP_* (refcheck_int.h); collations: for 'c'
 * without SPLITDB_LOOKUP_SAME_TYPES, the referenced key's nondeterministic
 * collations by name, else empty; keys: per key column, the text form of a
 * text[] of the keys; counter and mac: see origin.c.  Raises 42501 unless
 * the session proved its origin and mac matches (then nothing is read or
 * locked); 42704 when this database holds no such end whose table is here;
 * 22023 for a request that does not fit that end.  An end whose table was
 * dropped here answers as dropped_end_answer() says.
 */
Datum
splitdb_reference_lookup(PG_FUNCTION_ARGS)
{
	int64		reference_id = PG_GETARG_INT64(0);
	char		side = PG_GETARG_CHAR(1);
	int32		flags = PG_GETARG_INT32(2);
	ArrayType  *collations = PG_GETARG_ARRAYTYPE_P(3);
	ArrayType  *keys = PG_GETARG_ARRAYTYPE_P(4);
	int64		counter = PG_GETARG_INT64(5);
	char	   *mac = text_to_cstring(PG_GETARG_TEXT_PP(6));
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *colls_text = OidOutputFunctionCall(F_ARRAY_OUT, PointerGetDatum(collations));
	LookupEnd  *le;
	char	  **columns;
	char	  **colls;
	int			ncolumns;
	int			ncolls;
	int			n;
	Datum	   *params;
	bool	   *hit;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	splitdb_origin_check_lookup(counter, mac,
								request_text(counter, reference_id, side, flags, colls_text,
											 OidOutputFunctionCall(F_ARRAY_OUT, PointerGetDatum(keys))));
	if ((side != 'p' && side != 'c') || (flags & ~SPLITDB_LOOKUP_ALL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid lookup request for cross-service reference " INT64_FORMAT,
						reference_id),
				 errdetail("Side \"%c\" with flags %d.", side, flags),
				 errhint("Both databases must run the same version of splitdb.")));
	lookup_cache_ready();
	le = lookup_end(reference_id, side);
	if (le == NULL)
	{
		dropped_end_answer(rsinfo, side, keys);
		return (Datum) 0;
	}
	columns = splitdb_catalog_text_items(keys, &ncolumns);
	colls = splitdb_catalog_text_items(collations, &ncolls);
	params = request_params(le, columns, ncolumns, ncolls, &n);
	if (ncolls == 0)
		colls = palloc0(sizeof(char *) * le->def->nkeys);
	if (n == 0)
		return (Datum) 0;
	hit = run_lookup(le, flags, colls_text, colls, params, n);
	for (int i = 1; i <= n; i++)
	{
		Datum		v = Int64GetDatum(i);
		bool		isnull = false;

		if (hit[i])
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &v, &isnull);
	}
	return (Datum) 0;
}

/* ----------------------------------------------------------------
 * Proving the check connections
 * ---------------------------------------------------------------- */

/*
 * splitdb_refcheck_lookup_init
 *		At load: splitdb's check connections are proved as they open and
 *		forgotten as they close (checkconn.c's hooks).
 */
void
splitdb_refcheck_lookup_init(void)
{
	splitdb_checkconn_prove_hook = splitdb_origin_prove_own;
	splitdb_checkconn_close_hook = splitdb_origin_forget_connection;
}
