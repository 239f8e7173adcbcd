/*-------------------------------------------------------------------------
 *
 * plan.h
 *	  The migration plan of a service: what splitdb_plan() shows.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/plan/plan.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_PLAN_H
#define SPLITDB_PLAN_H

/*
 * The kinds of plan steps, in the order a migration carries them out;
 * warnings and blockers come last.
 */
typedef enum SplitdbPlanAction
{
	SPLITDB_PLAN_CREATE_TYPE,
	SPLITDB_PLAN_CREATE_SEQUENCE,
	SPLITDB_PLAN_CREATE_TABLE,
	SPLITDB_PLAN_COPY_DATA,
	SPLITDB_PLAN_CREATE_INDEX,
	SPLITDB_PLAN_KEEP_FOREIGN_KEY,
	SPLITDB_PLAN_CONVERT_REFERENCE,
	SPLITDB_PLAN_REPOINT_VIEW,
	SPLITDB_PLAN_WARNING,
	SPLITDB_PLAN_BLOCKER,
	SPLITDB_PLAN_NACTIONS
} SplitdbPlanAction;

/* one row of the plan */
typedef struct SplitdbPlanStep
{
	SplitdbPlanAction action;
	char	   *object;
	char	   *detail;
} SplitdbPlanStep;

extern List *splitdb_plan_build(const char *service);
extern const char *splitdb_plan_action_name(SplitdbPlanAction action);

/*
 * The plan queries take $1 = the service name, $2 = the OIDs of the tables it
 * owns, $3/$4 = every owned table of every service with its service.  The
 * sets are computed once (splitdb_plan_build) and passed as arrays, which the
 * planner estimates well, instead of being recomputed in every query.
 */
#define SPLITDB_OWNED_CTE \
	"owned AS (SELECT u.relid FROM unnest($2::oid[]) u(relid))"
#define SPLITDB_OWNER_CTE \
	"owner AS (SELECT w.relid, w.service FROM unnest($3::oid[], $4::name[]) w(relid, service))"


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
 * The types the owned tables' columns need, walked through arrays, domains,
 * composite types and ranges: CTEs walk(typid, depth, relid) and
 * used(typid, depth, tables), deepest dependency with the highest depth.
 * Needs the owned CTE before it.
 */
#define SPLITDB_TYPE_WALK_CTE \
	" walk(typid, depth, relid) AS (" \
	"  SELECT a.atttypid, 0, a.attrelid FROM pg_attribute a JOIN owned o ON o.relid = a.attrelid" \
	"   WHERE a.attnum > 0 AND NOT a.attisdropped" \
	"  UNION" \
	"  SELECT x.typid, w.depth + 1, w.relid FROM walk w JOIN pg_type t ON t.oid = w.typid" \
	SPLITDB_TYPE_DEPS_LATERAL \
	"   WHERE w.depth < 32)," \
	" used AS (SELECT typid, max(depth) AS depth," \
	"                 string_agg(DISTINCT relid::regclass::text, ', ') AS tables" \
	"            FROM walk GROUP BY typid)"

/* t is a type splitdb must create in the sibling: made by a user, not by an extension */
#define SPLITDB_USER_TYPE(t) \
	"(" t ".typtype IN ('e', 'd', 'c', 'r') AND " t ".oid >= 16384" \
	" AND (" t ".typtype <> 'c' OR (SELECT c.relkind FROM pg_class c WHERE c.oid = " t ".typrelid) = 'c')" \
	" AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_type'::regclass" \
	"                  AND d.objid = " t ".oid AND d.deptype = 'e'))"

/* o (of catalog cat) is made by a user, not built in and not an extension's */
#define SPLITDB_USER_OBJECT(cat, o) \
	"(" o ".oid >= 16384 AND NOT EXISTS (SELECT FROM pg_depend ed WHERE ed.classid = '" cat "'::regclass" \
	"  AND ed.objid = " o ".oid AND ed.deptype = 'e'))"

/* p is a function splitdb must create in the sibling: a user's, not an extension's */
#define SPLITDB_USER_FUNCTION(p) \
	"(" p ".prokind IN ('f', 'p') AND " SPLITDB_USER_OBJECT("pg_proc", p) ")"

/*
 * The functions that the service's defaults, constraints, indexes, triggers
 * and policies call, and, at any depth, the functions those call.
 *
 * PostgreSQL records what a BEGIN ATOMIC body calls in pg_depend, but not
 * what a body in a string calls.  For LANGUAGE sql and plpgsql, a name
 * followed by "(" in the body is taken for a call: it names the user's
 * functions of that name (in that schema when qualified, else in the
 * schemas of the caller's own search_path setting, or in any schema without
 * one).  A name that is no call (in a comment, a string, a keyword) names a
 * function too many at worst, which the sibling gets and nothing calls.  A
 * function found that way is taken only when the sibling has its types
 * before the tables (built in, an extension's, or a type the service's
 * tables use; not a table's row type), since CREATE FUNCTION would fail
 * there otherwise.
 */
#define SPLITDB_TYPE_AVAILABLE(ty) \
	"(" ty " < 16384 OR " ty " IN (SELECT typid FROM used)" \
	" OR EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = " ty \
	"            AND d.deptype = 'e'))"
#define SPLITDB_USED_FUNCTIONS_CTE \
	" called AS (" \
	"  SELECT d.refobjid AS fn FROM pg_depend d JOIN pg_attrdef ad ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid" \
	"    JOIN owned o ON o.relid = ad.adrelid WHERE d.refclassid = 'pg_proc'::regclass" \
	"  UNION SELECT d.refobjid FROM pg_depend d JOIN pg_constraint k ON d.classid = 'pg_constraint'::regclass AND d.objid = k.oid" \
	"    JOIN owned o ON o.relid = k.conrelid WHERE d.refclassid = 'pg_proc'::regclass" \
	"  UNION SELECT d.refobjid FROM pg_depend d JOIN pg_index i ON d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid" \
	"    JOIN owned o ON o.relid = i.indrelid WHERE d.refclassid = 'pg_proc'::regclass" \
	"  UNION SELECT t.tgfoid FROM pg_trigger t JOIN owned o ON o.relid = t.tgrelid WHERE NOT t.tgisinternal" \
	"    AND " SPLITDB_NOT_OWN_TRIGGER("t") \
	"  UNION SELECT d.refobjid FROM pg_depend d JOIN pg_policy p ON d.classid = 'pg_policy'::regclass AND d.objid = p.oid" \
	"    JOIN owned o ON o.relid = p.polrelid WHERE d.refclassid = 'pg_proc'::regclass)," \
	" fns(fn) AS (" \
	"  SELECT fn FROM called" \
	"  UNION" \
	"  SELECT c.callee FROM fns f CROSS JOIN LATERAL (" \
	SPLITDB_FUNCTION_CALLS("f.fn") \
	"       AND " SPLITDB_TYPE_AVAILABLE("q.prorettype") \
	"       AND NOT EXISTS (SELECT FROM unnest(coalesce(q.proallargtypes, q.proargtypes::oid[])) a(ty)" \
	"                       WHERE NOT " SPLITDB_TYPE_AVAILABLE("a.ty") ")" \
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

#endif							/* SPLITDB_PLAN_H */
