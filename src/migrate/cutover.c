/*-------------------------------------------------------------------------
 *
 * cutover.c
 *	  The cutover: archive, shims, views, sequences, cross-service keys.
 *
 * The cutover runs in one transaction of the worker, under ACCESS EXCLUSIVE
 * locks on the service's tables:
 *
 *	1. read what must be rebuilt while the originals still have their names:
 *	   the shims' definitions, the views that use the tables, the sequences
 *	   the sibling must advance;
 *	2. drop the foreign keys that cross databases (recorded beforehand in
 *	   splitdb.reference with their full definition);
 *	3. move the originals, with their indexes and owned sequences, to schema
 *	   splitdb_archive (archive_relation: a name already taken there gets a
 *	   number, so tables of the same name in two schemas both fit);
 *	   the materialized views that read them go along (matview.c); each
 *	   archived table gets a trigger that refuses writes (ddlguard.c);
 *	4. create the shims under the old names and re-point the views to them,
 *	   and install the triggers that enforce the cross-service references
 *	   (reference.c) in the source and in the siblings, then the sibling's
 *	   change capture (capture.c), committed there before this transaction
 *	   commits;
 *	5. set the sibling's sequences past the source's values;
 *	6. give the sibling's copies the originals' owners and privileges
 *	   (access.c), committed there: until then only the job's own
 *	   connection reaches them;
 *	7. create the materialized views again over the shims.
 *
 * What steps 3 and 4 change is recorded for splitdb_rollback() (restore.c):
 * every relation moved, with its name before, in splitdb.cutover_relation,
 * and the statement that re-points each view in splitdb.cutover_view.
 *
 * If anything fails the transaction rolls back and the source is exactly as
 * before.  Steps 4 to 7 touch siblings: the reference triggers and the
 * capture there are installed again by a resumed cutover, advancing a
 * sequence further is harmless, and a resumed job takes the copies back
 * (splitdb_access_take_back) before it verifies them again.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/cutover.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "metadata/catalog.h"
#include "metadata/catalog_sql.h"
#include "compat.h"
#include "migrate/access.h"
#include "migrate/capture.h"
#include "migrate/cutover.h"
#include "migrate/ddl.h"
#include "migrate/ddlguard.h"
#include "migrate/lockwait.h"
#include "migrate/online.h"
#include "migrate/record.h"
#include "reference/reference.h"
#include "remote/remote.h"
#include "splitdb.h"

/* the text value of (row, col) of SPI_tuptable */
#define VALUE(row, col) SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col)

/*
 * What splitdb.reference records of a foreign key c (pg_constraint): its key
 * columns by name, in key order, its match type and its actions.
 */
#define KEY_NAMES_SQL(keys, rel) \
	"(SELECT array_agg(a.attname ORDER BY k.ord) FROM unnest(" keys ") WITH ORDINALITY k(attnum, ord)" \
	"  JOIN pg_attribute a ON a.attrelid = " rel " AND a.attnum = k.attnum)"
#define CHILD_COLUMNS_SQL KEY_NAMES_SQL("c.conkey", "c.conrelid")
#define PARENT_COLUMNS_SQL KEY_NAMES_SQL("c.confkey", "c.confrelid")
#define DELETE_SET_COLUMNS_SQL KEY_NAMES_SQL("c.confdelsetcols", "c.conrelid")
#define MATCH_TYPE_SQL \
	"CASE c.confmatchtype WHEN 'f' THEN 'FULL' WHEN 'p' THEN 'PARTIAL' ELSE 'SIMPLE' END"
#define ACTION_SQL(col) \
	"CASE " col " WHEN 'a' THEN 'NO ACTION' WHEN 'r' THEN 'RESTRICT' WHEN 'c' THEN 'CASCADE'" \
	" WHEN 'n' THEN 'SET NULL' ELSE 'SET DEFAULT' END"

