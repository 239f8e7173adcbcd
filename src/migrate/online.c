/*-------------------------------------------------------------------------
 *
 * online.c
 *	  Online mode: the source captures the writes to the service's tables
 *	  while the job runs, and replay rounds carry them into the sibling.
 *
 * The capture is the one the sibling uses after a cutover (capture.c): key
 * logs in schema splitdb_capture of the source, filled by statement
 * triggers.  It is installed in the preparing step, committed before the
 * copy reads its first row.  CREATE TRIGGER takes a SHARE ROW EXCLUSIVE
 * lock, which waits for every open writer of the table and makes later
 * writers wait behind it, so it is taken with lock_timeout and retried
 * (splitdb_online_retry): no application statement waits longer than one
 * attempt.  Once it has committed, every write is logged, so any snapshot
 * taken after it, each batch of the copy included, converges on the
 * source's rows when the log is replayed.
 *
 * A round (splitdb_online_round) replays every table's log as the caller's
 * snapshot shows it: a REPEATABLE READ transaction of the worker, or the
 * cutover's transaction, which holds the tables locked.  In one remote
 * transaction of the sibling, with session_replication_role = replica (no
 * user trigger and no foreign key check fires on replayed rows), it deletes
 * the keys logged (gathered in a temporary table there, in batches of
 * SPLITDB_ONLINE_BATCH keys as jsonb, then one DELETE) and sends the
 * source's current rows of those keys as one COPY, encoded as the copy
 * encodes them (copy.c: binary where every column can cross in binary),
 * streamed without waiting for the sibling batch by batch.  A T entry
 * (TRUNCATE) replaces the table.  After the sibling commits, the log entries the snapshot saw,
 * and only those, are deleted with one DELETE in the same snapshot: under
 * REPEATABLE READ a DELETE sees exactly the rows the round read, and an
 * entry that commits later stays for the next round.  A crash between the
 * two commits replays the same keys again, which is idempotent.
 *
 * Invariants:
 * - After a round the sibling's tables equal the source's as of the round's
 *   snapshot: a row's change and its log entry commit together, so the
 *   snapshot holds both or neither, and a key not in the log has not
 *   changed since the round that last replayed it (or since the copy).
 * - All tables of a round share one snapshot and one sibling transaction,
 *   so the sibling's foreign keys and unique keys among them hold after it.
 * - DDL on the tables is refused while the job runs (ddlguard.c); should
 *   some get past that, each round first compares the tables' columns with
 *   the sibling's and checks the capture, and fails the job on a change.
 * - The capture is dropped in the cutover's transaction
 *   (splitdb_online_remove_capture), after the last round, under the
 *   cutover's locks; a cancel drops it through the registry, with bounded
 *   lock waits retried as the cutover's are (splitdb_online_backoff).
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/online.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "portability/instr_time.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

#include "metadata/artifact.h"
#include "metadata/catalog.h"
#include "migrate/capture.h"
#include "migrate/copy.h"
#include "migrate/lockwait.h"
#include "migrate/online.h"
#include "migrate/replay.h"
#include "migrate/verify.h"
#include "migrate/worker_int.h"
#include "remote/remote.h"

/* rows a replay batch carries */
#define SPLITDB_ONLINE_BATCH	1000

/* one table of a round: the root of a tree, with its log */
typedef struct RoundTable
{
	char	   *table;			/* quoted, qualified: the same in the sibling */
	Oid			relid;
	char		relkind;
	char	   *log;			/* quoted, qualified */
	List	   *keys;			/* quoted key columns; NIL: none */
} RoundTable;

/*
 * splitdb_online_backoff
 *		Wait before the attempt after attempt (1 for the first) to take
 *		locks that were not granted in time: 100 ms doubling up to 5 s,
 *		between 3/4 and 5/4 of it, so that retries of several sessions do
 *		not fall in step.  The wait is on the latch: a cancel or SIGTERM
 *		ends it, and raises.
 */
