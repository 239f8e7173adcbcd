/*-------------------------------------------------------------------------
 *
 * onlinekey.c
 *	  The plan's warning for a table whose only key is DEFERRABLE: online
 *	  mode, the default, is refused for it.
 *
 * An online migration finds the rows it replays by a key: a primary key, or
 * a unique key over NOT NULL plain columns, that is not DEFERRABLE (a
 * deferrable key can hold duplicates until its transaction commits); the
 * capture takes no other, and splitdb_migrate() refuses online mode for a
 * service with a table that has none (job.c, check_online_keys).  A table
 * without any key gets the plan's "no primary key" warning; one whose keys
 * are all deferrable looks keyed, so this warning says what online mode
 * will do.  The copy is not concerned: it orders its batches by such a key
 * all the same.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/plan/onlinekey.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "nodes/pg_list.h"

#include "metadata/catalog_sql.h"
#include "plan/plan.h"

/* a unique index usable as an online key, but for its deferrability */
#define KEY_SHAPE(i) \
	i ".indisunique AND " i ".indpred IS NULL AND " i ".indexprs IS NULL" \
	" AND NOT EXISTS (SELECT FROM unnest(" i ".indkey) k(attnum)" \
	"  JOIN pg_attribute a ON a.attrelid = " i ".indrelid AND a.attnum = k.attnum" \
	"  WHERE NOT a.attnotnull)"

/* plan query (plan.h's parameters): one warning per such table */
const char *const splitdb_plan_sql_online_keys =
"WITH " SPLITDB_OWNED_CTE
" SELECT 'warning', c.oid::regclass::text,"
"  format('table %s has no key that an online migration can replay by: its %s is DEFERRABLE, and a deferrable key can hold duplicates until its transaction commits; splitdb_migrate() refuses online mode, the default, for the service; add the key again without DEFERRABLE, or migrate with mode => ''offline''',"
"   c.oid::regclass, d.what)"
"  FROM pg_class c JOIN owned o ON o.relid = c.oid"
"  CROSS JOIN LATERAL ("
"   SELECT CASE WHEN di.indisprimary THEN 'primary key ' ELSE 'unique key ' END"
"          || quote_ident(k.conname) || ' ('"
"          || (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY x.ord)"
"                FROM unnest(di.indkey) WITH ORDINALITY x(attnum, ord)"
"                JOIN pg_attribute a ON a.attrelid = di.indrelid AND a.attnum = x.attnum) || ')'"
"     FROM pg_index di JOIN pg_constraint k ON k.conindid = di.indexrelid AND k.conrelid = di.indrelid"
"    WHERE di.indrelid = c.oid AND NOT di.indimmediate AND " KEY_SHAPE("di")
"    ORDER BY di.indisprimary DESC, di.indexrelid LIMIT 1) d(what)"
" WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition"
"   AND NOT EXISTS (SELECT FROM pg_index i"
"                    WHERE i.indrelid = c.oid AND i.indimmediate AND " KEY_SHAPE("i") ")"
/* keys whose type compares with operators of its own (migrate/job.c) */
" UNION ALL"
" SELECT 'warning', c.oid::regclass::text,"
"  format('table %s has no key that an online migration can replay by: its %s is on a column of type %s, whose equality is an operator of its own outside pg_catalog, and splitdb compares keys with pg_catalog''s operators; splitdb_migrate() refuses online mode, the default, for the service; migrate with mode => ''offline'', which copies the table in one pass, or add a primary key or unique key over NOT NULL columns of built-in types',"
"   c.oid::regclass, f.what, f.type)"
"  FROM pg_class c JOIN owned o ON o.relid = c.oid"
"  CROSS JOIN LATERAL ("
"   SELECT CASE WHEN fi.indisprimary THEN 'primary key ' ELSE 'unique key ' END"
"          || quote_ident(k.conname), (" SPLITDB_KEY_FOREIGN_OPS("fi") " LIMIT 1)"
"     FROM pg_index fi JOIN pg_constraint k ON k.conindid = fi.indexrelid AND k.conrelid = fi.indrelid"
"    WHERE fi.indrelid = c.oid AND fi.indimmediate AND " KEY_SHAPE("fi")
"    ORDER BY fi.indisprimary DESC, fi.indexrelid LIMIT 1) f(what, type)"
" WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND f.type IS NOT NULL"
"   AND NOT EXISTS (SELECT FROM pg_index i"
"                    WHERE i.indrelid = c.oid AND i.indimmediate AND " KEY_SHAPE("i")
"                      AND NOT EXISTS (" SPLITDB_KEY_FOREIGN_OPS("i") "))"
" ORDER BY 2";
