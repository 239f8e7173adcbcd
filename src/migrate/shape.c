/*-------------------------------------------------------------------------
 *
 * shape.c
 *	  Whether the sibling's tables of a job still have the columns of
 *	  their archived originals, for a rollback.
 *
 * A rollback replays the rows written in the sibling since the cutover
 * into the archived originals, by the originals' columns.  A column added
 * to a sibling's table since (ALTER TABLE there, by the service's own
 * migrations) has values that no archived original can hold, and the
 * replay would drop them without a word; a column dropped or retyped there
 * leaves rows that cannot go back as they were.  So a rollback first
 * compares the two sides, column by column (name and type, as
 * format_type() writes them under search_path pg_catalog), and refuses
 * when they differ, having changed nothing.
 *
 * A rollback also drops the sibling's tables once the source has them
 * back.  An object made there since that depends on one of them (a view,
 * a foreign key of a table the service added, a column of its row type, a
 * default that takes a value from a sequence one of them owns) would make
 * that last step fail after the source was restored, so a rollback
 * refuses it first as well, naming it, as DROP TABLE without CASCADE would.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/shape.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "metadata/catalog.h"
#include "migrate/shape.h"
#include "remote/remote.h"
#include "splitdb.h"

/*
 * The columns of relations, one row per relation: its name as the job
 * records it, and its columns in attribute order ("name type, ...").  In
 * the source over the job's tables (the archived originals); in the sibling
 * over the names the job gave them there ($1).
 */
#define COLUMNS_OF(relid) \
	"pg_catalog.string_agg(pg_catalog.quote_ident(a.attname) OPERATOR(pg_catalog.||) ' '" \
	"                      OPERATOR(pg_catalog.||) pg_catalog.format_type(a.atttypid, a.atttypmod), ', '" \
	"                      ORDER BY a.attnum)" \
	" FROM pg_catalog.pg_attribute a WHERE a.attrelid = " relid \
	"  AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped"
#define SOURCE_SHAPES \
	"SELECT t.table_name, (SELECT " COLUMNS_OF("t.relid") ")" \
	"  FROM splitdb.job_table t WHERE t.job_id = $1::pg_catalog.int8" \
	"   AND t.relkind IN ('r', 'p') ORDER BY t.table_name"
#define SIBLING_SHAPES \
	"SELECT n, (SELECT " COLUMNS_OF("pg_catalog.to_regclass(n)") ")" \
	"  FROM pg_catalog.unnest($1::pg_catalog.text[]) n"

/*
 * The objects of the sibling, up to three, that depend on the named tables
 * ($1) and that dropping them would not take along: not the tables
 * themselves, their partitions and children, nor their constraints, rules,
 * triggers, policies and defaults, nor the sequences they own, which go
 * with them.  What depends on the tables, their row types (and arrays of
 * them) and those sequences.
 */
#define SIBLING_DEPENDENTS \
	"WITH rels AS (SELECT c.oid, c.reltype FROM pg_catalog.unnest($1::pg_catalog.text[]) n" \
	"               JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(n))," \
	"     owned AS (SELECT d.objid AS oid FROM pg_catalog.pg_depend d" \
	"                 JOIN pg_catalog.pg_class s ON s.oid OPERATOR(pg_catalog.=) d.objid AND s.relkind OPERATOR(pg_catalog.=) 'S'" \
	"                WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass" \
	"                  AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass" \
	"                  AND d.refobjid IN (SELECT oid FROM rels) AND d.deptype OPERATOR(pg_catalog.=) 'a')," \
	"     targets AS (SELECT 'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid AS cls, oid FROM rels" \
	"                 UNION ALL SELECT 'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid, oid FROM owned" \
	"                 UNION ALL SELECT 'pg_catalog.pg_type'::pg_catalog.regclass::pg_catalog.oid, x.oid" \
	"                   FROM rels r JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) r.reltype," \
	"                        LATERAL (VALUES (t.oid), (t.typarray)) x(oid))," \
	"     deps AS (SELECT DISTINCT coalesce((SELECT pg_catalog.pg_describe_object('pg_catalog.pg_class'::pg_catalog.regclass, w.ev_class, 0)" \
	"                                          FROM pg_catalog.pg_rewrite w" \
	"                                         WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass" \
	"                                           AND w.oid OPERATOR(pg_catalog.=) d.objid" \
	"                                           AND w.rulename OPERATOR(pg_catalog.=) '_RETURN')," \
	"                                       pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid)) AS what" \
	"                FROM pg_catalog.pg_depend d" \
	"               WHERE d.deptype OPERATOR(pg_catalog.=) 'n'" \
	"                 AND (d.refclassid, d.refobjid) IN (SELECT cls, oid FROM targets)" \
	"                 AND NOT (d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass" \
	"                          AND (d.objid IN (SELECT oid FROM rels) OR d.objid IN (SELECT oid FROM owned)))" \
	"                 AND NOT EXISTS (SELECT FROM pg_catalog.pg_constraint k WHERE k.oid OPERATOR(pg_catalog.=) d.objid" \
	"                                    AND d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_constraint'::pg_catalog.regclass" \
	"                                    AND k.conrelid IN (SELECT oid FROM rels))" \
	"                 AND NOT EXISTS (SELECT FROM pg_catalog.pg_rewrite w WHERE w.oid OPERATOR(pg_catalog.=) d.objid" \
	"                                    AND d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass" \
	"                                    AND w.ev_class IN (SELECT oid FROM rels))" \
	"                 AND NOT EXISTS (SELECT FROM pg_catalog.pg_trigger g WHERE g.oid OPERATOR(pg_catalog.=) d.objid" \
	"                                    AND d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_trigger'::pg_catalog.regclass" \
	"                                    AND g.tgrelid IN (SELECT oid FROM rels))" \
	"                 AND NOT EXISTS (SELECT FROM pg_catalog.pg_policy p WHERE p.oid OPERATOR(pg_catalog.=) d.objid" \
	"                                    AND d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_policy'::pg_catalog.regclass" \
	"                                    AND p.polrelid IN (SELECT oid FROM rels))" \
	"                 AND NOT EXISTS (SELECT FROM pg_catalog.pg_attrdef a WHERE a.oid OPERATOR(pg_catalog.=) d.objid" \
	"                                    AND d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_attrdef'::pg_catalog.regclass" \
	"                                    AND a.adrelid IN (SELECT oid FROM rels)))" \
	" SELECT pg_catalog.string_agg(what, '; ' ORDER BY what) FROM (SELECT what FROM deps ORDER BY what LIMIT 3) s"

