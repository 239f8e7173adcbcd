/*-------------------------------------------------------------------------
 *
 * finalize.c
 *	  splitdb_finalize(): keep a done migration for good.
 *
 * After the cutover the source keeps the originals in splitdb_archive and
 * the sibling captures the writes to the moved tables, so that
 * splitdb_rollback() can bring everything back.  Finalizing gives that way
 * back up: it drops what the artifact registry lists to go on finalize (the
 * archived originals and materialized views, the sibling's reverse
 * capture), and with drop_shim the shims (with the triggers on them, whose
 * rows of other jobs' references are marked dropped too), and marks the job
 * finalized; splitdb_rollback() refuses a finalized job.
 *
 * Order: the sibling's drops commit first, then the source's drops and the
 * state, together, in the caller's transaction.  The source's drops are
 * rehearsed first in a subtransaction that is rolled back, so that what
 * would fail them fails the call before anything is dropped anywhere.
 * That order is the safe one: if the source transaction fails after the sibling committed, the
 * job is still done with its archive intact, only its capture is gone
 * (splitdb_rollback() and splitdb_doctor() see that), and calling
 * splitdb_finalize() again completes it (every drop says IF EXISTS).  The
 * other order could commit a finalized job, with its archive gone, whose
 * capture then goes on logging every write in the sibling with no job left
 * to drop it.
 *
 * A rollback in progress holds the job's advisory lock: finalize refuses
 * (55P03) while it is held, trying it before the service's lock, which the
 * rollback holds too (so it does not wait for the rollback to end), and
 * holds it itself to the end of its transaction, so the two never run
 * together.  A rollback that stopped after the sibling's commit (its
 * tables there refuse writes) can only be finished: finalize refuses it
 * (check_not_switched), or it would drop the archive and leave the rows
 * in tables nobody can write.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/finalize.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"

#include "metadata/artifact.h"
#include "metadata/catalog.h"
#include "migrate/capture.h"
#include "migrate/ddlguard.h"
#include "migrate/job.h"
#include "migrate/jobstate.h"
#include "migrate/lockwait.h"
#include "migrate/undo.h"
#include "remote/remote.h"
#include "splitdb.h"

PG_FUNCTION_INFO_V1(splitdb_finalize);

/* whether the job's shims are still there, as the registry says */
static bool
shims_kept(int64 job_id)
{
	const char *params[1] = {psprintf(INT64_FORMAT, job_id)};

	splitdb_catalog_exec_text("SELECT FROM splitdb.artifact a WHERE a.job_id = $1::bigint"
							  "   AND a.kind = 'foreign table' AND a.service IS NULL"
							  "   AND a.dropped_at IS NULL",
							  1, params, true);
	return SPI_processed > 0;
}

/*
 * check_finalizable
 *		Refuse a finalize of a job that is not done, before anything is
 *		touched.  A finalized job whose shims were kept may be finalized
 *		again with drop_shim, which then drops only the shims.
 */
static void
check_finalizable(const char *service, const SplitdbJobState *job, bool drop_shim)
{
	if (!job->found)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("service \"%s\" has no migration job to finalize", service),
				 errhint("splitdb_migrate('%s') migrates it; finalize once its job is done.", service)));
	if (strcmp(job->state, "finalized") == 0 && !(drop_shim && shims_kept(job->job_id)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the migration of service \"%s\" is already finalized", service),
				 errdetail("Job " INT64_FORMAT " is finalized.", job->job_id),
				 errhint("Nothing is left to finalize: its archive is gone%s; see splitdb_status.",
						 drop_shim ? ", and so are its shims" : "")));
	if (strcmp(job->state, "done") != 0 && strcmp(job->state, "finalized") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot finalize the migration of service \"%s\" because it is %s",
						service, job->state),
				 errdetail("Job " INT64_FORMAT " is %s; only a done job can be finalized.",
						   job->job_id, job->state),
				 (strcmp(job->state, "cancelled") == 0 || strcmp(job->state, "rolled_back") == 0) ?
				 errhint("The job ended without a migration to keep; splitdb_migrate('%s') migrates the service again.",
						 service) :
				 errhint("Wait until splitdb_status shows it done, or cancel it with splitdb_cancel('%s').",
						 service)));
}

