/*-------------------------------------------------------------------------
 *
 * copy.c
 *	  Streaming a table's rows into the sibling, in key-ordered batches.
 *
 * A batch reads the next rows of a table in key order through an SPI cursor,
 * in the worker's own backend, encodes them in COPY format (binary where
 * every column type can cross databases in binary, text otherwise) and
 * streams them to the sibling over one or more connections (streams), each
 * carrying one COPY ... FROM STDIN.  Chunks of rows go to whichever stream
 * has sent what it was given, so the sibling parses and writes the batch in
 * as many backends as there are streams while the worker reads.  Each COPY
 * commits in the sibling on its own; once they all have, the caller records
 * the batch's last key as the checkpoint and commits in the source.
 *
 * Invariants:
 * - Memory is bounded by the cursor's fetch size, one chunk, and one chunk
 *   in each stream's libpq buffer, whatever the size of a table or batch.
 * - Batches are ordered by the table's primary key (or a unique key on NOT
 *   NULL columns) and each starts strictly after the last key of the one
 *   before, so no row is sent twice and none is skipped.
 * - A crash can leave in the sibling rows of the batch after the last
 *   checkpoint (the streams commit one by one).  Every run first fences out
 *   the sibling sessions of earlier runs (fence.c), so no COPY of theirs
 *   can commit later, and before a table's copy goes on,
 *   splitdb_copy_trim() deletes what lies beyond the checkpoint.
 * - Generated columns are not sent; the sibling computes them.
 *
 * COPY ... (FREEZE) is not used: it needs the table created or truncated in
 * the COPY's own transaction, and a batch commits on its own (it is a
 * checkpoint) while other streams and readers write the same table; a
 * TRUNCATE in a later batch's transaction would empty the batches before
 * it, and its lock would stop the others (docs/architecture.md).
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/copy.c
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
#include "utils/uuid.h"

#include "catalog/pg_type_d.h"
#include "metadata/catalog.h"
#include "metadata/catalog_sql.h"
#include "compat.h"
#include "migrate/copy.h"
#include "remote/remote.h"
#include "migrate/job.h"
#include "splitdb.h"

/* rows fetched from the cursor at a time */
#define FETCH_ROWS		1000

/* bytes gathered before they are handed to a stream */
#define SEND_CHUNK		(64 * 1024)

/* how a column's value goes into binary COPY data */
typedef enum SendKind
{
	SEND_CALL,					/* the type's send function */
	SEND_FIXED,					/* a pass-by-value integer or float: its bits, big-endian */
	SEND_UUID,					/* 16 bytes as stored */
	SEND_BYTES					/* a varlena sent as its bytes (text, varchar, bpchar, bytea) */
} SendKind;

/* the signature that opens binary COPY data */
static const char binary_signature[11] = "PGCOPY\n\377\r\n\0";

/*
 * type_crosses_in_binary
 *		True when values of the type can be sent in binary to a database
 *		whose type OIDs differ from the source's.
 *
 * Binary arrays and composites carry the OIDs of their element and column
 * types, which only match between databases for built-in types; the reg*
 * types are OIDs of objects, sent in binary as numbers, where their text
 * form names the object; types without a send function cannot be sent in
 * binary at all.
 */
static bool type_crosses_in_binary(Oid typid, int depth);

/*
 * splitdb_copy_crosses_in_binary
 *		True when values of the type can be sent in binary COPY data to, or
 *		received from, a database whose type OIDs differ (see below).
 */
bool
splitdb_copy_crosses_in_binary(Oid typid)
{
	return type_crosses_in_binary(typid, 0);
}

