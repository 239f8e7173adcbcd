/*-------------------------------------------------------------------------
 *
 * verify.c
 *	  Row counts and order-independent checksums on both sides of a split:
 *	  splitdb_verify().
 *
 * For every owned table that holds rows (plain tables and leaf partitions),
 * the same query runs in the source and in the sibling:
 *
 *	 SELECT count(*), sum(<row hash of t1, t2, ...>) FROM ONLY schema.table
 *
 * The sum of per-row hashes does not depend on the order in which rows are
 * read, so the two sides can be compared without sorting; each row's hash
 * is hashed again so that the sum depends on which values share a row
 * (splitdb_verify_row_hash(): the digest does it itself, the other forms
 * go through hashint8extended()).  Where the sibling's session connects as a
 * superuser and its server has splitdb's library, it makes a temporary
 * function from it (splitdb_verify_prepare_remote()), and both sides hash
 * each row with splitdb.row_digest(t1, t2, ...), which hashes the values
 * of some built-in types by their bytes or value (rowhash.c); where the
 * digests differ, both sides count again with numeric, jsonb and float
 * values as text, which decides (splitdb_verify_table()).  Otherwise the source
 * hashes with splitdb.row_hash(), the value of hash_record_extended(ROW(t1,
 * t2, ...), 0) without a record for each row, and the sibling with a
 * temporary row_hash() or the ROW() form, numeric, jsonb and float terms as
 * text; for more terms than a function takes, both sides use the ROW()
 * form, those terms as text.  Columns are named
 * explicitly, in the source's attribute order, so dropped columns and a
 * different physical order in the sibling do not matter; generated columns
 * are included, since they must agree too.  Online mode checks the rows a
 * cutover's last replay wrote with the same terms (online.c).
 *
 * Each term t is the column itself when its type hashes by value alike in
 * every database (built-in types with a hash opclass: the hash partitioning
 * functions, whose results PostgreSQL keeps stable), so no value is turned
 * into text; a column of a nondeterministic collation is hashed under "C",
 * so that values its collation calls equal still differ.  Every other column
 * (user-defined types, whose enum labels and member types have other OIDs in
 * the sibling; reg* types and aclitem; types without a hash opclass) is
 * hashed as text, under "C" too: a cast keeps its input's collation.
 * An xml column's text is its output, not its cast to text: the cast gives
 * the value as stored, and a copy stores the output, which leaves out an
 * XML declaration that says no more than the defaults (<?xml
 * version="1.0"?>), as pg_dump's copy of it does.
 *
 * Invariants:
 * - Both sides render text terms under the same settings (DateStyle,
 *   IntervalStyle, TimeZone, extra_float_digits, bytea_output, lc_monetary):
 *   the SQL function fixes them for the local side; the remote session has
 *   the first four from remote.c's session setup and gets the rest here.
 * - Nothing is written on either side.  A table missing in the sibling is
 *   reported (target NULL, ok false), not raised.
 * - One connection per call, closed on every path.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/verify.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "catalog/pg_language.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "metadata/catalog.h"
#include "compat.h"
#include "remote/remote.h"
#include "splitdb.h"
#include "migrate/verify.h"

PG_FUNCTION_INFO_V1(splitdb_verify);

/*
 * Output settings the remote session needs beyond the ones every splitdb
 * session gets (remote.c: datestyle, intervalstyle, timezone,
 * extra_float_digits).  The SQL function sets all of them locally
 * (sql/splitdb--0.1.sql).
 */
static const char *const remote_settings =
"SELECT pg_catalog.current_setting('is_superuser'),"
" pg_catalog.set_config('bytea_output', 'hex', false),"
" pg_catalog.set_config('lc_monetary', 'C', false)";

/*
 * The sibling session's row hashes, from its server's library: the digest,
 * and row_hash() where the library has no digest.
 */
static const char *const remote_row_digest =
"CREATE OR REPLACE FUNCTION " SPLITDB_ROW_DIGEST_REMOTE "(VARIADIC \"any\")"
" RETURNS pg_catalog.int8"
" AS '$libdir/splitdb', '" SPLITDB_ROW_DIGEST_SYMBOL "'"
" LANGUAGE C IMMUTABLE PARALLEL SAFE";
static const char *const remote_row_hash =
"CREATE OR REPLACE FUNCTION pg_temp.splitdb_row_hash(VARIADIC \"any\")"
" RETURNS pg_catalog.int8"
" AS '$libdir/splitdb', 'splitdb_row_hash'"
" LANGUAGE C IMMUTABLE PARALLEL SAFE";