/* refuse while another session (a rollback) holds the job's lock */
static void
lock_job(const char *service, int64 job_id)
{
	if (!splitdb_jobstate_try_lock(SPLITDB_JOB_LOCK_KEY, job_id))
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("cannot finalize the migration of service \"%s\" while another session works on job " INT64_FORMAT,
						service, job_id),
				 errdetail("A rollback of the job may be in progress: it holds the job's advisory lock."),
				 errhint("Wait for it to end; see pg_locks and splitdb_status.")));
}

/*
 * check_not_switched
 *		Refuse to finalize a done job whose rollback stopped after the
 *		sibling's commit (a kill, a crash, an error in the source's step):
 *		the sibling's tables refuse every write from then on (its
 *		splitdb.capture rows are closed), and only the rollback brings
 *		them back to a database that takes writes.  Finalizing then would
 *		drop the archive and leave the service's rows in tables that
 *		nobody can write.  Opens and closes its own connection to the
 *		sibling; changes nothing.  Connected to SPI.
 */
static void
check_not_switched(const char *server, const char *service, int64 job_id)
{
	PGconn	   *volatile conn = NULL;
	volatile bool closed = false;

	PG_TRY();
	{
		conn = splitdb_remote_connect_server(server, service);
		/* a finalize whose drops there committed may have dropped splitdb */
		closed = splitdb_capture_closed(conn, service, job_id);
	}
	PG_FINALLY();
	{
		splitdb_remote_disconnect(conn);
	}
	PG_END_TRY();
	if (closed)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot finalize the migration of service \"%s\" because its rollback has switched the sibling", service),
				 errdetail("A splitdb_rollback() of job " INT64_FORMAT " stopped after the sibling's commit: the service's tables there refuse every write, and only the rollback brings their rows back to the source.",
						   job_id),
				 errhint("Call splitdb_rollback('%s') to finish the rollback.", service)));
}

/*
 * check_shims_unused
 *		Refuse drop_shim while views or materialized views read a shim of
 *		the job (2BP01), naming them.
 */
static void
check_shims_unused(const char *service, int64 job_id)
{
	const char *params[1] = {psprintf(INT64_FORMAT, job_id)};
	StringInfoData users;
	ListCell   *lc;
	int			n = 0;

	splitdb_catalog_exec_text("SELECT DISTINCT v.oid::pg_catalog.regclass::text"
							  "  FROM splitdb.artifact a"
							  "  JOIN pg_catalog.pg_depend d"
							  "    ON d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass"
							  "   AND d.refobjid = pg_catalog.to_regclass(a.identity)"
							  "   AND d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass"
							  "  JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid"
							  "  JOIN pg_catalog.pg_class v ON v.oid = r.ev_class"
							  " WHERE a.job_id = $1::bigint AND a.kind = 'foreign table'"
							  "   AND a.service IS NULL AND a.dropped_at IS NULL"
							  "   AND v.oid <> d.refobjid"
							  " ORDER BY 1",
							  1, params, true);
	initStringInfo(&users);
	foreach(lc, splitdb_catalog_result_rows())
		appendStringInfo(&users, "%s%s", n++ > 0 ? ", " : "", ((char **) lfirst(lc))[0]);
	if (n > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("cannot drop the shims of service \"%s\" because views use them", service),
				 errdetail_plural("View %s reads a shim.", "Views %s read the shims.", n, users.data),
				 errhint("Point the views at the tables in the sibling (or drop them) first, or finalize with drop_shim => false.")));
}

/*
 * check_archive_unused
 *		Refuse (2BP01), before anything is dropped, while views or
 *		materialized views that this finalize does not drop read the job's
 *		archived tables: typically a materialized view that an earlier job
 *		archived, reading an original that this job archived later.
 *		Dropping the tables would fail on them after the sibling's drops
 *		had committed.
 */
