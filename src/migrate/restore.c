/*-------------------------------------------------------------------------
 *
 * restore.c
 *	  The source side of a rollback: what the cutover did, undone.
 *
 * Runs in the rollback's last source transaction, after the sibling has
 * committed its refusal of writes and once the last changes were replayed
 * into the archived originals (rollback.c):
 *
 *	1. the materialized views the cutover created over the shims go, and
 *	   so do the reference ends of the service in this database;
 *	2. the shims step aside (renamed), the originals go back from the
 *	   archive to their schemas, and every relation the cutover renamed to
 *	   name_N gets its name back (splitdb.cutover_relation); the trigger
 *	   that made the archived originals refuse writes (ddlguard.c) goes;
 *	3. the views the cutover re-pointed run their recorded statement again,
 *	   which now resolves to the originals (splitdb.cutover_view), and so do
 *	   the views made over the shims since, read before 2.; the archived
 *	   materialized views come back and are refreshed;
 *	4. the shims are dropped;
 *	5. the foreign keys that crossed databases are added again from their
 *	   definition in splitdb.reference, NOT VALID, then validated; one that
 *	   fails validation (orphans written while the service lived apart)
 *	   stays NOT VALID, listed in splitdb.rollback.not_valid, which
 *	   splitdb_rollback() turns into a WARNING; a partitioned table, which
 *	   takes no NOT VALID key, gets its key whole, or NOT VALID on each leaf
 *	   partition when validation fails;
 *	6. the sequences are set past every value either database used;
 *	7. the source objects the registry says go on rollback are dropped:
 *	   those it names by a relation's or a trigger's name are resolved to
 *	   OIDs before step 1, since the originals take the shims' names back;
 *	   the registry's rows of what the rollback gave back (the archived
 *	   originals and materialized views, recorded to go on finalize) are
 *	   marked dropped too: they name objects of the archive that are not
 *	   there any more, and the job will never be finalized.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/restore.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"

#include "metadata/artifact.h"
#include "metadata/catalog.h"
#include "metadata/catalog_sql.h"
#include "migrate/lockwait.h"
#include "migrate/rollback.h"
#include "remote/remote.h"
#include "splitdb.h"

/* run a statement with the job id as $1::bigint; its rows */
static List *
job_rows(const char *sql, int64 job_id)
{
	const char *params[1] = {psprintf(INT64_FORMAT, job_id)};

	splitdb_catalog_exec_text(sql, 1, params, false);
	return splitdb_catalog_result_rows();
}

/* run each statement of a list of rows' first column */
static void
run_each(List *rows)
{
	ListCell   *lc;

	foreach(lc, rows)
		splitdb_spi_exec(((char **) lfirst(lc))[0], 0, NULL, NULL, NULL, false, 0);
}

/*
 * splitdb_restore_lock
 *		Lock, in the current transaction, what the restore changes: the
 *		shims, the archived originals, the re-pointed views (ACCESS
 *		EXCLUSIVE) and the tables at the other end of the crossing keys
 *		(SHARE ROW EXCLUSIVE, as ADD FOREIGN KEY takes).  Under the
 *		caller's lock_timeout.
 */