/*
 * splitdb_cutover_record_references
 *		Record every foreign key with one end in the service and the other
 *		outside it, with its full definition, in splitdb.reference; and
 *		note the service on the references of earlier jobs whose other end
 *		it owns (those keys were dropped already).
 *
 * Runs again on a resumed job, replacing the rows.  The caller is connected
 * to SPI, with search_path = pg_catalog, pg_temp.
 */
void
splitdb_cutover_record_references(int64 job_id, const char *service)
{
	Oid			types[2] = {INT8OID, NAMEOID};
	Datum		values[2];

	values[0] = Int64GetDatum(job_id);
	values[1] = DirectFunctionCall1(namein, CStringGetDatum(service));

	splitdb_spi_exec("DELETE FROM splitdb.reference WHERE job_id = $1",
					 1, types, values, NULL, false, 0);

	/* references recorded by earlier jobs whose other end this service now owns */
	splitdb_spi_exec("WITH owner AS (SELECT r.relid FROM (" SPLITDB_OWNED_RELATION_SQL ") r"
					 "               WHERE r.service = $2)"
					 " UPDATE splitdb.reference r"
					 "    SET child_service = CASE WHEN r.child_relid IN (SELECT relid FROM owner)"
					 "                             THEN $2 ELSE r.child_service END,"
					 "        parent_service = CASE WHEN r.parent_relid IN (SELECT relid FROM owner)"
					 "                              THEN $2 ELSE r.parent_service END"
					 "  WHERE r.job_id <> $1 AND (r.child_relid IN (SELECT relid FROM owner)"
					 "                            OR r.parent_relid IN (SELECT relid FROM owner))",
					 2, types, values, NULL, false, 0);

	splitdb_spi_exec("WITH owner AS (SELECT r.relid, r.service FROM (" SPLITDB_OWNED_RELATION_SQL ") r)"
					 " INSERT INTO splitdb.reference (job_id, constraint_name, child_relid, child_table,"
					 "  child_service, child_columns, parent_relid, parent_table, parent_service,"
					 "  parent_columns, match_type, on_delete, on_update, delete_set_columns,"
					 "  is_deferrable, initially_deferred, definition, constraint_oid)"
					 " SELECT $1, c.conname, c.conrelid, c.conrelid::regclass::text, co.service,"
					 "  " CHILD_COLUMNS_SQL ","
					 "  c.confrelid, c.confrelid::regclass::text, po.service,"
					 "  " PARENT_COLUMNS_SQL ", " MATCH_TYPE_SQL ","
					 "  " ACTION_SQL("c.confdeltype") ", " ACTION_SQL("c.confupdtype") ","
					 "  " DELETE_SET_COLUMNS_SQL ","
					 "  c.condeferrable, c.condeferred, pg_get_constraintdef(c.oid), c.oid"
					 " FROM pg_constraint c"
					 " LEFT JOIN owner co ON co.relid = c.conrelid"
					 " LEFT JOIN owner po ON po.relid = c.confrelid"
					 " WHERE c.contype = 'f' AND c.conparentid = 0"
					 "   AND (co.service = $2 OR po.service = $2)"
					 "   AND co.service IS DISTINCT FROM po.service"
					 " ORDER BY c.conrelid::regclass::text, c.conname",
					 2, types, values, NULL, false, 0);
}

/*
 * splitdb_cutover_refresh_references
 *		Read the job's references again from their foreign keys, which the
 *		caller holds locked: names of the constraint, the tables and the key
 *		columns, the actions, the deferrability and the definition.
 *
 * The job recorded them when it prepared.  A relation outside the service
 * is not the job's to guard, and a foreign key follows its columns by
 * number: its owner may have renamed a key column since (and given another
 * column the old name), or renamed or moved the table.  (Renaming or
 * altering the constraint changes the triggers on the job's table, which
 * the DDL guard refuses; the row is read whole all the same.)  The
 * references keep their numbers.  The caller is connected to SPI, with
 * search_path = pg_catalog, pg_temp.
 */
