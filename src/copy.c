/*-------------------------------------------------------------------------
 *
 * copy.c
 *	  Streaming a table's rows into the sibling, in key-ordered batches.
 *
 * A batch reads the next rows of a table in key order through an SPI cursor,
 * in the worker's own backend, encodes them in COPY format (binary where
 * every column type can cross databases in binary, text otherwise) and
 * streams them to the sibling as one COPY ... FROM STDIN.  The COPY commits
 * in the sibling on its own; the caller then records the batch's last key as
 * the checkpoint and commits in the source.
 *
 * Invariants:
 * - Memory is bounded by the cursor's fetch size and the send buffer,
 *   whatever the size of the table or of a batch.
 * - Batches are ordered by the table's primary key (or a unique key on NOT
 *   NULL columns) and each starts strictly after the last key of the one
 *   before, so no row is sent twice and none is skipped.
 * - After a crash the resume point is read from the sibling itself (its
 *   highest key), not from the checkpoint in the source: a batch the sibling
 *   committed just before the crash is never sent again.
 * - Generated columns are not sent; the sibling computes them.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/copy.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "port/pg_bswap.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "catalog/pg_type_d.h"
#include "compat.h"
#include "copy.h"
#include "remote.h"
#include "splitdb.h"

/* rows fetched from the cursor at a time */
#define FETCH_ROWS		1000

/* bytes gathered before they are handed to libpq */
#define SEND_CHUNK		(64 * 1024)

/* the signature that opens binary COPY data */
static const char binary_signature[11] = "PGCOPY\n\377\r\n\0";

/*
 * type_crosses_in_binary
 *		True when values of the type can be sent in binary to a database
 *		whose type OIDs differ from the source's.
 *
 * Binary arrays and composites carry the OIDs of their element and column
 * types, which only match between databases for built-in types; types
 * without a send function cannot be sent in binary at all.
 */
static bool
type_crosses_in_binary(Oid typid, int depth)
{
	HeapTuple	tup;
	Form_pg_type typ;
	bool		ok;

	if (depth > 16)
		return false;
	typid = getBaseType(typid);
	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for type %u", typid);
	typ = (Form_pg_type) GETSTRUCT(tup);

	if (!OidIsValid(typ->typsend) || !OidIsValid(typ->typreceive))
		ok = false;
	else if (typ->typtype == TYPTYPE_COMPOSITE)
		ok = false;
	else if (OidIsValid(typ->typelem) && typ->typlen == -1)
		ok = typ->typelem < FirstNormalObjectId &&
			type_crosses_in_binary(typ->typelem, depth + 1);
	else if (typ->typtype == TYPTYPE_RANGE)
		ok = type_crosses_in_binary(get_range_subtype(typid), depth + 1);
	else if (typ->typtype == TYPTYPE_MULTIRANGE)
		ok = type_crosses_in_binary(get_multirange_range(typid), depth + 1);
	else
		ok = true;

	ReleaseSysCache(tup);
	return ok;
}

/*
 * splitdb_copy_source
 *		Read what copying one table needs: columns, key, format.
 *
 * relid: a plain table or partition that holds rows
 *
 * Called in a transaction; the result is allocated in CurrentMemoryContext,
 * which must outlive the batches (the worker's job context).
 */