void
splitdb_online_backoff(int attempt)
{
	long		pause;

	pause = Min(100L << Min(attempt - 1, 6), 5000L);
	pause = pause * 3 / 4 + (long) (pg_prng_double(&pg_global_prng_state) * pause / 2);
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 pause, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

/*
 * splitdb_online_retry
 *		Run fn (which begins and commits a transaction of its own) until it
 *		succeeds, at most job->cutover_attempts times.  An attempt that fails
 *		with lock_not_available (a lock not granted within lock_timeout, or a
 *		freeze that would last too long) is rolled back, the sibling's open
 *		transaction too, and after a pause that doubles from 100 ms up to
 *		5 s, with jitter, between (when not NULL) runs and fn is tried again.
 *		After the last attempt, give_up (when not NULL) runs in a transaction
 *		of its own and the error is raised, naming the attempts and the
 *		last one's reason (which splitdb_status shows).  Any other
 *		error is raised at once.
 */
void
splitdb_online_retry(SplitdbJob *job, const char *what,
					 void (*fn) (SplitdbJob *job, int attempt),
					 void (*between) (SplitdbJob *job),
					 void (*give_up) (SplitdbJob *job))
{
	MemoryContext cxt = CurrentMemoryContext;

	for (int attempt = 1;; attempt++)
	{
		ErrorData  *edata = NULL;

		PG_TRY();
		{
			fn(job, attempt);
		}
		PG_CATCH();
		{
			/* only a lock not had in time is tried again */
			MemoryContextSwitchTo(cxt);
			edata = CopyErrorData();
			if (edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
				PG_RE_THROW();
			FlushErrorState();
		}
		PG_END_TRY();

		/* no `continue` inside PG_CATCH: it would leave PG_TRY's block only */
		if (edata == NULL)
			return;

		HOLD_INTERRUPTS();
		AbortCurrentTransaction();
		RESUME_INTERRUPTS();
		MemoryContextSwitchTo(cxt);
		splitdb_remote_rollback_open(job->conn, job->service);
		if (attempt >= job->cutover_attempts)
		{
			if (give_up != NULL)
				give_up(job);
			ereport(ERROR,
					(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
					 errmsg("could not %s for service \"%s\" in %d attempt%s: %s",
							what, job->service, attempt, attempt == 1 ? "" : "s",
							edata->message),
					 edata->detail ? errdetail("The last attempt: %s", edata->detail) : 0,
					 errhint("Find the sessions that hold locks on the service's tables (pg_locks, pg_stat_activity), or raise splitdb.cutover_lock_timeout or splitdb.cutover_attempts; splitdb_migrate('%s') resumes, and the capture keeps every write meanwhile.",
							 job->service)));
		}
		ereport(LOG,
				(errmsg("job " INT64_FORMAT " of service \"%s\": attempt %d to %s failed, retrying: %s",
						job->job_id, job->service, attempt, what, edata->message)));

		splitdb_online_backoff(attempt);
		if (between != NULL)
			between(job);
	}
}

/* one attempt to install the capture, under the job's lock_timeout */
static void
install_attempt(SplitdbJob *job, int attempt)
{
	const char *params[2];

	splitdb_worker_begin("installing change capture on the service's tables (attempt %d)", attempt);
	params[0] = psprintf("%dms", job->cutover_lock_timeout);
	splitdb_worker_sql("SELECT pg_catalog.set_config('lock_timeout', $1, true)", 1, params);
	/* CREATE TRIGGER's lock on every relation first, within one budget */
	splitdb_lockwait_relations(job->relids, ShareRowExclusiveLock, job->cutover_lock_timeout);
	params[0] = splitdb_worker_int64_text(job->job_id);
	params[1] = splitdb_capture_tables(job->job_id);
	splitdb_worker_sql("SELECT splitdb.install_capture($1::bigint, $2::text[])", 2, params);
	splitdb_worker_commit();
}

/*
 * splitdb_online_capture
 *		Capture the writes to the job's tables in the source: recorded in
 *		the registry (dropped on cancel), then installed with bounded lock
 *		waits.  Idempotent.
 */
void
splitdb_online_capture(SplitdbJob *job)
{
	splitdb_worker_begin("recording the change capture");
	splitdb_capture_record(job->job_id, NULL, NULL);
	splitdb_worker_commit();

	splitdb_online_retry(job, "install change capture", install_attempt, NULL, NULL);
}

/*
 * splitdb_online_capture_intact
 *		Whether the job's capture in the source logs every write of every
 *		table.  In a transaction, connected to SPI.
 */
bool
splitdb_online_capture_intact(int64 job_id)
{
	const char *params[2];
	char	   *problem;

	params[0] = psprintf(INT64_FORMAT, job_id);
	params[1] = splitdb_capture_tables(job_id);
	splitdb_catalog_exec_text("SELECT splitdb.capture_problem($1::bigint, $2::text[])", 2, params, true);
	problem = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (problem != NULL)
		ereport(WARNING,
				(errmsg("the change capture of job %s is not intact: %s", params[0], problem)));
	return problem == NULL;
}

/* the tables of a round: every root of the job with its log */
static List *
round_tables(int64 job_id)
{
	const char *params[1] = {psprintf(INT64_FORMAT, job_id)};
	List	   *rows;
	List	   *tables = NIL;
	ListCell   *lc;

	splitdb_catalog_exec_text("SELECT t.table_name, t.relid::pg_catalog.text, t.relkind::pg_catalog.text,"
							  "       c.log::pg_catalog.text, c.key_columns::pg_catalog.text[]::pg_catalog.text"
							  "  FROM splitdb.job_table t"
							  "  JOIN splitdb.capture c ON c.relid = t.relid::pg_catalog.regclass"
							  " WHERE t.job_id = $1::bigint AND t.partition_root IS NULL"
							  "   AND c.job_id = $1::bigint"
							  " ORDER BY t.table_name",
							  1, params, true);
	rows = splitdb_catalog_result_rows();
	foreach(lc, rows)
	{
		char	  **row = (char **) lfirst(lc);
		RoundTable *t = palloc0(sizeof(RoundTable));
		char	  **keys;
		int			n;

		t->table = row[0];
		t->relid = (Oid) strtoul(row[1], NULL, 10);
		t->relkind = row[2][0];
		t->log = row[3];
		keys = splitdb_catalog_parse_text_array(row[4], &n);
		for (int i = 0; i < n; i++)
			t->keys = lappend(t->keys, (char *) quote_identifier(keys[i]));
		tables = lappend(tables, t);
	}
	return tables;
}

/*
 * The time budget of the round under way (splitdb_online_round's
 * budget_ms; 0: none) and when it began.
 */
static int	round_budget_ms = 0;
static instr_time round_began;

/* whether the round under way has run past its budget, when it has one */
static bool
past_round_budget(double *ms)
{
	instr_time	now;

	if (round_budget_ms <= 0)
		return false;
	INSTR_TIME_SET_CURRENT(now);
	INSTR_TIME_SUBTRACT(now, round_began);
	*ms = INSTR_TIME_GET_MILLISEC(now);
	return *ms > round_budget_ms;
}

/*
 * check_round_budget
 *		A round with a budget (the cutover's last, under the tables' locks)
 *		lets go as soon as it has run past it: lock_not_available, which
 *		the cutover's caller rolls back (the sibling's transaction too) and
 *		retries, instead of holding the application's writes until it ends.
 *		Called between the round's remote statements.
 */
static void
check_round_budget(SplitdbJob *job)
{
	double		ms;

	if (past_round_budget(&ms))
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("the last replay of service \"%s\" would hold writes longer than splitdb.cutover_max_freeze (%d ms)",
						job->service, round_budget_ms),
				 errdetail("It let go after %.0f ms, before it had replayed everything.", ms),
				 errhint("The next attempt tries again after more rounds without locks; raise splitdb.cutover_max_freeze, or migrate when fewer writes come in.")));
}

