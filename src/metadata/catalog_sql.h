/*-------------------------------------------------------------------------
 *
 * catalog_sql.h
 *	  SQL fragments of catalog queries, shared by the plan (plan/), the DDL
 *	  of the sibling (migrate/ddl.c) and the catalog (metadata/).
 *
 * Each fragment is a string literal (or a macro that pastes string literals
 * around SQL expressions given as literals), to be pasted into a query at
 * compile time.  Nothing here takes a value: values are always parameters
 * of the query that pastes a fragment.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/metadata/catalog_sql.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_CATALOG_SQL_H
#define SPLITDB_CATALOG_SQL_H

#include "access/transam.h"

/*
 * SQL conditions on an OID expression o: the object was made by initdb
 * (built in: below FirstNormalObjectId), or after it (by a user or an
 * extension).
 */
#define SPLITDB_OID_BUILT_IN(o) \
	o " < " CppAsString2(FirstNormalObjectId)
#define SPLITDB_OID_NOT_BUILT_IN(o) \
	o " >= " CppAsString2(FirstNormalObjectId)

/*
 * SQL of every relation each service owns, the one definition that the plan,
 * the graph, verification and the jobs share: the view splitdb.owned_relation
 * (sql/splitdb--0.1.sql).  Columns: relid (oid), service (name),
 * partition_root (oid; NULL for a table owned by itself).  Use it as a
 * subquery; names are qualified, so any search_path works.
 */
#define SPLITDB_OWNED_RELATION_SQL \
	"SELECT relid, service, partition_root FROM splitdb.owned_relation"

/*
 * A CTE joined(service): the services that a reference joins to service $1,
 * by the tables' owners now, over the foreign keys still in the source and
 * the references splitdb enforces (whose relids are the originals, which
 * their owners keep after a cutover), and by the services that
 * splitdb.reference recorded at a cutover (NULL where no service owned the
 * table then; $1 itself for a reference inside the service): those that
 * name $1, and those of the other end of a reference whose own end $1
 * owns now (a table assigned to $1 after the cutover of the service at
 * the other end, whose original a splitdb_finalize() may have dropped
 * with its owner's row).  The caller defines a CTE owner(relid, service)
 * of every owned relation before it.
 */
#define SPLITDB_JOINED_SERVICES_CTE \
	"joined(service) AS (" \
	" SELECT o2.service" \
	"   FROM (SELECT c.conrelid AS a, c.confrelid AS b FROM pg_catalog.pg_constraint c" \
	"          WHERE c.contype = 'f'" \
	"         UNION ALL" \
	"         SELECT r.child_relid, r.parent_relid FROM splitdb.reference r) e" \
	"   JOIN owner o1 ON o1.relid IN (e.a, e.b) AND o1.service = $1::name" \
	"   JOIN owner o2 ON o2.relid IN (e.a, e.b) AND o2.service <> $1::name" \
	" UNION" \
	" SELECT CASE WHEN r.child_service = $1::name THEN r.parent_service" \
	"             ELSE r.child_service END" \
	"   FROM splitdb.reference r" \
	"  WHERE $1::name IN (r.child_service, r.parent_service)" \
	" UNION" \
	" SELECT r.parent_service FROM splitdb.reference r" \
	"   JOIN owner o ON o.relid = r.child_relid AND o.service = $1::name" \
	" UNION" \
	" SELECT r.child_service FROM splitdb.reference r" \
	"   JOIN owner o ON o.relid = r.parent_relid AND o.service = $1::name)"

/*
 * SQL fragments for names that function bodies hold as text, where
 * PostgreSQL records no dependency:
 * - SPLITDB_NAME_RE: a regular expression group matching one identifier,
 *   quoted or not;
 * - SPLITDB_FOLD(x): the name an identifier x so matched stands for;
 * - SPLITDB_NAME_RESOLVES(qual, nsp, p): whether a name with qualifier
 *   qual (NULL when none) written in the body of function p can name an
 *   object of schema nsp: the qualifier's schema, else a schema of p's own
 *   search_path setting, else (p has none, and its callers' path decides)
 *   any schema.
 */
#define SPLITDB_NAME_RE "(\"(?:[^\"]|\"\")+\"|[[:alpha:]_][[:alnum:]_$]*)"
#define SPLITDB_FOLD(x) \
	"CASE WHEN left(" x ", 1) = '\"' THEN replace(substr(" x ", 2, length(" x ") - 2), '\"\"', '\"')" \
	" ELSE translate(" x ", 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') END"
