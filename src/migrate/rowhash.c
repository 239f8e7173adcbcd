/*-------------------------------------------------------------------------
 *
 * rowhash.c
 *	  One row's hash for the checksums of splitdb_verify() and of an online
 *	  cutover's last replay: splitdb.row_hash(VARIADIC "any"), and the
 *	  cheaper splitdb.row_digest(VARIADIC "any") of verification.
 *
 * splitdb.row_hash(t1, t2, ...) returns exactly what
 * hash_record_extended(ROW(t1, t2, ...), 0) returns: each argument hashed by
 * its type's extended hash function with seed 0, under the argument's
 * collation, a NULL as 0, and the hashes combined as result * 31 + hash in
 * argument order.  It spares each row what the ROW() form costs: a tuple
 * built from the arguments (toasted values fetched and copied into it), and
 * that tuple taken apart again.  The checksums are the same either way, so a
 * sibling can be checked with either form.
 *
 * splitdb.row_digest(t1, t2, ...) combines the same way, but hashes the
 * values of some built-in types (and of domains over them) without their
 * type's hash function (digest_form()): numeric, jsonb, text, varchar,
 * bpchar and bytea by their bytes, decompressed, with hash_bytes_extended()
 * and seed 0; the integer, boolean, date and time types by their value,
 * mixed; float4 and float8 by their value's bits (-0 apart from 0, every NaN
 * alike), mixed; uuid and interval by their bytes; arrays by their type's
 * function and their shape (dimensions and lower bounds, which that function
 * leaves out).  jsonb's hash function walks the whole document, numeric's
 * strips its digits first, and the others cost a function call each.  These
 * types store a value in one form (PostgreSQL's input, receive and build
 * functions write it), and a copy writes the value it read, so a faithful
 * copy has the same bytes.  Equal bytes are equal values; the other way
 * round, values that their type calls equal may differ in bytes (1.5 and
 * 1.50; a numeric of a server before 9.1 in its long form), which verify.c
 * settles by their text.  No value of these forms hashes as a NULL does
 * (0) but by a 2^-64 chance: the values are mixed with a seed, floats do
 * not go through their type's function (which gives 0 and -0 a NULL's
 * hash), and an array's shape is mixed into its function's hash; inside
 * an array the elements still go through their type's function, so
 * verify.c compares arrays of floats, numeric and jsonb by their text.
 * The row's hash is then mixed once more (mix64()), so that the sum of the
 * digests over a table depends on which values share a row: the
 * combination above is linear, and a sum of linear hashes stays the same
 * when values swap between rows.
 * Its values are not those of ROW(): a checksum with it compares only with
 * one made with it.  Its C symbol carries the digest's version
 * (SPLITDB_ROW_DIGEST_SYMBOL, verify.h): a sibling whose library computes
 * another digest lacks this one, and verification falls back to row_hash()
 * (verify.c); a change of what it computes takes a new one.
 *
 * At most FUNC_MAX_ARGS arguments; callers use the ROW() form for wider
 * rows (verify.c).  As for any function, the parser refuses arguments with
 * two different explicit collations (42P21), which ROW() accepts; verify.c
 * writes only COLLATE "C".
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/rowhash.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "nodes/nodeFuncs.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"
#include "utils/uuid.h"

PG_FUNCTION_INFO_V1(splitdb_row_hash);
PG_FUNCTION_INFO_V1(splitdb_row_digest_v2);

/* how row_digest() hashes a value of a type (digest_form()) */
typedef enum DigestForm
{
	DIGEST_TYPE_HASH,			/* its type's extended hash function */
	DIGEST_VARLENA,				/* its bytes, detoasted, without the header */
	DIGEST_VALUE,				/* a pass-by-value integer: its value, mixed */
	DIGEST_FIXED,				/* a fixed-length value by reference: its bytes */
	DIGEST_FLOAT4,				/* its bits as a float8's, NaN as one, mixed */
	DIGEST_FLOAT8,				/* its bits, NaN as one, mixed */
	DIGEST_ARRAY				/* its type's function, and its shape */
} DigestForm;