void
splitdb_restore_lock(int64 job_id, const char *service)
{
	const char *params[2] = {psprintf(INT64_FORMAT, job_id), service};
	List	   *rows;
	ListCell   *lc;

	/* LOCK TABLE takes neither foreign tables nor materialized views */
	splitdb_catalog_exec_text("SELECT c.oid::text, 'x' FROM splitdb.job_table t"
							  "  JOIN pg_class c ON c.oid = to_regclass(t.table_name)"
							  " WHERE t.job_id = $1::bigint AND c.relkind = 'f'"
							  " UNION"
							  " SELECT c.oid::text, 'x' FROM pg_class c"
							  " WHERE c.oid IN (SELECT relid FROM splitdb.cutover_relation"
							  "                  WHERE job_id = $1::bigint AND relkind IN ('r', 'p', 'm'))"
							  "    OR c.oid IN (SELECT to_regclass(view_name) FROM splitdb.cutover_view"
							  "                  WHERE job_id = $1::bigint)"
							  " UNION"
							  " SELECT c.oid::text, 's' FROM pg_class c"
							  " WHERE c.oid IN (SELECT r.child_relid FROM splitdb.reference r"
							  "                  WHERE r.job_id = $1::bigint AND r.child_service IS DISTINCT FROM $2"
							  "                 UNION SELECT r.parent_relid FROM splitdb.reference r"
							  "                  WHERE r.job_id = $1::bigint AND r.parent_service IS DISTINCT FROM $2)"
							  " ORDER BY 1",
							  2, params, true);
	rows = splitdb_catalog_result_rows();
	foreach(lc, rows)
	{
		char	  **row = (char **) lfirst(lc);

		LockRelationOid((Oid) strtoul(row[0], NULL, 10),
						row[1][0] == 'x' ? AccessExclusiveLock : ShareRowExclusiveLock);
	}
}

/* try_statement()'s work: one statement through SPI */
static void
run_statement(void *arg)
{
	splitdb_spi_exec((const char *) arg, 0, NULL, NULL, NULL, false, 0);
}

/*
 * try_statement
 *		Run sql in a subtransaction.  Returns NULL when it succeeded; the
 *		error, caught, when it raised a foreign key violation; any other
 *		error is raised again.  Connected to SPI.
 */
static ErrorData *
try_statement(const char *sql)
{
	return splitdb_subxact_catch(run_statement, (void *) sql, ERRCODE_FOREIGN_KEY_VIOLATION);
}

/*
 * restored_not_valid
 *		Say that a restored key is not valid: in splitdb.rollback.not_valid,
 *		for splitdb_rollback() to warn, and in the worker's log.  where
 *		names the key and its table; table is the table to validate on.
 */
static void
restored_not_valid(int64 job_id, const char *service, const char *where,
				   const char *table, const ErrorData *edata)
{
	const char *params[2] = {psprintf(INT64_FORMAT, job_id), where};

	splitdb_catalog_exec_text("UPDATE splitdb.rollback SET not_valid = not_valid || $2"
							  " WHERE job_id = $1::bigint",
							  2, params, false);
	ereport(LOG,
			(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
			 errmsg("foreign key %s is restored NOT VALID", where),
			 errdetail("%s", edata->message),
			 errhint("Rows written while service \"%s\" lived apart refer to missing keys; "
					 "SELECT * FROM splitdb_orphans('%s') lists such rows.  Fix them, then run ALTER TABLE %s VALIDATE CONSTRAINT.",
					 service, service, table)));
}

/*
 * add_foreign_keys
 *		The job's crossing foreign keys, added again NOT VALID and then
 *		validated, each validation in a subtransaction: one that finds
 *		orphans leaves its key NOT VALID and says so.
 *
 *		A partitioned table takes no NOT VALID foreign key (PostgreSQL 15):
 *		its key is added whole, which validates it, in a subtransaction;
 *		when that finds orphans, the key is added NOT VALID to each of its
 *		leaf partitions instead, so that every partition checks new rows,
 *		and that is said (the key can go back on the partitioned table once
 *		the orphans are fixed).
 *
 *		A key whose referencing or referenced table a superuser dropped
 *		while the service lived apart is not added: PostgreSQL would have
 *		dropped it along with the table (splitdb_guard_dropped_ends).
 */
