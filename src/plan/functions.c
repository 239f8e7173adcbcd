/*-------------------------------------------------------------------------
 *
 * functions.c
 *	  The plan's checks of the functions the sibling gets.
 *
 * The sibling gets the functions that the moving tables' defaults,
 * constraints, indexes, triggers and policies call, and those their bodies
 * call (SPLITDB_USED_FUNCTIONS_CTE, the set ddl.c creates).  What that
 * changes, and what it breaks, is said here: one query, which plan.c runs
 * with the plan's parameters (SPLITDB_OWNED_CTE) like its other queries.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/plan/functions.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "nodes/pg_list.h"

#include "metadata/catalog.h"
#include "plan/plan.h"
#include "splitdb.h"

/*
 * What the sibling's copies of the functions change: the ones that
 * defaults, constraints, indexes, triggers and policies call, and those
 * their bodies call (SPLITDB_USED_FUNCTIONS_CTE, the set ddl.c creates).
 * - a function without a search_path setting of its own gets, in the
 *   sibling, the path its owner's sessions start with here;
 * - a function a body calls that takes or returns a type the sibling
 *   cannot get (SPLITDB_TYPE_CREATABLE) is not created there;
 * - one with a SQL-standard body that uses relations which stay is a
 *   blocker: CREATE FUNCTION parses it, and fails in the sibling;
 * - one with a string body (sql, plpgsql) naming relations that stay, read
 *   as sql_checks reads trigger functions (which it covers, with their
 *   callees), is a warning: it fails there when it runs, even in the copy.
 */
const char *const splitdb_plan_sql_function_checks =
"WITH RECURSIVE " SPLITDB_OWNED_CTE "," SPLITDB_TYPE_WALK_CTE "," SPLITDB_USED_FUNCTIONS_CTE ","
" trigger_fns(fn) AS (SELECT t.tgfoid FROM pg_trigger t JOIN owned o ON o.relid = t.tgrelid"
"   WHERE NOT t.tgisinternal AND " SPLITDB_NOT_OWN_TRIGGER("t")
"  UNION SELECT c.callee FROM trigger_fns tf CROSS JOIN LATERAL (" SPLITDB_FUNCTION_CALLS("tf.fn") ") c(callee))"
" SELECT 'warning', p.oid::regprocedure::text,"
"  format('function %s has no search_path setting of its own; its copy in the sibling gets SET search_path TO %s,"
" the path its owner''s sessions start with here, so that its unqualified names find there what they find here'"
" || ' (writes through the shim run it with search_path = pg_catalog otherwise)',"
"   p.oid::regprocedure, " SPLITDB_PATH_LIST(SPLITDB_SESSION_PATH("p")) ")"
"  FROM fns f JOIN pg_proc p ON p.oid = f.fn JOIN pg_language l ON l.oid = p.prolang"
" WHERE " SPLITDB_USER_FUNCTION("p") " AND l.lanname NOT IN ('c', 'internal')"
"   AND NOT EXISTS (SELECT FROM unnest(p.proconfig) g WHERE g LIKE 'search\\_path=%')"
" UNION ALL"
" SELECT 'warning', q.oid::regprocedure::text,"
"  format('function %s, which %s calls in its body, takes or returns %s, which the sibling does not get;"
" it is not created there, so the call fails in the sibling; assign the tables of that type to the service too, or change the function',"
"   q.oid::regprocedure, string_agg(DISTINCT f.fn::regprocedure::text, ', '),"
"   (SELECT string_agg(DISTINCT format_type(a.ty, NULL), ', ')"
"      FROM unnest(q.prorettype || coalesce(q.proallargtypes, q.proargtypes::oid[])) a(ty)"
"     WHERE NOT " SPLITDB_TYPE_CREATABLE("a.ty") "))"
"  FROM fns f CROSS JOIN LATERAL (" SPLITDB_FUNCTION_CALLS("f.fn") ") c(callee)"
"  JOIN pg_proc q ON q.oid = c.callee"
" WHERE c.callee NOT IN (SELECT fn FROM fns) AND " SPLITDB_USER_FUNCTION("q")
" GROUP BY q.oid"
" UNION ALL"
" SELECT 'blocker', p.oid::regprocedure::text, format('function %s has a SQL-standard body that uses %s, which %s; the sibling gets the function and has no such relation, so creating it there fails; assign %s to the service too, or change the function',"
"   p.oid::regprocedure, string_agg(DISTINCT r.oid::regclass::text, ', '),"
"   CASE WHEN count(DISTINCT r.oid) > 1 THEN 'stay' ELSE 'stays' END, CASE WHEN count(DISTINCT r.oid) > 1 THEN 'them' ELSE 'it' END)"
"  FROM fns f JOIN pg_proc p ON p.oid = f.fn JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid"
"  JOIN pg_class r ON d.refclassid = 'pg_class'::regclass AND r.oid = d.refobjid AND r.relkind IN ('r', 'p', 'v', 'm', 'f')"
" WHERE p.prosqlbody IS NOT NULL AND r.oid NOT IN (SELECT relid FROM owned) GROUP BY p.oid"
" UNION ALL"
" SELECT 'warning', p.oid::regprocedure::text, format('function %s, which the sibling gets, names relations that do not move with the service (%s); the sibling has no such relations, so its statements on them fail there, in the copy too when a default or a constraint of a moving table, or of a domain its columns use, calls it; assign them to the service too, or change the function',"
"   p.oid::regprocedure, string_agg(DISTINCT c.oid::regclass::text, ', '))"
"  FROM fns f JOIN pg_proc p ON p.oid = f.fn JOIN pg_language l ON l.oid = p.prolang AND l.lanname IN ('sql', 'plpgsql')"
"  CROSS JOIN LATERAL regexp_matches(p.prosrc,"
"   '\\m(?:from|join|into|update|table|truncate)[[:space:]]+(?:only[[:space:]]+)?"
"(?:" SPLITDB_NAME_RE "[[:space:]]*\\.[[:space:]]*)?" SPLITDB_NAME_RE "', 'gi') m"
"  JOIN pg_class c ON c.relname = " SPLITDB_FOLD("m[2]") " AND c.relkind IN ('r', 'p', 'v', 'm', 'f')"
"  JOIN pg_namespace cn ON cn.oid = c.relnamespace"
" WHERE p.oid NOT IN (SELECT fn FROM trigger_fns) AND " SPLITDB_USER_FUNCTION("p") " AND c.oid NOT IN (SELECT relid FROM owned)"
"   AND cn.nspname NOT IN ('pg_catalog', 'information_schema', 'splitdb', '" SPLITDB_ARCHIVE_SCHEMA "')"
"   AND " SPLITDB_NAME_RESOLVES("m[1]", "cn.nspname", "p") " GROUP BY p.oid"
" ORDER BY 2, 3";