/*
 * within_round_budget
 *		splitdb_copy_rows()'s go_on: the COPY of a round's rows ends, and
 *		the caller's check_round_budget() then raises, once the round has
 *		run past its budget.  The COPY is ended normally, so that the
 *		sibling's transaction can be rolled back.
 */
static bool
within_round_budget(void *arg)
{
	double		ms;

	return !past_round_budget(&ms);
}

/*
 * The copy sources of the rounds' tables (column list, types, send
 * functions), made once for the worker's job, not at every round: the
 * cutover's last round runs under the tables' locks.  DDL on the tables is
 * refused while the job runs, and a round whose tables' columns changed
 * all the same fails before it writes (check_unchanged).
 */
typedef struct RoundSource
{
	Oid			relid;
	SplitdbCopySource *src;
} RoundSource;

static List *round_sources = NIL;

/* the copy source of relid, made in the job's context on first use */
static SplitdbCopySource *
round_source(SplitdbJob *job, Oid relid)
{
	ListCell   *lc;
	RoundSource *rs;
	MemoryContext old;

	foreach(lc, round_sources)
	{
		rs = (RoundSource *) lfirst(lc);
		if (rs->relid == relid)
			return rs->src;
	}
	old = MemoryContextSwitchTo(job->job_cxt);
	rs = palloc(sizeof(RoundSource));
	rs->relid = relid;
	rs->src = splitdb_copy_source(relid);
	round_sources = lappend(round_sources, rs);
	MemoryContextSwitchTo(old);
	return rs->src;
}

