/*-------------------------------------------------------------------------
 *
 * archivepart.c
 *	  A rollback's archived partitioned tables, given the partitions that
 *	  their copies in the sibling got since the cutover.
 *
 * Between the cutover and splitdb_finalize() the service's partitioned
 * tables in the sibling may get partitions (capturepart.c captures their
 * writes).  A rollback replays the rows written since into the archived
 * originals, through their partitioned tables: a row of a new range has
 * no partition there to go to.  So, before its first replay, the rollback
 * makes in the archive each partition that the sibling has and the job
 * does not know, under the archived copy of its parent, with the sibling's
 * bound (and partition key, for a partition that is partitioned in turn),
 * owned by the parent's owner.  Each is recorded as a table of the job
 * (splitdb.job_table, under its partitioned table) and as a relation the
 * cutover archived (splitdb.cutover_relation, with its schema and name in
 * the sibling), and gets the archive's guard, so that the rollback's
 * restore moves it out of the archive with the rest, and a finalize drops
 * it with its parent.
 *
 * Idempotent: a partition the job knows is left alone, so a resumed
 * rollback makes none twice, and each replay round calls it again (inside
 * its REPEATABLE READ transaction in the sibling: every partition that
 * holds a row the round reads is seen), as does the switch under its
 * locks.  A row replayed before its partition is made here would go to
 * the archived default partition, and CREATE TABLE ... PARTITION OF would
 * then refuse the partition on every later run.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/archivepart.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "metadata/catalog.h"
#include "migrate/ddlguard.h"
#include "migrate/rollback.h"
#include "remote/remote.h"
#include "splitdb.h"

/*
 * The partitions in the sibling of the partitioned tables named in $1,
 * parents first: each one's name and its parent's (quoted and qualified,
 * as splitdb.job_table names them), its bound, its kind, its partition key
 * when it is partitioned, its schema and name.
 */
#define SIBLING_PARTITIONS \
	"SELECT pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(c.relname)," \
	"       pg_catalog.quote_ident(pn.nspname) OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(p.relname)," \
	"       pg_catalog.pg_get_expr(c.relpartbound, c.oid), c.relkind::pg_catalog.text," \
	"       CASE WHEN c.relkind OPERATOR(pg_catalog.=) 'p' THEN pg_catalog.pg_get_partkeydef(c.oid) END," \
	"       n.nspname::pg_catalog.text, c.relname::pg_catalog.text" \
	"  FROM pg_catalog.unnest($1::pg_catalog.text[]) r," \
	"       LATERAL pg_catalog.pg_partition_tree(pg_catalog.to_regclass(r)) t" \
	"  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.relid" \
	"  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace" \
	"  JOIN pg_catalog.pg_class p ON p.oid OPERATOR(pg_catalog.=) t.parentrelid" \
	"  JOIN pg_catalog.pg_namespace pn ON pn.oid OPERATOR(pg_catalog.=) p.relnamespace" \
	" WHERE t.level OPERATOR(pg_catalog.>) 0" \
	" ORDER BY t.level, 1"

/* a relation of the job: its name in the sibling, its archived original */
typedef struct JobRelation
{
	char	   *name;
	Oid			relid;
	Oid			root;			/* the partitioned table it moves with */
} JobRelation;

/* the job's relation named name, or NULL */
static JobRelation *
find_relation(List *known, const char *name)
{
	ListCell   *lc;

	foreach(lc, known)
	{
		JobRelation *r = (JobRelation *) lfirst(lc);

		if (strcmp(r->name, name) == 0)
			return r;
	}
	return NULL;
}

/*
 * job_relations
 *		The job's tables and partitioned tables; *roots gets the text[]
 *		literal of its partitioned tables that move by themselves, or NULL
 *		when it has none.  Connected to SPI.
 */
static List *
job_relations(int64 job_id, char **roots)
{
	const char *params[1] = {psprintf(INT64_FORMAT, job_id)};
	List	   *known = NIL;

	splitdb_catalog_exec_text("SELECT table_name, relid::pg_catalog.text,"
							  "       coalesce(partition_root, relid)::pg_catalog.text"
							  "  FROM splitdb.job_table WHERE job_id = $1::pg_catalog.int8 AND relkind IN ('r', 'p')",
							  1, params, true);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		JobRelation *r = palloc(sizeof(JobRelation));

		r->name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		r->relid = (Oid) strtoul(SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2), NULL, 10);
		r->root = (Oid) strtoul(SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3), NULL, 10);
		known = lappend(known, r);
	}
	splitdb_catalog_exec_text("SELECT pg_catalog.array_agg(table_name ORDER BY table_name)::pg_catalog.text"
							  "  FROM splitdb.job_table WHERE job_id = $1::pg_catalog.int8"
							  "   AND partition_root IS NULL AND relkind = 'p'",
							  1, params, true);
	*roots = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	return known;
}

/*
 * make_partition
 *		The archived copy of the sibling's partition row[] (SIBLING_PARTITIONS'
 *		columns) under parent, recorded as the job's; returns it.  Connected
 *		to SPI.
 */
