/*-------------------------------------------------------------------------
 *
 * refcheck_eqop.c
 *	  The comparison of a key column with a queued key, as PostgreSQL's
 *	  foreign keys compare them.
 *
 * PostgreSQL compares a referencing column with a referenced key by the
 * equality of the referenced key's type (conpfeqop): a cross-type operator
 * of that type's btree family when there is one (int8 = int4), else the
 * type's own, with the referencing column cast to it (an int2 column
 * against a numeric key is compared as numeric).  And the operator is the
 * type's, wherever it lives: citext's "=" is in citext's schema, not in
 * pg_catalog, where "OPERATOR(pg_catalog.=)" would find text's
 * case-sensitive equality through citext's cast to text.
 *
 * The types are named as splitdb.key_type() names them, and are resolved
 * here, in this database; a type that does not resolve here (the other
 * end's own type, missing in this database) is compared as before:
 * "column OPERATOR(pg_catalog.=) value::column's type".
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/refcheck_eqop.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/stratnum.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "parser/parse_type.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "reference/refcheck_int.h"

/* a key type's name, resolved once per backend while the type exists */
typedef struct KeyType
{
	char	   *name;
	Oid			typid;			/* InvalidOid: not a type here */
} KeyType;

static List *key_types = NIL;

/*
 * resolve_type
 *		The OID of a type named as splitdb.key_type() names it (schema-
 *		qualified unless in pg_catalog), resolved with search_path
 *		pg_catalog; InvalidOid when there is no such type here.
 */
static Oid
resolve_type(const char *name)
{
	ListCell   *lc;
	KeyType    *kt;
	MemoryContext old;
	Oid			typid = InvalidOid;
	int32		typmod;
	int			nest;

	foreach(lc, key_types)
	{
		kt = lfirst(lc);
		if (strcmp(kt->name, name) != 0)
			continue;
		/* a type dropped since (an extension made again): resolve again */
		if (OidIsValid(kt->typid) &&
			SearchSysCacheExists1(TYPEOID, ObjectIdGetDatum(kt->typid)))
			return kt->typid;
		key_types = foreach_delete_current(key_types, lc);
		break;
	}
	nest = splitdb_refcheck_pin_search_path();
	parseTypeString(name, &typid, &typmod, true);
	AtEOXact_GUC(true, nest);
	/* a name that is no type here is looked up again next time */
	if (!OidIsValid(typid))
		return typid;
	old = MemoryContextSwitchTo(TopMemoryContext);
	kt = palloc(sizeof(KeyType));
	kt->name = pstrdup(name);
	kt->typid = typid;
	key_types = lappend(key_types, kt);
	MemoryContextSwitchTo(old);
	return typid;
}

/* whether a type lives in pg_catalog */
static bool
type_in_pg_catalog(Oid typid)
{
	HeapTuple	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));
	bool		result;

	if (!HeapTupleIsValid(tup))
		return false;
	result = ((Form_pg_type) GETSTRUCT(tup))->typnamespace == PG_CATALOG_NAMESPACE;
	ReleaseSysCache(tup);
	return result;
}

/* "OPERATOR(schema.name)" of an operator */
static char *
operator_text(Oid opno)
{
	HeapTuple	tup = SearchSysCache1(OPEROID, ObjectIdGetDatum(opno));
	Form_pg_operator op;
	char	   *text;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for operator %u", opno);
	op = (Form_pg_operator) GETSTRUCT(tup);
	text = psprintf("OPERATOR(%s.%s)",
					quote_identifier(get_namespace_name(op->oprnamespace)),
					NameStr(op->oprname));
	ReleaseSysCache(tup);
	return text;
}