/*
 * copy_rows
 *		Send t's rows that query selects (its FROM names the table t) into
 *		the sibling's open transaction, as one COPY in the format of the
 *		copy (copy.c: binary where every column can cross in binary), then
 *		check the round's budget.  Returns the rows sent.
 */
static int64
copy_rows(SplitdbJob *job, const RoundTable *t, const char *from)
{
	SplitdbCopySource *src = round_source(job, t->relid);
	int64		rows;

	rows = splitdb_copy_rows(job->conn, src, psprintf("SELECT %s FROM %s", src->columns, from),
							 within_round_budget, NULL, job->service);
	check_round_budget(job);
	return rows;
}

/* what is done with the sibling's result of each batch (stream_each) */
typedef void (*BatchResult) (PGresult *res, void *arg);

/*
 * stream_each
 *		Read query (one jsonb column) here through a cursor, in the
 *		caller's snapshot, and run remote_sql in the sibling once per batch
 *		of SPLITDB_ONLINE_BATCH rows, with the batch as a jsonb array ($1);
 *		each batch's result goes to on_result when it is not NULL.
 *		Returns the rows read.
 */
static int64
stream_each(SplitdbJob *job, const char *query, const char *remote_sql,
			BatchResult on_result, void *arg)
{
	MemoryContext batch_cxt = AllocSetContextCreate(CurrentMemoryContext, "splitdb replay batch",
													ALLOCSET_DEFAULT_SIZES);
	SPIPlanPtr	plan = SPI_prepare(query, 0, NULL);
	Portal		portal;
	int64		total = 0;

	if (plan == NULL)
		splitdb_spi_failed(query, SPI_result);
	portal = SPI_cursor_open(NULL, plan, NULL, NULL, true);
	for (;;)
	{
		MemoryContext old;
		StringInfoData items;
		const char *params[1];
		uint64		n;

		CHECK_FOR_INTERRUPTS();
		SPI_cursor_fetch(portal, true, SPLITDB_ONLINE_BATCH);
		n = SPI_processed;
		if (n == 0)
			break;
		old = MemoryContextSwitchTo(batch_cxt);
		initStringInfo(&items);
		appendStringInfoChar(&items, '[');
		for (uint64 i = 0; i < n; i++)
		{
			if (i > 0)
				appendStringInfoChar(&items, ',');
			appendStringInfoString(&items,
								   SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
		}
		appendStringInfoChar(&items, ']');
		params[0] = items.data;
		if (on_result == NULL)
			splitdb_remote_command(job->conn, remote_sql, 1, params, job->service);
		else
		{
			PGresult   *res = splitdb_remote_exec(job->conn, remote_sql, 1, params,
												  job->service);

			on_result(res, arg);
			splitdb_remote_clear(res);
		}
		MemoryContextSwitchTo(old);
		MemoryContextReset(batch_cxt);
		SPI_freetuptable(SPI_tuptable);
		total += n;
		check_round_budget(job);
	}
	SPI_cursor_close(portal);
	MemoryContextDelete(batch_cxt);
	return total;
}

/* stream_each without a result */
static int64
stream(SplitdbJob *job, const char *query, const char *remote_sql)
{
	return stream_each(job, query, remote_sql, NULL, NULL);
}

/* the count and checksum of a set of rows, summed over batches */
typedef struct Checksum
{
	int64		rows;
	char	   *sum;			/* numeric, as text */
} Checksum;

/* add a batch's count and checksum (the sibling's result) to a Checksum */
static void
add_checksum(PGresult *res, void *arg)
{
	Checksum   *c = (Checksum *) arg;
	const char *params[2] = {c->sum, splitdb_remote_value(res, 0, 1)};

	c->rows += pg_strtoint64(splitdb_remote_value(res, 0, 0));
	splitdb_catalog_exec_text("SELECT ($1::pg_catalog.numeric + $2::pg_catalog.numeric)::pg_catalog.text",
							  2, params, true);
	c->sum = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
}

/*
 * check_replayed
 *		At the cutover, under its locks: the rows of the keys the last
 *		replay wrote, counted and checksummed here and in the sibling (with
 *		verify.c's row hash), must agree; else the job fails before
 *		anything is switched.  Before the log entries are deleted.
 */
static void
check_replayed(SplitdbJob *job, const RoundTable *t)
{
	const char *only = t->relkind == 'r' ? "ONLY " : "";
	int			nterms;
	char	   *text_terms;
	char	   *terms = splitdb_verify_row_terms(t->relid, &nterms, &text_terms);
	Checksum	here;
	Checksum	there = {0, "0"};
	bool		isnull;

	/* numeric, jsonb and floats by their text, as verification compares them */
	if (text_terms != NULL)
		terms = text_terms;

	splitdb_spi_exec(psprintf("SELECT pg_catalog.count(*),"
							  "       coalesce(pg_catalog.sum(%s), 0)::pg_catalog.text"
							  "  FROM %s%s t WHERE EXISTS (SELECT FROM %s l WHERE %s)",
							  splitdb_verify_row_hash(terms, nterms, SPLITDB_ROW_HASH_LOCAL),
							  only, t->table, t->log, splitdb_replay_key_join(t->keys, "l", "t")),
					 0, NULL, NULL, NULL, true, 1);
	here.rows = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	here.sum = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);

	stream_each(job,
				psprintf("SELECT pg_catalog.to_jsonb(k.*) FROM (SELECT DISTINCT %s FROM %s) k",
						 splitdb_replay_key_list(t->keys), t->log),
				psprintf("SELECT pg_catalog.count(*),"
						 "       coalesce(pg_catalog.sum(%s), 0)::pg_catalog.text"
						 "  FROM %s%s t WHERE EXISTS (SELECT FROM %s WHERE %s)",
						 splitdb_verify_row_hash(terms, nterms, NULL), only, t->table, splitdb_replay_key_rows(t->relid, t->keys, "k"),
						 splitdb_replay_key_join(t->keys, "k", "t")),
				add_checksum, &there);

	if (here.rows != there.rows || strcmp(here.sum, there.sum) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("the rows of table \"%s\" that the cutover's last replay wrote differ in the sibling of service \"%s\"",
						splitdb_message_name(t->table), job->service),
				 errdetail("Source: " INT64_FORMAT " rows, checksum %s; sibling: " INT64_FORMAT " rows, checksum %s.",
						   here.rows, here.sum, there.rows, there.sum),
				 errhint("Nothing was switched.  Find what wrote into the sibling's table; splitdb_migrate('%s') verifies every row again.",
						 job->service)));
}