static void
add_foreign_keys(int64 job_id, const char *service)
{
	List	   *rows;
	ListCell   *lc;

	rows = job_rows("SELECT format('ALTER TABLE %s ADD CONSTRAINT %I %s NOT VALID', r.child_relid::regclass,"
					"              r.constraint_name, r.definition),"
					"       format('ALTER TABLE %s VALIDATE CONSTRAINT %I', r.child_relid::regclass,"
					"              r.constraint_name),"
					"       r.constraint_name::text, r.child_relid::regclass::text,"
					"       c.relkind::text,"
					"       format('ALTER TABLE %s ADD CONSTRAINT %I %s', r.child_relid::regclass,"
					"              r.constraint_name, r.definition)"
					"  FROM splitdb.reference r JOIN pg_class c ON c.oid = r.child_relid"
					" WHERE r.job_id = $1::bigint AND r.dropped_at IS NOT NULL"
					"   AND EXISTS (SELECT FROM pg_class pc WHERE pc.oid = r.parent_relid)"
					" ORDER BY r.child_relid::regclass::text, r.constraint_name",
					job_id);
	foreach(lc, rows)
	{
		char	  **row = (char **) lfirst(lc);
		ErrorData  *edata;

		if (strcmp(row[4], "p") != 0)
		{
			splitdb_spi_exec(row[0], 0, NULL, NULL, NULL, false, 0);
			edata = try_statement(row[1]);
			if (edata != NULL)
				restored_not_valid(job_id, service,
								   psprintf("\"%s\" on %s", row[2], row[3]), row[3], edata);
			continue;
		}

		edata = try_statement(row[5]);
		if (edata != NULL)
		{
			const char *params[3] = {row[3], row[2], NULL};
			List	   *leaves;
			ListCell   *lp;

			splitdb_catalog_exec_text("SELECT format('ALTER TABLE %s ADD CONSTRAINT %I %s NOT VALID',"
									  "              t.relid::regclass, $2::text, r.definition)"
									  "  FROM pg_partition_tree($1::regclass) t"
									  "  JOIN pg_class c ON c.oid = t.relid AND c.relkind = 'r',"
									  "       splitdb.reference r"
									  " WHERE r.child_relid = $1::regclass AND r.constraint_name = $2::name"
									  "   AND r.dropped_at IS NOT NULL"
									  " ORDER BY t.relid::regclass::text",
									  2, params, false);
			leaves = splitdb_catalog_result_rows();
			foreach(lp, leaves)
				splitdb_spi_exec(((char **) lfirst(lp))[0], 0, NULL, NULL, NULL, false, 0);
			restored_not_valid(job_id, service,
							   psprintf("\"%s\" on each partition of %s (a partitioned table takes no NOT VALID key)",
										row[2], row[3]),
							   psprintf("on each partition of %s", row[3]), edata);
		}
	}
	job_rows("UPDATE splitdb.reference SET dropped_at = NULL WHERE job_id = $1::bigint", job_id);
}

/*
 * advance_sequences
 *		The sequences of the service's tables (owned, identity, or used by
 *		a default), set past the values either database handed out.
 */
static void
advance_sequences(int64 job_id, const char *service, PGconn *conn)
{
	List	   *rows;
	ListCell   *lc;

	rows = job_rows("WITH owned AS (SELECT relid FROM splitdb.job_table WHERE job_id = $1::bigint)"
					" SELECT DISTINCT s.oid::regclass::text"
					" FROM pg_class s JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid"
					"  AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')"
					" WHERE s.relkind = 'S' AND d.refobjid IN (SELECT relid FROM owned)"
					" UNION"
					" SELECT s.oid::regclass::text"
					" FROM pg_attrdef ad JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid"
					" JOIN pg_class s ON s.oid = d.refobjid AND s.relkind = 'S'"
					" WHERE ad.adrelid IN (SELECT relid FROM owned)"
					" ORDER BY 1",
					job_id);
	foreach(lc, rows)
	{
		char	   *seq = ((char **) lfirst(lc))[0];
		const char *params[3];
		PGresult   *res;

		params[0] = seq;
		if (splitdb_remote_scalar(conn, "SELECT pg_catalog.to_regclass($1)::text",
								  1, params, service) == NULL)
			continue;			/* not there */
		/*
		 * last_value and is_called as they stand: pg_sequence_last_value()
		 * is NULL for one set with setval(..., false), which hands out
		 * last_value next
		 */
		res = splitdb_remote_exec(conn,
								  psprintf("SELECT s.last_value::pg_catalog.text, s.is_called::pg_catalog.text"
										   "  FROM %s s", seq),
								  0, NULL, service);
		params[1] = pstrdup(splitdb_remote_value(res, 0, 0));
		params[2] = pstrdup(splitdb_remote_value(res, 0, 1));
		splitdb_remote_clear(res);
		splitdb_catalog_exec_text(psprintf("SELECT pg_catalog.setval(q.seqrelid, $2::bigint, $3::boolean)"
										   "  FROM pg_catalog.pg_sequence q, %s s"
										   " WHERE q.seqrelid = $1::pg_catalog.regclass"
										   "   AND CASE WHEN q.seqincrement > 0"
										   "            THEN " SPLITDB_SEQ_NEXT_SQL " < " SPLITDB_SEQ_NEXT_PARAM_SQL
										   "            ELSE " SPLITDB_SEQ_NEXT_SQL " > " SPLITDB_SEQ_NEXT_PARAM_SQL " END",
										   seq),
								  3, params, false);
	}
}

