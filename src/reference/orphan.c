/*-------------------------------------------------------------------------
 *
 * orphan.c
 *	  splitdb_orphans: referencing rows whose cross-service reference
 *	  points at nothing.
 *
 * With a reference in mode off (a bulk backfill), or after a crash in the
 * window between the commits of two databases, a referencing row can carry
 * a key that the referenced table lacks.  For each reference with an end in
 * the service, the distinct keys of the referencing table are read in
 * batches, in key order, and each batch is looked up in the referenced
 * table with one statement; the keys not found are returned.  Memory stays
 * bounded by the batch.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/orphan.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/tuplestore.h"

#include "metadata/catalog.h"
#include "compat.h"
#include "reference/refcheck.h"
#include "remote/remote.h"
#include "splitdb.h"

PG_FUNCTION_INFO_V1(splitdb_orphans);

/* distinct referencing keys read per batch */
#define ORPHAN_BATCH	10000

/* one end of a reference, and how to reach it */
typedef struct OrphanEnd
{
	char	   *table;
	char	  **cols;
	char	  **types;
	char	   *server;			/* NULL: a table of this database */
	char	   *location;
	PGconn	   *conn;
} OrphanEnd;

/* the references with an end in service $1, with both ends' placement */
static const char *const sql_references =
"SELECT r.reference_id, r.constraint_name::text,"
"  r.child_table, r.child_columns::text[], r.child_types,"
"  r.child_server::text, r.child_location,"
"  r.parent_table, r.parent_columns::text[], r.parent_types,"
"  r.parent_server::text, r.parent_location"
" FROM splitdb.reference_placement r"
" WHERE $1 IN (r.child_service, r.parent_service) AND r.dropped_at IS NOT NULL"
" ORDER BY r.reference_id";

/*
 * run_end
 *		Run a statement with text parameters on an end; rows as C strings.
 */
static List *
run_end(OrphanEnd *end, const char *sql, int nparams, char **params)
{
	List	   *rows;
	PGresult   *res;

	if (end->server == NULL)
	{
		splitdb_catalog_exec_text(sql, nparams, (const char *const *) params, true);
		return splitdb_catalog_result_rows();
	}
	if (end->conn == NULL)
		end->conn = splitdb_remote_connect_server(end->server, end->location);
	res = splitdb_remote_exec(end->conn, sql, nparams, (const char *const *) params,
							  end->location);
	rows = splitdb_remote_result_rows(res);
	splitdb_remote_clear(res);
	return rows;
}

/*
 * next_keys_sql
 *		The next batch of distinct complete keys of the referencing table,
 *		after the last one ($1..$n), in key order.
 */
static char *
next_keys_sql(OrphanEnd *child, int nkeys, bool first)
{
	StringInfoData sql;
	StringInfoData cols;

	initStringInfo(&cols);
	for (int i = 0; i < nkeys; i++)
		appendStringInfo(&cols, "%sc.%s", i > 0 ? ", " : "", quote_identifier(child->cols[i]));

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT DISTINCT ");
	for (int i = 0; i < nkeys; i++)
		appendStringInfo(&sql, "%sc.%s::pg_catalog.text", i > 0 ? ", " : "",
						 quote_identifier(child->cols[i]));
	appendStringInfo(&sql, ", %s FROM %s c WHERE ", cols.data, child->table);
	for (int i = 0; i < nkeys; i++)
		appendStringInfo(&sql, "%sc.%s IS NOT NULL", i > 0 ? " AND " : "",
						 quote_identifier(child->cols[i]));
	if (!first)
	{
		appendStringInfo(&sql, " AND (%s) > (", cols.data);
		for (int i = 0; i < nkeys; i++)
			appendStringInfo(&sql, "%s$%d::%s", i > 0 ? ", " : "", i + 1, child->types[i]);
		appendStringInfoChar(&sql, ')');
	}
	appendStringInfo(&sql, " ORDER BY %s LIMIT %d", cols.data, ORPHAN_BATCH);
	return sql.data;
}