/*
 * The seed that mix64() mixes in, so that it does not map 0
 * (a NULL's hash) to 0: the fractional part of the golden ratio.
 */
#define DIGEST_SEED UINT64CONST(0x9e3779b97f4a7c15)

/* what one call site needs, looked up at its first row */
typedef struct RowHashArgs
{
	int			nargs;
	struct
	{
		FmgrInfo   *hash;		/* the type's extended hash function */
		Oid			collation;	/* the argument's collation */
		DigestForm	digest;		/* how row_digest() hashes it */
		int16		typlen;		/* for DIGEST_VALUE and DIGEST_FIXED */
	}			arg[FLEXIBLE_ARRAY_MEMBER];
} RowHashArgs;

/*
 * digest_form
 *		How row_digest() hashes a value of built-in type typid (a base
 *		type): by its bytes where the type stores each value in one form, so
 *		that a faithful copy has the same bytes, and where its hash function
 *		costs more than the bytes' (numeric, jsonb) or than the call (the
 *		integer and time types, uuid, text, bytea), or calls values alike
 *		that differ (floats: -0 and 0, which it also hashes as a NULL;
 *		interval: '1 day' and '24 hours'; bpchar: trailing spaces); an array
 *		by its type's function and its shape; else by its type's hash
 *		function.  *typlen: the length to hash, for DIGEST_VALUE and
 *		DIGEST_FIXED.
 */
static DigestForm
digest_form(Oid typid, int16 *typlen)
{
	if (type_is_array(typid))
		return DIGEST_ARRAY;
	switch (typid)
	{
		case NUMERICOID:
		case JSONBOID:
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
		case BYTEAOID:
			return DIGEST_VARLENA;
		case FLOAT4OID:
			return DIGEST_FLOAT4;
		case FLOAT8OID:
			return DIGEST_FLOAT8;
		case INTERVALOID:
			*typlen = sizeof(Interval);
			return DIGEST_FIXED;
		case BOOLOID:
			*typlen = 1;
			return DIGEST_VALUE;
		case INT2OID:
			*typlen = 2;
			return DIGEST_VALUE;
		case INT4OID:
		case DATEOID:
			*typlen = 4;
			return DIGEST_VALUE;
		case INT8OID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
		case TIMEOID:
			*typlen = 8;
			return DIGEST_VALUE;
		case UUIDOID:
			*typlen = UUID_LEN;
			return DIGEST_FIXED;
		default:
			return DIGEST_TYPE_HASH;
	}
}

/*
 * row_hash_args
 *		Look up each argument's hash function and collation from the call's
 *		expression, once per call site (fn_extra); name: the SQL function's,
 *		for the messages.  Raises the error that
 *		hash_record_extended() raises for a type without an extended hash.
 */
static RowHashArgs *
row_hash_args(FunctionCallInfo fcinfo, const char *name)
{
	FmgrInfo   *flinfo = fcinfo->flinfo;
	RowHashArgs *args = (RowHashArgs *) flinfo->fn_extra;
	List	   *exprs;

	if (args != NULL && args->nargs == PG_NARGS())
		return args;
	if (flinfo->fn_expr == NULL || !IsA(flinfo->fn_expr, FuncExpr) ||
		get_fn_expr_variadic(flinfo))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s() takes its values as separate arguments", name),
				 errhint("Call it as %s(a, b, ...), not with VARIADIC.", name)));

	exprs = ((FuncExpr *) flinfo->fn_expr)->args;
	args = MemoryContextAllocZero(flinfo->fn_mcxt,
								  offsetof(RowHashArgs, arg) +
								  sizeof(args->arg[0]) * PG_NARGS());
	args->nargs = PG_NARGS();
	for (int i = 0; i < PG_NARGS(); i++)
	{
		Node	   *expr = (Node *) list_nth(exprs, i);
		Oid			typid = exprType(expr);
		TypeCacheEntry *tc;

		tc = lookup_type_cache(typid, TYPECACHE_HASH_EXTENDED_PROC_FINFO);
		if (!OidIsValid(tc->hash_extended_proc_finfo.fn_oid))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FUNCTION),
					 errmsg("could not identify an extended hash function for type %s",
							format_type_be(typid))));
		args->arg[i].hash = &tc->hash_extended_proc_finfo;
		args->arg[i].collation = exprCollation(expr);
		args->arg[i].digest = digest_form(getBaseType(typid), &args->arg[i].typlen);
	}
	flinfo->fn_extra = args;
	return args;
}