SplitdbCopySource *
splitdb_copy_source(Oid relid)
{
	MemoryContext cxt = CurrentMemoryContext;
	SplitdbCopySource *src = palloc0(sizeof(SplitdbCopySource));
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(relid)};
	StringInfoData cols;
	StringInfoData keys;
	int		   *attnums;

	src->relid = relid;
	src->binary = true;
	SPI_connect();

	if (SPI_execute_with_args("SELECT format('%I.%I', n.nspname, c.relname)"
							  "  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n"
							  "    ON n.oid = c.relnamespace WHERE c.oid = $1",
							  1, types, values, NULL, true, 0) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "relation %u does not exist", relid);
	src->name = MemoryContextStrdup(cxt, SPI_getvalue(SPI_tuptable->vals[0],
													  SPI_tuptable->tupdesc, 1));

	/* the columns COPY can write: everything but generated columns */
	if (SPI_execute_with_args("SELECT a.attnum, quote_ident(a.attname), a.atttypid"
							  "  FROM pg_catalog.pg_attribute a"
							  " WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped"
							  "   AND a.attgenerated = ''"
							  " ORDER BY a.attnum",
							  1, types, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the columns of relation %u", relid);
	src->ncolumns = (int) SPI_processed;
	src->types = MemoryContextAlloc(cxt, sizeof(Oid) * (src->ncolumns + 1));
	src->out = MemoryContextAllocZero(cxt, sizeof(FmgrInfo) * (src->ncolumns + 1));
	attnums = palloc(sizeof(int) * (src->ncolumns + 1));
	initStringInfo(&cols);
	for (int i = 0; i < src->ncolumns; i++)
	{
		bool		isnull;

		attnums[i] = DatumGetInt16(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		appendStringInfo(&cols, "%s%s", i > 0 ? ", " : "",
						 SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2));
		src->types[i] = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3, &isnull));
		if (!type_crosses_in_binary(src->types[i], 0))
			src->binary = false;
	}
	src->columns = MemoryContextStrdup(cxt, cols.data);

	for (int i = 0; i < src->ncolumns; i++)
	{
		Oid			fn;
		bool		isvarlena;

		if (src->binary)
			getTypeBinaryOutputInfo(src->types[i], &fn, &isvarlena);
		else
			getTypeOutputInfo(src->types[i], &fn, &isvarlena);
		fmgr_info_cxt(fn, &src->out[i], cxt);
	}

	/* the key: the primary key, else a unique key on NOT NULL columns */
	if (SPI_execute_with_args("SELECT k.attnum, quote_ident(a.attname), format_type(a.atttypid, a.atttypmod)"
							  "  FROM unnest(coalesce("
							  "   (SELECT pk.conkey FROM pg_catalog.pg_constraint pk"
							  "     WHERE pk.conrelid = $1 AND pk.contype = 'p'),"
							  "   (SELECT (ui.indkey::int2[])[0:ui.indnkeyatts - 1] FROM pg_catalog.pg_index ui"
							  "     WHERE ui.indrelid = $1 AND ui.indisunique AND ui.indisvalid"
							  "       AND ui.indpred IS NULL AND ui.indexprs IS NULL"
							  "       AND NOT EXISTS (SELECT FROM unnest((ui.indkey::int2[])[0:ui.indnkeyatts - 1]) x(attnum)"
							  "                        JOIN pg_catalog.pg_attribute na ON na.attrelid = ui.indrelid"
							  "                         AND na.attnum = x.attnum WHERE NOT na.attnotnull)"
							  "     ORDER BY ui.indnatts, ui.indexrelid LIMIT 1))) WITH ORDINALITY k(attnum, ord)"
							  "  JOIN pg_catalog.pg_attribute a ON a.attrelid = $1 AND a.attnum = k.attnum"
							  " ORDER BY k.ord",
							  1, types, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the key of relation %u", relid);

	src->nkeys = (int) SPI_processed;
	src->keypos = MemoryContextAlloc(cxt, sizeof(int) * (src->nkeys + 1));
	src->key_types = MemoryContextAlloc(cxt, sizeof(char *) * (src->nkeys + 1));
	src->key_names = MemoryContextAlloc(cxt, sizeof(char *) * (src->nkeys + 1));
	initStringInfo(&keys);
	for (int k = 0; k < src->nkeys; k++)
	{
		bool		isnull;
		int			attnum = DatumGetInt16(SPI_getbinval(SPI_tuptable->vals[k], SPI_tuptable->tupdesc, 1, &isnull));

		src->keypos[k] = -1;
		for (int i = 0; i < src->ncolumns; i++)
			if (attnums[i] == attnum)
				src->keypos[k] = i;
		src->key_names[k] = MemoryContextStrdup(cxt, SPI_getvalue(SPI_tuptable->vals[k],
																  SPI_tuptable->tupdesc, 2));
		appendStringInfo(&keys, "%s%s", k > 0 ? ", " : "", src->key_names[k]);
		src->key_types[k] = MemoryContextStrdup(cxt, SPI_getvalue(SPI_tuptable->vals[k],
																  SPI_tuptable->tupdesc, 3));
		/* a generated key column is not among those sent: copy in one pass */
		if (src->keypos[k] < 0)
		{
			src->nkeys = 0;
			break;
		}
	}
	src->key_list = MemoryContextStrdup(cxt, keys.data);

	SPI_finish();
	return src;
}

/* append a 16- or 32-bit integer in network byte order */
static inline void
append_int16(StringInfo buf, int16 v)
{
	uint16		n = pg_hton16((uint16) v);

	appendBinaryStringInfo(buf, (char *) &n, 2);
}

static inline void
append_int32(StringInfo buf, int32 v)
{
	uint32		n = pg_hton32((uint32) v);

	appendBinaryStringInfo(buf, (char *) &n, 4);
}

/* append one value in COPY text format, escaped */
static void
append_text_value(StringInfo buf, const char *s)
{
	for (; *s; s++)
	{
		switch (*s)
		{
			case '\\':
				appendBinaryStringInfo(buf, "\\\\", 2);
				break;
			case '\n':
				appendBinaryStringInfo(buf, "\\n", 2);
				break;
			case '\r':
				appendBinaryStringInfo(buf, "\\r", 2);
				break;
			case '\t':
				appendBinaryStringInfo(buf, "\\t", 2);
				break;
			default:
				appendStringInfoCharMacro(buf, *s);
		}
	}
}

/*
 * encode_row
 *		Append one row, in the source's COPY format, to buf.
 */
static void
encode_row(SplitdbCopySource *src, HeapTuple tup, TupleDesc desc, StringInfo buf)
{
	if (src->binary)
		append_int16(buf, (int16) src->ncolumns);

	for (int i = 0; i < src->ncolumns; i++)
	{
		bool		isnull;
		Datum		value = heap_getattr(tup, i + 1, desc, &isnull);

		if (src->binary)
		{
			if (isnull)
				append_int32(buf, -1);
			else
			{
				bytea	   *b = SendFunctionCall(&src->out[i], value);
				int			len = VARSIZE(b) - VARHDRSZ;

				append_int32(buf, len);
				appendBinaryStringInfo(buf, VARDATA(b), len);
			}
		}
		else
		{
			if (i > 0)
				appendStringInfoCharMacro(buf, '\t');
			if (isnull)
				appendBinaryStringInfo(buf, "\\N", 2);
			else
				append_text_value(buf, OutputFunctionCall(&src->out[i], value));
		}
	}
	if (!src->binary)
		appendStringInfoCharMacro(buf, '\n');
}

/*
 * key_of
 *		The text form of the key columns of a row, as a palloc'd array.
 */
static char **
key_of(SplitdbCopySource *src, HeapTuple tup, TupleDesc desc)
{
	char	  **key = palloc(sizeof(char *) * src->nkeys);

	for (int k = 0; k < src->nkeys; k++)
	{
		bool		isnull;
		Datum		value = heap_getattr(tup, src->keypos[k] + 1, desc, &isnull);
		Oid			fn;
		bool		isvarlena;

		getTypeOutputInfo(src->types[src->keypos[k]], &fn, &isvarlena);
		key[k] = isnull ? NULL : OidOutputFunctionCall(fn, value);
	}
	return key;
}

/*
 * batch_query
 *		The SELECT of the next batch: rows after the last key, in key order.
 */
static char *
batch_query(SplitdbCopySource *src, bool after, int64 batch_rows)
{
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT %s FROM ONLY %s", src->columns, src->name);
	if (src->nkeys == 0)
		return sql.data;
	if (after)
	{
		appendStringInfo(&sql, " WHERE (%s) > (", src->key_list);
		for (int k = 0; k < src->nkeys; k++)
			appendStringInfo(&sql, "%s$%d::pg_catalog.text::%s", k > 0 ? ", " : "",
							 k + 1, src->key_types[k]);
		appendStringInfoChar(&sql, ')');
	}
	appendStringInfo(&sql, " ORDER BY %s LIMIT " INT64_FORMAT, src->key_list, batch_rows);
	return sql.data;
}

/*
 * splitdb_copy_batch
 *		Copy the next batch of a table into the sibling.
 *
 * conn:       connection to the sibling, with no transaction open there
 * src:        from splitdb_copy_source()
 * last_key:   in: the key of the last row already in the sibling, or NULL
 *             to start at the beginning; out: the key of the last row of
 *             this batch (unchanged when it copied nothing)
 * batch_rows: at most this many rows (a table without a key goes in one pass)
 * bytes:      out: COPY bytes sent
 *
 * Runs in the caller's transaction.  The sibling commits the batch when the
 * COPY ends.  Returns the number of rows copied; 0 means the table is done.
 */
int64
splitdb_copy_batch(PGconn *conn, SplitdbCopySource *src, char ***last_key,
				   int64 batch_rows, int64 *bytes, const char *service)
{
	MemoryContext outer = CurrentMemoryContext;
	MemoryContext rowcxt;
	char	   *select = batch_query(src, *last_key != NULL, batch_rows);
	char	   *copy;
	SPIPlanPtr	plan;
	Portal		portal;
	Oid		   *argtypes = NULL;
	Datum	   *args = NULL;
	char	  **key = NULL;
	StringInfoData buf;
	int64		rows = 0;
	int			nargs = (*last_key != NULL) ? src->nkeys : 0;

	*bytes = 0;
	if (nargs > 0)
	{
		argtypes = palloc(sizeof(Oid) * nargs);
		args = palloc(sizeof(Datum) * nargs);
		for (int k = 0; k < nargs; k++)
		{
			argtypes[k] = TEXTOID;
			args[k] = CStringGetTextDatum((*last_key)[k]);
		}
	}

	copy = psprintf("COPY %s (%s) FROM STDIN%s", src->name, src->columns,
					src->binary ? " (FORMAT binary)" : "");

	SPI_connect();
	plan = SPI_prepare(select, nargs, argtypes);
	if (plan == NULL)
		elog(ERROR, "could not prepare \"%s\": %s", select,
			 SPI_result_code_string(SPI_result));
	portal = SPI_cursor_open(NULL, plan, args, NULL, true);

	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "splitdb copy row",
								   ALLOCSET_DEFAULT_SIZES);
	initStringInfo(&buf);
	splitdb_remote_copy_begin(conn, copy, service);
	if (src->binary)
	{
		appendBinaryStringInfo(&buf, binary_signature, sizeof(binary_signature));
		append_int32(&buf, 0);	/* flags */
		append_int32(&buf, 0);	/* header extension length */
	}

	for (;;)
	{
		SPITupleTable *tt;
		uint64		n;

		SPI_cursor_fetch(portal, true, FETCH_ROWS);
		tt = SPI_tuptable;
		n = SPI_processed;
		if (n == 0)
			break;

		for (uint64 i = 0; i < n; i++)
		{
			MemoryContext old = MemoryContextSwitchTo(rowcxt);

			encode_row(src, tt->vals[i], tt->tupdesc, &buf);
			MemoryContextSwitchTo(old);
			MemoryContextReset(rowcxt);
			if (buf.len >= SEND_CHUNK)
			{
				splitdb_remote_copy_send(conn, buf.data, buf.len, service);
				*bytes += buf.len;
				resetStringInfo(&buf);
			}
		}
		rows += n;

		if (src->nkeys > 0)
		{
			MemoryContext old = MemoryContextSwitchTo(outer);

			key = key_of(src, tt->vals[n - 1], tt->tupdesc);
			MemoryContextSwitchTo(old);
		}
		SPI_freetuptable(tt);
	}

	if (src->binary)
		append_int16(&buf, -1);
	if (buf.len > 0)
	{
		splitdb_remote_copy_send(conn, buf.data, buf.len, service);
		*bytes += buf.len;
	}
	splitdb_remote_copy_end(conn, copy, service);

	SPI_cursor_close(portal);
	SPI_finish();

	if (key != NULL)
		*last_key = key;
	return rows;
}