/*
 * replay_table
 *		Replay t's log as the caller's snapshot shows it into the sibling's
 *		open transaction.  Returns the log entries read; adds the rows
 *		written to *rows.
 */
static int64
replay_table(SplitdbJob *job, const RoundTable *t, int64 *rows)
{
	const char *only = t->relkind == 'r' ? "ONLY " : "";
	int64		entries;
	bool		everything;
	bool		isnull;

	splitdb_spi_exec(psprintf("SELECT pg_catalog.count(*),"
							  "       coalesce(pg_catalog.bool_or(splitdb_op = 'T'), false)"
							  "  FROM %s", t->log),
					 0, NULL, NULL, NULL, true, 1);
	entries = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	everything = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	if (entries == 0)
		return 0;

	splitdb_worker_working_on("replaying %s", t->table);
	if (everything || t->keys == NIL)
	{
		/* a TRUNCATE: the table's rows replace the sibling's */
		splitdb_remote_command(job->conn, psprintf("DELETE FROM %s%s", only, t->table),
							   0, NULL, job->service);
		*rows += copy_rows(job, t, psprintf("%s%s t", only, t->table));
		return entries;
	}

	/*
	 * The keys logged go first, then their rows as they are now.  The keys
	 * are gathered in a temporary table of the sibling's session and
	 * deleted with one statement: a DELETE per batch would scan the table
	 * once per batch where it has no index on the key yet (the round
	 * before indexing).
	 */
	splitdb_remote_command(job->conn, "DROP TABLE IF EXISTS pg_temp.splitdb_replay_keys",
						   0, NULL, job->service);
	splitdb_remote_command(job->conn,
						   psprintf("CREATE TEMPORARY TABLE splitdb_replay_keys ON COMMIT DROP AS"
									" SELECT %s FROM %s%s WITH NO DATA",
									splitdb_replay_key_list(t->keys), only, t->table),
						   0, NULL, job->service);
	stream(job,
		   psprintf("SELECT pg_catalog.to_jsonb(k.*) FROM (SELECT DISTINCT %s FROM %s) k",
					splitdb_replay_key_list(t->keys), t->log),
		   psprintf("INSERT INTO pg_temp.splitdb_replay_keys SELECT %s FROM %s",
					splitdb_replay_key_list(t->keys),
					splitdb_replay_key_rows(t->relid, t->keys, "k")));
	splitdb_remote_command(job->conn, "ANALYZE pg_temp.splitdb_replay_keys", 0, NULL, job->service);
	splitdb_remote_command(job->conn,
						   psprintf("DELETE FROM %s%s a USING pg_temp.splitdb_replay_keys k WHERE %s",
									only, t->table, splitdb_replay_key_join(t->keys, "a", "k")),
						   0, NULL, job->service);
	splitdb_remote_command(job->conn, "DROP TABLE pg_temp.splitdb_replay_keys", 0, NULL, job->service);
	*rows += copy_rows(job, t,
					   psprintf("%s%s t WHERE EXISTS (SELECT FROM %s l WHERE %s)",
								only, t->table, t->log, splitdb_replay_key_join(t->keys, "l", "t")));
	return entries;
}

