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
 * state, together, in the caller's transaction.  That order is the safe
 * one: if the source transaction fails after the sibling committed, the
 * job is still done with its archive intact, only its capture is gone
 * (splitdb_rollback() and splitdb_doctor() see that), and calling
 * splitdb_finalize() again completes it (every drop says IF EXISTS).  The
 * other order could commit a finalized job, with its archive gone, whose
 * capture then goes on logging every write in the sibling with no job left
 * to drop it.
 *
 * A rollback in progress holds the job's advisory lock: finalize refuses
 * (55P03) while it is held, and holds it itself to the end of its
 * transaction, so the two never run together.
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
#include "migrate/job.h"
#include "migrate/jobstate.h"
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
				 errhint("Wait until splitdb_status shows it done, or cancel it with splitdb_cancel('%s').",
						 service)));
}

/* refuse while another session (a rollback) holds the job's lock */
static void
lock_job(const char *service, int64 job_id)
{
	Oid			types[2] = {INT4OID, INT4OID};
	Datum		values[2] = {Int32GetDatum(SPLITDB_JOB_LOCK_KEY), Int32GetDatum((int32) job_id)};
	bool		isnull;

	splitdb_spi_exec("SELECT pg_catalog.pg_try_advisory_xact_lock($1, $2)",
					 2, types, values, NULL, false, 1);
	if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("cannot finalize the migration of service \"%s\" while another session works on job " INT64_FORMAT,
						service, job_id),
				 errdetail("A rollback of the job may be in progress: it holds the job's advisory lock."),
				 errhint("Wait for it to end; see pg_locks and splitdb_status.")));
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
	const char *params[1];
	PGconn	   *volatile conn = NULL;
	ListCell   *lc;
	int			dropped;

	splitdb_require_superuser("splitdb_finalize");
	splitdb_spi_connect();

	svc = splitdb_catalog_get_service(service, SPLITDB_LOCK_SHARE, false);
	splitdb_jobstate_lock_service(service);
	job = splitdb_jobstate_last(service);
	check_finalizable(service, &job, drop_shim);
	lock_job(service, job.job_id);
	if (drop_shim)
		check_shims_unused(service, job.job_id);

	artifacts = splitdb_artifact_list(job.job_id, SPLITDB_ON_FINALIZE);
	params[0] = psprintf(INT64_FORMAT, job.job_id);

	/* the sibling first (see the file's comment) */
	PG_TRY();
	{
		conn = splitdb_remote_connect_server(svc->server, service);
		dropped = splitdb_undo_sibling(conn, service, artifacts);
	}
	PG_FINALLY();
	{
		splitdb_remote_disconnect(conn);
	}
	PG_END_TRY();
	splitdb_undo_mark(artifacts, service);

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
	dropped += splitdb_undo_source(list_concat(shims, artifacts));
	if (drop_shim)
		mark_peer_triggers_dropped(job.job_id);

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
