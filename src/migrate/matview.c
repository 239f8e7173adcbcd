/*-------------------------------------------------------------------------
 *
 * matview.c
 *	  The materialized views over a job's tables, re-pointed at the cutover.
 *
 * A view is re-pointed in place with CREATE OR REPLACE VIEW.  A
 * materialized view cannot be: its query is fixed when it is created.  One
 * that reads a moving table directly therefore goes to the archive with the
 * tables (where it keeps reading the originals, as they were), and the
 * cutover creates it again under its name over the shims, with what
 * pg_dump would restore of it:
 *
 * - the access method, storage parameters and tablespace;
 * - populated through the shims when the original was, so that no query
 *   ever finds it unpopulated (WITH NO DATA when the original was not);
 * - its indexes (with their tablespaces), the index it is clustered on,
 *   the columns' statistics targets and options;
 * - owner, grants (table and column) and comments (its own, its columns'
 *   and its indexes').
 *
 * One that an earlier job left in the archive stays as it is: it reads
 * that job's archived originals, even where it also reads this job's tables.
 *
 * splitdb_plan() refuses a materialized view that other objects use
 * (views, functions, columns of its row type, ...): they name it by OID
 * and would keep the archived one.  Extended statistics objects stay with
 * the archived one (docs/operations.md).
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/matview.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"

#include "metadata/catalog.h"
#include "migrate/cutover.h"
#include "splitdb.h"

/*
 * The materialized views that read a job's tables directly: $1 job id.
 * Read while the tables still have their names, with search_path =
 * pg_catalog, pg_temp, so every name in the definitions is qualified and
 * resolves to the shims after the move.
 */
#define SQL_JOB_MATVIEWS \
"mv AS (" \
"  SELECT DISTINCT v.oid FROM splitdb.job_table t" \
"    JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass AND d.refobjid = t.relid" \
"     AND d.classid = 'pg_rewrite'::regclass" \
"    JOIN pg_rewrite r ON r.oid = d.objid AND r.rulename = '_RETURN'" \
"    JOIN pg_class v ON v.oid = r.ev_class AND v.relkind = 'm'" \
"   WHERE t.job_id = $1 AND " SPLITDB_NOT_ARCHIVED("v.oid") ")"

/*
 * The statements that create each of them again: (oid, order, statement),
 * in the order they must run.
 */