/*
 * orphans_of
 *		Put the orphaned keys of one reference into the result.
 */
static void
orphans_of(ReturnSetInfo *rsinfo, int64 reference_id, const char *conname,
		   OrphanEnd *child, OrphanEnd *parent, int nkeys)
{
	char	  **last = NULL;
	char	   *lookup;

	lookup = psprintf("SELECT k.i FROM %s JOIN %s t ON %s",
					  splitdb_refcheck_keys_from(nkeys, false), parent->table,
					  splitdb_refcheck_key_match("t", parent->cols, parent->types, nkeys));
	for (;;)
	{
		List	   *keys;
		List	   *found;
		bool	   *hit;
		char	  **arrays;
		int			n;
		int			i;
		ListCell   *lc;

		CHECK_FOR_INTERRUPTS();
		keys = run_end(child, next_keys_sql(child, nkeys, last == NULL),
					   last ? nkeys : 0, last);
		n = list_length(keys);
		if (n == 0)
			break;

		/* one text[] per column */
		arrays = palloc(sizeof(char *) * nkeys);
		for (int c = 0; c < nkeys; c++)
		{
			char	  **column = palloc(sizeof(char *) * n);

			i = 0;
			foreach(lc, keys)
				column[i++] = ((char **) lfirst(lc))[c];
			arrays[c] = splitdb_catalog_text_array(column, n);
		}
		found = run_end(parent, lookup, nkeys, arrays);
		hit = palloc0(sizeof(bool) * (n + 1));
		foreach(lc, found)
		{
			int64		pos = pg_strtoint64(((char **) lfirst(lc))[0]);

			if (pos >= 1 && pos <= n)
				hit[pos] = true;
		}

		i = 0;
		foreach(lc, keys)
		{
			char	  **key = lfirst(lc);
			Datum		values[5];
			bool		nulls[5] = {false};
			StringInfoData text;

			if (hit[++i])
				continue;
			initStringInfo(&text);
			appendStringInfoChar(&text, '(');
			for (int c = 0; c < nkeys; c++)
				appendStringInfo(&text, "%s%s", c > 0 ? ", " : "", key[c]);
			appendStringInfoChar(&text, ')');
			values[0] = Int64GetDatum(reference_id);
			values[1] = DirectFunctionCall1(namein, CStringGetDatum(conname));
			values[2] = CStringGetTextDatum(child->table);
			values[3] = CStringGetTextDatum(parent->table);
			values[4] = CStringGetTextDatum(text.data);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
		last = llast(keys);
		if (n < ORPHAN_BATCH)
			break;
	}
}

/*
 * end_exists
 *		Whether the end's table still exists in its database.  A table that
 *		its owner dropped since the cutover (dropguard.c lets a referencing
 *		table go, and a referenced one with CASCADE) keeps its reference's
 *		row: there is nothing to read there.
 */
static bool
end_exists(OrphanEnd *end)
{
	List	   *rows;

	rows = run_end(end, "SELECT pg_catalog.to_regclass($1::pg_catalog.text) IS NOT NULL",
				   1, &end->table);
	return rows != NIL && strcmp(((char **) linitial(rows))[0], "t") == 0;
}

/*
 * skip_dropped
 *		Whether one end of the reference was dropped; if so, say so with a
 *		NOTICE: PostgreSQL drops a foreign key along with either table, so
 *		the reference points at nothing to check.
 */
static bool
skip_dropped(int64 reference_id, const char *conname, OrphanEnd *child,
			 OrphanEnd *parent)
{
	OrphanEnd  *gone;
	bool		referencing;

	if (!end_exists(child))
		gone = child;
	else if (!end_exists(parent))
		gone = parent;
	else
		return false;
	referencing = (gone == child);
	ereport(NOTICE,
			(errmsg("cross-service reference %lld (\"%s\") is not read: its %s table %s%s was dropped",
					(long long) reference_id, conname,
					referencing ? "referencing" : "referenced", gone->table,
					gone->server == NULL ? "" :
					psprintf(" in the database of service \"%s\"", gone->location)),
			 errdetail(referencing ?
					   "A dropped referencing table has no rows that could point at nothing." :
					   "PostgreSQL drops a foreign key along with its referenced table; the referencing rows are no orphans of it."),
			 errhint("splitdb_doctor() reports it; splitdb_reference_mode(%lld, 'off') takes its triggers off.",
					 (long long) reference_id)));
	return true;
}

/*
 * pin_key_settings
 *		Make this session write keys as text in the forms splitdb's remote
 *		sessions read and write them (remote.c): ISO dates, postgres
 *		intervals, floats exact.  Keys cross between the two as text, and a
 *		date written "Postgres, MDY" here is out of range over there.
 *		Returns the GUC nest level to give to AtEOXact_GUC().
 */
static int
pin_key_settings(void)
{
	int			nest = NewGUCNestLevel();

	(void) set_config_option("datestyle", "ISO, YMD", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("intervalstyle", "postgres", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("extra_float_digits", "3", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return nest;
}

/*
 * splitdb_orphans
 *		For each enforced reference with an end in the service: the distinct
 *		keys of referencing rows that the referenced table lacks.
 */
Datum
splitdb_orphans(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *service = NameStr(*PG_GETARG_NAME(0));
	Oid			types[1] = {NAMEOID};
	Datum		values[1];
	SPITupleTable *refs;
	uint64		nrefs;
	List	   *conns = NIL;
	ListCell   *lc;
	int			rc;
	int			nest;

	splitdb_require_superuser("splitdb_orphans");
	InitMaterializedSRF(fcinfo, 0);
	nest = pin_key_settings();

	splitdb_spi_connect();
	(void) splitdb_catalog_get_service(service, SPLITDB_LOCK_NONE, false);

	values[0] = DirectFunctionCall1(namein, CStringGetDatum(service));
	rc = splitdb_spi_exec(sql_references, 1, types, values, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		splitdb_spi_failed(sql_references, rc);
	refs = SPI_tuptable;
	nrefs = SPI_processed;

	PG_TRY();
	{
		for (uint64 i = 0; i < nrefs; i++)
		{
			HeapTuple	tup = refs->vals[i];
			TupleDesc	desc = refs->tupdesc;
			OrphanEnd  *child = palloc0(sizeof(OrphanEnd));
			OrphanEnd  *parent = palloc0(sizeof(OrphanEnd));
			bool		isnull;
			int			nkeys;
			int			n;

			child->table = SPI_getvalue(tup, desc, 3);
			child->cols = splitdb_catalog_array_elems(tup, desc, 4, &nkeys);
			child->types = splitdb_catalog_array_elems(tup, desc, 5, &n);
			child->server = SPI_getvalue(tup, desc, 6);
			child->location = SPI_getvalue(tup, desc, 7);
			parent->table = SPI_getvalue(tup, desc, 8);
			parent->cols = splitdb_catalog_array_elems(tup, desc, 9, &n);
			parent->types = splitdb_catalog_array_elems(tup, desc, 10, &n);
			parent->server = SPI_getvalue(tup, desc, 11);
			parent->location = SPI_getvalue(tup, desc, 12);
			conns = lappend(conns, child);
			conns = lappend(conns, parent);

			if (skip_dropped(DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull)),
							 SPI_getvalue(tup, desc, 2), child, parent))
				continue;
			orphans_of(rsinfo, DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull)),
					   SPI_getvalue(tup, desc, 2), child, parent, nkeys);
		}
	}
	PG_FINALLY();
	{
		foreach(lc, conns)
			splitdb_remote_disconnect(((OrphanEnd *) lfirst(lc))->conn);
	}
	PG_END_TRY();

	SPI_finish();
	AtEOXact_GUC(true, nest);
	return (Datum) 0;
}