#define SPLITDB_NAME_RESOLVES(qual, nsp, p) \
	"CASE WHEN " qual " IS NOT NULL THEN " nsp " = " SPLITDB_FOLD(qual) \
	" WHEN NOT EXISTS (SELECT FROM unnest(" p ".proconfig) g WHERE g LIKE 'search\\_path=%')" \
	" THEN true" \
	" ELSE " nsp " = ANY (SELECT btrim(e, ' \"')" \
	"                FROM unnest(" p ".proconfig) g," \
	"                     unnest(string_to_array(substr(g, 13), ',')) e" \
	"               WHERE g LIKE 'search\\_path=%') END"

/*
 * SQL fragments for the search_path a function without a search_path
 * setting of its own resolves names with in this database:
 * - SPLITDB_SESSION_PATH(p): the setting its owner's sessions start with
 *   (pg_db_role_setting: the owner in this database, the owner, this
 *   database, every role, in that order), else the default "$user", public;
 * - SPLITDB_PATH_LIST(path): such a setting as the list of quoted literals
 *   that SET search_path TO takes.
 */
#define SPLITDB_SESSION_PATH(p) \
	"coalesce((SELECT substr(c, 13) FROM pg_catalog.pg_db_role_setting s, unnest(s.setconfig) c" \
	"  WHERE c LIKE 'search\\_path=%' AND s.setrole IN (" p ".proowner, 0)" \
	"    AND s.setdatabase IN (0, (SELECT d.oid FROM pg_catalog.pg_database d" \
	"                              WHERE d.datname = current_database()))" \
	"  ORDER BY s.setrole = 0, s.setdatabase = 0 LIMIT 1), '\"$user\", public')"
#define SPLITDB_PATH_LIST(path) \
	"coalesce((SELECT string_agg(quote_literal(" SPLITDB_FOLD("x.m[1]") "), ', ' ORDER BY x.o)" \
	"  FROM regexp_matches(" path ", '\\s*(\"(?:[^\"]|\"\")*\"|[^,[:space:]][^,]*?)\\s*(?:,|$)', 'g')" \
	"       WITH ORDINALITY x(m, o)), '''''')"

/*
 * SQL query: the user functions that function fn (an OID expression) calls:
 * those pg_depend records for a SQL-standard body, and those a LANGUAGE sql
 * or plpgsql body names followed by "(", resolved as
 * SPLITDB_NAME_RESOLVES says.  Its column is q.oid, the callee; a caller
 * may add conditions on q with AND, which apply to the named callees.
 */
#define SPLITDB_FUNCTION_CALLS(fn) \
	"    SELECT d.refobjid FROM pg_depend d" \
	"     WHERE d.classid = 'pg_proc'::regclass AND d.objid = " fn " AND d.refclassid = 'pg_proc'::regclass" \
	"       AND " SPLITDB_OID_NOT_BUILT_IN("d.refobjid") \
	"    UNION" \
	"    SELECT q.oid FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang AND l.lanname IN ('sql', 'plpgsql')" \
	"     CROSS JOIN LATERAL regexp_matches(p.prosrc," \
	"       '(?:" SPLITDB_NAME_RE "[[:space:]]*\\.[[:space:]]*)?" SPLITDB_NAME_RE "[[:space:]]*\\(', 'g') m" \
	"     JOIN pg_proc q ON q.proname = " SPLITDB_FOLD("m[2]") " AND " SPLITDB_OID_NOT_BUILT_IN("q.oid") \
	"     JOIN pg_namespace qn ON qn.oid = q.pronamespace" \
	"     WHERE p.oid = " fn " AND q.oid <> p.oid" \
	"       AND " SPLITDB_NAME_RESOLVES("m[1]", "qn.nspname", "p")

/*
 * SQL condition: trigger alias t is not one of splitdb's own (the triggers
 * that enforce cross-service references, which never move with a table).
 */
#define SPLITDB_NOT_OWN_TRIGGER(t) \
	"NOT EXISTS (SELECT FROM pg_catalog.pg_depend xd" \
	" WHERE xd.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND xd.objid = " t ".tgfoid" \
	"   AND xd.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass" \
	"   AND xd.refobjid = (SELECT xe.oid FROM pg_catalog.pg_extension xe WHERE xe.extname = 'splitdb'))"

/*
 * The types a type t (a pg_type row) is made of, as x(typid): its array
 * element, a domain's base type, a composite's column types, a range's
 * subtype, a multirange's range.  For the recursive walks below.
 */