static const char *const sql_matviews =
"WITH " SQL_JOB_MATVIEWS
" SELECT c.oid, 1 AS ord, format('CREATE MATERIALIZED VIEW %s%s%s%s AS %s WITH %s',"
"   c.oid::regclass,"
"   CASE WHEN am.amname <> 'heap' THEN ' USING ' || quote_ident(am.amname) ELSE '' END,"
"   CASE WHEN c.reloptions IS NOT NULL"
"        THEN ' WITH (' || array_to_string(c.reloptions, ', ') || ')' ELSE '' END,"
"   CASE WHEN c.reltablespace <> 0"
"        THEN ' TABLESPACE ' || quote_ident((SELECT spcname FROM pg_tablespace WHERE oid = c.reltablespace))"
"        ELSE '' END,"
"   rtrim(pg_get_viewdef(c.oid), ';'),"
"   CASE WHEN c.relispopulated THEN 'DATA' ELSE 'NO DATA' END) AS sql"
" FROM mv JOIN pg_class c ON c.oid = mv.oid LEFT JOIN pg_am am ON am.oid = c.relam"
" UNION ALL"
" SELECT i.indrelid, 2, pg_get_indexdef(i.indexrelid)"
" FROM mv JOIN pg_index i ON i.indrelid = mv.oid"
" UNION ALL"
" SELECT i.indrelid, 3, format('ALTER INDEX %s SET TABLESPACE %I', i.indexrelid::regclass, ts.spcname)"
" FROM mv JOIN pg_index i ON i.indrelid = mv.oid JOIN pg_class ic ON ic.oid = i.indexrelid"
" JOIN pg_tablespace ts ON ts.oid = ic.reltablespace"
" UNION ALL"
" SELECT i.indrelid, 4, format('ALTER MATERIALIZED VIEW %s CLUSTER ON %I', i.indrelid::regclass, ic.relname)"
" FROM mv JOIN pg_index i ON i.indrelid = mv.oid JOIN pg_class ic ON ic.oid = i.indexrelid"
" WHERE i.indisclustered"
" UNION ALL"
" SELECT a.attrelid, 5, format('ALTER MATERIALIZED VIEW %s ALTER COLUMN %I SET STATISTICS %s',"
"   a.attrelid::regclass, a.attname, a.attstattarget)"
" FROM mv JOIN pg_attribute a ON a.attrelid = mv.oid"
" WHERE a.attnum > 0 AND NOT a.attisdropped AND a.attstattarget >= 0"
" UNION ALL"
" SELECT a.attrelid, 5, format('ALTER MATERIALIZED VIEW %s ALTER COLUMN %I SET (%s)',"
"   a.attrelid::regclass, a.attname, array_to_string(a.attoptions, ', '))"
" FROM mv JOIN pg_attribute a ON a.attrelid = mv.oid"
" WHERE a.attnum > 0 AND NOT a.attisdropped AND a.attoptions IS NOT NULL"
" UNION ALL"
" SELECT c.oid, 6, format('ALTER MATERIALIZED VIEW %s OWNER TO %I', c.oid::regclass, r.rolname)"
" FROM mv JOIN pg_class c ON c.oid = mv.oid JOIN pg_roles r ON r.oid = c.relowner"
" UNION ALL"
" SELECT c.oid, 7, format('GRANT %s ON TABLE %s TO %s%s', a.privilege_type, c.oid::regclass,"
"   CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END,"
"   CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)"
" FROM mv JOIN pg_class c ON c.oid = mv.oid, aclexplode(c.relacl) a"
" LEFT JOIN pg_roles r ON r.oid = a.grantee"
" WHERE a.grantee <> c.relowner"
" UNION ALL"
" SELECT c.oid, 7, format('REVOKE %s ON TABLE %s FROM %I',"
"   string_agg(d.privilege_type, ', ' ORDER BY d.privilege_type), c.oid::regclass, r.rolname)"
" FROM mv JOIN pg_class c ON c.oid = mv.oid JOIN pg_roles r ON r.oid = c.relowner,"
" aclexplode(acldefault('r', c.relowner)) d"
" WHERE c.relacl IS NOT NULL"
"   AND NOT EXISTS (SELECT FROM aclexplode(c.relacl) a"
"                    WHERE a.grantee = d.grantee AND a.privilege_type = d.privilege_type)"
" GROUP BY c.oid, r.rolname"
" UNION ALL"
" SELECT at.attrelid, 7, format('GRANT %s (%I) ON TABLE %s TO %s%s', a.privilege_type, at.attname,"
"   at.attrelid::regclass, CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END,"
"   CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)"
" FROM mv JOIN pg_class c ON c.oid = mv.oid"
" JOIN pg_attribute at ON at.attrelid = c.oid AND at.attnum > 0 AND NOT at.attisdropped"
"  AND at.attacl IS NOT NULL,"
" aclexplode(at.attacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee"
" WHERE a.grantee <> c.relowner"
" UNION ALL"
" SELECT c.oid, 8, CASE WHEN d.objsubid = 0"
"   THEN format('COMMENT ON MATERIALIZED VIEW %s IS %L', c.oid::regclass, d.description)"
"   ELSE format('COMMENT ON COLUMN %s.%I IS %L', c.oid::regclass,"
"               (SELECT attname FROM pg_attribute WHERE attrelid = c.oid AND attnum = d.objsubid),"
"               d.description) END"
" FROM mv JOIN pg_class c ON c.oid = mv.oid"
" JOIN pg_description d ON d.classoid = 'pg_class'::regclass AND d.objoid = c.oid"
" UNION ALL"
" SELECT i.indrelid, 8, format('COMMENT ON INDEX %s IS %L', i.indexrelid::regclass, d.description)"
" FROM mv JOIN pg_index i ON i.indrelid = mv.oid"
" JOIN pg_description d ON d.classoid = 'pg_class'::regclass AND d.objoid = i.indexrelid"
"  AND d.objsubid = 0"
" ORDER BY 1, 2, 3";

/*
 * splitdb_matview_ddl
 *		The materialized views that read the job's tables directly, each
 *		with the statements that create it again over the shims, as a List
 *		of SplitdbMatview.
 *
 * Call before the originals move: the statements name the relations as
 * they are now.  The caller is connected to SPI, with search_path =
 * pg_catalog, pg_temp; the result lives in its SPI context.
 */
List *
splitdb_matview_ddl(int64 job_id)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(job_id)};
	List	   *result = NIL;
	SplitdbMatview *current = NULL;

	splitdb_spi_exec(sql_matviews, 1, types, values, NULL, true, 0);

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		bool		isnull;
		Oid			relid = DatumGetObjectId(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull));

		if (current == NULL || current->relid != relid)
		{
			current = palloc0(sizeof(SplitdbMatview));
			current->relid = relid;
			result = lappend(result, current);
		}
		current->statements = lappend(current->statements,
									  SPI_getvalue(tup, SPI_tuptable->tupdesc, 3));
	}
	return result;
}
