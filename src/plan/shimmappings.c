/*-------------------------------------------------------------------------
 *
 * shimmappings.c
 *	  The plan's warning for roles that may use a moving table and have no
 *	  user mapping for the service's server, whose statements on its shim
 *	  would fail.
 *
 * After the cutover a moved table is a shim, a postgres_fdw foreign table
 * of the service's server.  postgres_fdw runs every statement on it as the
 * current user, through that user's mapping for the server (or the
 * PUBLIC one), and refuses without one: 42704, `user mapping not found`.
 * splitdb_add_service() made a mapping for its caller only.  The warning
 * names, once per role, the roles that can log in and may read or write a
 * moving table in the monolith (directly or through the roles they
 * inherit), with none of the two mappings: each then needs one, which
 * holds a password when the role is no superuser (postgres_fdw's rule),
 * and splitdb never makes one that holds a secret.  Superusers are left
 * out (the installing one has its mapping; the others are administrators,
 * not applications), and so is the table's owner, whose mapping the
 * references' checks ask for in a step of their own when they need it.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/plan/shimmappings.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "nodes/pg_list.h"

#include "plan/plan.h"

/* plan query (plan.h's parameters): one warning per role, naming its tables */
const char *const splitdb_plan_sql_shim_mappings =
"WITH " SPLITDB_OWNED_CTE ","
" srv(oid, name, dbname) AS ("
"  SELECT f.oid, f.srvname, s.dbname FROM splitdb.service s"
"    JOIN pg_foreign_server f ON f.srvname = s.server"
"   WHERE s.service = $1),"
" moving(relid) AS ("
"  SELECT c.oid FROM pg_class c JOIN owned o ON o.relid = c.oid"
"   WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition)"
" SELECT 'warning', quote_ident(r.rolname),"
"  format('role %s may use %s %s, which %s to %s, and has no user mapping for server %s (nor does PUBLIC); after the cutover its statements on the %s fail with 42704 (user mapping not found); before the cutover, create one: CREATE USER MAPPING FOR %s SERVER %s OPTIONS (user %L, password ''...''), run with log_statement off',"
"   quote_ident(r.rolname),"
"   CASE WHEN count(*) = 1 THEN 'table' ELSE 'tables' END,"
"   string_agg(m.relid::regclass::text, ', ' ORDER BY m.relid::regclass::text),"
"   CASE WHEN count(*) = 1 THEN 'moves' ELSE 'move' END, coalesce('database ' || quote_ident(srv.dbname), 'another database'),"
"   quote_ident(srv.name),"
"   CASE WHEN count(*) = 1 THEN 'shim' ELSE 'shims' END,"
"   quote_ident(r.rolname), quote_ident(srv.name), r.rolname)"
"  FROM srv CROSS JOIN moving m"
"  JOIN pg_roles r ON r.rolcanlogin AND NOT r.rolsuper"
"   AND r.rolname !~ '^pg_'"
" WHERE (pg_catalog.has_any_column_privilege(r.oid, m.relid, 'SELECT, INSERT, UPDATE')"
"        OR pg_catalog.has_table_privilege(r.oid, m.relid, 'DELETE, TRUNCATE'))"
"   AND NOT EXISTS (SELECT FROM pg_user_mappings u"
"                    WHERE u.srvid = srv.oid AND u.umuser IN (r.oid, 0))"
" GROUP BY r.rolname, srv.name, srv.dbname"
" ORDER BY 2";