static void
check_archive_unused(const char *service, int64 job_id)
{
	const char *params[1] = {psprintf(INT64_FORMAT, job_id)};
	StringInfoData users;
	StringInfoData owners;
	ListCell   *lc;
	int			n = 0;
	int			nowners = 0;

	splitdb_catalog_exec_text("SELECT DISTINCT v.oid::pg_catalog.regclass::text, j.service::text"
							  "  FROM splitdb.cutover_relation t"
							  "  JOIN pg_catalog.pg_depend d"
							  "    ON d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass"
							  "   AND d.refobjid = t.relid"
							  "   AND d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass"
							  "  JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid"
							  "  JOIN pg_catalog.pg_class v ON v.oid = r.ev_class"
							  "  LEFT JOIN splitdb.cutover_relation o ON o.relid = v.oid AND o.job_id <> t.job_id"
							  "  LEFT JOIN splitdb.job j ON j.job_id = o.job_id"
							  " WHERE t.job_id = $1::bigint AND t.relkind IN ('r', 'p')"
							  "   AND v.oid <> t.relid"
							  "   AND NOT EXISTS (SELECT FROM splitdb.cutover_relation m"
							  "                    WHERE m.job_id = t.job_id AND m.relid = v.oid)"
							  " ORDER BY 1, 2",
							  1, params, true);
	initStringInfo(&users);
	initStringInfo(&owners);
	foreach(lc, splitdb_catalog_result_rows())
	{
		char	  **row = (char **) lfirst(lc);
		char	   *owner = row[1] != NULL ? psprintf("\"%s\"", row[1]) : NULL;

		appendStringInfo(&users, "%s%s", n++ > 0 ? ", " : "", row[0]);
		if (owner != NULL && strstr(owners.data, owner) == NULL)
			appendStringInfo(&owners, "%s%s", nowners++ > 0 ? ", " : "", owner);
	}
	if (n > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("cannot finalize the migration of service \"%s\" because views read its archived tables",
						service),
				 errdetail_plural("View %s reads an original in splitdb_archive.",
								  "Views %s read originals in splitdb_archive.", n, users.data),
				 nowners > 0 ?
				 errhint_plural("The migration of service %s archived it: finalize that first.",
								"The migrations of services %s archived them: finalize those first.",
								nowners, owners.data) :
				 errhint("Point the views at the shims or the sibling's tables, or drop them, first.")));
}

/*
 * mark_peer_triggers_dropped
 *		Mark dropped the source's rows, of other jobs, of the triggers that
 *		were on the shims of job_id just dropped: the ends, on those shims,
 *		of references that another job converted (that job's cutover, or
 *		this job's, recorded them under the reference's job).  Only rows
 *		whose trigger is gone are marked.  Runs in the finalize's
 *		transaction, after the drops, connected to SPI.
 */
static void
mark_peer_triggers_dropped(int64 job_id)
{
	const char *params[1] = {psprintf(INT64_FORMAT, job_id)};

	splitdb_catalog_exec_text("UPDATE splitdb.artifact a"
							  "   SET dropped_at = pg_catalog.clock_timestamp()"
							  " WHERE a.job_id <> $1::bigint AND a.service IS NULL"
							  "   AND a.kind = 'trigger' AND a.dropped_at IS NULL"
							  "   AND a.parent IN (SELECT s.identity FROM splitdb.artifact s"
							  "                     WHERE s.job_id = $1::bigint AND s.service IS NULL"
							  "                       AND s.kind = 'foreign table'"
							  "                       AND s.dropped_at IS NOT NULL)"
							  "   AND NOT EXISTS (SELECT FROM pg_catalog.pg_trigger t"
							  "                    WHERE t.tgrelid = pg_catalog.to_regclass(a.parent)"
							  "                      AND pg_catalog.quote_ident(t.tgname) = a.identity)",
							  1, params, false);
}

/*
 * keep_used_sequences
 *		Move out of the archive, before the archived tables are dropped, each
 *		sequence a moved column owned that a default outside the archive
 *		still draws from: a kept shim's (shim.c: a default that is more than
 *		nextval() stays evaluated in the source) or a staying table's.
 *		Dropping its table would drop it, which such a default forbids.  It
 *		goes back to its schema under its name from before (as
 *		splitdb.cutover_relation kept them; its current one where that is
 *		taken), owned by the same column of the table's shim when the shim
 *		stays (dropping the shim drops it, as dropping the table did), by
 *		none otherwise.  With drop_shim, a sequence that an earlier
 *		finalize left owned by a shim, and that a staying table's default
 *		uses, is owned by none, so that the shim can go.
 *		drop_shim: the job's shims go in this transaction; their defaults
 *		do not keep a sequence.  In the caller's transaction, connected to
 *		SPI; run before anything is dropped, so that a name taken in the
 *		schema fails the finalize before the sibling's drops commit.
 */
