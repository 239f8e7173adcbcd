/*-------------------------------------------------------------------------
 *
 * doctor.c
 *	  splitdb_doctor(): leftovers and inconsistent states of migration
 *	  jobs, and the repair of what is safe to repair.
 *
 * What it looks at, and what repair => true does:
 *
 *	 a job whose row says it runs but whose worker is gone
 *	                     warning; marked failed (when no process holds the
 *	                     job's advisory lock)
 *	 an object the registry lists for an event that happened (the job is
 *	 cancelled, rolled back or finalized) and that is still there
 *	                     warning; dropped (one remote transaction per
 *	                     sibling), its row marked dropped
 *	 ... that is gone already
 *	                     info; its row marked dropped
 *	 an object a done or finalized job needs (its row standing, no event
 *	 of it happened) that is missing, or a trigger of it that is disabled
 *	                     critical; never recreated: writes may have been
 *	                     lost or left unchecked meanwhile, which only the
 *	                     DBA can judge (the shims of a done job are among
 *	                     these objects)
 *	 reference ends in the source for a reference whose ends are both in
 *	 the source again, or that is gone
 *	                     warning; dropped (splitdb.drop_reference_ends)
 *	 a reference that crosses databases with no end in the source
 *	                     critical; reported only
 *	 a strict reference whose table was dropped, in the source or in a
 *	 sibling (it checks nothing)
 *	                     warning; reported only, with the call that turns
 *	                     it off
 *	 a capture log over 1 GB, or whose oldest row is over a day old
 *	                     warning; reported only
 *	 a done job whose rollback stopped after the sibling's commit (its
 *	 capture closed there: the tables refuse writes)
 *	                     critical; reported only: splitdb_rollback()
 *	                     finishes it
 *	 a sibling that cannot be reached
 *	                     warning; its objects are not checked
 *
 * The repairs in the source (the registry's leftovers there, together; the
 * ends of one reference) drop triggers and tables, whose ACCESS EXCLUSIVE
 * locks queue behind any open transaction that touched the table, and the
 * application's statements would queue behind them.  So each runs in a
 * subtransaction under lock_timeout = splitdb.cutover_lock_timeout, tried
 * up to splitdb.cutover_attempts times with the cutover's backoff
 * (splitdb_online_backoff); when no attempt gets its locks, nothing of it
 * is left, and its items are reported not repaired, with the reason, while
 * the rest of the repair goes on.
 *
 * Invariants:
 * - Its catalog queries are not read-only, so that they see what its own
 *   repairs changed (a read-only query keeps the statement's snapshot).
 * - The existence checks are generic, one per registry kind, run in the
 *   database that holds the object, so every object any part of splitdb
 *   records is covered.
 * - A repair only drops what the registry lists and only for an event that
 *   happened, or marks a job failed that no process runs: running it twice
 *   finds nothing left to repair.
 * - No application statement waits behind a repair in the source longer
 *   than splitdb.cutover_lock_timeout at a time; the locks it got are held
 *   until its transaction ends.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/doctor.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "nodes/value.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "metadata/artifact.h"
#include "metadata/catalog.h"
#include "migrate/capture.h"
#include "migrate/job.h"
#include "migrate/jobstate.h"
#include "migrate/lockwait.h"
#include "migrate/online.h"
#include "migrate/undo.h"
#include "remote/remote.h"
#include "splitdb.h"

PG_FUNCTION_INFO_V1(splitdb_doctor);

/* a capture log over these is reported */
#define CAPTURE_LOG_WARN_BYTES	(INT64CONST(1024) * 1024 * 1024)
#define CAPTURE_LOG_WARN_AGE_S	86400

/*
 * Whether each object of the registry in one database is there: 'ok',
 * 'disabled' (a trigger that does not fire) or 'missing', in the order of
 * the arrays $1 identities, $2 parents ('' for none) and $3 kinds: one
 * query for them all, the same text in the source and in a sibling.
 */
