/*-------------------------------------------------------------------------
 *
 * dot.c
 *	  The foreign-key graph of a service, drawn as Graphviz DOT.
 *
 * splitdb_plan_dot() shows which foreign keys a split would cut.  It draws
 * the tables a service owns, every table on the other end of one of their
 * foreign keys, and those foreign keys; each table sits in a cluster for the
 * database it will live in (its service's sibling, or the source when no
 * service owns it), and an edge whose two ends land in different databases
 * is marked as a cross-service reference.
 *
 * Invariants:
 * - Read only.  Every query runs through SPI with read_only = true, so the
 *   whole graph comes from the caller's one snapshot and nothing is locked
 *   beyond what reading the catalogs takes.
 * - The service name travels as a query parameter; no name or value is ever
 *   spliced into SQL.  Relations and functions are schema-qualified, so the
 *   queries do not depend on the search_path they run under.
 * - Tables are named by their regclass output, which qualifies a name only
 *   when the search_path in force would not find it.  The install script
 *   pins this function's search_path to pg_catalog, pg_temp, so user tables
 *   always come out schema-qualified and the graph is the same whatever the
 *   caller's search_path is.  A node's name is also its DOT identifier:
 *   regclass output is unique per table, so nodes never merge.
 * - Ownership follows partitioning: every partition of an owned partitioned
 *   table belongs to the same service, including partitions attached after
 *   the assignment, unless the partition has an ownership row of its own.
 * - The output is deterministic: clusters, nodes and edges come out in a
 *   fixed order, with names compared under the "C" collation.
 * - Every string in the output is a DOT double-quoted string, escaped by
 *   append_dot_string(), so any table or constraint name yields valid DOT.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/plan/dot.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "metadata/catalog.h"
#include "compat.h"
#include "plan/dot.h"

/*
 * The part shared by the node and the edge query.
 *
 * table_owner: every relation some service owns, with its service and the
 *              partitioned table it is owned through, if any
 *              (SPLITDB_OWNED_RELATION_SQL in catalog.h)
 * fk_edge:     the foreign keys with at least one end owned by $1.
 *              conparentid = 0 keeps the constraint a user declared and drops
 *              the clones PostgreSQL makes on partitions (on both the
 *              referencing and the referenced side); a foreign key declared
 *              on a partition itself has conparentid = 0 and is kept.
 */
#define GRAPH_CTE \
	"WITH table_owner AS (" SPLITDB_OWNED_RELATION_SQL \
	"), fk_edge AS (" \
	"  SELECT c.conrelid, c.confrelid, c.conname," \
	"         oc.service AS child_service, op.service AS parent_service" \
	"    FROM pg_catalog.pg_constraint c" \
	"    LEFT JOIN table_owner oc ON oc.relid = c.conrelid" \
	"    LEFT JOIN table_owner op ON op.relid = c.confrelid" \
	"   WHERE c.contype = 'f'" \
	"     AND c.conparentid = 0" \
	"     AND (oc.service = $1 OR op.service = $1)" \
	")"

/*
 * Nodes, one row per table: name, service (NULL for the source), the
 * service's database.  The service's own tables are drawn except partitions
 * of a table it owns; those appear only when a foreign key touches them.
 * Ordered by cluster (the requested service, other services by name, the
 * source), then by name.
 */
static const char *const node_query =
GRAPH_CTE
", graph_node AS ("
"  SELECT relid FROM table_owner WHERE service = $1 AND partition_root IS NULL"
"  UNION SELECT conrelid FROM fk_edge"
"  UNION SELECT confrelid FROM fk_edge"
") "
"SELECT n.name, n.service, s.dbname"
"  FROM (SELECT g.relid::pg_catalog.regclass::pg_catalog.text AS name,"
"               o.service"
"          FROM graph_node g LEFT JOIN table_owner o USING (relid)) n"
"  LEFT JOIN splitdb.service s ON s.service = n.service"
" ORDER BY CASE WHEN n.service = $1 THEN 0"
"               WHEN n.service IS NOT NULL THEN 1"
"               ELSE 2 END,"
"          n.service COLLATE pg_catalog.\"C\","
"          n.name COLLATE pg_catalog.\"C\"";

/*
 * Edges, one row per foreign key: child, parent, constraint name, and
 * whether the two ends land in different databases.  Ordered by child, then
 * parent, then constraint name.
 */
static const char *const edge_query =
GRAPH_CTE
" SELECT e.child, e.parent, e.conname, e.cross_service"
"   FROM (SELECT conrelid::pg_catalog.regclass::pg_catalog.text AS child,"
"                confrelid::pg_catalog.regclass::pg_catalog.text AS parent,"
"                conname::pg_catalog.text AS conname,"
"                child_service IS DISTINCT FROM parent_service"
"                  AS cross_service"
"           FROM fk_edge) e"
"  ORDER BY e.child COLLATE pg_catalog.\"C\","
"           e.parent COLLATE pg_catalog.\"C\","
"           e.conname COLLATE pg_catalog.\"C\"";