#define SPLITDB_TYPE_DEPS_LATERAL \
	"   CROSS JOIN LATERAL (" \
	"     SELECT t.typelem WHERE t.typelem <> 0 AND t.typlen = -1" \
	"     UNION ALL SELECT t.typbasetype WHERE t.typtype = 'd'" \
	"     UNION ALL SELECT a.atttypid FROM pg_attribute a" \
	"                WHERE t.typtype = 'c' AND a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped" \
	"     UNION ALL SELECT r.rngsubtype FROM pg_range r WHERE r.rngtypid = t.oid" \
	"     UNION ALL SELECT r.rngtypid FROM pg_range r WHERE r.rngmultitypid = t.oid) x(typid)"

/*
 * The types the owned tables need, walked through arrays, domains,
 * composite types and ranges: those of their columns, and those that their
 * constraints, defaults, indexes and triggers' conditions name without a
 * column of that type (a CHECK that casts to a domain, a default of an
 * enum's label cast to text), which PostgreSQL records in pg_depend.
 * CTEs walk(typid, depth, relid) and used(typid, depth, tables), deepest
 * dependency with the highest depth.  Needs the owned CTE before it.
 */
#define SPLITDB_TYPE_WALK_CTE \
	" walk(typid, depth, relid) AS (" \
	"  SELECT a.atttypid, 0, a.attrelid FROM pg_attribute a JOIN owned o ON o.relid = a.attrelid" \
	"   WHERE a.attnum > 0 AND NOT a.attisdropped" \
	"  UNION" \
	"  SELECT dp.refobjid, 0, o.relid FROM owned o" \
	"    JOIN pg_depend dp ON dp.refclassid = 'pg_type'::regclass AND dp.deptype = 'n'" \
	"   WHERE (dp.classid = 'pg_constraint'::regclass" \
	"          AND dp.objid IN (SELECT k.oid FROM pg_constraint k WHERE k.conrelid = o.relid))" \
	"      OR (dp.classid = 'pg_attrdef'::regclass" \
	"          AND dp.objid IN (SELECT ad.oid FROM pg_attrdef ad WHERE ad.adrelid = o.relid))" \
	"      OR (dp.classid = 'pg_class'::regclass" \
	"          AND dp.objid IN (SELECT i.indexrelid FROM pg_index i WHERE i.indrelid = o.relid))" \
	"      OR (dp.classid = 'pg_trigger'::regclass" \
	"          AND dp.objid IN (SELECT tg.oid FROM pg_trigger tg WHERE tg.tgrelid = o.relid))" \
	"  UNION" \
	"  SELECT x.typid, w.depth + 1, w.relid FROM walk w JOIN pg_type t ON t.oid = w.typid" \
	SPLITDB_TYPE_DEPS_LATERAL \
	"   WHERE w.depth < 32)," \
	" used AS (SELECT typid, max(depth) AS depth," \
	"                 string_agg(DISTINCT relid::regclass::text, ', ') AS tables" \
	"            FROM walk GROUP BY typid)"

/* t is a type splitdb must create in the sibling: made by a user, not by an extension */
#define SPLITDB_USER_TYPE(t) \
	"(" t ".typtype IN ('e', 'd', 'c', 'r') AND " SPLITDB_OID_NOT_BUILT_IN(t ".oid") \
	" AND (" t ".typtype <> 'c' OR (SELECT c.relkind FROM pg_class c WHERE c.oid = " t ".typrelid) = 'c')" \
	" AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_type'::regclass" \
	"                  AND d.objid = " t ".oid AND d.deptype = 'e'))"

/* o (of catalog cat) is made by a user, not built in and not an extension's */
#define SPLITDB_USER_OBJECT(cat, o) \
	"(" SPLITDB_OID_NOT_BUILT_IN(o ".oid") " AND NOT EXISTS (SELECT FROM pg_depend ed WHERE ed.classid = '" cat "'::regclass" \
	"  AND ed.objid = " o ".oid AND ed.deptype = 'e'))"

/* p is a function splitdb must create in the sibling: a user's, not an extension's */
#define SPLITDB_USER_FUNCTION(p) \
	"(" p ".prokind IN ('f', 'p') AND " SPLITDB_USER_OBJECT("pg_proc", p) ")"

/*
 * The functions that the service's defaults, constraints (those of the
 * domains its columns use too: needs used, SPLITDB_TYPE_WALK_CTE), indexes,
 * triggers and policies call, and, at any depth, the functions those call.
 *
 * PostgreSQL records what a BEGIN ATOMIC body calls in pg_depend, but not
 * what a body in a string calls.  For LANGUAGE sql and plpgsql, a name
 * followed by "(" in the body is taken for a call: it names the user's
 * functions of that name (in that schema when qualified, else in the
 * schemas of the caller's own search_path setting, or in any schema without
 * one).  A name that is no call (in a comment, a string, a keyword) names a
 * function too many at worst, which the sibling gets and nothing calls.  A
 * function found that way is taken only when the sibling can have its
 * argument and result types (SPLITDB_TYPE_CREATABLE), since CREATE FUNCTION
 * would fail there otherwise: a type the sibling has before the tables
 * (built in, an extension's, or a type the service's tables use), or a
 * user's enum, domain, composite type or range made of such types, which
 * the sibling gets with the functions (SPLITDB_BODY_TYPES_CTE takes the
 * types of the functions' signatures); not a table's row type, nor an
 * array of a type the tables do not use.
 */