static const char *const exists_sql =
"SELECT coalesce(CASE o.kind"
"  WHEN 'trigger' THEN (SELECT CASE WHEN t.tgenabled = 'D' THEN 'disabled' ELSE 'ok' END"
"     FROM pg_catalog.pg_trigger t WHERE t.tgrelid = pg_catalog.to_regclass(o.parent)"
"      AND pg_catalog.quote_ident(t.tgname) = o.identity)"
"  WHEN 'constraint' THEN (SELECT 'ok' FROM pg_catalog.pg_constraint k"
"     WHERE k.conrelid = pg_catalog.to_regclass(o.parent) AND pg_catalog.quote_ident(k.conname) = o.identity)"
"  WHEN 'policy' THEN (SELECT 'ok' FROM pg_catalog.pg_policy p"
"     WHERE p.polrelid = pg_catalog.to_regclass(o.parent) AND pg_catalog.quote_ident(p.polname) = o.identity)"
"  WHEN 'foreign table' THEN (SELECT 'ok' FROM pg_catalog.pg_class c"
"     WHERE c.oid = pg_catalog.to_regclass(o.identity) AND c.relkind = 'f')"
"  WHEN 'type' THEN (SELECT 'ok' WHERE pg_catalog.to_regtype(o.identity) IS NOT NULL)"
"  WHEN 'domain' THEN (SELECT 'ok' WHERE pg_catalog.to_regtype(o.identity) IS NOT NULL)"
"  WHEN 'collation' THEN (SELECT 'ok' WHERE pg_catalog.to_regcollation(o.identity) IS NOT NULL)"
"  WHEN 'function' THEN (SELECT 'ok' FROM pg_catalog.pg_proc p"
"     WHERE p.oid::pg_catalog.regprocedure::pg_catalog.text = o.identity LIMIT 1)"
"  WHEN 'schema' THEN (SELECT 'ok' WHERE pg_catalog.to_regnamespace(o.identity) IS NOT NULL)"
"  WHEN 'extension' THEN (SELECT 'ok' FROM pg_catalog.pg_extension e"
"     WHERE pg_catalog.quote_ident(e.extname) = o.identity)"
"  WHEN 'server' THEN (SELECT 'ok' FROM pg_catalog.pg_foreign_server s"
"     WHERE pg_catalog.quote_ident(s.srvname) = o.identity)"
"  WHEN 'statistics' THEN (SELECT 'ok' FROM pg_catalog.pg_statistic_ext s"
"     JOIN pg_catalog.pg_namespace n ON n.oid = s.stxnamespace"
"     WHERE pg_catalog.format('%I.%I', n.nspname, s.stxname) = o.identity)"
"  WHEN 'text search configuration' THEN (SELECT 'ok' FROM pg_catalog.pg_ts_config c"
"     JOIN pg_catalog.pg_namespace n ON n.oid = c.cfgnamespace"
"     WHERE pg_catalog.format('%I.%I', n.nspname, c.cfgname) = o.identity)"
"  WHEN 'text search dictionary' THEN (SELECT 'ok' FROM pg_catalog.pg_ts_dict d"
"     JOIN pg_catalog.pg_namespace n ON n.oid = d.dictnamespace"
"     WHERE pg_catalog.format('%I.%I', n.nspname, d.dictname) = o.identity)"
"  ELSE (SELECT 'ok' WHERE pg_catalog.to_regclass(o.identity) IS NOT NULL) END, 'missing')"
"  FROM (SELECT u.identity, NULLIF(u.parent, '') AS parent, u.kind, u.i"
"          FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.text[]), pg_catalog.unnest($2::pg_catalog.text[]),"
"                          pg_catalog.unnest($3::pg_catalog.text[]))"
"               WITH ORDINALITY AS u(identity, parent, kind, i)) o"
" ORDER BY o.i";

/*
 * The size of a capture log, and whether it holds a row.  A log's rows
 * carry no time of their own (their columns are the key's, whatever its
 * types), so their age is bounded by the time since the job's cutover.
 */
static const char *const capture_size_sql =
"SELECT pg_catalog.pg_total_relation_size(pg_catalog.to_regclass($1))";

/* the hours since the cutover of job $1 (its end), or NULL */
static const char *const job_age_sql =
"SELECT extract(epoch FROM pg_catalog.now() - coalesce(j.finished_at, j.updated_at))::float8"
"  FROM splitdb.job j WHERE j.job_id = $1::bigint";

/* what one call works with */
typedef struct Doctor
{
	ReturnSetInfo *rsinfo;
	bool		repair;
} Doctor;

/* one row of the result */
static void
emit(Doctor *dr, const char *severity, const char *service, int64 job_id,
	 const char *location, const char *object, const char *problem,
	 const char *action, bool repaired)
{
	Datum		values[8];
	bool		nulls[8] = {0};

	values[0] = CStringGetTextDatum(severity);
	if (service != NULL)
		values[1] = DirectFunctionCall1(namein, CStringGetDatum(service));
	else
		nulls[1] = true;
	values[2] = Int64GetDatum(job_id);
	nulls[2] = job_id == 0;
	values[3] = CStringGetTextDatum(location);
	values[4] = CStringGetTextDatum(object);
	values[5] = CStringGetTextDatum(problem);
	values[6] = CStringGetTextDatum(action);
	values[7] = BoolGetDatum(repaired);
	tuplestore_putvalues(dr->rsinfo->setResult, dr->rsinfo->setDesc, values, nulls);
}

/*
 * drop_bounded
 *		fn(arg) (a repair in the source, in this transaction, connected to
 *		SPI), up to splitdb.cutover_attempts attempts under
 *		splitdb.cutover_lock_timeout each, with the cutover's backoff
 *		between them.  Returns NULL once one has succeeded; or, when none got
 *		its locks, why, for the report (nothing fn did is left).
 */