/*
 * splitdb_refcheck_append_key_cond
 *		Append to buf the comparison of column col (of type coltype) with
 *		the key value valexpr, a text expression read as valtype, as
 *		PostgreSQL's foreign key compares them: with the equality of the
 *		referenced key's type, which is coltype when col_referenced (a
 *		lookup of referencing keys in the referenced table), else valtype
 *		(an action or check on the referencing rows).
 *
 * The same types compare with their own equality.  Different ones with a
 * cross-type operator of the referenced type's btree family when there is
 * one, else with the referencing side cast to the referenced type (a
 * char(n) key is compared with a text column without its padding, as
 * text).  A referencing type outside pg_catalog is not named in a cast
 * (the other database may not have it): its key is read as the referenced
 * type.
 */
void
splitdb_refcheck_append_key_cond(StringInfo buf, const char *col,
								 const char *coltype, const char *valexpr,
								 const char *valtype, bool col_referenced)
{
	const char *reftype = col_referenced ? coltype : valtype;
	Oid			coltyp = resolve_type(coltype);
	Oid			valtyp = resolve_type(valtype);
	Oid			reftyp = col_referenced ? coltyp : valtyp;
	Oid			fktyp = col_referenced ? valtyp : coltyp;
	TypeCacheEntry *tc;
	Oid			cross;

	if (!OidIsValid(coltyp) || !OidIsValid(valtyp) ||
		(col_referenced && coltyp != valtyp &&
		 !type_in_pg_catalog(valtyp)))
	{
		appendStringInfo(buf, "%s OPERATOR(pg_catalog.=) %s::%s", col, valexpr, coltype);
		return;
	}
	tc = lookup_type_cache(reftyp, TYPECACHE_EQ_OPR | TYPECACHE_BTREE_OPFAMILY);
	if (!OidIsValid(tc->eq_opr))
	{
		appendStringInfo(buf, "%s OPERATOR(pg_catalog.=) %s::%s", col, valexpr, coltype);
		return;
	}
	if (coltyp == valtyp)
	{
		appendStringInfo(buf, "%s %s %s::%s", col, operator_text(tc->eq_opr),
						 valexpr, valtype);
		return;
	}
	cross = OidIsValid(tc->btree_opf) ?
		get_opfamily_member(tc->btree_opf, reftyp, fktyp, BTEqualStrategyNumber) :
		InvalidOid;
	if (OidIsValid(cross) && col_referenced)
		appendStringInfo(buf, "%s %s %s::%s", col, operator_text(cross), valexpr, valtype);
	else if (OidIsValid(cross))
		appendStringInfo(buf, "%s::%s %s %s", valexpr, valtype, operator_text(cross), col);
	else if (col_referenced)
		appendStringInfo(buf, "%s %s %s::%s::%s", col, operator_text(tc->eq_opr),
						 valexpr, valtype, reftype);
	else
		appendStringInfo(buf, "%s::%s %s %s::%s", col, reftype,
						 operator_text(tc->eq_opr), valexpr, reftype);
}

/*
 * splitdb_refcheck_same_key_types
 *		Whether the column types and the value types are the same names
 *		(valtypes NULL: the same array).
 */
bool
splitdb_refcheck_same_key_types(char **types, char **valtypes, int nkeys)
{
	if (valtypes == NULL || valtypes == types)
		return true;
	for (int i = 0; i < nkeys; i++)
		if (strcmp(types[i], valtypes[i]) != 0)
			return false;
	return true;
}

/*
 * splitdb_refcheck_eq_operator
 *		"OPERATOR(schema.=)" of a key type's own equality, for "= ANY";
 *		pg_catalog's when the type does not resolve here.
 */
const char *
splitdb_refcheck_eq_operator(const char *type)
{
	Oid			typid = resolve_type(type);
	TypeCacheEntry *tc;

	if (!OidIsValid(typid))
		return "OPERATOR(pg_catalog.=)";
	tc = lookup_type_cache(typid, TYPECACHE_EQ_OPR);
	return OidIsValid(tc->eq_opr) ? operator_text(tc->eq_opr) : "OPERATOR(pg_catalog.=)";
}
