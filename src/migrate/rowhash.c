/*-------------------------------------------------------------------------
 *
 * rowhash.c
 *	  One row's hash for the checksums of splitdb_verify() and of an online
 *	  cutover's last replay: splitdb.row_hash(VARIADIC "any").
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

#include "fmgr.h"
#include "nodes/nodeFuncs.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"

PG_FUNCTION_INFO_V1(splitdb_row_hash);

/* what one call site needs, looked up at its first row */
typedef struct RowHashArgs
{
	int			nargs;
	struct
	{
		FmgrInfo   *hash;		/* the type's extended hash function */
		Oid			collation;	/* the argument's collation */
	}			arg[FLEXIBLE_ARRAY_MEMBER];
} RowHashArgs;

/*
 * row_hash_args
 *		Look up each argument's hash function and collation from the call's
 *		expression, once per call site (fn_extra).  Raises the error that
 *		hash_record_extended() raises for a type without an extended hash.
 */
static RowHashArgs *
row_hash_args(FunctionCallInfo fcinfo)
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
				 errmsg("splitdb.row_hash() takes its values as separate arguments"),
				 errhint("Call it as splitdb.row_hash(a, b, ...), not with VARIADIC.")));

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
	}
	flinfo->fn_extra = args;
	return args;
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
	RowHashArgs *args = row_hash_args(fcinfo);
	uint64		result = 0;

	for (int i = 0; i < args->nargs; i++)
	{
		uint64		element_hash = 0;

		if (!PG_ARGISNULL(i))
		{
			LOCAL_FCINFO(locfcinfo, 2);

			InitFunctionCallInfoData(*locfcinfo, args->arg[i].hash, 2,
									 args->arg[i].collation, NULL, NULL);
			locfcinfo->args[0].value = PG_GETARG_DATUM(i);
			locfcinfo->args[0].isnull = false;
			locfcinfo->args[1].value = Int64GetDatum(0);
			locfcinfo->args[1].isnull = false;
			element_hash = DatumGetUInt64(FunctionCallInvoke(locfcinfo));
		}
		/* as hash_record_extended() combines its columns' hashes */
		result = (result << 5) - result + element_hash;
	}
	PG_RETURN_UINT64(result);
}