/* the text[] literal of a list of strings */
static char *
text_array_literal(List *names)
{
	StringInfoData arr;
	ListCell   *lc;

	initStringInfo(&arr);
	appendStringInfoChar(&arr, '{');
	foreach(lc, names)
	{
		const char *name = lfirst(lc);

		if (arr.len > 1)
			appendStringInfoChar(&arr, ',');
		appendStringInfoChar(&arr, '"');
		for (const char *p = name; *p; p++)
		{
			if (*p == '"' || *p == '\\')
				appendStringInfoChar(&arr, '\\');
			appendStringInfoChar(&arr, *p);
		}
		appendStringInfoChar(&arr, '"');
	}
	appendStringInfoChar(&arr, '}');
	return arr.data;
}

/*
 * sibling_shapes
 *		The columns of the named tables in the sibling: a result of one row
 *		per name, in the order given, NULL for a table it lacks.
 */
static PGresult *
sibling_shapes(PGconn *conn, List *names, const char *service)
{
	const char *params[1] = {text_array_literal(names)};

	return splitdb_remote_exec(conn, SIBLING_SHAPES, 1, params, service);
}

/*
 * splitdb_dependents_problem
 *		The objects of the sibling (conn), up to three, that depend on the
 *		tables of job job_id there and that dropping them would not take
 *		along (see the file's header), or NULL when there are none.  In a
 *		transaction, connected to SPI.
 */
char *
splitdb_dependents_problem(int64 job_id, PGconn *conn, const char *service)
{
	const char *params[1] = {psprintf(INT64_FORMAT, job_id)};
	List	   *names = NIL;
	const char *remote[1];

	splitdb_catalog_exec_text("SELECT table_name FROM splitdb.job_table"
							  " WHERE job_id = $1::pg_catalog.int8 AND relkind IN ('r', 'p')"
							  " ORDER BY table_name",
							  1, params, true);
	for (uint64 i = 0; i < SPI_processed; i++)
		names = lappend(names, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
	if (names == NIL)
		return NULL;
	remote[0] = text_array_literal(names);
	return splitdb_remote_scalar(conn, SIBLING_DEPENDENTS, 1, remote, service);
}

/*
 * splitdb_shape_problem
 *		How a table of job job_id in the sibling (conn) differs from its
 *		archived original in columns, or NULL when none does.  The first
 *		such table is named.  In a transaction, connected to SPI.
 */
char *
splitdb_shape_problem(int64 job_id, PGconn *conn, const char *service)
{
	const char *params[1] = {psprintf(INT64_FORMAT, job_id)};
	List	   *names = NIL;
	List	   *shapes = NIL;
	PGresult   *res;
	char	   *problem = NULL;

	int			nest = NewGUCNestLevel();

	/* format_type() qualifies every type outside pg_catalog, as there */
	(void) set_config_option("search_path", "pg_catalog", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	splitdb_catalog_exec_text(SOURCE_SHAPES, 1, params, true);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		names = lappend(names, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
		shapes = lappend(shapes, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2));
	}
	AtEOXact_GUC(true, nest);
	if (names == NIL)
		return NULL;

	res = sibling_shapes(conn, names, service);
	for (int i = 0; i < list_length(names) && problem == NULL; i++)
	{
		const char *name = list_nth(names, i);
		const char *here = list_nth(shapes, i);
		const char *there = splitdb_remote_value(res, i, 1);

		if (there == NULL)
			problem = psprintf("Table %s is missing in the sibling", name);
		else if (here == NULL || strcmp(here, there) != 0)
			problem = psprintf("Table %s has the columns (%s) in the sibling and (%s) in its archived original",
							   name, there, here ? here : "");
	}
	splitdb_remote_clear(res);
	return problem;
}