/*
 * type_hash
 *		The argument's hash by its type's extended hash function, seed 0.
 */
static inline uint64
type_hash(RowHashArgs *args, int i, Datum value)
{
	LOCAL_FCINFO(locfcinfo, 2);

	InitFunctionCallInfoData(*locfcinfo, args->arg[i].hash, 2,
							 args->arg[i].collation, NULL, NULL);
	locfcinfo->args[0].value = value;
	locfcinfo->args[0].isnull = false;
	locfcinfo->args[1].value = Int64GetDatum(0);
	locfcinfo->args[1].isnull = false;
	return DatumGetUInt64(FunctionCallInvoke(locfcinfo));
}

/*
 * bytes_hash
 *		A varlena's hash by its bytes, decompressed and fetched from TOAST
 *		but without its header (whose size depends on how it was stored).
 */
static inline uint64
bytes_hash(Datum value)
{
	struct varlena *orig = (struct varlena *) DatumGetPointer(value);
	struct varlena *v = pg_detoast_datum_packed(orig);
	uint64		h;

	h = hash_bytes_extended((const unsigned char *) VARDATA_ANY(v),
							VARSIZE_ANY_EXHDR(v), 0);
	if (v != orig)
		pfree(v);
	return h;
}

/*
 * mix64
 *		The finalizer of MurmurHash3 over k with DIGEST_SEED: distinct values
 *		to distinct hashes, and 0 to another value than 0.
 */
static inline uint64
mix64(uint64 k)
{
	k ^= DIGEST_SEED;
	k ^= k >> 33;
	k *= UINT64CONST(0xff51afd7ed558ccd);
	k ^= k >> 33;
	k *= UINT64CONST(0xc4ceb9fe1a85ec53);
	k ^= k >> 33;
	return k;
}

/*
 * value_hash
 *		A pass-by-value integer of len bytes, sign-extended to 64 bits (so
 *		that a value hashes alike in smallint, integer and bigint, as their
 *		hash functions make it) and mixed (mix64()).
 */
static inline uint64
value_hash(Datum value, int16 len)
{
	uint64		k;

	switch (len)
	{
		case 1:
			k = (uint8) DatumGetChar(value);
			break;
		case 2:
			k = (uint64) (int64) DatumGetInt16(value);
			break;
		case 4:
			k = (uint64) (int64) DatumGetInt32(value);
			break;
		default:
			k = (uint64) DatumGetInt64(value);
			break;
	}
	return mix64(k);
}

/*
 * float_hash
 *		A float8's bits, mixed: -0 and 0 differ, as a copy keeps them; every
 *		NaN hashes alike, as its text is one ("NaN") and a copy through text
 *		(an online replay) writes the one NaN whatever the bits it read.
 *		A float4 comes widened, which keeps both.
 */
static inline uint64
float_hash(float8 f)
{
	union
	{
		float8		f;
		uint64		bits;
	}			u;

	if (isnan(f))
		return mix64(UINT64CONST(0x7ff8000000000000));
	u.f = f;
	return mix64(u.bits);
}