static void
keep_used_sequences(int64 job_id, bool drop_shim)
{
	const char *params[2] = {psprintf(INT64_FORMAT, job_id), drop_shim ? "true" : "false"};
	List	   *statements = NIL;
	ListCell   *lc;

	splitdb_catalog_exec_text("WITH shims AS ("
							  "  SELECT pg_catalog.to_regclass(a.identity)::pg_catalog.oid AS oid FROM splitdb.artifact a"
							  "   WHERE a.job_id = $1::bigint AND a.kind = 'foreign table'"
							  "     AND a.service IS NULL AND a.dropped_at IS NULL)"
							  " SELECT format('ALTER SEQUENCE %s OWNED BY NONE', s.oid::pg_catalog.regclass),"
							  "       CASE WHEN s.relnamespace = ar.oid"
							  "            THEN format('ALTER SEQUENCE %s SET SCHEMA %I', s.oid::pg_catalog.regclass, r.schema_name)"
							  "       END,"
							  "       CASE WHEN s.relnamespace = ar.oid AND f.name <> s.relname"
							  "            THEN format('ALTER SEQUENCE %I.%I RENAME TO %I', r.schema_name, s.relname, f.name)"
							  "       END,"
							  "       CASE WHEN s.relnamespace = ar.oid AND NOT $2::boolean AND o.shim IS NOT NULL"
							  "            THEN format('ALTER SEQUENCE %I.%I OWNED BY %s.%I', r.schema_name, f.name,"
							  "                        o.shim::pg_catalog.regclass, o.attname)"
							  "       END"
							  "  FROM splitdb.cutover_relation r"
							  "  JOIN pg_catalog.pg_class s ON s.oid = r.relid"
							  "  JOIN pg_catalog.pg_namespace n ON n.nspname = r.schema_name"
							  "  JOIN pg_catalog.pg_namespace ar ON ar.nspname = '" SPLITDB_ARCHIVE_SCHEMA "'"
							  /* its name from before, unless another relation has it now */
							  "  CROSS JOIN LATERAL (SELECT CASE WHEN EXISTS"
							  "                 (SELECT FROM pg_catalog.pg_class x"
							  "                   WHERE x.relname = r.rel_name AND x.relnamespace = n.oid)"
							  "            THEN s.relname ELSE r.rel_name END AS name) f"
							  /* the column that owned it, and the shim of its table */
							  "  LEFT JOIN LATERAL (SELECT a.attname, sh.oid AS shim"
							  "                       FROM pg_catalog.pg_depend d"
							  "                       JOIN pg_catalog.pg_attribute a"
							  "                         ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid"
							  "                       JOIN splitdb.cutover_relation tr"
							  "                         ON tr.job_id = r.job_id AND tr.relid = d.refobjid"
							  "                       JOIN pg_catalog.pg_namespace tn ON tn.nspname = tr.schema_name"
							  "                       JOIN pg_catalog.pg_class sh"
							  "                         ON sh.relname = tr.rel_name AND sh.relnamespace = tn.oid"
							  "                        AND sh.relkind = 'f'"
							  "                      WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass"
							  "                        AND d.objid = s.oid AND d.deptype = 'a'"
							  "                        AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass) o ON true"
							  " WHERE r.job_id = $1::bigint AND r.relkind = 'S'"
							  "   AND (s.relnamespace = ar.oid"
							  /* or, when the shims go, owned by one since an earlier finalize */
							  "        OR $2::boolean AND EXISTS"
							  "           (SELECT FROM pg_catalog.pg_depend d JOIN shims ON shims.oid = d.refobjid"
							  "             WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass"
							  "               AND d.objid = s.oid AND d.deptype = 'a'"
							  "               AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass))"
							  "   AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend i"
							  "                    WHERE i.classid = 'pg_catalog.pg_class'::pg_catalog.regclass"
							  "                      AND i.objid = s.oid AND i.deptype = 'i')"
							  "   AND EXISTS (SELECT FROM pg_catalog.pg_depend d"
							  "                 JOIN pg_catalog.pg_attrdef ad ON ad.oid = d.objid"
							  "                 JOIN pg_catalog.pg_class u ON u.oid = ad.adrelid"
							  "                WHERE d.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass"
							  "                  AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass"
							  "                  AND d.refobjid = s.oid"
							  "                  AND u.relnamespace <> ar.oid"
							  "                  AND NOT ($2::boolean AND u.oid IN (SELECT oid FROM shims)))"
							  " ORDER BY r.schema_name, r.rel_name",
							  2, params, true);
	for (uint64 i = 0; i < SPI_processed; i++)
		for (int col = 1; col <= 4; col++)
		{
			char	   *sql = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, col);

			if (sql != NULL)
				statements = lappend(statements, sql);
		}

	/* the archive refuses DDL until its job is over: this is its end */
	if (statements != NIL)
		splitdb_ddl_guard_off_for_xact();
	foreach(lc, statements)
		splitdb_spi_exec((char *) lfirst(lc), 0, NULL, NULL, NULL, false, 0);
}