/*
 * hashes_alike_everywhere
 *		True when the type's own extended hash gives a value the same result
 *		in the source and in any sibling.
 *
 * That holds for built-in types with a hash opclass, and arrays and ranges
 * of them: their hash functions are the ones hash partitioning relies on,
 * which PostgreSQL keeps stable, and they hash the value, not an OID.  It
 * does not hold for user-defined types (an enum hashes its label's OID,
 * which differs in the sibling) nor for the reg* types and aclitem (OIDs of
 * objects and roles that have other OIDs there).
 */
static bool
hashes_alike_everywhere(Oid typid, int depth)
{
	TypeCacheEntry *tc;

	if (depth > 16)
		return false;
	typid = getBaseType(typid);
	if (typid >= FirstNormalObjectId || splitdb_type_is_object_oid(typid) ||
		typid == ACLITEMOID)
		return false;
	if (type_is_array(typid) &&
		!hashes_alike_everywhere(get_element_type(typid), depth + 1))
		return false;
	if (type_is_range(typid) &&
		!hashes_alike_everywhere(get_range_subtype(typid), depth + 1))
		return false;
	if (type_is_multirange(typid) &&
		!hashes_alike_everywhere(get_multirange_range(typid), depth + 1))
		return false;
	if (get_typtype(typid) == TYPTYPE_COMPOSITE)
		return false;

	tc = lookup_type_cache(typid, TYPECACHE_HASH_EXTENDED_PROC);
	return OidIsValid(tc->hash_extended_proc);
}

/*
 * text_compared
 *		True for the types whose values verification compares by their text
 *		wherever it does not digest them (splitdb_verify_table()): numeric
 *		and jsonb, whose hash functions call 1.5 and 1.50, NaN and NULL, {}
 *		and [] alike, and float4 and float8, whose hash functions give -0
 *		and 0 the hash of a NULL.  typid: a base type.
 */
static bool
text_compared(Oid typid)
{
	return typid == NUMERICOID || typid == JSONBOID ||
		typid == FLOAT4OID || typid == FLOAT8OID;
}

/*
 * holds_text_compared
 *		True when the type (a base type) is an array, range or multirange
 *		that holds values of text_compared() types (through domains and
 *		nesting): such a column is hashed as text, since the digest would
 *		hash those values by their types' functions inside the container.
 */
static bool
holds_text_compared(Oid typid, int depth)
{
	Oid			inner = InvalidOid;

	if (depth > 16)
		return false;
	if (type_is_array(typid))
		inner = get_element_type(typid);
	else if (type_is_range(typid))
		inner = get_range_subtype(typid);
	else if (type_is_multirange(typid))
		inner = get_range_subtype(get_multirange_range(typid));
	if (!OidIsValid(inner))
		return false;
	inner = getBaseType(inner);
	return text_compared(inner) || holds_text_compared(inner, depth + 1);
}

/*
 * splitdb_verify_row_terms
 *		The terms of a table's row hash, in attribute order (see the head
 *		of this file), and their number in *nterms: the sum of
 *		splitdb_verify_row_hash() of them over a set of rows is its
 *		checksum, alike on both sides.  text_terms, unless NULL: set to the
 *		same terms with each of a text_compared() type as its text, the
 *		terms of the forms other than the digest and of the second count
 *		where the digests differ (splitdb_verify_table()), or NULL where no
 *		term is of such a type.  Called connected to SPI; the results are
 *		palloc'd in the current context, outside SPI's.
 */