void
splitdb_cutover_refresh_references(int64 job_id)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(job_id)};

	splitdb_spi_exec("UPDATE splitdb.reference r SET constraint_name = c.conname,"
					 "  child_table = c.conrelid::regclass::text, child_columns = " CHILD_COLUMNS_SQL ","
					 "  parent_table = c.confrelid::regclass::text, parent_columns = " PARENT_COLUMNS_SQL ","
					 "  match_type = " MATCH_TYPE_SQL ", on_delete = " ACTION_SQL("c.confdeltype") ","
					 "  on_update = " ACTION_SQL("c.confupdtype") ","
					 "  delete_set_columns = " DELETE_SET_COLUMNS_SQL ","
					 "  is_deferrable = c.condeferrable, initially_deferred = c.condeferred,"
					 "  definition = pg_get_constraintdef(c.oid)"
					 " FROM pg_constraint c"
					 " WHERE r.job_id = $1 AND c.oid = r.constraint_oid AND c.contype = 'f'"
					 "   AND c.conrelid = r.child_relid AND c.confrelid = r.parent_relid",
					 1, types, values, NULL, false, 0);
}

/* a view to re-point, read before the move */
typedef struct ViewDef
{
	char	   *name;
	char	   *sql;
} ViewDef;

/*
 * views_to_repoint
 *		CREATE OR REPLACE VIEW statements for the views that read the job's
 *		tables directly, with the definitions as they read now (names
 *		qualified, so after the move they resolve to the shims).
 */
static List *
views_to_repoint(int64 job_id)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(job_id)};
	List	   *result = NIL;

	splitdb_spi_exec("SELECT DISTINCT v.oid::regclass::text,"
					 "  format('CREATE OR REPLACE VIEW %s%s AS %s', v.oid::regclass,"
					 "    CASE WHEN v.reloptions IS NOT NULL"
					 "         THEN ' WITH (' || array_to_string(v.reloptions, ', ') || ')' ELSE '' END,"
					 "    rtrim(pg_get_viewdef(v.oid), ';'))"
					 " FROM splitdb.job_table t"
					 " JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass AND d.refobjid = t.relid"
					 "  AND d.classid = 'pg_rewrite'::regclass"
					 " JOIN pg_rewrite r ON r.oid = d.objid AND r.rulename = '_RETURN'"
					 " JOIN pg_class v ON v.oid = r.ev_class AND v.relkind = 'v'"
					 " WHERE t.job_id = $1 AND v.oid <> t.relid"
					 "   AND v.oid NOT IN (SELECT relid FROM splitdb.job_table WHERE job_id = $1)"
					 " ORDER BY 1",
					 1, types, values, NULL, true, 0);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		ViewDef    *v = palloc(sizeof(ViewDef));

		v->name = VALUE(i, 1);
		v->sql = VALUE(i, 2);
		result = lappend(result, v);
	}
	return result;
}

/* a sequence the sibling must advance: its name there, the source's value */
typedef struct SeqValue
{
	char	   *name;			/* qualified and quoted (regclass::text) */
	char	   *value;			/* the source's last_value */
	char	   *called;			/* and is_called, "t" or "f" */
	Oid			oid;
} SeqValue;

/*
 * sequences_to_advance
 *		The job's sequences (serial, identity, used by defaults), by their
 *		names before the move.
 */
static List *
sequences_to_advance(int64 job_id)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(job_id)};
	List	   *result = NIL;

	splitdb_spi_exec("WITH owned AS (SELECT relid FROM splitdb.job_table WHERE job_id = $1)"
					 " SELECT DISTINCT s.oid::regclass::text, s.oid"
					 " FROM pg_class s JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid"
					 "  AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')"
					 " WHERE s.relkind = 'S' AND d.refobjid IN (SELECT relid FROM owned)"
					 " UNION"
					 " SELECT s.oid::regclass::text, s.oid"
					 " FROM pg_attrdef ad JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid"
					 " JOIN pg_class s ON s.oid = d.refobjid AND s.relkind = 'S'"
					 " WHERE ad.adrelid IN (SELECT relid FROM owned)"
					 " ORDER BY 1",
					 1, types, values, NULL, true, 0);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		SeqValue   *s = palloc(sizeof(SeqValue));
		bool		isnull;

		s->name = VALUE(i, 1);
		s->oid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
		s->value = NULL;
		result = lappend(result, s);
	}
	return result;
}

