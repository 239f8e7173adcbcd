/*-------------------------------------------------------------------------
 *
 * shimrights.c
 *	  The plan's warning for roles that may write a moving table without
 *	  reading all of it, whose writes through its shim would fail.
 *
 * A shim whose table has a foreign key that becomes a cross-service
 * reference carries splitdb's row triggers for it: for INSERT and UPDATE
 * when the table references a table that stays, for UPDATE and DELETE when
 * a table that stays references it.  postgres_fdw then reads back every row
 * it writes through the shim (INSERT ... RETURNING, SELECT ... FOR UPDATE
 * of whole rows before an UPDATE or DELETE) instead of sending the
 * statement as it is, which takes SELECT on every column in the sibling for
 * the role the writer's user mapping logs in as.  A role that may insert
 * into the table in the monolith without reading it (an audit log), or
 * update or delete with SELECT on the columns it filters on only, gets
 * 42501 from the sibling after the cutover.  The warning names such roles
 * (those that can log in, are no superusers and do not own the table), so
 * that the DBA grants them SELECT or points them at the sibling, where they
 * write the table itself and keep the rights they had.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/plan/shimrights.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "nodes/pg_list.h"

#include "plan/plan.h"

/* plan query (plan.h's parameters): one warning per table, naming the roles */
const char *const splitdb_plan_sql_shim_rights =
"WITH " SPLITDB_OWNED_CTE ","
/* the writes the shim's reference triggers make postgres_fdw read back */
" shim(relid, privs) AS ("
"  SELECT c.oid, array_remove(ARRAY["
"          CASE WHEN f.child THEN 'INSERT' END,"
"          CASE WHEN f.child OR f.parent THEN 'UPDATE' END,"
"          CASE WHEN f.parent THEN 'DELETE' END], NULL)"
"    FROM pg_class c JOIN owned o ON o.relid = c.oid"
"    CROSS JOIN LATERAL (SELECT"
"      EXISTS (SELECT FROM pg_constraint k WHERE k.contype = 'f' AND k.conrelid = c.oid"
"               AND k.confrelid NOT IN (SELECT relid FROM owned)),"
"      EXISTS (SELECT FROM pg_constraint k WHERE k.contype = 'f' AND k.confrelid = c.oid"
"               AND k.conrelid NOT IN (SELECT relid FROM owned))) f(child, parent)"
"   WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND (f.child OR f.parent))"
" SELECT 'warning', s.relid::regclass::text,"
"  format('%s %s may %s table %s without SELECT on each of its columns; after the cutover postgres_fdw reads back every row written through the shim, whose cross-service reference checks are row triggers, which takes SELECT on the whole table in the sibling for the role a user mapping logs in as, so such writes fail there with 42501 (insufficient_privilege); grant SELECT on the table, or write to the table in the sibling',"
"   CASE WHEN count(*) = 1 THEN 'role' ELSE 'roles' END,"
"   string_agg(quote_ident(r.rolname), ', ' ORDER BY r.rolname),"
"   array_to_string(s.privs, ' or '), s.relid::regclass)"
"  FROM shim s JOIN pg_class c ON c.oid = s.relid"
"  JOIN pg_roles r ON r.rolcanlogin AND NOT r.rolsuper AND r.oid <> c.relowner"
"   AND r.rolname !~ '^pg_'"
" WHERE EXISTS (SELECT FROM unnest(s.privs) p(priv)"
"                WHERE pg_catalog.has_table_privilege(r.oid, s.relid, p.priv))"
"   AND EXISTS (SELECT FROM pg_attribute a"
"                WHERE a.attrelid = s.relid AND a.attnum > 0 AND NOT a.attisdropped"
"                  AND NOT pg_catalog.has_column_privilege(r.oid, s.relid, a.attnum, 'SELECT'))"
" GROUP BY s.relid, s.privs"
" ORDER BY 2";