char *
splitdb_verify_row_terms(Oid relid, int *nterms, char **text_terms)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(relid)};
	StringInfoData terms;
	StringInfoData as_text;
	bool		any_text_compared = false;

	splitdb_spi_exec("SELECT quote_ident(a.attname), a.atttypid, a.attcollation"
					 "  FROM pg_catalog.pg_attribute a"
					 " WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped"
					 " ORDER BY a.attnum",
					 1, types, values, NULL, true, 0);

	initStringInfo(&terms);
	initStringInfo(&as_text);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *name = SPI_getvalue(tup, desc, 1);
		bool		isnull;
		Oid			typid = DatumGetObjectId(SPI_getbinval(tup, desc, 2, &isnull));
		Oid			collid = DatumGetObjectId(SPI_getbinval(tup, desc, 3, &isnull));
		int			len = terms.len;

		if (i > 0)
			appendStringInfoString(&terms, ", ");
		if (getBaseType(typid) == XMLOID)
			appendStringInfo(&terms, "pg_catalog.textin(pg_catalog.xml_out(%s))", name);
		else if (!hashes_alike_everywhere(typid, 0) ||
				 holds_text_compared(getBaseType(typid), 0))
			appendStringInfo(&terms, "%s::pg_catalog.text COLLATE pg_catalog.\"C\"", name);
		else if (OidIsValid(collid) && !get_collation_isdeterministic(collid))
			appendStringInfo(&terms, "%s COLLATE pg_catalog.\"C\"", name);
		else
			appendStringInfoString(&terms, name);

		/* the text terms: the same, but numeric, jsonb and floats as text */
		if (text_compared(getBaseType(typid)))
		{
			appendStringInfo(&as_text, "%s%s::pg_catalog.text", i > 0 ? ", " : "", name);
			any_text_compared = true;
		}
		else
			appendStringInfoString(&as_text, terms.data + len);
	}
	*nterms = (int) SPI_processed;
	if (text_terms != NULL)
		*text_terms = any_text_compared ? as_text.data : NULL;
	return terms.data;
}

/*
 * splitdb_verify_row_hash
 *		The expression of one row's hash over terms (nterms of them, from
 *		splitdb_verify_row_terms()): func(terms) where func is a row digest
 *		(SPLITDB_ROW_DIGEST_LOCAL in the source, SPLITDB_ROW_DIGEST_REMOTE
 *		in the sibling), which mixes the row's hash itself; the hash, by
 *		hashint8extended(), of func(terms) where func is another row hash
 *		function the session has (SPLITDB_ROW_HASH_LOCAL, or the one
 *		splitdb_verify_prepare_remote() returned in the sibling); in both
 *		cases only where the terms fit in a function's arguments, else the
 *		hash of hash_record_extended(ROW(terms), 0), which row_hash() equals.
 *
 * Why the outer hash: the row hashes combine their terms' hashes linearly
 * (result * 31 + hash), so the sum over the rows would be a weighted sum of
 * each column's sum, and values swapped between rows would leave it as it
 * was but for carries.  Hashing each row's hash again makes every row's
 * contribution depend on the whole row.  hashint8extended() folds its
 * argument to 32 bits first, so in the forms other than the digest a
 * changed row goes unseen with a chance of 2^-32 rather than 2^-64.
 */
char *
splitdb_verify_row_hash(const char *terms, int nterms, const char *func)
{
	bool		fits = func != NULL && nterms > 0 && nterms <= FUNC_MAX_ARGS;

	if (fits && (strcmp(func, SPLITDB_ROW_DIGEST_LOCAL) == 0 ||
				 strcmp(func, SPLITDB_ROW_DIGEST_REMOTE) == 0))
		return psprintf("%s(%s)", func, terms);
	if (fits)
		return psprintf("pg_catalog.hashint8extended(%s(%s), 0)", func, terms);
	return psprintf("pg_catalog.hashint8extended(pg_catalog.hash_record_extended(ROW(%s), 0), 0)",
					terms);
}

/*
 * splitdb_verify_tables
 *		The service's tables that hold rows, with their columns.
 *
 * The caller is connected to SPI; the result lives in the caller's context
 * (allocated before SPI_finish() by the caller's choice of context).
 */
List *
splitdb_verify_tables(const char *service, MemoryContext cxt)
{
	Oid			types[1] = {NAMEOID};
	Datum		values[1];
	List	   *result = NIL;
	ListCell   *lc;

	values[0] = DirectFunctionCall1(namein, CStringGetDatum(service));
	splitdb_spi_exec(
					 "WITH owned AS ("
					 "  SELECT r.relid FROM (" SPLITDB_OWNED_RELATION_SQL ") r"
					 "   WHERE r.service = $1),"
					 " moved AS ("
					 "  SELECT t.relid, t.table_name FROM splitdb.job j"
					 "    JOIN splitdb.job_table t ON t.job_id = j.job_id"
					 "   WHERE j.service = $1 AND j.state NOT IN ('cancelled', 'rolled_back'))"
					 " SELECT format('%I.%I', n.nspname, c.relname),"
					 "        coalesce(m.table_name, format('%I.%I', n.nspname, c.relname)),"
					 "        c.oid"
					 "   FROM owned o JOIN pg_class c ON c.oid = o.relid"
					 "   JOIN pg_namespace n ON n.oid = c.relnamespace"
					 "   LEFT JOIN moved m ON m.relid = c.oid"
					 "  WHERE c.relkind = 'r'"
					 "  ORDER BY 2",
					 1, types, values, NULL, true, 0);

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);
		SplitdbVerifyTable *t = palloc(sizeof(SplitdbVerifyTable));
		bool		isnull;

		t->source_name = pstrdup(SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
		t->target_name = pstrdup(SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2));
		t->relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3, &isnull));
		result = lappend(result, t);
		MemoryContextSwitchTo(old);
	}

	/* the terms need the columns of each table: a query of their own */
	foreach(lc, result)
	{
		SplitdbVerifyTable *t = (SplitdbVerifyTable *) lfirst(lc);

		char	   *terms;
		char	   *text_terms;

		terms = splitdb_verify_row_terms(t->relid, &t->nterms, &text_terms);
		t->terms = MemoryContextStrdup(cxt, terms);
		t->text_terms = text_terms ? MemoryContextStrdup(cxt, text_terms) : NULL;
	}
	return result;
}