/*
 * splitdb_copy_resume_point
 *		Where the copy of a table continues: the sibling's highest key and
 *		how many rows it holds.
 *
 * last_key: out: the highest key in the sibling, NULL when it has no rows
 *
 * Returns the sibling's row count.  Only meaningful for a table with a key.
 */
int64
splitdb_copy_resume_point(PGconn *conn, SplitdbCopySource *src,
						  char ***last_key, const char *service)
{
	StringInfoData sql;
	PGresult   *res;
	int64		count;

	/* the highest key, ordered as the batches are */
	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	/*
	 * The output columns get names of their own and ORDER BY qualifies the
	 * key: an unqualified name would sort by the text output column.
	 */
	for (int k = 0; k < src->nkeys; k++)
		appendStringInfo(&sql, "%ss.%s::pg_catalog.text AS k%d", k > 0 ? ", " : "",
						 src->key_names[k], k);
	appendStringInfo(&sql, " FROM ONLY %s s ORDER BY ", src->name);
	for (int k = 0; k < src->nkeys; k++)
		appendStringInfo(&sql, "%ss.%s DESC", k > 0 ? ", " : "", src->key_names[k]);
	appendStringInfoString(&sql, " LIMIT 1");

	res = splitdb_remote_exec(conn, sql.data, 0, NULL, service);
	if (PQntuples(res) == 0)
		*last_key = NULL;
	else
	{
		char	  **key = palloc(sizeof(char *) * src->nkeys);

		for (int k = 0; k < src->nkeys; k++)
			key[k] = pstrdup(PQgetvalue(res, 0, k));
		*last_key = key;
	}
	PQclear(res);

	res = splitdb_remote_exec(conn,
							  psprintf("SELECT pg_catalog.count(*) FROM ONLY %s", src->name),
							  0, NULL, service);
	count = pg_strtoint64(PQgetvalue(res, 0, 0));
	PQclear(res);
	return count;
}

/*
 * splitdb_copy_truncate
 *		Empty the sibling's copies of tables, to copy them again from the
 *		start.
 *
 * names: quoted, schema-qualified table names, comma-separated; tables that
 * reference one another must be emptied in one call.
 */
void
splitdb_copy_truncate(PGconn *conn, const char *names, const char *service)
{
	PQclear(splitdb_remote_exec(conn, psprintf("TRUNCATE ONLY %s", names),
								0, NULL, service));
}