/*
 * The source objects of the job that the registry drops on rollback,
 * resolved to OIDs before the restore: the restore puts the originals back
 * under the names the shims and the materialized views over them had, so a
 * name recorded for a shim would afterwards name an original.
 */
typedef struct SourceArtifact
{
	SplitdbArtifact *a;
	Oid			oid;			/* a relation's or a trigger's; InvalidOid: none */
	bool		by_oid;			/* a relation or a trigger: dropped by OID */
} SourceArtifact;

static List *
resolve_source_artifacts(int64 job_id)
{
	List	   *list = splitdb_artifact_list(job_id, SPLITDB_ON_ROLLBACK);
	List	   *result = NIL;
	ListCell   *lc;

	foreach(lc, list)
	{
		SplitdbArtifact *a = (SplitdbArtifact *) lfirst(lc);
		SourceArtifact *sa;
		const char *params[3];
		char	   *oid;

		if (a->service != NULL)
			continue;
		params[0] = a->kind;
		params[1] = a->identity;
		params[2] = a->parent;
		splitdb_catalog_exec_text("SELECT CASE"
								  " WHEN $1 IN ('table', 'foreign table', 'view', 'materialized view',"
								  "             'sequence', 'index', 'capture log')"
								  "  THEN pg_catalog.to_regclass($2)::oid"
								  " WHEN $1 = 'trigger'"
								  "  THEN (SELECT t.oid FROM pg_catalog.pg_trigger t"
								  "         WHERE t.tgrelid = pg_catalog.to_regclass($3)"
								  "           AND pg_catalog.quote_ident(t.tgname) = $2) END::text,"
								  " $1 IN ('table', 'foreign table', 'view', 'materialized view',"
								  "        'sequence', 'index', 'capture log', 'trigger')",
								  3, params, true);
		sa = palloc0(sizeof(SourceArtifact));
		sa->a = a;
		oid = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		sa->oid = oid ? (Oid) strtoul(oid, NULL, 10) : InvalidOid;
		sa->by_oid = strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2), "t") == 0;
		result = lappend(result, sa);
	}
	return result;
}

/*
 * drop_source_artifacts
 *		Drop what resolve_source_artifacts() found that is still there (a
 *		relation or trigger by its OID, anything else by its recorded
 *		identity), and mark every one dropped.  The look-ups are not
 *		read-only: they must see what this transaction dropped already.
 */