/* run one utility statement through SPI */
static void
run_utility(const char *sql)
{
	splitdb_spi_exec(sql, 0, NULL, NULL, NULL, false, 0);
}

/*
 * name_taken
 *		Whether a relation (or, for a table, a type) of this name exists in
 *		schema nspid.
 */
static bool
name_taken(const char *name, Oid nspid, bool with_type)
{
	if (OidIsValid(get_relname_relid(name, nspid)))
		return true;
	return with_type &&
		OidIsValid(GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid,
								   CStringGetDatum(name), ObjectIdGetDatum(nspid)));
}

/*
 * free_name
 *		name, or name_1, name_2, ... (clipped to fit NAMEDATALEN) : the
 *		first that is taken neither in the archive nor in schema nspid.
 */
static char *
free_name(const char *name, Oid nspid, Oid archive, bool with_type)
{
	for (int n = 1;; n++)
	{
		char		suffix[16];
		int			len;
		char	   *candidate;

		snprintf(suffix, sizeof(suffix), "_%d", n);
		len = pg_mbcliplen(name, strlen(name), NAMEDATALEN - 1 - strlen(suffix));
		candidate = psprintf("%.*s%s", len, name, suffix);
		if (!name_taken(candidate, archive, with_type) &&
			!name_taken(candidate, nspid, with_type))
			return candidate;
	}
}

/* the keyword of ALTER for a relation kind */
static const char *
alter_keyword(char relkind)
{
	switch (relkind)
	{
		case 'S':
			return "SEQUENCE";
		case 'i':
		case 'I':
			return "INDEX";
		case 'm':
			return "MATERIALIZED VIEW";
		default:
			return "TABLE";
	}
}

/*
 * archive_relation
 *		Move one original (a table or a materialized view) to the archive
 *		schema, with the indexes and sequences that ALTER ... SET SCHEMA
 *		moves along.  Each of them whose name the archive already holds
 *		(the same table name in two schemas, a second job's art_type_pkey)
 *		is first renamed where it is, to the first free name_N.  splitdb
 *		finds the originals by OID, and job_table keeps their names from
 *		before the cutover; splitdb.cutover_relation keeps every moved
 *		relation's schema and name from before, for splitdb_rollback().
 */
static void
archive_relation(int64 job_id, Oid relid)
{
	Oid			archive = get_namespace_oid(SPLITDB_ARCHIVE_SCHEMA, false);
	Oid			types[2] = {OIDOID, INT8OID};
	Datum		values[2] = {ObjectIdGetDatum(relid), Int64GetDatum(job_id)};
	List	   *renames = NIL;
	ListCell   *lc;

	/* what moves, with its names before, for splitdb_rollback() */
	splitdb_spi_exec("INSERT INTO splitdb.cutover_relation"
					 " (job_id, relid, relkind, schema_name, rel_name, populated)"
					 " SELECT $2, c.oid, c.relkind, n.nspname, c.relname, c.relispopulated"
					 "  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
					 " WHERE c.oid = $1"
					 "    OR c.oid IN (SELECT i.indexrelid FROM pg_catalog.pg_index i WHERE i.indrelid = $1)"
					 "    OR c.oid IN (SELECT d.objid FROM pg_catalog.pg_depend d"
					 "                  WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass"
					 "                    AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass"
					 "                    AND d.refobjid = $1 AND d.deptype IN ('a', 'i')"
					 "                    AND d.objid IN (SELECT s.oid FROM pg_catalog.pg_class s"
					 "                                     WHERE s.relkind = 'S'))"
					 " ON CONFLICT DO NOTHING",
					 2, types, values, NULL, false, 0);

	splitdb_spi_exec("SELECT c.oid, c.relname::text, c.relnamespace, c.relkind::text"
					 "  FROM pg_catalog.pg_class c WHERE c.oid = $1"
					 " UNION ALL"
					 " SELECT c.oid, c.relname::text, c.relnamespace, c.relkind::text"
					 "  FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid"
					 " WHERE i.indrelid = $1"
					 " UNION ALL"
					 " SELECT c.oid, c.relname::text, c.relnamespace, c.relkind::text"
					 "  FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class c ON c.oid = d.objid"
					 " WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass"
					 "   AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass"
					 "   AND d.refobjid = $1 AND d.deptype IN ('a', 'i') AND c.relkind = 'S'",
					 1, types, values, NULL, true, 0);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Oid			oid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
														 SPI_tuptable->tupdesc, 1, &isnull));
		char	   *name = VALUE(i, 2);
		Oid			nspid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
														   SPI_tuptable->tupdesc, 3, &isnull));
		char		kind = VALUE(i, 4)[0];
		/* the relation itself: its row type takes the name too */
		bool		has_type = (oid == relid);

		if (!name_taken(name, archive, has_type))
			continue;
		renames = lappend(renames,
						  psprintf("ALTER %s %s RENAME TO %s", alter_keyword(kind),
								   quote_qualified_identifier(get_namespace_name(nspid), name),
								   quote_identifier(free_name(name, nspid, archive, has_type))));
	}
	foreach(lc, renames)
		run_utility((char *) lfirst(lc));
	run_utility(psprintf("ALTER %s %s SET SCHEMA " SPLITDB_ARCHIVE_SCHEMA,
						 alter_keyword(get_rel_relkind(relid)),
						 quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
													get_rel_name(relid))));
}