static JobRelation *
make_partition(int64 job_id, const char *service, JobRelation *parent, char **row)
{
	const char *archived = quote_qualified_identifier(SPLITDB_ARCHIVE_SCHEMA, row[6]);
	const char *params[7];
	JobRelation *r;
	char	   *taken;

	/*
	 * The restore moves it to its schema under its name, between the
	 * sibling's commit and the source's: what would stop it there is
	 * refused now, having changed nothing.
	 */
	splitdb_catalog_exec_text("SELECT pg_catalog.to_regnamespace(pg_catalog.quote_ident($1)) IS NULL,"
							  "       pg_catalog.to_regclass($2) IS NOT NULL",
							  2, (const char *[]) {row[5], row[0]}, true);
	if (strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1), "t") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_SCHEMA_NAME),
				 errmsg("service \"%s\" cannot be rolled back: its partition %s, made in the sibling since the cutover, is in schema \"%s\", which this database lacks",
						service, row[0], row[5]),
				 errhint("Create the schema here, then call splitdb_rollback('%s') again.", service)));
	if (strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2), "t") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_TABLE),
				 errmsg("service \"%s\" cannot be rolled back: its partition %s, made in the sibling since the cutover, has the name of a relation of this database",
						service, row[0]),
				 errhint("Rename the partition in the sibling, or that relation here, then call splitdb_rollback('%s') again.", service)));

	splitdb_catalog_exec_text("SELECT pg_catalog.to_regclass($1) IS NOT NULL", 1, &archived, true);
	taken = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (strcmp(taken, "t") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_TABLE),
				 errmsg("service \"%s\" cannot be rolled back: its partition %s, made in the sibling since the cutover, has no place in the archive",
						service, row[0]),
				 errdetail("The rollback makes it there as %s, which another archived table is called.", archived),
				 errhint("Rename the partition in the sibling, then call splitdb_rollback('%s') again.", service)));

	splitdb_spi_exec(psprintf("CREATE TABLE %s PARTITION OF %s %s%s%s",
							  archived,
							  quote_qualified_identifier(get_namespace_name(get_rel_namespace(parent->relid)),
														 get_rel_name(parent->relid)),
							  row[2], row[4] ? " PARTITION BY " : "", row[4] ? row[4] : ""),
					 0, NULL, NULL, NULL, false, 0);
	/* the owner of its partitioned table, which the transaction did not make */
	splitdb_catalog_exec_text("SELECT pg_catalog.format('ALTER TABLE %s OWNER TO %I', $1::pg_catalog.regclass,"
							  "       pg_catalog.pg_get_userbyid(c.relowner))"
							  "  FROM pg_catalog.pg_class c WHERE c.oid = $2::pg_catalog.oid",
							  2, (const char *[]) {archived, psprintf("%u", parent->root)}, false);
	if (SPI_processed != 1)
		elog(ERROR, "the archived table %u of service \"%s\" is missing", parent->root, service);
	splitdb_spi_exec(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1),
					 0, NULL, NULL, NULL, false, 0);

	r = palloc(sizeof(JobRelation));
	r->name = row[0];
	r->root = parent->root;
	splitdb_catalog_exec_text("SELECT $1::pg_catalog.regclass::pg_catalog.oid::pg_catalog.text", 1, &archived, true);
	r->relid = (Oid) strtoul(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1), NULL, 10);

	params[0] = psprintf(INT64_FORMAT, job_id);
	params[1] = psprintf("%u", r->relid);
	params[2] = row[0];
	params[3] = row[3];
	params[4] = psprintf("%u", r->root);
	params[5] = row[5];
	params[6] = row[6];
	splitdb_catalog_exec_text("INSERT INTO splitdb.job_table (job_id, relid, table_name, relkind, partition_root, phase)"
							  " VALUES ($1::pg_catalog.int8, $2::pg_catalog.oid, $3, $4::\"char\", $5::pg_catalog.oid, 'cut_over')",
							  5, params, false);
	splitdb_catalog_exec_text("INSERT INTO splitdb.cutover_relation (job_id, relid, relkind, schema_name, rel_name)"
							  " VALUES ($1::pg_catalog.int8, $2::pg_catalog.oid, $4::\"char\", $6, $7)",
							  7, params, false);
	elog(LOG, "the rollback of service \"%s\" made partition %s of the sibling in the archive, as %s",
		 service, row[0], archived);
	return r;
}

/*
 * splitdb_archive_new_partitions
 *		Make in the archive each partition that the job's partitioned
 *		tables have in the sibling (conn, in or outside a remote
 *		transaction) and
 *		the job does not know (see the file's header).  Returns how many it
 *		made.  In a transaction of the source, connected to SPI.
 */
int
splitdb_archive_new_partitions(int64 job_id, const char *service, PGconn *conn)
{
	char	   *roots;
	List	   *known = job_relations(job_id, &roots);
	PGresult   *res;
	List	   *rows;
	ListCell   *lc;
	int			made = 0;

	if (roots == NULL)
		return 0;
	res = splitdb_remote_exec(conn, SIBLING_PARTITIONS, 1, (const char *[]) {roots}, service);
	rows = splitdb_remote_result_rows(res);
	splitdb_remote_clear(res);
	foreach(lc, rows)
	{
		char	  **row = (char **) lfirst(lc);
		JobRelation *parent;

		if (find_relation(known, row[0]) != NULL)
			continue;
		parent = find_relation(known, row[1]);
		if (parent == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("service \"%s\" cannot be rolled back: the parent %s of partition %s in the sibling is no table of its migration",
							service, row[1], row[0]),
					 errhint("splitdb_doctor() reports the sibling's tables; keep the service where it is and call splitdb_finalize('%s').",
							 service)));
		known = lappend(known, make_partition(job_id, service, parent, row));
		made++;
	}
	if (made > 0)
		splitdb_archive_guard_install(job_id, service);
	return made;
}