static char *
drop_bounded(SplitdbLockwaitWork fn, void *arg)
{
	for (int attempt = 1;; attempt++)
	{
		ErrorData  *why = splitdb_lockwait_attempt(fn, arg, splitdb_cutover_lock_timeout);

		if (why == NULL)
			return NULL;
		if (attempt >= splitdb_cutover_attempts)
			return psprintf("not done: no lock in %d attempt%s of at most %d ms (%s); end the sessions that hold locks on its table (pg_locks, pg_stat_activity), then repair again",
							attempt, attempt == 1 ? "" : "s", splitdb_cutover_lock_timeout,
							why->message);
		splitdb_online_backoff(attempt);
	}
}

/* jobs whose row says they run, with their worker gone */
static void
check_workers(Doctor *dr)
{
	ListCell   *lc;

	splitdb_catalog_exec_text("SELECT j.job_id::text, j.service::text, j.state,"
							  "       coalesce(j.worker_pid::text, 'none')"
							  "  FROM splitdb.job j WHERE splitdb.job_worker_gone(j.state, j.worker_pid)"
							  " ORDER BY j.job_id",
							  0, NULL, false);
	foreach(lc, splitdb_catalog_result_rows())
	{
		char	  **row = (char **) lfirst(lc);
		int64		job_id = pg_strtoint64(row[0]);
		bool		repaired = false;

		if (dr->repair && splitdb_jobstate_try_lock(SPLITDB_JOB_LOCK_KEY, job_id))
		{
			const char *params[2] = {row[0], psprintf("its worker (pid %s) was gone, found by splitdb_doctor()", row[3])};

			splitdb_catalog_exec_text("UPDATE splitdb.job SET state = 'failed', last_error = $2,"
									  " last_sqlstate = '57P01', worker_pid = NULL,"
									  " finished_at = pg_catalog.clock_timestamp(),"
									  " updated_at = pg_catalog.clock_timestamp()"
									  " WHERE job_id = $1::bigint",
									  2, params, false);
			repaired = true;
		}
		emit(dr, "warning", row[1], job_id, "source", psprintf("job %s", row[0]),
			 psprintf("the job is %s, but its worker (pid %s) is gone", row[2], row[3]),
			 "mark the job failed", repaired);
	}
}

/* a registry row, with its job's state as splitdb_status reads it */
typedef struct Entry
{
	SplitdbArtifact a;
	char	   *job_service;
	char	   *state;
	bool		due;			/* the event it goes on happened */
	char	   *status;			/* exists_sql's answer, set by fetch_statuses() */
} Entry;

/* the registry rows not dropped, by database (the source's first), newest first */
static List *
standing_entries(void)
{
	List	   *result = NIL;
	ListCell   *lc;

	splitdb_catalog_exec_text("SELECT a.artifact_id::text, a.job_id::text, a.service::text, a.kind,"
							  "       a.identity, a.parent, j.service::text,"
							  "       CASE WHEN splitdb.job_worker_gone(j.state, j.worker_pid)"
							  "            THEN 'failed' ELSE j.state END,"
							  "       CASE j.state WHEN 'cancelled' THEN 'cancel' = ANY (a.drop_on)"
							  "                    WHEN 'rolled_back' THEN 'rollback' = ANY (a.drop_on)"
							  "                    WHEN 'finalized' THEN 'finalize' = ANY (a.drop_on)"
							  "                    ELSE false END::text"
							  "  FROM splitdb.artifact a JOIN splitdb.job j ON j.job_id = a.job_id"
							  " WHERE a.dropped_at IS NULL"
							  " ORDER BY a.service NULLS FIRST, a.artifact_id DESC",
							  0, NULL, false);
	foreach(lc, splitdb_catalog_result_rows())
	{
		char	  **row = (char **) lfirst(lc);
		Entry	   *e = palloc0(sizeof(Entry));

		e->a.artifact_id = pg_strtoint64(row[0]);
		e->a.job_id = pg_strtoint64(row[1]);
		e->a.service = row[2];
		e->a.kind = row[3];
		e->a.identity = row[4];
		e->a.parent = row[5];
		e->due = strcmp(row[8], "true") == 0;
		e->job_service = row[6];
		e->state = row[7];
		result = lappend(result, e);
	}
	return result;
}

/* the object of an entry, for the result */
static char *
object_text(const Entry *e)
{
	if (e->a.parent != NULL)
		return psprintf("%s %s on %s", e->a.kind, e->a.identity, e->a.parent);
	return psprintf("%s %s", e->a.kind, e->a.identity);
}

/*
 * fetch_statuses
 *		Set the status of every entry of one database, in the source (conn
 *		NULL) or in the sibling of service, with one exists_sql: one round
 *		trip for the place, not one per object.  Connected to SPI.
 */