#define SPLITDB_TYPE_AVAILABLE(ty) \
	"(" SPLITDB_OID_BUILT_IN(ty) " OR " ty " IN (SELECT typid FROM used)" \
	" OR EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = " ty \
	"            AND d.deptype = 'e'))"
#define SPLITDB_TYPE_CREATABLE(ty) \
	"(" SPLITDB_TYPE_AVAILABLE(ty) " OR NOT EXISTS (" \
	"  WITH RECURSIVE tw(typid, depth) AS (" \
	"   SELECT " ty ", 0" \
	"   UNION" \
	"   SELECT x.typid, tw.depth + 1 FROM tw JOIN pg_type t ON t.oid = tw.typid" \
	SPLITDB_TYPE_DEPS_LATERAL \
	"    WHERE tw.depth < 32 AND NOT " SPLITDB_TYPE_AVAILABLE("tw.typid") ")" \
	"  SELECT FROM tw JOIN pg_type t ON t.oid = tw.typid" \
	"   WHERE NOT " SPLITDB_TYPE_AVAILABLE("t.oid") " AND NOT " SPLITDB_USER_TYPE("t") "))"
#define SPLITDB_USED_FUNCTIONS_CTE \
	" called AS (" \
	"  SELECT d.refobjid AS fn FROM pg_depend d JOIN pg_attrdef ad ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid" \
	"    JOIN owned o ON o.relid = ad.adrelid WHERE d.refclassid = 'pg_proc'::regclass" \
	"  UNION SELECT d.refobjid FROM pg_depend d JOIN pg_constraint k ON d.classid = 'pg_constraint'::regclass AND d.objid = k.oid" \
	"    JOIN owned o ON o.relid = k.conrelid WHERE d.refclassid = 'pg_proc'::regclass" \
	"  UNION SELECT d.refobjid FROM pg_depend d JOIN pg_index i ON d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid" \
	"    JOIN owned o ON o.relid = i.indrelid WHERE d.refclassid = 'pg_proc'::regclass" \
	"  UNION SELECT d.refobjid FROM pg_depend d JOIN pg_constraint k ON d.classid = 'pg_constraint'::regclass AND d.objid = k.oid" \
	"    JOIN used u ON u.typid = k.contypid WHERE d.refclassid = 'pg_proc'::regclass" \
	"  UNION SELECT t.tgfoid FROM pg_trigger t JOIN owned o ON o.relid = t.tgrelid WHERE NOT t.tgisinternal" \
	"    AND " SPLITDB_NOT_OWN_TRIGGER("t") \
	"  UNION SELECT d.refobjid FROM pg_depend d JOIN pg_policy p ON d.classid = 'pg_policy'::regclass AND d.objid = p.oid" \
	"    JOIN owned o ON o.relid = p.polrelid WHERE d.refclassid = 'pg_proc'::regclass)," \
	" fns(fn) AS (" \
	"  SELECT fn FROM called" \
	"  UNION" \
	"  SELECT c.callee FROM fns f CROSS JOIN LATERAL (" \
	SPLITDB_FUNCTION_CALLS("f.fn") \
	"       AND " SPLITDB_TYPE_CREATABLE("q.prorettype") \
	"       AND NOT EXISTS (SELECT FROM unnest(coalesce(q.proallargtypes, q.proargtypes::oid[])) a(ty)" \
	"                       WHERE NOT " SPLITDB_TYPE_CREATABLE("a.ty") ")" \
	"  ) c(callee))"

/*
 * The users' types that the functions in fns name in their bodies, where
 * PostgreSQL records nothing (a DECLARE of a variable, a cast to a type):
 * each identifier of a LANGUAGE sql or plpgsql body that is the name of a
 * user's enum, domain, composite or range type, resolved as
 * SPLITDB_NAME_RESOLVES says, with those pg_depend records for the
 * functions (their argument and result types, what a SQL-standard body
 * uses), and the types those need in turn; the types in used are left out,
 * they come with the tables.  A name that is no type (a variable spelled
 * like one) names a type too many at worst, which the sibling gets and
 * nothing uses.  Needs fns and used; columns typid, depth.
 */