/* the source's part of a finalize, rehearsed and then run */
typedef struct SourceDrops
{
	int64		job_id;
	bool		drop_shim;
	List	   *drops;			/* the shims (with drop_shim), then the job's list */
	int			dropped;		/* out: how many were dropped */
} SourceDrops;

/*
 * source_drops
 *		keep_used_sequences(), the drops, and (with drop_shim) the peers'
 *		trigger rows; in the caller's transaction, connected to SPI.
 */
static void
source_drops(void *arg)
{
	SourceDrops *d = (SourceDrops *) arg;

	keep_used_sequences(d->job_id, d->drop_shim);
	d->dropped = splitdb_undo_source(d->drops);
	if (d->drop_shim)
		mark_peer_triggers_dropped(d->job_id);
}

/*
 * rehearse_source_drops
 *		Run the source's part of the finalize (source_drops()) in a
 *		subtransaction, and roll it back.  The sibling's drops commit before the source's run
 *		for real (see the file's comment); whatever would make the source's
 *		fail (an object of some other kind that depends on an archived
 *		original, say) fails here instead, before anything is dropped
 *		anywhere, and is reported with its own SQLSTATE.  In the caller's
 *		transaction, connected to SPI.
 */
static void
rehearse_source_drops(const char *service, SourceDrops *drops)
{
	ErrorData  *edata = splitdb_subxact_rehearse(source_drops, drops);

	if (edata != NULL)
		ereport(ERROR,
				(errcode(edata->sqlerrcode),
				 errmsg("cannot finalize the migration of service \"%s\": %s", service, edata->message),
				 edata->detail ? errdetail_internal("%s", edata->detail) : 0,
				 errhint("Nothing was dropped. Remove what keeps the source's drops from running (the detail names it), then call splitdb_finalize('%s') again.",
						 service)));
}

/*
 * splitdb_finalize
 *		SQL: splitdb_finalize(service name, drop_shim boolean DEFAULT false)
 *		RETURNS void
 */