/* what splitdb_cutover_install_tries() runs in a subtransaction */
typedef struct InstallArgs
{
	const char *service;		/* the service's references, or NULL: ids */
	List	   *ids;
	PGconn	   *conn;
	int			lock_timeout;
} InstallArgs;

static void
install_work(void *arg)
{
	InstallArgs *a = (InstallArgs *) arg;

	splitdb_reference_install(a->service, a->ids, a->conn, a->lock_timeout);
}

/*
 * splitdb_cutover_install_tries
 *		splitdb_reference_install() of the references of service (of ids
 *		instead, when ids is not NIL), each try waiting at most
 *		lock_timeout ms for a lock in another database, up to attempts
 *		tries with the cutover's backoff.  After a failed try, conn's open
 *		remote transaction (when conn is given) is rolled back and a
 *		message at elevel says why.  Returns NULL once the ends are in,
 *		else the last try's error (55P03), which the caller raises with
 *		what it means there; nothing of a failed try stays installed.
 *
 * Creating an end in another database waits there for every transaction
 * that wrote the table it goes on, and the application's statements on
 * that table queue behind it; such a transaction may itself wait for a
 * table that the caller holds here, a circle no deadlock detector sees.
 */
ErrorData *
splitdb_cutover_install_tries(const char *service, List *ids, PGconn *conn,
							  int lock_timeout, int attempts, int elevel)
{
	InstallArgs a = {ids != NIL ? NULL : service, ids, conn, lock_timeout};

	for (int attempt = 1;; attempt++)
	{
		ErrorData  *why = splitdb_subxact_catch(install_work, &a, ERRCODE_LOCK_NOT_AVAILABLE);

		if (why == NULL || attempt >= attempts)
			return why;
		if (conn != NULL)
			splitdb_remote_rollback_open(conn, service);
		ereport(elevel,
				(errmsg("attempt %d to install the cross-service references of service \"%s\" failed, retrying: %s",
						attempt, service, why->message)));
		FreeErrorData(why);
		splitdb_online_backoff(attempt);
	}
}

/*
 * install_references
 *		Install the ends of the cross-service references of service, in the
 *		source and in every sibling that holds one.
 *
 * An online attempt (lock_timeout 0 here) runs under a lock_timeout of its
 * own, which bounds the siblings' waits too, and is tried again whole
 * (catchup.c).  An offline cutover waits for its locks in the source as
 * long as it takes, as it always has; but in another database each try
 * waits at most lock_timeout ms (splitdb_cutover_install_tries()), since
 * a transaction there may wait for the tables the job holds since its
 * copy, and after the last the job fails with 55P03, which lets go of its
 * tables: the other transaction goes on, and splitdb_migrate() resumes the
 * job.
 */