#define SPLITDB_BODY_TYPES_CTE \
	" named(typid) AS (" \
	"  SELECT t.oid FROM fns f JOIN pg_proc p ON p.oid = f.fn" \
	"    JOIN pg_language l ON l.oid = p.prolang AND l.lanname IN ('sql', 'plpgsql')" \
	"    CROSS JOIN LATERAL regexp_matches(p.prosrc," \
	"      '(?:" SPLITDB_NAME_RE "[[:space:]]*\\.[[:space:]]*)?" SPLITDB_NAME_RE "', 'g') m" \
	"    JOIN pg_type t ON t.typname = " SPLITDB_FOLD("m[2]") \
	"    JOIN pg_namespace tn ON tn.oid = t.typnamespace" \
	"   WHERE " SPLITDB_NAME_RESOLVES("m[1]", "tn.nspname", "p") \
	"  UNION SELECT d.refobjid FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass" \
	"    AND d.objid IN (SELECT fn FROM fns) AND d.refclassid = 'pg_type'::regclass)," \
	" body_walk(typid, depth) AS (" \
	"  SELECT t.oid, 0 FROM named n JOIN pg_type t ON t.oid = n.typid WHERE " SPLITDB_USER_TYPE("t") \
	"  UNION" \
	"  SELECT x.typid, w.depth + 1 FROM body_walk w JOIN pg_type t ON t.oid = w.typid" \
	SPLITDB_TYPE_DEPS_LATERAL \
	"   WHERE w.depth < 32)," \
	" body_types AS (SELECT typid, max(depth) AS depth FROM body_walk" \
	"                 WHERE typid NOT IN (SELECT typid FROM used) GROUP BY typid)"

/*
 * The key columns of index i (an alias of pg_index, a btree) whose operator
 * class's equality is an operator outside pg_catalog (citext's, say): splitdb's
 * statements resolve =, < and > under search_path pg_catalog, where such a
 * type compares as the type it casts to (citext as text, case-sensitive),
 * while its unique index, UNION and ORDER BY use its own operators; such a
 * key would make the copy's batches skip and repeat rows and the replay
 * miss rows.  A row of the result names the column's type.
 */
#define SPLITDB_KEY_FOREIGN_OPS(i) \
	"SELECT ax.atttypid::pg_catalog.regtype::pg_catalog.text" \
	"  FROM ROWS FROM (pg_catalog.unnest((" i ".indkey::pg_catalog.int2[])[0:" i ".indnkeyatts - 1])," \
	"                  pg_catalog.unnest((" i ".indclass::pg_catalog.oid[])[0:" i ".indnkeyatts - 1])) kx(attnum, opc)" \
	"  JOIN pg_catalog.pg_attribute ax ON ax.attrelid OPERATOR(pg_catalog.=) " i ".indrelid" \
	"   AND ax.attnum OPERATOR(pg_catalog.=) kx.attnum" \
	"  JOIN pg_catalog.pg_opclass oc ON oc.oid OPERATOR(pg_catalog.=) kx.opc" \
	"  JOIN pg_catalog.pg_amop ao ON ao.amopfamily OPERATOR(pg_catalog.=) oc.opcfamily" \
	"   AND ao.amoplefttype OPERATOR(pg_catalog.=) oc.opcintype" \
	"   AND ao.amoprighttype OPERATOR(pg_catalog.=) oc.opcintype" \
	"   AND ao.amopstrategy OPERATOR(pg_catalog.=) 3" \
	"  JOIN pg_catalog.pg_operator ox ON ox.oid OPERATOR(pg_catalog.=) ao.amopopr" \
	" WHERE ox.oprnamespace OPERATOR(pg_catalog.<>) 'pg_catalog'::pg_catalog.regnamespace"

/*
 * The value a sequence s (its pg_sequence row q) hands out next, and the
 * one a sequence of last_value $2 and is_called $3 would: for setting one
 * database's sequence past another's, whatever either's state
 * (pg_sequence_last_value() is NULL for a sequence set with setval(...,
 * false), which hands out last_value next).
 */
#define SPLITDB_SEQ_NEXT_SQL \
	"(CASE WHEN s.is_called THEN s.last_value::pg_catalog.numeric + q.seqincrement" \
	" ELSE s.last_value::pg_catalog.numeric END)"
#define SPLITDB_SEQ_NEXT_PARAM_SQL \
	"(CASE WHEN $3::boolean THEN $2::pg_catalog.numeric + q.seqincrement" \
	" ELSE $2::pg_catalog.numeric END)"

#endif							/* SPLITDB_CATALOG_SQL_H */