/*
 * checksum_query
 *		The count-and-checksum query for one table, over terms (t->terms or
 *		t->text_terms).  The table name comes quoted from
 *		splitdb_verify_tables(), with the terms; func: the row hash function
 *		of the session that runs it, or NULL (see splitdb_verify_row_hash()).
 */
static char *
checksum_query(const SplitdbVerifyTable *t, const char *terms, const char *name,
			   const char *func)
{
	return psprintf("SELECT pg_catalog.count(*),"
					" pg_catalog.sum(%s)::pg_catalog.text"
					" FROM ONLY %s",
					splitdb_verify_row_hash(terms, t->nterms, func), name);
}

/*
 * local_checksum
 *		Run the checksum query in the source.
 *
 * rows, checksum: set to the count and the checksum ("0" for no rows); the
 * checksum is allocated in cxt.
 */
static void
local_checksum(const char *sql, MemoryContext cxt, int64 *rows, char **checksum)
{
	bool		isnull;
	char	   *sum;

	splitdb_spi_connect();
	splitdb_spi_exec(sql, 0, NULL, NULL, NULL, true, 0);
	*rows = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										SPI_tuptable->tupdesc, 1, &isnull));
	sum = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	*checksum = MemoryContextStrdup(cxt, sum ? sum : "0");
	SPI_finish();
}

/*
 * try_remote_function
 *		Make one of the sibling session's row hash functions; false where
 *		the sibling refuses it.  In an open transaction the attempt runs
 *		under a savepoint, so that a failure leaves the transaction as it
 *		was.
 */
static bool
try_remote_function(PGconn *conn, const char *sql, bool in_xact, const char *service)
{
	bool		made;

	if (in_xact)
		splitdb_remote_command(conn, "SAVEPOINT splitdb_row_hash", 0, NULL, service);
	made = splitdb_remote_try_command(conn, sql, service);
	if (in_xact)
	{
		if (!made)
			splitdb_remote_command(conn, "ROLLBACK TO SAVEPOINT splitdb_row_hash", 0, NULL, service);
		splitdb_remote_command(conn, "RELEASE SAVEPOINT splitdb_row_hash", 0, NULL, service);
	}
	return made;
}

/*
 * splitdb_verify_prepare_remote
 *		Give a sibling session the output settings checksums need, and,
 *		where it can have one, a row hash function of its own: returns its
 *		name for splitdb_verify_row_hash(), or NULL for the ROW() form.
 *
 * The sibling's splitdb extension, if it has one at all, comes with the
 * first cutover into it, after the verification.  So the function is made
 * for the session from the library of the sibling's server, which splitdb
 * needs there anyway: the digest (SPLITDB_ROW_DIGEST_REMOTE), which the
 * source then uses too (splitdb_verify_table()), else, for a library
 * without it, pg_temp.splitdb_row_hash.  That takes a superuser (a C
 * function), as every job's connection is; for another role
 * (splitdb_verify() through a mapping to one), or where the sibling refuses
 * both, NULL.
 */
const char *
splitdb_verify_prepare_remote(PGconn *conn, const char *service)
{
	char	   *superuser;
	bool		in_xact;

	superuser = splitdb_remote_scalar(conn, remote_settings, 0, NULL, service);
	if (superuser == NULL || strcmp(superuser, "on") != 0)
		return NULL;

	in_xact = splitdb_remote_in_transaction(conn);
	if (try_remote_function(conn, remote_row_digest, in_xact, service))
		return SPLITDB_ROW_DIGEST_REMOTE;
	if (try_remote_function(conn, remote_row_hash, in_xact, service))
		return "pg_temp.splitdb_row_hash";
	return NULL;
}