static void
install_references(const char *service, PGconn *conn, int lock_timeout, int attempts)
{
	ErrorData  *why;

	if (lock_timeout <= 0)
	{
		splitdb_reference_install(service, NIL, conn, LockTimeout);
		return;
	}
	why = splitdb_cutover_install_tries(service, NIL, conn, lock_timeout, attempts, LOG);
	if (why != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("could not install the cross-service references of service \"%s\" in %d attempt%s: %s",
						service, attempts, attempts == 1 ? "" : "s", why->message),
				 errdetail("Each attempt waited at most %d ms (splitdb.cutover_lock_timeout) for a table of another database that holds an end; a transaction there that holds it may be waiting for this job's tables.",
						   lock_timeout),
				 errhint("Find the sessions that hold locks on that table in its database (pg_locks, pg_stat_activity); splitdb_migrate('%s') resumes the job, which copies the tables again if they were written while it was failed.",
						 service)));
}

/* both ends of the job's own references (splitdb.reference), as x(relid) */
#define JOB_REFERENCE_RELIDS_SQL \
	" SELECT r.child_relid AS relid FROM splitdb.reference r WHERE r.job_id = $1" \
	" UNION ALL SELECT r.parent_relid FROM splitdb.reference r WHERE r.job_id = $1"

/* the OIDs that sql, of the job's id as $1, returns in its first column */
static List *
relids_of_job(const char *sql, int64 job_id)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(job_id)};
	List	   *relids = NIL;

	splitdb_spi_exec(sql, 1, types, values, NULL, true, 0);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		relids = lappend_oid(relids, DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
																	SPI_tuptable->tupdesc, 1, &isnull)));
	}
	return relids;
}

/*
 * splitdb_cutover_other_ends
 *		The relations of this database outside the job's tables that the
 *		cutover changes for cross-service references, and so locks
 *		ACCESS EXCLUSIVE: the other table of each foreign key it turns into
 *		a reference (the constraint is dropped), and the relation, table or
 *		shim, with an end of an earlier job's reference whose other end is
 *		one of the job's tables (its triggers are installed again).  An
 *		online attempt locks them before the job's tables on every other
 *		try (catchup.c says why).  In a transaction, connected to SPI.
 */
List *
splitdb_cutover_other_ends(int64 job_id)
{
	return relids_of_job("SELECT DISTINCT x.relid FROM (" JOB_REFERENCE_RELIDS_SQL
						 " UNION ALL SELECT e.relid::oid FROM splitdb.reference_end e"
						 "   JOIN splitdb.reference_end o ON o.reference_id = e.reference_id AND o.side <> e.side"
						 "   JOIN splitdb.job_table t ON t.job_id = $1 AND t.relid = o.relid::oid"
						 "  WHERE e.here = 'source' AND o.here = 'source') x"
						 " WHERE x.relid NOT IN (SELECT t.relid FROM splitdb.job_table t WHERE t.job_id = $1)"
						 "   AND EXISTS (SELECT FROM pg_class c WHERE c.oid = x.relid)",
						 job_id);
}

/*
 * referencing_others
 *		The relations outside the job at the other ends of the foreign keys
 *		its cutover drops (the job's rows of splitdb.reference), in OID
 *		order.  In a transaction, connected to SPI.
 */
static List *
referencing_others(int64 job_id)
{
	return relids_of_job("SELECT DISTINCT x.relid FROM (" JOB_REFERENCE_RELIDS_SQL ") x"
						 " WHERE x.relid NOT IN (SELECT t.relid FROM splitdb.job_table t WHERE t.job_id = $1)"
						 "   AND EXISTS (SELECT FROM pg_class c WHERE c.oid = x.relid)"
						 " ORDER BY x.relid",
						 job_id);
}