static void
fetch_statuses(PGconn *conn, const char *service, List *entries)
{
	int			n = list_length(entries);
	char	  **ids = palloc(sizeof(char *) * Max(n, 1));
	char	  **parents = palloc(sizeof(char *) * Max(n, 1));
	char	  **kinds = palloc(sizeof(char *) * Max(n, 1));
	const char *params[3];
	List	   *rows = NIL;
	PGresult   *res = NULL;
	ListCell   *lc;
	int			i = 0;

	foreach(lc, entries)
	{
		Entry	   *e = (Entry *) lfirst(lc);

		ids[i] = e->a.identity;
		parents[i] = e->a.parent ? e->a.parent : "";
		kinds[i++] = e->a.kind;
	}
	params[0] = splitdb_catalog_text_array(ids, n);
	params[1] = splitdb_catalog_text_array(parents, n);
	params[2] = splitdb_catalog_text_array(kinds, n);
	if (conn == NULL)
	{
		splitdb_catalog_exec_text(exists_sql, 3, params, false);
		rows = splitdb_catalog_result_rows();
	}
	else
	{
		res = splitdb_remote_exec(conn, exists_sql, 3, params, service);
		rows = splitdb_remote_result_rows(res);
		splitdb_remote_clear(res);
	}
	if (list_length(rows) != n)
		elog(ERROR, "the doctor's check of %d objects returned %d rows", n, list_length(rows));
	i = 0;
	foreach(lc, entries)
		((Entry *) lfirst(lc))->status = ((char **) list_nth(rows, i++))[0];
}

/*
 * check_capture_log
 *		A capture log of a done or finalized job: its size, and whether it
 *		has held rows for over a day (it holds a row, and the job's cutover
 *		was over 24 hours ago; its rows were all written since).  Connected
 *		to SPI; conn reaches the log's database.
 */
static void
check_capture_log(Doctor *dr, PGconn *conn, const Entry *e, const char *location)
{
	const char *params[1] = {e->a.identity};
	const char *job[1] = {psprintf(INT64_FORMAT, e->a.job_id)};
	int64		bytes;
	double		age = 0;
	char	   *v;

	bytes = pg_strtoint64(splitdb_remote_scalar(conn, capture_size_sql, 1, params, e->a.service));
	splitdb_catalog_exec_text(job_age_sql, 1, job, false);
	v = SPI_processed == 1 ? SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1) : NULL;
	if (v != NULL && strtod(v, NULL) > CAPTURE_LOG_WARN_AGE_S)
	{
		char	   *any = splitdb_remote_scalar(conn,
												psprintf("SELECT EXISTS (SELECT FROM %s)", e->a.identity),
												0, NULL, e->a.service);

		if (any != NULL && strcmp(any, "t") == 0)
			age = strtod(v, NULL);
	}
	if (bytes > CAPTURE_LOG_WARN_BYTES)
		emit(dr, "warning", e->job_service, e->a.job_id, location, object_text(e),
			 psprintf("the capture log holds " INT64_FORMAT " MB (over 1 GB)", bytes / (1024 * 1024)),
			 "roll back or finalize the job; either ends the capture", false);
	if (age > CAPTURE_LOG_WARN_AGE_S)
		emit(dr, "warning", e->job_service, e->a.job_id, location, object_text(e),
			 psprintf("the capture log holds rows written since the cutover, %.0f hours ago (over 24)",
					  age / 3600),
			 "roll back or finalize the job; either ends the capture", false);
}

/*
 * reference_off
 *		Whether a disabled trigger of the registry belongs to one of its
 *		job's references whose mode is off (splitdb_reference_mode()), whose
 *		triggers are disabled on purpose: splitdb_ref_<id>_..., or the
 *		constraint trigger named as the original key.
 */
static bool
reference_off(const Entry *e)
{
	const char *params[2] = {psprintf(INT64_FORMAT, e->a.job_id), e->a.identity};

	splitdb_catalog_exec_text("SELECT FROM splitdb.reference r"
							  " WHERE r.job_id = $1::bigint AND r.mode = 'off'"
							  "   AND ($2 LIKE 'splitdb\\_ref\\_' || r.reference_id || '\\_%'"
							  "        OR $2 = pg_catalog.quote_ident(r.constraint_name))",
							  2, params, false);
	return SPI_processed > 0;
}

/*
 * emit_leftover
 *		Report a leftover: repaired, or not, with why (NULL: no repair was
 *		asked for).
 */
static void
emit_leftover(Doctor *dr, const Entry *e, bool repaired, const char *why)
{
	emit(dr, "warning", e->job_service, e->a.job_id, e->a.service ? e->a.service : "source",
		 object_text(e), psprintf("left over: the job is %s", e->state),
		 why ? psprintf("drop it; %s", why) : "drop it", repaired);
}

/* the String nodes of a list, comma-separated */
static char *
names_text(List *names)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, names)
		appendStringInfo(&buf, "%s%s", buf.len > 0 ? ", " : "", strVal(lfirst(lc)));
	return buf.data;
}

/*
 * gone_tables_of
 *		The tables of one database's registry rows that a done or
 *		finalized job needs and that are missing, as String nodes: the
 *		indexes, triggers and constraints on them went with them, and are
 *		not reported one by one.
 */
