/*-------------------------------------------------------------------------
 *
 * sharedsibling.c
 *	  The plan's warning for a service whose sibling has the name of the
 *	  sibling of another service that a reference joins it to.
 *
 * splitdb keeps the two ends of a cross-service reference in two
 * databases; splitdb_migrate() refuses the second of two services joined
 * by a reference whose servers reach one database (0A000, see
 * src/migrate/shareddb.c).  The plan reads only the source's catalogs, so
 * it compares the database names that the two services' servers name now
 * (their dbname options; for a server without one, the name the sibling
 * answered when the service was added, splitdb.service.dbname): the same
 * name on two servers is one database unless the servers reach two
 * clusters, which the plan cannot tell.  Hence a warning, once per such
 * service, not a blocker.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/plan/sharedsibling.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "nodes/pg_list.h"

#include "plan/plan.h"

/* plan query (plan.h's parameters): one warning per service */
const char *const splitdb_plan_sql_shared_sibling =
"WITH " SPLITDB_OWNER_CTE ", " SPLITDB_JOINED_SERVICES_CTE ","
" sibling(service, dbname) AS ("
"  SELECT s.service, coalesce((SELECT substr(o, 8) FROM pg_catalog.pg_foreign_server f,"
"                                      unnest(f.srvoptions) o"
"                               WHERE f.srvname = s.server AND o LIKE 'dbname=%'), s.dbname)"
"    FROM splitdb.service s)"
" SELECT 'warning', quote_ident(s.service),"
"  format('service %s names the same sibling database, %s, as service %s, and a foreign key joins their tables; if the two servers reach one database, splitdb_migrate() refuses whichever of the two services migrates second (0A000), since splitdb keeps the ends of a cross-service reference in two databases: give one of them a database of its own, or assign their tables to one service',"
"   quote_ident($1), quote_ident(s.dbname), quote_ident(s.service))"
"  FROM (SELECT DISTINCT j.service FROM joined j) j"
"  JOIN sibling s ON s.service = j.service"
"  JOIN sibling me ON me.service = $1::name AND me.dbname = s.dbname"
" WHERE s.service <> $1::name";