/* the columns of a table as a round compares them: names, types, typmods */
#define COLUMNS_SQL \
	"SELECT pg_catalog.string_agg(a.attname || ' ' || t.typname || ' ' || a.atttypmod, ', '" \
	"                             ORDER BY a.attnum)" \
	"  FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid" \
	" WHERE a.attrelid = pg_catalog.to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped"

/*
 * check_unchanged
 *		The backstop behind the DDL guard (ddlguard.c), for DDL that got
 *		past it: before a round, every table must still have the sibling
 *		table's columns, and the capture must be intact; else the job fails
 *		before the round writes anything, rather than diverge.
 */
static void
check_unchanged(SplitdbJob *job, List *tables)
{
	ListCell   *lc;

	if (!splitdb_online_capture_intact(job->job_id))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the change capture of service \"%s\" was changed during its migration",
						job->service),
				 errdetail("Writes to its tables may have gone unlogged since."),
				 errhint("splitdb_migrate('%s') resumes: it installs the capture again and copies the tables again.",
						 job->service)));
	foreach(lc, tables)
	{
		RoundTable *t = (RoundTable *) lfirst(lc);
		const char *params[1] = {t->table};
		char	   *here;
		char	   *there;

		splitdb_catalog_exec_text(COLUMNS_SQL, 1, params, true);
		here = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		there = splitdb_remote_scalar(job->conn, COLUMNS_SQL, 1, params, job->service);
		if (here == NULL || there == NULL || strcmp(here, there) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("table \"%s\" of service \"%s\" was altered during its migration",
							splitdb_message_name(t->table), job->service),
					 errdetail("Its columns are (%s) in the source and (%s) in the sibling.",
							   here ? here : "none", there ? there : "none"),
					 errhint("Cancel the job with splitdb_cancel('%s') and migrate the service again.",
							 job->service)));
	}
}