/*
 * array_hash
 *		An array's hash by its type's function, with its number of
 *		dimensions, their lengths and lower bounds mixed in: the function
 *		hashes the elements alone, so '{1,2,3,4}', '{{1,2},{3,4}}' and
 *		'[0:3]={1,2,3,4}' would be alike.  The array is detoasted once here,
 *		and the function is given that copy.
 */
static inline uint64
array_hash(RowHashArgs *args, int i, Datum value)
{
	ArrayType  *orig = (ArrayType *) DatumGetPointer(value);
	ArrayType  *a = DatumGetArrayTypeP(value);
	int			ndim = ARR_NDIM(a);
	uint64		h;

	h = type_hash(args, i, PointerGetDatum(a));
	h = (h << 5) - h + mix64((uint64) ndim);
	for (int d = 0; d < ndim; d++)
	{
		h = (h << 5) - h + mix64((uint64) (int64) ARR_DIMS(a)[d]);
		h = (h << 5) - h + mix64((uint64) (int64) ARR_LBOUND(a)[d]);
	}
	if (a != orig)
		pfree(a);
	return h;
}

/*
 * row_hash_of
 *		The arguments' hashes combined as hash_record_extended() combines
 *		its columns': with digest, as digest_form() says (row_digest()),
 *		else by their types' functions (row_hash()).
 */
static uint64
row_hash_of(FunctionCallInfo fcinfo, RowHashArgs *args, bool digest)
{
	uint64		result = 0;

	for (int i = 0; i < args->nargs; i++)
	{
		uint64		element_hash = 0;
		DigestForm	form = digest ? args->arg[i].digest : DIGEST_TYPE_HASH;

		if (PG_ARGISNULL(i))
			element_hash = 0;
		else if (form == DIGEST_VARLENA)
			element_hash = bytes_hash(PG_GETARG_DATUM(i));
		else if (form == DIGEST_VALUE)
			element_hash = value_hash(PG_GETARG_DATUM(i), args->arg[i].typlen);
		else if (form == DIGEST_FIXED)
			element_hash = hash_bytes_extended((const unsigned char *) DatumGetPointer(PG_GETARG_DATUM(i)),
											   args->arg[i].typlen, 0);
		else if (form == DIGEST_FLOAT4)
			element_hash = float_hash((float8) PG_GETARG_FLOAT4(i));
		else if (form == DIGEST_FLOAT8)
			element_hash = float_hash(PG_GETARG_FLOAT8(i));
		else if (form == DIGEST_ARRAY)
			element_hash = array_hash(args, i, PG_GETARG_DATUM(i));
		else
			element_hash = type_hash(args, i, PG_GETARG_DATUM(i));
		result = (result << 5) - result + element_hash;
	}
	return result;
}

/*
 * splitdb_row_hash
 *		SQL: splitdb.row_hash(VARIADIC "any") RETURNS bigint
 *		The hash of the row made of the arguments, as
 *		hash_record_extended(ROW(...), 0) gives it (see the head of this
 *		file).  Never NULL.
 */
Datum
splitdb_row_hash(PG_FUNCTION_ARGS)
{
	RowHashArgs *args = row_hash_args(fcinfo, "splitdb.row_hash");

	PG_RETURN_UINT64(row_hash_of(fcinfo, args, false));
}

/*
 * splitdb_row_digest_v2
 *		SQL: splitdb.row_digest(VARIADIC "any") RETURNS bigint
 *		row_hash() with some built-in types hashed by their bytes or value,
 *		and the row's hash mixed once more (see the head of this file): its
 *		sum over a table is a checksum as it is.  Never NULL.
 */
Datum
splitdb_row_digest_v2(PG_FUNCTION_ARGS)
{
	RowHashArgs *args = row_hash_args(fcinfo, "splitdb.row_digest");

	PG_RETURN_UINT64(mix64(row_hash_of(fcinfo, args, true)));
}