Datum
splitdb_finalize(PG_FUNCTION_ARGS)
{
	char	   *service = pstrdup(NameStr(*PG_GETARG_NAME(0)));
	bool		drop_shim = PG_GETARG_BOOL(1);
	SplitdbService *svc;
	SplitdbJobState job;
	List	   *artifacts;
	List	   *shims = NIL;
	SourceDrops drops;
	const char *params[1];
	PGconn	   *volatile conn = NULL;
	ListCell   *lc;
	int			dropped;

	splitdb_require_superuser("splitdb_finalize");
	splitdb_spi_connect();

	svc = splitdb_catalog_get_service(service, SPLITDB_LOCK_SHARE, false);

	/*
	 * A rollback's worker holds the service's lock for its whole run, and
	 * the job's: try the job's first, so that a finalize refuses at once
	 * rather than wait for the rollback to end.
	 */
	job = splitdb_jobstate_last(service);
	if (job.found && strcmp(job.state, "done") == 0)
		lock_job(service, job.job_id);
	splitdb_jobstate_lock_service(service);
	job = splitdb_jobstate_last(service);
	check_finalizable(service, &job, drop_shim);
	lock_job(service, job.job_id);
	if (drop_shim)
		check_shims_unused(service, job.job_id);
	check_archive_unused(service, job.job_id);
	if (strcmp(job.state, "done") == 0)
		check_not_switched(svc->server, service, job.job_id);

	artifacts = splitdb_artifact_list(job.job_id, SPLITDB_ON_FINALIZE);
	params[0] = psprintf(INT64_FORMAT, job.job_id);

	/*
	 * With drop_shim, the shims go too, and what the registry lists on them
	 * (their reference triggers), and what reads them (checked above:
	 * nothing does)
	 */
	if (drop_shim)
	{
		List	   *undone = splitdb_artifact_list(job.job_id, SPLITDB_ON_ROLLBACK);
		List	   *names = NIL;

		foreach(lc, undone)
		{
			SplitdbArtifact *a = (SplitdbArtifact *) lfirst(lc);

			if (a->service == NULL && strcmp(a->kind, "foreign table") == 0)
				names = lappend(names, a->identity);
		}
		foreach(lc, undone)
		{
			SplitdbArtifact *a = (SplitdbArtifact *) lfirst(lc);
			ListCell   *n;

			if (a->service != NULL)
				continue;
			if (strcmp(a->kind, "foreign table") == 0)
				shims = lappend(shims, a);
			else if (strcmp(a->kind, "trigger") == 0)
				foreach(n, names)
					if (strcmp(a->parent, lfirst(n)) == 0)
						shims = lappend(shims, a);
		}

		/* the source's reference ends on the shims go with them */
		splitdb_catalog_exec_text("DELETE FROM splitdb.reference_end e USING splitdb.artifact a"
								  " WHERE a.job_id = $1::bigint AND a.kind = 'foreign table'"
								  "   AND a.service IS NULL AND a.dropped_at IS NULL"
								  "   AND e.relid::pg_catalog.oid = pg_catalog.to_regclass(a.identity)",
								  1, params, false);
	}
	/* the source's part, tried and undone, before the sibling's commits */
	drops.job_id = job.job_id;
	drops.drop_shim = drop_shim;
	drops.drops = list_concat(shims, artifacts);
	rehearse_source_drops(service, &drops);

	/*
	 * The sibling's drops commit before the caller's transaction: a ROLLBACK
	 * of it would leave the job done, its archive kept, its capture gone,
	 * the way back lost while the DBA believes the finalize undone.  Refused
	 * only now, once every other refusal has had its turn, so that they read
	 * the same inside a transaction block.
	 */
	splitdb_require_own_transaction("splitdb_finalize",
									psprintf("It commits its drops in the sibling of service \"%s\" before the calling transaction commits, so a ROLLBACK could not bring them back.",
											 service),
									psprintf("splitdb_finalize('%s')", service));

	/* the sibling first (see the file's comment) */
	PG_TRY();
	{
		conn = splitdb_remote_connect_server(svc->server, service);
		splitdb_job_check_role(conn, service, "splitdb_finalize");
		dropped = splitdb_undo_sibling(conn, service, artifacts);
	}
	PG_FINALLY();
	{
		splitdb_remote_disconnect(conn);
	}
	PG_END_TRY();
	splitdb_undo_mark(artifacts, service);

	source_drops(&drops);
	dropped += drops.dropped;

	splitdb_catalog_exec_text("UPDATE splitdb.job SET state = 'finalized',"
							  " updated_at = pg_catalog.clock_timestamp()"
							  " WHERE job_id = $1::bigint",
							  1, params, false);
	ereport(NOTICE,
			(errmsg("job " INT64_FORMAT " of service \"%s\" is finalized; %d object%s dropped",
					job.job_id, service, dropped, dropped == 1 ? "" : "s")));
	SPI_finish();
	PG_RETURN_VOID();
}