/*
 * splitdb_verify_drop_remote
 *		Drop the function splitdb_verify_prepare_remote() made, if it made
 *		one (remote_hash, what it returned): a reader of the sibling's
 *		catalog right after does not see it while that backend exits.
 */
void
splitdb_verify_drop_remote(PGconn *conn, const char *remote_hash, const char *service)
{
	if (remote_hash != NULL)
		splitdb_remote_command(conn, psprintf("DROP FUNCTION %s(\"any\")", remote_hash),
							   0, NULL, service);
}

/*
 * both_checksums
 *		Count and checksum one table present in both, over terms: the
 *		sibling's query (with its row hash function remote_hash) is sent
 *		first and runs there while the source's (with local) runs here.  Sets r's counts
 *		and checksums, in CurrentMemoryContext, and r->ok.
 */
static void
both_checksums(PGconn *conn, const SplitdbVerifyTable *t, const char *terms,
			   const char *local, const char *remote_hash, const char *service,
			   SplitdbVerifyResult *r)
{
	char	   *remote_sql;
	char	   *checksum;
	PGresult   *res;

	remote_sql = checksum_query(t, terms, t->target_name, remote_hash);
	splitdb_remote_send(conn, remote_sql, 0, NULL, service);
	local_checksum(checksum_query(t, terms, t->source_name, local),
				   CurrentMemoryContext, &r->source_rows, &r->source_checksum);
	res = splitdb_remote_finish(conn, remote_sql, service);

	/* copy out and clear first: nothing below may leak res */
	r->target_rows = pg_strtoint64(splitdb_remote_value(res, 0, 0));	/* a count */
	checksum = splitdb_remote_value(res, 0, 1);
	r->target_checksum = pstrdup(checksum != NULL ? checksum : "0");
	splitdb_remote_clear(res);
	r->ok = r->source_rows == r->target_rows &&
		strcmp(r->source_checksum, r->target_checksum) == 0;
}

/*
 * local_digest_exists
 *		True when the source's extension has splitdb.row_digest("any") and
 *		it computes this library's digest (a C function of symbol
 *		SPLITDB_ROW_DIGEST_SYMBOL): a library newer than the extension's
 *		objects (installed, not yet updated with ALTER EXTENSION) may lack
 *		the function, or have it name another digest than this library's,
 *		and verification then hashes with row_hash() on both sides rather
 *		than fail or compare two different digests.
 */
static bool
local_digest_exists(void)
{
	Oid			argtypes[1] = {ANYOID};
	Oid			fn;
	HeapTuple	tup;
	bool		ours = false;

	fn = LookupFuncName(list_make2(makeString("splitdb"), makeString("row_digest")),
						1, argtypes, true);
	if (!OidIsValid(fn))
		return false;
	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		src = SysCacheGetAttr(PROCOID, tup, Anum_pg_proc_prosrc, &isnull);

		ours = ((Form_pg_proc) GETSTRUCT(tup))->prolang == ClanguageId && !isnull &&
			strcmp(TextDatumGetCString(src), SPLITDB_ROW_DIGEST_SYMBOL) == 0;
		ReleaseSysCache(tup);
	}
	return ours;
}

/*
 * splitdb_verify_table
 *		Count and checksum one table in the source and in the sibling, both
 *		at once (both_checksums()).
 *
 * conn: a sibling session prepared by splitdb_verify_prepare_remote()
 * remote_hash: what that returned
 * r:    out: both sides' counts and checksums; a table the sibling lacks is
 *       reported with present = false rather than raised
 *
 * Numeric, jsonb and float values compare by their text: their types' hash
 * functions call 1.5 and 1.50, NaN and NULL, {} and [] alike, and hash -0
 * and 0 as a NULL.  With the sibling's digest, the source digests too,
 * which hashes those values by their bytes or bits (equal bytes, equal
 * text); where the digests of a table with such terms differ over as many
 * rows, a value may be the same but stored in other bytes (a numeric that
 * a server before 9.1 wrote in its long form, see rowhash.c), so both
 * sides are counted and checksummed again with those terms as text, and
 * that decides.  Without the digest (no function in the sibling, or more
 * terms than a function takes), both sides take those terms as text at
 * once.
 *
 * The local session must have the settings splitdb_verify() sets.  The
 * results are allocated in CurrentMemoryContext.  If the local query
 * fails, the sibling's is still running: the caller closes the connection
 * on its error path, as for any other error.
 */