/*
 * The planner settings of a round, on both sides, for its transaction only.
 * A round touches the rows of the keys logged: a bounded set, looked up by
 * key, on pages that were just written.  With the default random_page_cost
 * (4, an uncached disk) the planner joins tens of thousands of keys by a
 * sequential scan of the whole table (a hash join) instead of one probe of
 * the key index per key, the cutover's last round included, under its
 * locks.  An index probe is
 * costed as a sequential page here, so the key index wins until the keys
 * are a large share of the table (and the hash join stays where there is no
 * key index yet: the round before indexing).  JIT is off: a round's
 * statements are many and small, and their plans' costs can pass
 * jit_above_cost only because of the table's size.
 */
#define ROUND_PLANNER_CALLS \
	"pg_catalog.set_config('random_page_cost', pg_catalog.current_setting('seq_page_cost'), true), " \
	"pg_catalog.set_config('jit', 'off', true)"
#define ROUND_PLANNER_SQL "SELECT " ROUND_PLANNER_CALLS

/*
 * splitdb_online_round
 *		Replay every table's log, as the snapshot of the caller's
 *		transaction shows it (REPEATABLE READ, or one holding the tables
 *		locked), into the sibling, in one sibling transaction that commits
 *		before this returns; with check (the cutover's last round), compare
 *		the rows it wrote on both sides; then delete the entries read, in
 *		the caller's transaction.  With budget_ms > 0, the round fails with
 *		lock_not_available as soon as it has run longer than that
 *		(check_round_budget).  Fills *round.
 */
void
splitdb_online_round(SplitdbJob *job, bool check, int budget_ms, SplitdbRound *round)
{
	List	   *tables = round_tables(job->job_id);
	List	   *replayed = NIL;
	ListCell   *lc;
	instr_time	start;
	instr_time	duration;

	INSTR_TIME_SET_CURRENT(start);
	round_began = start;
	round_budget_ms = budget_ms;
	memset(round, 0, sizeof(*round));
	check_unchanged(job, tables);

	splitdb_spi_exec(ROUND_PLANNER_SQL, 0, NULL, NULL, NULL, false, 0);
	splitdb_remote_command(job->conn, "BEGIN", 0, NULL, job->service);
	splitdb_remote_command(job->conn,
						   "SELECT pg_catalog.set_config('session_replication_role', 'replica', true), "
						   ROUND_PLANNER_CALLS, 0, NULL, job->service);
	foreach(lc, tables)
	{
		RoundTable *t = (RoundTable *) lfirst(lc);
		int64		n;

		check_round_budget(job);
		n = replay_table(job, t, &round->rows);

		if (n > 0)
			replayed = lappend(replayed, t);
		round->entries += n;
	}
	splitdb_remote_command(job->conn, "COMMIT", 0, NULL, job->service);
	splitdb_worker_clear_working_on();

	if (check)
	{
		foreach(lc, replayed)
		{
			RoundTable *t = (RoundTable *) lfirst(lc);

			if (t->keys != NIL)
				check_replayed(job, t);
		}
	}

	/* the snapshot's entries, and only those: the sibling has them now */
	foreach(lc, replayed)
		splitdb_spi_exec(psprintf("DELETE FROM %s", ((RoundTable *) lfirst(lc))->log),
						 0, NULL, NULL, NULL, false, 0);

	INSTR_TIME_SET_CURRENT(duration);
	INSTR_TIME_SUBTRACT(duration, start);
	round->seconds = INSTR_TIME_GET_DOUBLE(duration);
	round_budget_ms = 0;
}