static void
drop_source_artifacts(List *artifacts)
{
	ListCell   *lc;

	foreach(lc, artifacts)
	{
		SourceArtifact *sa = (SourceArtifact *) lfirst(lc);

		if (!sa->by_oid)
			splitdb_spi_exec(splitdb_artifact_drop_sql(sa->a), 0, NULL, NULL, NULL, false, 0);
		else if (OidIsValid(sa->oid))
		{
			const char *params[1] = {psprintf("%u", sa->oid)};

			if (strcmp(sa->a->kind, "trigger") == 0)
				splitdb_catalog_exec_text("SELECT pg_catalog.format('DROP TRIGGER %I ON %s', t.tgname,"
										  "       t.tgrelid::pg_catalog.regclass)"
										  "  FROM pg_catalog.pg_trigger t WHERE t.oid = $1::oid",
										  1, params, false);
			else
				splitdb_catalog_exec_text("SELECT pg_catalog.format('DROP %s %s',"
										  "  CASE c.relkind WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'v' THEN 'VIEW'"
										  "   WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE'"
										  "   WHEN 'i' THEN 'INDEX' WHEN 'I' THEN 'INDEX' ELSE 'TABLE' END,"
										  "  c.oid::pg_catalog.regclass)"
										  "  FROM pg_catalog.pg_class c WHERE c.oid = $1::oid",
										  1, params, false);
			if (SPI_processed == 1)
				splitdb_spi_exec(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1),
								 0, NULL, NULL, NULL, false, 0);
		}
		splitdb_artifact_dropped(sa->a->artifact_id);
	}
}

/*
 * CREATE OR REPLACE VIEW statements for the views that read a shim of the
 * job directly and that its cutover did not re-point (made since), with
 * their definitions as they read now: names qualified, so that once the
 * originals are back under the shims' names they resolve to them.  Without
 * them, dropping the shims at 4. would fail on the views that depend on
 * them, at every run of the rollback.
 */
#define LATER_VIEWS_SQL \
	"SELECT format('CREATE OR REPLACE VIEW %s%s AS %s', v.oid::regclass," \
	"       CASE WHEN v.reloptions IS NOT NULL" \
	"            THEN ' WITH (' || array_to_string(v.reloptions, ', ') || ')' ELSE '' END," \
	"       rtrim(pg_get_viewdef(v.oid), ';'))" \
	"  FROM pg_class v" \
	" WHERE v.relkind = 'v'" \
	"   AND v.oid IN (SELECT r.ev_class FROM splitdb.job_table t" \
	"                   JOIN pg_class s ON s.oid = to_regclass(t.table_name) AND s.relkind = 'f'" \
	"                   JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass" \
	"                    AND d.refobjid = s.oid AND d.classid = 'pg_rewrite'::regclass" \
	"                   JOIN pg_rewrite r ON r.oid = d.objid AND r.rulename = '_RETURN'" \
	"                  WHERE t.job_id = $1::bigint)" \
	"   AND v.oid NOT IN (SELECT to_regclass(w.view_name) FROM splitdb.cutover_view w" \
	"                      WHERE w.job_id = $1::bigint AND to_regclass(w.view_name) IS NOT NULL)" \
	" ORDER BY v.oid"

/*
 * splitdb_restore_source
 *		Undo the job's cutover in the source (see the file's header).  In the
 *		caller's transaction, connected to SPI, with the shims locked; conn
 *		reaches the sibling, for its sequences.
 */