/* the service's database, without the error a missing service raises */
static const char *const service_query =
"SELECT dbname FROM splitdb.service WHERE service = $1";

/*
 * Identifier of the note node drawn in an empty cluster.  regclass output
 * starts with a letter, an underscore or a double quote, never with "(", so
 * no table can have this name.
 */
#define EMPTY_NOTE_ID	"(no tables)"

PG_FUNCTION_INFO_V1(splitdb_plan_dot);

static void run_query(const char *sql, Name service);
static char *get_value(uint64 row, int col);
static void append_dot_string(StringInfo buf, const char *s);
static void append_header(StringInfo buf, const char *service);
static void open_cluster(StringInfo buf, const char *service,
						 const char *dbname, bool requested);
static void close_cluster(StringInfo buf, bool empty);
static void append_nodes(StringInfo buf, Name service, const char *dbname);
static void append_edges(StringInfo buf, Name service);

/*
 * run_query
 *		Run one read-only query with the service name as $1.
 *
 * The result is left in SPI_tuptable / SPI_processed.  An SPI failure is a
 * bug, not something a user can cause: splitdb_spi_exec() reports it.
 */
static void
run_query(const char *sql, Name service)
{
	Oid			argtypes[1] = {NAMEOID};
	Datum		values[1];

	values[0] = NameGetDatum(service);
	splitdb_spi_exec(sql, 1, argtypes, values, NULL, true, 0);
}

/* text of column col (1-based) of row row of SPI_tuptable, NULL for SQL NULL */
static char *
get_value(uint64 row, int col)
{
	return SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);
}

/*
 * append_dot_string
 *		Append s as a DOT double-quoted string.
 *
 * Backslash and double quote are escaped, so the string reads back as
 * itself in a label; a newline becomes \n, which DOT shows as a line break.
 * Every other byte is copied as is.
 *
 * NB: the loop is byte-wise.  That is safe because every server encoding is
 * ASCII-safe: no byte of a multibyte character is '"', '\\' or '\n'.
 */
static void
append_dot_string(StringInfo buf, const char *s)
{
	appendStringInfoChar(buf, '"');
	for (; *s != '\0'; s++)
	{
		if (*s == '"' || *s == '\\')
		{
			appendStringInfoChar(buf, '\\');
			appendStringInfoChar(buf, *s);
		}
		else if (*s == '\n')
			appendStringInfoString(buf, "\\n");
		else
			appendStringInfoChar(buf, *s);
	}
	appendStringInfoChar(buf, '"');
}

/* the opening line and the graph-wide attributes */
static void
append_header(StringInfo buf, const char *service)
{
	StringInfoData title;

	initStringInfo(&title);
	appendStringInfo(&title, "foreign keys of service %s", service);

	appendStringInfoString(buf, "digraph splitdb {\n");
	appendStringInfoString(buf,
						   "\tgraph [rankdir = \"LR\", fontname = \"Helvetica\","
						   " labelloc = \"t\", label = ");
	append_dot_string(buf, title.data);
	appendStringInfoString(buf, "];\n");
	appendStringInfoString(buf,
						   "\tnode [shape = \"box\", fontname = \"Helvetica\","
						   " style = \"filled\", fillcolor = \"white\"];\n");
	appendStringInfoString(buf,
						   "\tedge [fontname = \"Helvetica\", fontsize = \"10\"];\n");

	pfree(title.data);
}

/*
 * open_cluster
 *		Start the cluster of one database.
 *
 * service:   the service whose sibling it is, or NULL for the source
 * dbname:    the database's name
 * requested: it is the cluster of the service the graph was asked for,
 *            which is shaded so it stands out
 *
 * Cluster identifiers are "cluster_service_<service>" and "cluster_source",
 * which cannot collide: service names are unique, and no service identifier
 * equals the source's.
 */
static void
open_cluster(StringInfo buf, const char *service, const char *dbname,
			 bool requested)
{
	StringInfoData text;

	initStringInfo(&text);

	appendStringInfoString(buf, "\n\tsubgraph ");
	if (service != NULL)
		appendStringInfo(&text, "cluster_service_%s", service);
	else
		appendStringInfoString(&text, "cluster_source");
	append_dot_string(buf, text.data);
	appendStringInfoString(buf, " {\n");

	resetStringInfo(&text);
	if (service != NULL)
		appendStringInfo(&text, "service %s (database %s)", service, dbname);
	else
		appendStringInfo(&text, "source (database %s)", dbname);
	appendStringInfoString(buf, "\t\tlabel = ");
	append_dot_string(buf, text.data);
	appendStringInfoString(buf, ";\n");

	if (requested)
		appendStringInfoString(buf,
							   "\t\tstyle = \"rounded,filled\";\n"
							   "\t\tfillcolor = \"lightblue\";\n");
	else if (service != NULL)
		appendStringInfoString(buf, "\t\tstyle = \"rounded\";\n");
	else
		appendStringInfoString(buf, "\t\tstyle = \"rounded,dashed\";\n");

	pfree(text.data);
}