/*
 * splitdb_online_pending
 *		The log entries not replayed yet, as committed now.  In a
 *		transaction, connected to SPI.
 */
int64
splitdb_online_pending(int64 job_id)
{
	const char *params[1] = {psprintf(INT64_FORMAT, job_id)};
	List	   *logs;
	ListCell   *lc;
	int64		pending = 0;

	splitdb_catalog_exec_text("SELECT DISTINCT c.log::pg_catalog.text FROM splitdb.capture c"
							  " WHERE c.job_id = $1::bigint ORDER BY 1",
							  1, params, true);
	logs = splitdb_catalog_result_rows();
	foreach(lc, logs)
	{
		bool		isnull;

		splitdb_spi_exec(psprintf("SELECT pg_catalog.count(*) FROM %s", ((char **) lfirst(lc))[0]),
						 0, NULL, NULL, NULL, true, 1);
		pending += DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
											   &isnull));
	}
	return pending;
}

/*
 * splitdb_online_record_lag
 *		Record in splitdb.job what is left to replay after a round: entries,
 *		the seconds a round would take for them at the rate of this one,
 *		and whether that shrank, grew or held since the last round.  In a
 *		transaction.
 */
void
splitdb_online_record_lag(SplitdbJob *job, const SplitdbRound *round, int64 pending)
{
	const char *params[3];
	double		rate = round->entries > 0 && round->seconds > 0 ?
		round->entries / round->seconds : 0;

	params[0] = splitdb_worker_int64_text(job->job_id);
	params[1] = splitdb_worker_int64_text(pending);
	params[2] = rate > 0 ? psprintf("%.3f", pending / rate) : (pending == 0 ? "0" : NULL);
	splitdb_worker_sql("UPDATE splitdb.job"
					   "   SET lag_trend = CASE WHEN lag_rows IS NULL THEN NULL"
					   "                        WHEN $2::bigint < lag_rows THEN 'shrinking'"
					   "                        WHEN $2::bigint > lag_rows THEN 'growing'"
					   "                        ELSE 'steady' END,"
					   "       lag_rows = $2::bigint, lag_seconds = $3::double precision,"
					   "       rounds = rounds + 1, lag_at = pg_catalog.clock_timestamp(),"
					   "       updated_at = pg_catalog.clock_timestamp()"
					   " WHERE job_id = $1::bigint", 3, params);
}

/*
 * splitdb_online_captured
 *		The relations the job's capture in the source logs (its rows of
 *		splitdb.capture), in the current memory context.  In a transaction,
 *		connected to SPI.
 */
List *
splitdb_online_captured(int64 job_id)
{
	const char *params[1] = {psprintf(INT64_FORMAT, job_id)};
	List	   *relids = NIL;
	ListCell   *lc;

	splitdb_catalog_exec_text("SELECT relid::pg_catalog.oid::pg_catalog.text FROM splitdb.capture"
							  " WHERE job_id = $1::bigint",
							  1, params, true);
	foreach(lc, splitdb_catalog_result_rows())
		relids = lappend_oid(relids, (Oid) strtoul(((char **) lfirst(lc))[0], NULL, 10));
	return relids;
}

/*
 * splitdb_online_remove_capture
 *		Drop the job's capture in the source (splitdb.drop_capture: triggers,
 *		logs, its rows in splitdb.capture, the log schema once empty) and
 *		mark its registry rows dropped, in the caller's transaction,
 *		connected to SPI.
 */
void
splitdb_online_remove_capture(int64 job_id)
{
	const char *params[1] = {psprintf(INT64_FORMAT, job_id)};

	splitdb_catalog_exec_text("SELECT splitdb.drop_capture($1::bigint)", 1, params, false);
	splitdb_catalog_exec_text("UPDATE splitdb.artifact SET dropped_at = pg_catalog.clock_timestamp()"
							  " WHERE job_id = $1::bigint AND service IS NULL AND dropped_at IS NULL"
							  "   AND (kind = 'capture log'"
							  "        OR (kind = 'trigger' AND identity LIKE 'splitdb\\_capture\\_%'))",
							  1, params, false);
}