static List *
gone_tables_of(List *entries)
{
	List	   *result = NIL;
	ListCell   *lc;

	foreach(lc, entries)
	{
		Entry	   *e = (Entry *) lfirst(lc);

		if (!e->due && strcmp(e->a.kind, "table") == 0 &&
			strcmp(e->status, "missing") == 0 &&
			(strcmp(e->state, "done") == 0 || strcmp(e->state, "finalized") == 0))
			result = lappend(result, makeString(e->a.identity));
	}
	return result;
}

/*
 * check_entry
 *		Report one registry row; returns true when it must be dropped (a
 *		leftover that is still there), which the caller does when repairing,
 *		and reports (emit_leftover).  A row whose object is gone and whose
 *		event happened is marked dropped here when repairing.
 */
static bool
check_entry(Doctor *dr, PGconn *conn, const Entry *e, List *gone_tables)
{
	const char *location = e->a.service ? e->a.service : "source";
	char	   *status = e->status;
	bool		exists = strcmp(status, "missing") != 0;

	if (e->due && exists)
		return true;
	if (e->due)
	{
		if (dr->repair)
			splitdb_artifact_dropped(e->a.artifact_id);
		emit(dr, "info", e->job_service, e->a.job_id, location, object_text(e),
			 "recorded, but gone already", "mark its record dropped", dr->repair);
		return false;
	}
	/* a job in the middle of its run makes its objects after their records */
	if (strcmp(e->state, "done") != 0 && strcmp(e->state, "finalized") != 0)
		return false;
	/* the index, trigger or constraint of a table that is gone: its row says it */
	if (!exists && e->a.parent != NULL && list_member(gone_tables, makeString(e->a.parent)))
		return false;
	if (!exists && e->a.service != NULL && strcmp(e->a.kind, "table") == 0)
		emit(dr, "critical", e->job_service, e->a.job_id, location, object_text(e),
			 psprintf("missing, though the job is %s: the table was dropped in the sibling since the cutover (by its owner, as an application's migration may drop it, or by a superuser), with its indexes, triggers and constraints",
					  e->state),
			 psprintf("none: the rows written to it since the cutover went with it, so splitdb_rollback() refuses; create it again by hand with its rows, or keep the service where it is with splitdb_finalize('%s')",
					  e->job_service),
			 false);
	else if (!exists && gone_tables != NIL && strcmp(e->a.kind, "index") == 0)
		emit(dr, "critical", e->job_service, e->a.job_id, location, object_text(e),
			 psprintf("missing, though the job is %s; tables of the same database were dropped since the cutover (%s), and their indexes went with them",
					  e->state, names_text(gone_tables)),
			 "none: if it was an index of one of them, their rows say what to do; else restore it by hand, or roll the job back",
			 false);
	else if (!exists)
		emit(dr, "critical", e->job_service, e->a.job_id, location, object_text(e),
			 psprintf("missing, though the job is %s", e->state),
			 "none: splitdb never makes it again, since writes may have been lost or left unchecked; restore it by hand, or roll the job back",
			 false);
	else if (strcmp(status, "disabled") == 0 && !reference_off(e))
		emit(dr, "critical", e->job_service, e->a.job_id, location, object_text(e),
			 "the trigger is disabled: writes go unchecked",
			 "none: find who disabled it and why; splitdb_reference_mode() sets a reference's triggers",
			 false);
	else if (strcmp(e->a.kind, "capture log") == 0 && conn != NULL)
		check_capture_log(dr, conn, e, location);
	return false;
}

/*
 * check_switched
 *		A done job of the sibling conn reaches whose capture is closed
 *		there: a splitdb_rollback() stopped after the sibling's commit, so
 *		the service's tables refuse every write and the source still has
 *		its shims, until splitdb_rollback() finishes.  Reported once per
 *		job (critical, never repaired: only the rollback goes on from
 *		there), unless a process holds the job's lock (a rollback on its
 *		way).  Connected to SPI.
 */
static void
check_switched(Doctor *dr, PGconn *conn, const char *service, List *entries)
{
	List	   *seen = NIL;
	ListCell   *lc;

	foreach(lc, entries)
	{
		Entry	   *e = (Entry *) lfirst(lc);
		const char *job[1] = {psprintf(INT64_FORMAT, e->a.job_id)};

		if (strcmp(e->state, "done") != 0 || list_member(seen, makeString((char *) job[0])))
			continue;
		seen = lappend(seen, makeString((char *) job[0]));
		if (!splitdb_capture_closed(conn, service, e->a.job_id))
			continue;
		splitdb_catalog_exec_text("SELECT EXISTS (SELECT FROM pg_catalog.pg_locks l"
								  " WHERE l.locktype = 'advisory'"
								  "   AND l.classid::pg_catalog.int8 = $2::pg_catalog.int8"
								  "   AND l.objid::pg_catalog.int8 = $1::pg_catalog.int8 AND l.objsubid = 2)",
								  2, (const char *[]) {job[0], psprintf("%d", SPLITDB_JOB_LOCK_KEY)}, false);
		if (strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1), "t") == 0)
			continue;
		emit(dr, "critical", e->job_service, e->a.job_id, service,
			 psprintf("the tables of job " INT64_FORMAT, e->a.job_id),
			 "a splitdb_rollback() stopped after the sibling's commit: these tables refuse every write, and writes through the source's shims fail, until it finishes",
			 psprintf("none here: call splitdb_rollback('%s') to finish it", e->job_service),
			 false);
	}
}