/*
 * close_cluster
 *		End a cluster; an empty one gets a note node so that Graphviz draws
 *		it (it drops clusters without nodes).
 */
static void
close_cluster(StringInfo buf, bool empty)
{
	if (empty)
	{
		appendStringInfoString(buf, "\t\t");
		append_dot_string(buf, EMPTY_NOTE_ID);
		appendStringInfoString(buf,
							   " [shape = \"note\", label = \"no tables assigned\"];\n");
	}
	appendStringInfoString(buf, "\t}\n");
}

/*
 * append_nodes
 *		Append one cluster per database with the tables that land there.
 *
 * service: the service the graph is for; its cluster always comes first and
 *          is drawn even when empty
 * dbname:  that service's database
 *
 * Other services get a cluster only when the graph has one of their tables,
 * and so does the source, which comes last.
 */
static void
append_nodes(StringInfo buf, Name service, const char *dbname)
{
	char	   *current = NameStr(*service);
	bool		in_source = false;
	uint64		ncurrent = 0;
	uint64		row;

	run_query(node_query, service);

	open_cluster(buf, current, dbname, true);
	for (row = 0; row < SPI_processed; row++)
	{
		char	   *name = get_value(row, 1);
		char	   *owner = get_value(row, 2);
		char	   *owner_db = get_value(row, 3);
		bool		same;

		/* rows come grouped by cluster; start a new one when it changes */
		if (owner == NULL)
			same = in_source;
		else
			same = !in_source && strcmp(owner, current) == 0;
		if (!same)
		{
			close_cluster(buf, ncurrent == 0);
			if (owner == NULL)
			{
				in_source = true;
				open_cluster(buf, NULL,
							 get_database_name(MyDatabaseId), false);
			}
			else
			{
				current = owner;
				open_cluster(buf, owner, owner_db, false);
			}
			ncurrent = 0;
		}

		appendStringInfoString(buf, "\t\t");
		append_dot_string(buf, name);
		appendStringInfoString(buf, ";\n");
		ncurrent++;
	}
	close_cluster(buf, ncurrent == 0);
}

/*
 * append_edges
 *		Append one edge per foreign key, child -> parent, labelled with the
 *		constraint name; an edge between two databases is red and bold and
 *		says "(cross-service)".
 */
static void
append_edges(StringInfo buf, Name service)
{
	uint64		row;

	run_query(edge_query, service);

	if (SPI_processed > 0)
		appendStringInfoChar(buf, '\n');
	for (row = 0; row < SPI_processed; row++)
	{
		char	   *child = get_value(row, 1);
		char	   *parent = get_value(row, 2);
		char	   *conname = get_value(row, 3);
		char	   *cross = get_value(row, 4);

		appendStringInfoChar(buf, '\t');
		append_dot_string(buf, child);
		appendStringInfoString(buf, " -> ");
		append_dot_string(buf, parent);
		appendStringInfoString(buf, " [label = ");
		if (strcmp(cross, "t") == 0)
		{
			/* append_dot_string turns the newline into DOT's line break */
			append_dot_string(buf, psprintf("%s\n(cross-service)", conname));
			appendStringInfoString(buf,
								   ", color = \"red\", fontcolor = \"red\","
								   " style = \"bold\"");
		}
		else
			append_dot_string(buf, conname);
		appendStringInfoString(buf, "];\n");
	}
}

/*
 * splitdb_plan_dot
 *		SQL: splitdb_plan_dot(service name) RETURNS text
 *
 * Returns the foreign-key graph of the service's tables and their
 * neighbours as a DOT digraph: one cluster for the service (always, even
 * when it owns nothing: then it holds a note node saying so), one per other
 * service with a table in the graph, one for the source database's tables,
 * and one edge per foreign key with an end owned by the service.
 *
 * Raises ERRCODE_UNDEFINED_OBJECT when the service is not registered.
 *
 * The result is palloc'd in the caller's memory context; everything SPI
 * returned is freed by SPI_finish().
 */
Datum
splitdb_plan_dot(PG_FUNCTION_ARGS)
{
	Name		service = PG_GETARG_NAME(0);
	StringInfoData buf;
	char	   *dbname;
	text	   *result;

	/* before SPI_connect, so the buffer outlives SPI_finish */
	initStringInfo(&buf);

	splitdb_spi_connect();

	run_query(service_query, service);
	if (SPI_processed == 0)
		splitdb_error_unknown_service(NameStr(*service));
	dbname = get_value(0, 1);

	append_header(&buf, NameStr(*service));
	append_nodes(&buf, service, dbname);
	append_edges(&buf, service);
	appendStringInfoString(&buf, "}\n");

	SPI_finish();

	result = cstring_to_text_with_len(buf.data, buf.len);
	pfree(buf.data);
	PG_RETURN_TEXT_P(result);
}