/*
 * splitdb_cutover_run
 *		Archive the originals, leave shims in their place, re-point views,
 *		drop the cross-service foreign keys and advance the sibling's
 *		sequences.
 *
 * Runs in the caller's transaction (which is connected to SPI); the caller
 * commits it together with the job's state.  offline_lock_timeout and
 * offline_attempts bound an offline cutover's waits in other databases
 * (install_references()); an online attempt passes 0, its own lock_timeout
 * bounding them.
 */
void
splitdb_cutover_run(int64 job_id, const char *service, const char *server,
					PGconn *conn, int offline_lock_timeout, int offline_attempts)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(job_id)};
	List	   *shims;
	List	   *views;
	List	   *matviews;
	List	   *seqs;
	List	   *moves = NIL;
	List	   *drops = NIL;
	List	   *access;
	ListCell   *lc;

	/* the tables, locked against every other session */
	splitdb_spi_exec("SELECT relid FROM splitdb.job_table WHERE job_id = $1 ORDER BY relid",
					 1, types, values, NULL, true, 0);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		LockRelationOid(DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
													   SPI_tuptable->tupdesc, 1, &isnull)),
						AccessExclusiveLock);
	}

	/*
	 * The relations at the other ends of its references, locked as the
	 * drops of their foreign keys below would lock them, and the references
	 * read again from the foreign keys under those locks: installed on what
	 * the keys are now, not on the names they had when the job prepared.
	 */
	foreach(lc, referencing_others(job_id))
	{
		LockRelationOid(lfirst_oid(lc), AccessExclusiveLock);
		/* ALTER SCHEMA ... RENAME locks no table: trigguard.c waits for this */
		LockDatabaseObject(NamespaceRelationId, get_rel_namespace(lfirst_oid(lc)), 0,
						   AccessShareLock);
	}
	splitdb_cutover_refresh_references(job_id);

	/* 1. what must be rebuilt, read while the names are the originals' */
	shims = splitdb_shim_ddl(job_id, service, server);
	views = views_to_repoint(job_id);
	matviews = splitdb_matview_ddl(job_id);
	seqs = sequences_to_advance(job_id);

	splitdb_spi_exec("SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', r.child_relid::regclass,"
					 "              r.constraint_name)"
					 " FROM splitdb.reference r WHERE r.job_id = $1"
					 "  AND EXISTS (SELECT FROM pg_constraint c WHERE c.conrelid = r.child_relid"
					 "               AND c.conname = r.constraint_name AND c.contype = 'f')"
					 " ORDER BY 1",
					 1, types, values, NULL, true, 0);
	for (uint64 i = 0; i < SPI_processed; i++)
		drops = lappend(drops, VALUE(i, 1));

	/* partitions first: a partitioned table moves without its partitions */
	splitdb_spi_exec("SELECT c.oid FROM splitdb.job_table t JOIN pg_class c ON c.oid = t.relid"
					 " WHERE t.job_id = $1 ORDER BY c.relispartition DESC, c.oid::regclass::text",
					 1, types, values, NULL, true, 0);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		moves = lappend_oid(moves,
							DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
														   SPI_tuptable->tupdesc, 1, &isnull)));
	}

	/*
	 * the owners and privileges the sibling's copies get, by the names the
	 * originals have now, for the roles the sibling's cluster has
	 */
	access = splitdb_ddl_build(SPLITDB_DDL_CUTOVER, service, moves,
							   splitdb_access_sibling_roles(conn, service));

	/*
	 * source values of the sequences, before anything moves: last_value and
	 * is_called as they stand (pg_sequence_last_value() is NULL for a
	 * sequence set with setval(..., false), which hands out last_value next)
	 */
	foreach(lc, seqs)
	{
		SeqValue   *s = (SeqValue *) lfirst(lc);

		splitdb_spi_exec(psprintf("SELECT s.last_value::pg_catalog.text, s.is_called::pg_catalog.text"
								  "  FROM %s s", s->name),
						 0, NULL, NULL, NULL, true, 0);
		s->value = VALUE(0, 1);
		s->called = VALUE(0, 2);
	}

	/* 2. the foreign keys that now cross databases */
	foreach(lc, drops)
		run_utility((char *) lfirst(lc));
	splitdb_spi_exec("UPDATE splitdb.reference SET dropped_at = pg_catalog.clock_timestamp()"
					 " WHERE job_id = $1",
					 1, types, values, NULL, false, 0);

	/* 3. the originals go to the archive */
	run_utility("CREATE SCHEMA IF NOT EXISTS " SPLITDB_ARCHIVE_SCHEMA);
	foreach(lc, moves)
		archive_relation(job_id, lfirst_oid(lc));
	foreach(lc, matviews)
		archive_relation(job_id, ((SplitdbMatview *) lfirst(lc))->relid);
	/* from now on the originals refuse writes (ddlguard.c) */
	splitdb_archive_guard_install(job_id, service);

	/* 4. shims under the old names, the views re-pointed to them */
	foreach(lc, shims)
		run_utility((char *) lfirst(lc));
	/* their defaults, read from the archived originals */
	foreach(lc, splitdb_shim_defaults(job_id))
		run_utility((char *) lfirst(lc));
	foreach(lc, views)
	{
		ViewDef    *v = (ViewDef *) lfirst(lc);
		Oid			vt[3] = {INT8OID, TEXTOID, TEXTOID};
		Datum		vv[3] = {Int64GetDatum(job_id), CStringGetTextDatum(v->name),
		CStringGetTextDatum(v->sql)};

		/* run again by splitdb_rollback(), it points the view at the originals */
		splitdb_spi_exec("INSERT INTO splitdb.cutover_view (job_id, view_name, definition)"
						 " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
						 3, vt, vv, NULL, false, 0);
		run_utility(v->sql);
	}

	/* the cross-service references, enforced on both sides from now on */
	install_references(service, conn, offline_lock_timeout, offline_attempts);

	/* the sibling logs every write from now on, for splitdb_rollback() */
	splitdb_capture_install(job_id, service, conn);

	/*
	 * 5. the sibling's sequences past the source's values: set to the
	 * source's state where the value the source would hand out next is
	 * further on than the sibling's
	 */
	foreach(lc, seqs)
	{
		SeqValue   *s = (SeqValue *) lfirst(lc);
		const char *params[3] = {s->name, s->value, s->called};

		splitdb_remote_command(conn,
							   psprintf("SELECT pg_catalog.setval(q.seqrelid, $2::bigint, $3::boolean)"
										"  FROM pg_catalog.pg_sequence q, %s s"
										" WHERE q.seqrelid = $1::pg_catalog.regclass"
										"   AND CASE WHEN q.seqincrement > 0"
										"            THEN " SPLITDB_SEQ_NEXT_SQL " < " SPLITDB_SEQ_NEXT_PARAM_SQL
										"            ELSE " SPLITDB_SEQ_NEXT_SQL " > " SPLITDB_SEQ_NEXT_PARAM_SQL " END",
										s->name),
							   3, params, service);
	}

	/*
	 * 6. the copies get the originals' owners and privileges, committed in
	 * the sibling: from now on the applications' roles reach them, as they
	 * will the shims.  Last of what touches the sibling on the job's
	 * connection, and before anything reads it through postgres_fdw, whose
	 * remote transaction would hold a lock that ALTER ... OWNER waits for
	 * until this transaction commits.
	 */
	splitdb_access_give(conn, access, service);

	/*
	 * 7. the materialized views created anew over the shims, populated
	 * through them
	 */
	foreach(lc, matviews)
	{
		ListCell   *stmt;

		foreach(stmt, ((SplitdbMatview *) lfirst(lc))->statements)
			run_utility((char *) lfirst(stmt));
	}

	/*
	 * What the cutover made, in the registry: here at its end, when the
	 * archive names are chosen; the same transaction, so the rows commit
	 * with the objects.
	 */
	{
		List	   *relids = NIL;

		foreach(lc, matviews)
			relids = lappend_oid(relids, ((SplitdbMatview *) lfirst(lc))->relid);
		splitdb_record_cutover(job_id, service, conn, relids);
	}
}