/* connect_sibling()'s work: the connection to a server */
typedef struct SiblingConnect
{
	const char *server;
	const char *service;
	PGconn	   *conn;
} SiblingConnect;

static void
connect_server(void *arg)
{
	SiblingConnect *c = (SiblingConnect *) arg;

	c->conn = splitdb_remote_connect_server(c->server, c->service);
}

/*
 * connect_sibling
 *		A connection to the sibling of service, or NULL (reported as a
 *		warning) when it cannot be reached.  The error is caught in a
 *		subtransaction, which the SPI connection outlives.
 */
static PGconn *
connect_sibling(Doctor *dr, const char *service)
{
	SplitdbService *svc = splitdb_catalog_get_service(service, SPLITDB_LOCK_NONE, true);
	SiblingConnect c = {NULL, service, NULL};
	ErrorData  *why;

	if (svc == NULL)
	{
		emit(dr, "warning", service, 0, service, psprintf("service %s", service),
			 "the registry names a service that is gone", "none", false);
		return NULL;
	}
	c.server = svc->server;
	why = splitdb_subxact_catch(connect_server, &c, 0);
	if (why != NULL)
	{
		emit(dr, "warning", service, 0, service, psprintf("sibling of service %s", service),
			 psprintf("cannot be reached: %s", why->message),
			 "none: its objects were not checked; call splitdb_doctor() again once it answers",
			 false);
		return NULL;
	}
	return c.conn;
}

/*
 * drop_relations
 *		The relations the source's drops of artifacts lock ACCESS EXCLUSIVE:
 *		the tables and capture logs dropped, and the tables of the
 *		triggers, constraints and policies dropped (those that exist).
 *		Connected to SPI.
 */
static List *
drop_relations(List *artifacts)
{
	List	   *relids = NIL;
	ListCell   *lc;

	foreach(lc, artifacts)
	{
		SplitdbArtifact *a = (SplitdbArtifact *) lfirst(lc);
		const char *name = a->parent ? a->parent :
			(strcmp(a->kind, "table") == 0 || strcmp(a->kind, "capture log") == 0) ? a->identity : NULL;
		Oid			types[1] = {TEXTOID};
		Datum		values[1];
		bool		isnull;
		Datum		relid;

		if (a->service != NULL || name == NULL)
			continue;
		values[0] = CStringGetTextDatum(name);
		splitdb_spi_exec("SELECT pg_catalog.to_regclass($1)::pg_catalog.oid",
						 1, types, values, NULL, true, 1);
		relid = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (!isnull)
			relids = list_append_unique_oid(relids, DatumGetObjectId(relid));
	}
	return relids;
}

/*
 * drop_bounded()'s fn for the source's leftovers, a List of
 * SplitdbArtifact: their relations' locks first, within one
 * splitdb.cutover_lock_timeout for them all, then the drops
 */
static void
undo_source(void *arg)
{
	List	   *artifacts = (List *) arg;

	splitdb_lockwait_relations(drop_relations(artifacts), AccessExclusiveLock,
							   splitdb_cutover_lock_timeout);
	(void) splitdb_undo_source(artifacts);
}

/*
 * check_place
 *		The registry rows of one database (service NULL: the source).  The
 *		leftovers of a sibling go in one remote transaction; the source's
 *		together (a capture's triggers and its log, tables that reference
 *		one another), under drop_bounded(), and when they cannot get their
 *		locks each is reported not repaired, with the reason.
 */
static void
check_place(Doctor *dr, const char *service, List *entries)
{
	PGconn	   *volatile conn = NULL;
	List	   *volatile leftovers = NIL;
	List	   *volatile drops = NIL;
	char	   *volatile why = NULL;
	List	   *gone_tables;
	ListCell   *lc;

	if (service != NULL && (conn = connect_sibling(dr, service)) == NULL)
		return;
	PG_TRY();
	{
		fetch_statuses(conn, service, entries);
		gone_tables = gone_tables_of(entries);
		foreach(lc, entries)
		{
			Entry	   *e = (Entry *) lfirst(lc);

			if (check_entry(dr, conn, e, gone_tables))
			{
				leftovers = lappend(leftovers, e);
				drops = lappend(drops, &e->a);
			}
		}
		if (service != NULL)
			check_switched(dr, conn, service, entries);
		if (dr->repair && drops != NIL && service != NULL)
		{
			splitdb_undo_sibling(conn, service, drops);
			splitdb_undo_mark(drops, service);
		}
		else if (dr->repair && drops != NIL)
			why = drop_bounded(undo_source, drops);
	}
	PG_FINALLY();
	{
		splitdb_remote_disconnect(conn);
	}
	PG_END_TRY();
	foreach(lc, leftovers)
		emit_leftover(dr, (Entry *) lfirst(lc), dr->repair && why == NULL, why);
}