static bool
type_crosses_in_binary(Oid typid, int depth)
{
	HeapTuple	tup;
	Form_pg_type typ;
	bool		ok;

	if (depth > 16)
		return false;
	typid = getBaseType(typid);
	if (splitdb_type_is_object_oid(typid))
		return false;
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
 * send_kind
 *		How values of a (base) type go into binary COPY data: the common
 *		built-in types are written here, in the form their send functions
 *		give, without a call and an allocation per value; the others through
 *		their send function.
 */
static SendKind
send_kind(Oid typid)
{
	switch (typid)
	{
		case BOOLOID:
		case INT2OID:
		case INT4OID:
		case OIDOID:
		case DATEOID:
		case FLOAT4OID:
		case INT8OID:
		case TIMEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
		case FLOAT8OID:
			return SEND_FIXED;
		case UUIDOID:
			return SEND_UUID;
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
		case BYTEAOID:
			/*
			 * Their send functions send the bytes, converted to the client
			 * encoding; a background worker's is the database's, so there
			 * is nothing to convert.
			 */
			return SEND_BYTES;
		default:
			return SEND_CALL;
	}
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
	splitdb_spi_connect();

	if (splitdb_spi_exec("SELECT format('%I.%I', n.nspname, c.relname)"
						 "  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n"
						 "    ON n.oid = c.relnamespace WHERE c.oid = $1",
						 1, types, values, NULL, true, 0) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "relation %u does not exist", relid);
	src->name = MemoryContextStrdup(cxt, SPI_getvalue(SPI_tuptable->vals[0],
													  SPI_tuptable->tupdesc, 1));

	/* the columns COPY can write: everything but generated columns */
	splitdb_spi_exec("SELECT a.attnum, quote_ident(a.attname), a.atttypid"
					 "  FROM pg_catalog.pg_attribute a"
					 " WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped"
					 "   AND a.attgenerated = ''"
					 " ORDER BY a.attnum",
					 1, types, values, NULL, true, 0);
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

	src->send_kinds = MemoryContextAlloc(cxt, sizeof(int) * (src->ncolumns + 1));
	src->base_types = MemoryContextAlloc(cxt, sizeof(Oid) * (src->ncolumns + 1));
	for (int i = 0; i < src->ncolumns; i++)
	{
		Oid			fn;
		bool		isvarlena;

		if (src->binary)
			getTypeBinaryOutputInfo(src->types[i], &fn, &isvarlena);
		else
			getTypeOutputInfo(src->types[i], &fn, &isvarlena);
		fmgr_info_cxt(fn, &src->out[i], cxt);
		src->base_types[i] = getBaseType(src->types[i]);
		src->send_kinds[i] = src->binary ? send_kind(src->base_types[i]) : SEND_CALL;
	}

	/* the key: the primary key, else a unique key on NOT NULL columns */
	splitdb_spi_exec("SELECT k.attnum, quote_ident(a.attname), format_type(a.atttypid, a.atttypmod)"
					 "  FROM unnest(coalesce("
					 "   (SELECT pk.conkey FROM pg_catalog.pg_constraint pk"
					 "      JOIN pg_catalog.pg_index px ON px.indexrelid = pk.conindid"
					 "     WHERE pk.conrelid = $1 AND pk.contype = 'p'"
					 "       AND NOT EXISTS (" SPLITDB_KEY_FOREIGN_OPS("px") ")),"
					 "   (SELECT (ui.indkey::int2[])[0:ui.indnkeyatts - 1] FROM pg_catalog.pg_index ui"
					 "     WHERE ui.indrelid = $1 AND ui.indisunique AND ui.indisvalid"
					 "       AND ui.indpred IS NULL AND ui.indexprs IS NULL"
					 "       AND NOT EXISTS (" SPLITDB_KEY_FOREIGN_OPS("ui") ")"
					 "       AND NOT EXISTS (SELECT FROM unnest((ui.indkey::int2[])[0:ui.indnkeyatts - 1]) x(attnum)"
					 "                        JOIN pg_catalog.pg_attribute na ON na.attrelid = ui.indrelid"
					 "                         AND na.attnum = x.attnum WHERE NOT na.attnotnull)"
					 "     ORDER BY ui.indnatts, ui.indexrelid LIMIT 1))) WITH ORDINALITY k(attnum, ord)"
					 "  JOIN pg_catalog.pg_attribute a ON a.attrelid = $1 AND a.attnum = k.attnum"
					 " ORDER BY k.ord",
					 1, types, values, NULL, true, 0);

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

static inline void
append_int64(StringInfo buf, int64 v)
{
	uint64		n = pg_hton64((uint64) v);

	appendBinaryStringInfo(buf, (char *) &n, 8);
}

/*
 * append_fixed
 *		One value of a SEND_FIXED type, with its length, as its send
 *		function would give it.
 */
static void
append_fixed(StringInfo buf, Oid typid, Datum value)
{
	switch (typid)
	{
		case BOOLOID:
			append_int32(buf, 1);
			appendStringInfoCharMacro(buf, DatumGetBool(value) ? 1 : 0);
			break;
		case INT2OID:
			append_int32(buf, 2);
			append_int16(buf, DatumGetInt16(value));
			break;
		case FLOAT4OID:
			{
				float4		f = DatumGetFloat4(value);
				uint32		bits;

				memcpy(&bits, &f, sizeof(bits));
				append_int32(buf, 4);
				append_int32(buf, (int32) bits);
				break;
			}
		case FLOAT8OID:
			{
				float8		f = DatumGetFloat8(value);
				uint64		bits;

				memcpy(&bits, &f, sizeof(bits));
				append_int32(buf, 8);
				append_int64(buf, (int64) bits);
				break;
			}
		case INT8OID:
		case TIMEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			append_int32(buf, 8);
			append_int64(buf, DatumGetInt64(value));
			break;
		default:				/* int4, oid, date */
			append_int32(buf, 4);
			append_int32(buf, DatumGetInt32(value));
			break;
	}
}

/*
 * encode_row
 *		Append one row, deformed into values and nulls, in the source's COPY
 *		format, to buf.  Allocations go to the current (per-row) context.
 */
static void
encode_row(SplitdbCopySource *src, Datum *values, bool *nulls, StringInfo buf)
{
	if (src->binary)
		append_int16(buf, (int16) src->ncolumns);

	for (int i = 0; i < src->ncolumns; i++)
	{
		Datum		value = values[i];

		if (!src->binary)
		{
			if (i > 0)
				appendStringInfoCharMacro(buf, '\t');
			if (nulls[i])
				appendBinaryStringInfo(buf, "\\N", 2);
			else
				append_text_value(buf, OutputFunctionCall(&src->out[i], value));
			continue;
		}
		if (nulls[i])
		{
			append_int32(buf, -1);
			continue;
		}
		switch ((SendKind) src->send_kinds[i])
		{
			case SEND_FIXED:
				append_fixed(buf, src->base_types[i], value);
				break;
			case SEND_UUID:
				append_int32(buf, UUID_LEN);
				appendBinaryStringInfo(buf, (char *) DatumGetUUIDP(value)->data, UUID_LEN);
				break;
			case SEND_BYTES:
				{
					struct varlena *v = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(value));

					append_int32(buf, VARSIZE_ANY_EXHDR(v));
					appendBinaryStringInfo(buf, VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v));
					break;
				}
			case SEND_CALL:
				{
					bytea	   *b = SendFunctionCall(&src->out[i], value);
					int			len = VARSIZE(b) - VARHDRSZ;

					append_int32(buf, len);
					appendBinaryStringInfo(buf, VARDATA(b), len);
					break;
				}
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
 * append_key_cond
 *		Append " AND (k1, ..., kn) op ($p, ...)" over the first n key
 *		columns, the parameters numbered from *param on, as text cast to
 *		each column's type; collect their values in params.
 */
static void
append_key_cond(StringInfo sql, SplitdbCopySource *src, int n, const char *op,
				char **values, int *param, const char **params)
{
	/* sql holds the conditions only: the first opens the WHERE clause */
	appendStringInfoString(sql, sql->len > 0 ? " AND (" : " WHERE (");
	for (int k = 0; k < n; k++)
		appendStringInfo(sql, "%s%s", k > 0 ? ", " : "", src->key_names[k]);
	appendStringInfo(sql, ") %s (", op);
	for (int k = 0; k < n; k++)
	{
		params[*param] = values[k];
		(*param)++;
		appendStringInfo(sql, "%s$%d::pg_catalog.text::%s", k > 0 ? ", " : "",
						 *param, src->key_types[k]);
	}
	appendStringInfoChar(sql, ')');
}

/*
 * key_conds
 *		The conditions of the rows a reader has yet to copy, or a trim to
 *		delete: after last_key when given, else from the lower bound on;
 *		before the upper bound.  Returns the number of parameters, whose
 *		values go to params (room for 2 * nkeys).
 */
static int
key_conds(StringInfo sql, SplitdbCopySource *src, const SplitdbKeyBounds *bounds,
		  char **last_key, const char **params)
{
	int			n = 0;

	if (last_key != NULL)
		append_key_cond(sql, src, src->nkeys, ">", last_key, &n, params);
	else if (bounds != NULL && bounds->lower != NULL)
		append_key_cond(sql, src, bounds->nlower, ">=", bounds->lower, &n, params);
	if (bounds != NULL && bounds->upper != NULL)
		append_key_cond(sql, src, bounds->nupper, "<", bounds->upper, &n, params);
	return n;
}

/*
 * splitdb_copy_key
 *		A copy of a key (n text forms, none NULL) in memory context cxt.
 */
char	  **
splitdb_copy_key(MemoryContext cxt, char **key, int n)
{
	char	  **copy = MemoryContextAlloc(cxt, sizeof(char *) * Max(n, 1));

	for (int k = 0; k < n; k++)
		copy[k] = MemoryContextStrdup(cxt, key[k]);
	return copy;
}

/*
 * batch_query
 *		The SELECT of the next batch: rows after the last key (or from the
 *		range's first) and before the range's end, in key order.  Returns
 *		the number of parameters, whose values go to params.
 */
static int
batch_query(StringInfo sql, SplitdbCopySource *src, const SplitdbKeyBounds *bounds,
			char **last_key, int64 batch_rows, const char **params)
{
	StringInfoData conds;
	int			n;

	appendStringInfo(sql, "SELECT %s FROM ONLY %s", src->columns, src->name);
	if (src->nkeys == 0)
		return 0;
	initStringInfo(&conds);
	n = key_conds(&conds, src, bounds, last_key, params);
	appendStringInfo(sql, "%s ORDER BY %s LIMIT " INT64_FORMAT, conds.data,
					 src->key_list, batch_rows);
	return n;
}

/* a batch under way: its streams and what each has been given */
typedef struct CopyBatch
{
	PGconn	   *const *conns;	/* the streams, as the caller gave them */
	int			nconns;
	int			nopen;			/* streams 0 .. nopen-1 have their COPY open */
	int			next;			/* the stream offered the next chunk first */
	const char *copy;			/* the COPY statement */
	bool		binary;
	const char *service;
} CopyBatch;

/*
 * open_stream
 *		Start the batch's COPY on the next stream, with the binary header.
 */
static void
open_stream(CopyBatch *b)
{
	PGconn	   *conn = b->conns[b->nopen];

	splitdb_remote_copy_begin(conn, b->copy, b->service);
	b->nopen++;
	if (b->binary)
	{
		StringInfoData head;

		initStringInfo(&head);
		appendBinaryStringInfo(&head, binary_signature, sizeof(binary_signature));
		append_int32(&head, 0);	/* flags */
		append_int32(&head, 0);	/* header extension length */
		while (!splitdb_remote_copy_offer(conn, head.data, head.len, b->service))
			splitdb_remote_wait_writable(&conn, 1);
		pfree(head.data);
	}
}

/*
 * dispatch
 *		Give a chunk of whole rows to a stream that has sent what it was
 *		given before, waiting when none has.  The streams take turns, each
 *		opened when its first turn comes, so a batch of k chunks uses
 *		min(k, streams) of them and a small table one.
 */
static void
dispatch(CopyBatch *b, const char *data, int len)
{
	for (;;)
	{
		for (int n = 0; n < b->nconns; n++)
		{
			int			i = (b->next + n) % b->nconns;

			if (i >= b->nopen)
			{
				if (i > b->nopen)
					continue;	/* streams open in order */
				open_stream(b);
			}
			if (splitdb_remote_copy_offer(b->conns[i], data, len, b->service))
			{
				b->next = i + 1;
				return;
			}
		}
		splitdb_remote_wait_writable(b->conns, b->nopen);
	}
}

/*
 * finish_streams
 *		End the COPY of every open stream (the binary trailer, then the end
 *		of the data), all before waiting for any, so they finish side by
 *		side; then wait for each to commit.
 */
static void
finish_streams(CopyBatch *b)
{
	for (int i = 0; i < b->nopen; i++)
	{
		if (b->binary)
		{
			char		trailer[2] = {'\377', '\377'};	/* field count -1 */

			while (!splitdb_remote_copy_offer(b->conns[i], trailer, 2, b->service))
				splitdb_remote_wait_writable(&b->conns[i], 1);
		}
		splitdb_remote_copy_end_send(b->conns[i], b->service);
	}
	for (int i = 0; i < b->nopen; i++)
		splitdb_remote_copy_result(b->conns[i], b->copy, b->service);
}

/* what send_rows() does after each fetch (see there) */
typedef bool (*Fetched) (SPITupleTable *tt, uint64 n, void *arg);

/*
 * send_rows
 *		Encode every row the portal returns, in src's format, and hand the
 *		rows to b's streams in chunks; at least one stream is opened, so
 *		that a query without rows still makes one COPY.  After each fetch,
 *		fetched (when not NULL) sees the rows before they are freed, and
 *		ends the sending there by returning false.  Adds the bytes sent to
 *		*bytes and returns the rows sent.  The streams' COPYs are left open
 *		(finish_streams() ends them).
 */
static int64
send_rows(CopyBatch *b, SplitdbCopySource *src, Portal portal, int64 *bytes,
		  Fetched fetched, void *arg)
{
	MemoryContext rowcxt = AllocSetContextCreate(CurrentMemoryContext, "splitdb copy row",
												 ALLOCSET_DEFAULT_SIZES);
	Datum	   *values = palloc(sizeof(Datum) * (src->ncolumns + 1));
	bool	   *nulls = palloc(sizeof(bool) * (src->ncolumns + 1));
	StringInfoData chunk;
	int64		rows = 0;

	initStringInfo(&chunk);
	for (;;)
	{
		SPITupleTable *tt;
		uint64		n;
		bool		go_on;

		SPI_cursor_fetch(portal, true, FETCH_ROWS);
		tt = SPI_tuptable;
		n = SPI_processed;
		if (n == 0)
			break;

		for (uint64 i = 0; i < n; i++)
		{
			MemoryContext old = MemoryContextSwitchTo(rowcxt);

			heap_deform_tuple(tt->vals[i], tt->tupdesc, values, nulls);
			encode_row(src, values, nulls, &chunk);
			MemoryContextSwitchTo(old);
			MemoryContextReset(rowcxt);
			if (chunk.len >= SEND_CHUNK)
			{
				dispatch(b, chunk.data, chunk.len);
				*bytes += chunk.len;
				resetStringInfo(&chunk);
			}
		}
		rows += n;
		go_on = fetched == NULL || fetched(tt, n, arg);
		SPI_freetuptable(tt);
		if (!go_on)
			break;
	}

	if (chunk.len > 0 || b->nopen == 0)
	{
		if (b->nopen == 0)
			open_stream(b);
		if (chunk.len > 0)
			dispatch(b, chunk.data, chunk.len);
		*bytes += chunk.len;
	}
	pfree(chunk.data);
	MemoryContextDelete(rowcxt);
	return rows;
}

/* a batch's Fetched: the key of the last row fetched, kept in cxt */
typedef struct LastKey
{
	SplitdbCopySource *src;
	MemoryContext cxt;
	char	  **key;
} LastKey;

static bool
keep_last_key(SPITupleTable *tt, uint64 n, void *arg)
{
	LastKey    *k = (LastKey *) arg;

	if (k->src->nkeys > 0)
	{
		MemoryContext old = MemoryContextSwitchTo(k->cxt);

		k->key = key_of(k->src, tt->vals[n - 1], tt->tupdesc);
		MemoryContextSwitchTo(old);
	}
	return true;
}

/* a COPY of src's columns into table into, over b's streams */
static void
init_batch(CopyBatch *b, PGconn *const *conns, int nconns, SplitdbCopySource *src,
		   const char *into, const char *service)
{
	memset(b, 0, sizeof(*b));
	b->conns = conns;
	b->nconns = Max(nconns, 1);
	b->binary = src->binary;
	b->service = service;
	b->copy = psprintf("COPY %s (%s) FROM STDIN%s", into, src->columns,
					   src->binary ? " (FORMAT binary)" : "");
}

/*
 * splitdb_copy_batch
 *		Copy the next batch of a table, or of a range of its keys, into the
 *		sibling.
 *
 * conns:      nconns connections to the sibling (the streams), with no
 *             transaction open there
 * src:        from splitdb_copy_source()
 * bounds:     the range of keys to copy, or NULL for the whole table
 * last_key:   in: the key of the last row already in the sibling, or NULL
 *             to start at the beginning (of the range); out: the key of the
 *             last row of this batch (unchanged when it copied nothing)
 * batch_rows: at most this many rows (a table without a key goes in one pass)
 * bytes:      out: COPY bytes sent
 *
 * Runs in the caller's transaction.  Each stream's COPY commits in the
 * sibling when it ends; when this returns, all have.  Returns the number of
 * rows copied; 0 means the table (the range) is done.
 */
int64
splitdb_copy_batch(PGconn *const *conns, int nconns, SplitdbCopySource *src,
				   const SplitdbKeyBounds *bounds, char ***last_key,
				   int64 batch_rows, int64 *bytes, const char *service)
{
	StringInfoData select;
	const char **texts = palloc(sizeof(char *) * (2 * src->nkeys + 1));
	SPIPlanPtr	plan;
	Portal		portal;
	Oid		   *argtypes = NULL;
	Datum	   *args = NULL;
	CopyBatch	b;
	LastKey		last = {src, CurrentMemoryContext, NULL};
	int64		rows;
	int			nargs;

	initStringInfo(&select);
	nargs = batch_query(&select, src, bounds, *last_key, batch_rows, texts);
	*bytes = 0;
	if (nargs > 0)
	{
		argtypes = palloc(sizeof(Oid) * nargs);
		args = palloc(sizeof(Datum) * nargs);
		for (int k = 0; k < nargs; k++)
		{
			argtypes[k] = TEXTOID;
			args[k] = CStringGetTextDatum(texts[k]);
		}
	}
	init_batch(&b, conns, nconns, src, src->name, service);

	splitdb_spi_connect();
	plan = SPI_prepare(select.data, nargs, argtypes);
	if (plan == NULL)
		splitdb_spi_failed(select.data, SPI_result);
	portal = SPI_cursor_open(NULL, plan, args, NULL, true);
	rows = send_rows(&b, src, portal, bytes, keep_last_key, &last);
	finish_streams(&b);
	if (src->binary)
		*bytes += b.nopen * (sizeof(binary_signature) + 8 + 2);
	SPI_cursor_close(portal);
	SPI_finish();

	if (last.key != NULL)
		*last_key = last.key;
	return rows;
}

/* splitdb_copy_rows()'s Fetched: the caller's go_on */
typedef struct GoOn
{
	bool		(*go_on) (void *arg);
	void	   *arg;
} GoOn;

static bool
ask_go_on(SPITupleTable *tt, uint64 n, void *arg)
{
	GoOn	   *g = (GoOn *) arg;

	return g->go_on == NULL || g->go_on(g->arg);
}

/*
 * splitdb_copy_rows
 *		Send the rows of query, read here in the caller's snapshot, into the
 *		sibling's table of the same name as src's, as one COPY in the
 *		transaction open on conn (it commits with that transaction).
 *
 * src:    from splitdb_copy_source() for the table, or a partitioned root,
 *         whose rows query returns: src's columns, in src's order
 * go_on:  when not NULL, asked after each fetch of rows; false ends the
 *         COPY there, normally, leaving the rows sent so far in the open
 *         transaction (the caller then raises, or carries on, as it must)
 *
 * Streams: memory stays bounded by one fetch and one chunk whatever the
 * number of rows.  Returns the rows sent.
 */
int64
splitdb_copy_rows(PGconn *conn, SplitdbCopySource *src, const char *query,
				  bool (*go_on) (void *arg), void *arg, const char *service)
{
	PGconn	   *conns[1] = {conn};
	CopyBatch	b;
	GoOn		g = {go_on, arg};
	SPIPlanPtr	plan;
	Portal		portal;
	int64		bytes = 0;
	int64		rows;

	init_batch(&b, conns, 1, src, src->name, service);
	splitdb_spi_connect();
	plan = SPI_prepare(query, 0, NULL);
	if (plan == NULL)
		splitdb_spi_failed(query, SPI_result);
	portal = SPI_cursor_open(NULL, plan, NULL, NULL, true);
	rows = send_rows(&b, src, portal, &bytes, ask_go_on, &g);
	finish_streams(&b);
	SPI_cursor_close(portal);
	SPI_finish();
	return rows;
}

/*
 * splitdb_copy_trim
 *		Delete from the sibling's table the rows after a checkpoint: those
 *		of batches that were under way, or committed but not recorded, when
 *		an earlier run stopped.
 *
 * bounds:   the range of keys the checkpoint is of, or NULL for the whole
 *           table: rows of other ranges are left alone
 * last_key: the checkpoint, the last key of the last recorded batch; NULL
 *           when no batch was recorded, which empties the range (the table)
 *
 * Call once the run has fenced the sibling (fence.c).  Only for a table
 * with a key.
 */
void
splitdb_copy_trim(PGconn *conn, SplitdbCopySource *src,
				  const SplitdbKeyBounds *bounds, char **last_key,
				  const char *service)
{
	StringInfoData sql;
	StringInfoData conds;
	const char **params = palloc(sizeof(char *) * (2 * src->nkeys + 1));
	int			n;

	initStringInfo(&conds);
	n = key_conds(&conds, src, bounds, last_key, params);
	initStringInfo(&sql);
	appendStringInfo(&sql, "DELETE FROM ONLY %s%s", src->name, conds.data);
	splitdb_remote_command(conn, sql.data, n, params, service);
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
	splitdb_remote_command(conn, psprintf("TRUNCATE ONLY %s", names),
						   0, NULL, service);
}

/*
 * splitdb_copy_empty
 *		Delete every row of the sibling's copy of one table, where a
 *		TRUNCATE would be refused by the foreign keys of tables that keep
 *		their rows.  Call with the connection in replica
 *		(splitdb_copy_replica), so that no foreign key's action or trigger
 *		of the sibling fires.
 *
 * name: a quoted, schema-qualified table name
 */
void
splitdb_copy_empty(PGconn *conn, const char *name, const char *service)
{
	splitdb_remote_command(conn, psprintf("DELETE FROM ONLY %s", name),
						   0, NULL, service);
}

/*
 * splitdb_copy_replica
 *		Put a sibling connection of the copy in session_replication_role
 *		replica (copying true) for what it writes next, or back in origin.
 *
 * The copy, its trims and its TRUNCATE write rows that the source's
 * constraints and triggers have passed already.  In replica, none of the
 * sibling's triggers in their default state fire on them: not the foreign
 * keys among the service's tables, which exist there once the indexing
 * step has run and the tables are sent back to be copied again (a
 * referencing table copied before the table it references, or a batch
 * read before the row it references was written, failed with 23503, and a
 * trim cascaded into rows below the checkpoint), and not the moved tables'
 * own triggers (a BEFORE INSERT trigger rewrote the rows it copied
 * again).  The step uses it only then (step.c).  The role of
 * the service's user mapping is a superuser there (job.c checks it), as
 * the setting requires.  Session-level: each batch's COPY commits on its
 * own, in autocommit.
 */
void
splitdb_copy_replica(PGconn *conn, bool copying, const char *service)
{
	const char *params[1] = {copying ? "replica" : "origin"};

	splitdb_remote_command(conn,
						   "SELECT pg_catalog.set_config('session_replication_role', $1, false)",
						   1, params, service);
}