void
splitdb_verify_table(PGconn *conn, const SplitdbVerifyTable *t,
					 const char *remote_hash, const char *service,
					 SplitdbVerifyResult *r)
{
	const char *param[1];
	char	   *present;
	/* the digest, where both sides have it and the terms fit a function */
	bool		remote_digest = remote_hash != NULL &&
		strcmp(remote_hash, SPLITDB_ROW_DIGEST_REMOTE) == 0;
	bool		digest = remote_digest && t->nterms > 0 &&
		t->nterms <= FUNC_MAX_ARGS && local_digest_exists();
	const char *local = digest ? SPLITDB_ROW_DIGEST_LOCAL : SPLITDB_ROW_HASH_LOCAL;
	/* without the digest, the sibling's digest function is not row_hash() */
	const char *remote = !digest && remote_digest ? NULL : remote_hash;
	const char *as_text = t->text_terms ? t->text_terms : t->terms;

	memset(r, 0, sizeof(*r));
	param[0] = t->target_name;
	present = splitdb_remote_scalar(conn, "SELECT pg_catalog.to_regclass($1) IS NOT NULL",
									1, param, service);
	r->present = present != NULL && strcmp(present, "t") == 0;
	if (!r->present)
	{
		local_checksum(checksum_query(t, digest ? t->terms : as_text, t->source_name, local),
					   CurrentMemoryContext, &r->source_rows, &r->source_checksum);
		return;
	}

	if (!digest)
	{
		both_checksums(conn, t, as_text, local, remote, service, r);
		return;
	}
	both_checksums(conn, t, t->terms, local, remote_hash, service, r);
	if (!r->ok && r->source_rows == r->target_rows && t->text_terms != NULL)
		both_checksums(conn, t, t->text_terms, local, remote_hash, service, r);
}

/*
 * splitdb_verify
 *		SQL: splitdb_verify(service name)
 *		RETURNS TABLE(table_name text, source_rows bigint, target_rows bigint,
 *		              source_checksum text, target_checksum text, ok bool)
 *
 * Compares each owned table that holds rows with the table of the same name
 * in the sibling.  A table the sibling lacks has NULL target columns and is
 * not ok.
 */
Datum
splitdb_verify(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *service = pstrdup(NameStr(*PG_GETARG_NAME(0)));
	MemoryContext cxt = CurrentMemoryContext;
	SplitdbService *svc;
	char	   *server;
	List	   *tables;
	PGconn	   *volatile conn = NULL;
	const char *remote_hash;

	splitdb_require_superuser("splitdb_verify");
	InitMaterializedSRF(fcinfo, 0);

	splitdb_spi_connect();
	svc = splitdb_catalog_get_service(service, SPLITDB_LOCK_NONE, false);
	server = MemoryContextStrdup(cxt, svc->server);
	tables = splitdb_verify_tables(service, cxt);
	SPI_finish();

	PG_TRY();
	{
		ListCell   *lc;

		conn = splitdb_remote_connect_server(server, service);
		splitdb_remote_check_encoding(conn, service);
		remote_hash = splitdb_verify_prepare_remote(conn, service);

		foreach(lc, tables)
		{
			SplitdbVerifyTable *t = (SplitdbVerifyTable *) lfirst(lc);
			SplitdbVerifyResult r;
			Datum		values[6];
			bool		nulls[6] = {false, false, false, false, false, false};

			splitdb_verify_table(conn, t, remote_hash, service, &r);
			values[0] = CStringGetTextDatum(t->target_name);
			values[1] = Int64GetDatum(r.source_rows);
			values[3] = CStringGetTextDatum(r.source_checksum);
			if (r.present)
			{
				values[2] = Int64GetDatum(r.target_rows);
				values[4] = CStringGetTextDatum(r.target_checksum);
			}
			else
				nulls[2] = nulls[4] = true;
			values[5] = BoolGetDatum(r.ok);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}

		/* the session's function goes with the session, and here */
		splitdb_verify_drop_remote(conn, remote_hash, service);
	}
	PG_FINALLY();
	{
		splitdb_remote_disconnect(conn);
	}
	PG_END_TRY();

	return (Datum) 0;
}