/* the registry, database by database */
static void
check_registry(Doctor *dr)
{
	List	   *entries = standing_entries();
	List	   *place = NIL;
	const char *current = NULL;
	bool		started = false;
	ListCell   *lc;

	foreach(lc, entries)
	{
		Entry	   *e = (Entry *) lfirst(lc);
		bool		same = started &&
			((current == NULL && e->a.service == NULL) ||
			 (current != NULL && e->a.service != NULL && strcmp(current, e->a.service) == 0));

		if (started && !same)
		{
			check_place(dr, current, place);
			place = NIL;
		}
		current = e->a.service;
		started = true;
		place = lappend(place, e);
	}
	if (started)
		check_place(dr, current, place);
}

/* drop_bounded()'s fn for a reference's ends in the source: "{id}" */
static void
drop_reference_ends(void *arg)
{
	const char *params[1] = {(const char *) arg};

	splitdb_catalog_exec_text("SELECT splitdb.drop_reference_ends($1::bigint[])",
							  1, params, false);
}

/* check_sibling_drops()'s work: the ends of a sibling whose table was dropped */
typedef struct SiblingDrops
{
	PGconn	   *conn;
	const char *service;
	List	   *rows;			/* (reference_id, side in words, own_table) */
} SiblingDrops;

static void
fetch_sibling_drops(void *arg)
{
	SiblingDrops *d = (SiblingDrops *) arg;
	PGresult   *res;

	res = splitdb_remote_exec(d->conn,
							  "SELECT e.reference_id::pg_catalog.text,"
							  "       CASE e.side WHEN 'c' THEN 'referencing' ELSE 'referenced' END,"
							  "       e.own_table"
							  "  FROM splitdb.reference_end e"
							  " WHERE e.own_server IS NULL"
							  "   AND NOT EXISTS (SELECT FROM pg_catalog.pg_class c WHERE c.oid = e.relid)"
							  " ORDER BY e.reference_id, e.side",
							  0, NULL, d->service);
	d->rows = splitdb_remote_result_rows(res);
	splitdb_remote_clear(res);
}

/*
 * check_sibling_drops
 *		Strict references whose table in a sibling was dropped
 *		(dropguard.c there keeps the end's row): as for a table dropped in
 *		the source, they check nothing, and their other ends still cost a
 *		round trip a write.  The source does not hear of such a drop, so
 *		every sibling that holds an end of a strict reference is asked.
 */
static void
check_sibling_drops(Doctor *dr)
{
	ListCell   *lc;

	splitdb_catalog_exec_text("SELECT DISTINCT l.location::text"
							  "  FROM splitdb.reference r"
							  "  JOIN splitdb.reference_placement p ON p.reference_id = r.reference_id,"
							  "       LATERAL (VALUES (p.child_location), (p.parent_location)) l(location)"
							  " WHERE r.mode = 'strict' AND r.dropped_at IS NOT NULL"
							  "   AND l.location <> 'source'"
							  " ORDER BY 1",
							  0, NULL, false);
	foreach(lc, splitdb_catalog_result_rows())
	{
		const char *service = ((char **) lfirst(lc))[0];
		SiblingDrops d = {NULL, service, NIL};
		ErrorData  *why;
		ListCell   *rc;

		if ((d.conn = connect_sibling(dr, service)) == NULL)
			continue;
		why = splitdb_subxact_catch(fetch_sibling_drops, &d, 0);
		splitdb_remote_disconnect(d.conn);
		if (why != NULL)
		{
			emit(dr, "warning", service, 0, service, psprintf("sibling of service %s", service),
				 psprintf("its reference ends cannot be read: %s", why->message),
				 "none: they were not checked; call splitdb_doctor() again once it answers",
				 false);
			continue;
		}
		foreach(rc, d.rows)
		{
			char	  **end = (char **) lfirst(rc);
			const char *params[1] = {end[0]};
			char	  **ref;

			splitdb_catalog_exec_text("SELECT j.service::text, j.job_id::text, r.constraint_name::text"
									  "  FROM splitdb.reference r JOIN splitdb.job j ON j.job_id = r.job_id"
									  " WHERE r.reference_id = $1::bigint AND r.mode = 'strict'"
									  "   AND r.dropped_at IS NOT NULL",
									  1, params, false);
			if (SPI_processed == 0)
				continue;
			ref = (char **) linitial(splitdb_catalog_result_rows());
			emit(dr, "warning", ref[0], pg_strtoint64(ref[1]), service,
				 psprintf("reference %s (%s)", end[0], ref[2]),
				 psprintf("its %s table %s in the sibling of service %s was dropped: the reference checks nothing, and its triggers in the other database still cost a round trip for each write they check",
						  end[1], end[2], service),
				 psprintf("none: turn it off with SELECT splitdb_reference_mode(%s, 'off')", end[0]),
				 false);
		}
	}
}