void
splitdb_restore_source(int64 job_id, const char *service, PGconn *conn)
{
	const char *params[2] = {psprintf(INT64_FORMAT, job_id), service};
	List	   *artifacts = resolve_source_artifacts(job_id);
	List	   *later_views;

	/* 1. the materialized views over the shims, the reference ends here */
	run_each(job_rows("SELECT format('DROP MATERIALIZED VIEW %s', m.oid::regclass)"
					  "  FROM splitdb.cutover_relation r"
					  "  JOIN pg_namespace n ON n.nspname = r.schema_name"
					  "  JOIN pg_class m ON m.relnamespace = n.oid AND m.relname = r.rel_name"
					  " WHERE r.job_id = $1::bigint AND r.relkind = 'm' AND m.relkind = 'm'"
					  "   AND m.oid <> r.relid",
					  job_id));
	splitdb_catalog_exec_text("SELECT splitdb.drop_reference_ends(ARRAY(SELECT r.reference_id"
							  "  FROM splitdb.reference r WHERE r.dropped_at IS NOT NULL"
							  "   AND (r.job_id = $1::bigint OR $2 IN (r.child_service, r.parent_service))))",
							  2, params, false);

	/*
	 * the views made over the shims since the cutover, read while the shims
	 * have the tables' names: run again at 3., they read the originals
	 */
	later_views = job_rows(LATER_VIEWS_SQL, job_id);

	/* 2. the shims step aside; the originals come back, under their names */
	run_each(job_rows("SELECT format('ALTER FOREIGN TABLE %s RENAME TO %I', c.oid::regclass,"
					  "              'splitdb_shim_' || t.relid)"
					  "  FROM splitdb.job_table t JOIN pg_class c ON c.oid = to_regclass(t.table_name)"
					  " WHERE t.job_id = $1::bigint AND c.relkind = 'f'"
					  " ORDER BY 1",
					  job_id));
	run_each(job_rows("SELECT format('ALTER %s %s SET SCHEMA %I',"
					  "              CASE c.relkind WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END,"
					  "              c.oid::regclass, r.schema_name)"
					  "  FROM splitdb.cutover_relation r JOIN pg_class c ON c.oid = r.relid"
					  " WHERE r.job_id = $1::bigint AND r.relkind IN ('r', 'p', 'm')"
					  "   AND c.relnamespace = '" SPLITDB_ARCHIVE_SCHEMA "'::regnamespace"
					  " ORDER BY r.relid",
					  job_id));
	run_each(job_rows("SELECT format('ALTER %s %s RENAME TO %I',"
					  "              CASE c.relkind WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE'"
					  "                   WHEN 'i' THEN 'INDEX' WHEN 'I' THEN 'INDEX' ELSE 'TABLE' END,"
					  "              c.oid::regclass, r.rel_name)"
					  "  FROM splitdb.cutover_relation r JOIN pg_class c ON c.oid = r.relid"
					  " WHERE r.job_id = $1::bigint AND c.relname <> r.rel_name"
					  " ORDER BY r.relid",
					  job_id));

	/* the originals take writes again: the cutover's guard on them goes */
	run_each(job_rows("SELECT format('DROP TRIGGER IF EXISTS splitdb_archive_guard ON %s',"
					  "              t.relid::regclass)"
					  "  FROM splitdb.job_table t"
					  "  JOIN pg_trigger g ON g.tgrelid = t.relid AND g.tgname = 'splitdb_archive_guard'"
					  " WHERE t.job_id = $1::bigint ORDER BY t.relid",
					  job_id));

	/* 3. the views read the originals again; the materialized views return */
	run_each(job_rows("SELECT definition FROM splitdb.cutover_view WHERE job_id = $1::bigint"
					  " ORDER BY view_name",
					  job_id));
	run_each(later_views);
	run_each(job_rows("SELECT format('REFRESH MATERIALIZED VIEW %s', m.oid::regclass)"
					  "  FROM splitdb.cutover_relation r JOIN pg_class m ON m.oid = r.relid"
					  " WHERE r.job_id = $1::bigint AND r.relkind = 'm' AND r.populated"
					  "   AND m.relkind = 'm'"
					  " ORDER BY r.relid",
					  job_id));

	/* 4. the shims */
	run_each(job_rows("SELECT format('DROP FOREIGN TABLE %s', c.oid::regclass)"
					  "  FROM splitdb.job_table t JOIN pg_class c ON c.relname = 'splitdb_shim_' || t.relid"
					  "  JOIN pg_class o ON o.oid = t.relid AND o.relnamespace = c.relnamespace"
					  " WHERE t.job_id = $1::bigint AND c.relkind = 'f'",
					  job_id));

	/* 5. - 7. */
	add_foreign_keys(job_id, service);
	advance_sequences(job_id, service, conn);
	drop_source_artifacts(artifacts);
	(void) splitdb_artifact_give_back(job_id, SPLITDB_ON_ROLLBACK);
}
