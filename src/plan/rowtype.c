/*-------------------------------------------------------------------------
 *
 * rowtype.c
 *	  The plan's warning about functions bound to a moving table's row type.
 *
 * A function that takes or returns the row type of a table (or an array of
 * it) depends on that type by OID.  The cutover moves the table to the
 * archive with its type, so the function stays bound to the archived
 * original's row type, not to the shim's: a call with a row read through
 * the shim finds no such function, and splitdb_finalize() cannot drop the
 * archive while the function uses its type.  The plan says so, one warning
 * per function; a view that calls such a function is a blocker of its own
 * (viewwalk.c).
 *
 * Invariants:
 * - Only the query text lives here; plan.c runs it with the plan's
 *   parameters (SPLITDB_OWNED_CTE) like its other queries.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/plan/rowtype.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "nodes/pg_list.h"
#include "plan/plan.h"

/*
 * Functions of the user's that take or return the row type of an owned
 * table, or an array of it: action 'warning', the function, the detail.
 */
const char *const splitdb_plan_sql_row_type_functions =
"WITH " SPLITDB_OWNED_CTE
" SELECT 'warning', p.oid::regprocedure::text,"
"  format('function %s takes or returns the row type of %s, which moves; it stays bound to the"
" archived original''s row type: after the cutover a call with a row read through the shim finds no such"
" function, and splitdb_finalize() cannot drop the archive while the function uses its type;"
" recreate the function over the shim''s row type after the cutover',"
"   p.oid::regprocedure, string_agg(DISTINCT c.oid::regclass::text, ', '))"
"  FROM pg_proc p"
"  JOIN pg_class c ON c.oid IN (SELECT relid FROM owned)"
"  JOIN pg_type t ON t.oid = c.reltype"
" WHERE " SPLITDB_USER_FUNCTION("p")
"   AND EXISTS (SELECT FROM unnest(p.prorettype || coalesce(p.proallargtypes, p.proargtypes::oid[])) a(ty)"
"                WHERE a.ty IN (t.oid, t.typarray))"
" GROUP BY p.oid"
" ORDER BY 2";