/* the source's reference ends against the references and the jobs */
static void
check_references(Doctor *dr)
{
	ListCell   *lc;

	/* ends of references that are gone, or whose two ends are in the source */
	splitdb_catalog_exec_text("SELECT DISTINCT e.reference_id::text,"
							  "       coalesce(p.child_service, p.parent_service)::text,"
							  "       CASE WHEN p.reference_id IS NULL THEN 'the reference is gone'"
							  "            ELSE 'both ends are in the source again' END"
							  "  FROM splitdb.reference_end e"
							  "  LEFT JOIN splitdb.reference_placement p ON p.reference_id = e.reference_id"
							  " WHERE p.reference_id IS NULL"
							  "    OR (p.child_location = 'source' AND p.parent_location = 'source')"
							  " ORDER BY 1",
							  0, NULL, false);
	foreach(lc, splitdb_catalog_result_rows())
	{
		char	  **row = (char **) lfirst(lc);
		char	   *why = NULL;
		const char *action = "drop its ends (splitdb.drop_reference_ends)";

		if (dr->repair)
			why = drop_bounded(drop_reference_ends, psprintf("{%s}", row[0]));
		emit(dr, "warning", row[1], 0, "source", psprintf("reference %s", row[0]),
			 psprintf("its ends are left in the source: %s", row[2]),
			 why ? psprintf("%s; %s", action, why) : action, dr->repair && why == NULL);
	}

	/*
	 * references whose table in the source was dropped (dropguard.c): they
	 * check nothing, and their other ends still cost a round trip a write
	 */
	splitdb_catalog_exec_text("SELECT r.reference_id::text, j.service::text, j.job_id::text,"
							  "       r.constraint_name::text,"
							  "       CASE e.side WHEN 'c' THEN 'referencing' ELSE 'referenced' END,"
							  "       e.own_table"
							  "  FROM splitdb.reference_end e"
							  "  JOIN splitdb.reference r ON r.reference_id = e.reference_id"
							  "  JOIN splitdb.job j ON j.job_id = r.job_id"
							  " WHERE e.own_server IS NULL AND r.mode = 'strict'"
							  "   AND NOT EXISTS (SELECT FROM pg_catalog.pg_class c WHERE c.oid = e.relid)"
							  " ORDER BY r.reference_id, e.side",
							  0, NULL, false);
	foreach(lc, splitdb_catalog_result_rows())
	{
		char	  **row = (char **) lfirst(lc);

		emit(dr, "warning", row[1], pg_strtoint64(row[2]), "source",
			 psprintf("reference %s (%s)", row[0], row[3]),
			 psprintf("its %s table %s was dropped: the reference checks nothing, and its triggers in the other database still cost a round trip for each write they check",
					  row[4], row[5]),
			 psprintf("none: turn it off with SELECT splitdb_reference_mode(%s, 'off')", row[0]),
			 false);
	}

	/* references that cross databases with no end in the source */
	splitdb_catalog_exec_text("SELECT p.reference_id::text, j.service::text, j.job_id::text,"
							  "       p.constraint_name::text"
							  "  FROM splitdb.reference_placement p JOIN splitdb.job j ON j.job_id = p.job_id"
							  " WHERE p.dropped_at IS NOT NULL AND j.state IN ('done', 'finalized')"
							  "   AND (p.child_location = 'source') <> (p.parent_location = 'source')"
							  "   AND NOT EXISTS (SELECT FROM splitdb.reference_end e"
							  "                    WHERE e.reference_id = p.reference_id)"
							  " ORDER BY 1",
							  0, NULL, false);
	foreach(lc, splitdb_catalog_result_rows())
	{
		char	  **row = (char **) lfirst(lc);

		emit(dr, "critical", row[1], pg_strtoint64(row[2]), "source",
			 psprintf("reference %s (%s)", row[0], row[3]),
			 "the reference crosses databases, but the source holds none of its ends: it is not enforced",
			 "none: check splitdb_orphans(), then install its ends again (a cutover does)", false);
	}
}

/*
 * splitdb_doctor
 *		SQL: splitdb_doctor(repair boolean DEFAULT false)
 *		RETURNS TABLE (severity text, service name, job_id bigint,
 *		               location text, object text, problem text,
 *		               action text, repaired boolean)
 */
Datum
splitdb_doctor(PG_FUNCTION_ARGS)
{
	Doctor		dr;

	splitdb_require_superuser("splitdb_doctor");
	InitMaterializedSRF(fcinfo, 0);
	dr.rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	dr.repair = PG_GETARG_BOOL(0);

	splitdb_spi_connect();
	check_workers(&dr);
	check_registry(&dr);
	check_references(&dr);
	check_sibling_drops(&dr);
	SPI_finish();
	return (Datum) 0;
}
