/*-------------------------------------------------------------------------
 *
 * splitdb.c
 *	  Module entry point: the magic block and splitdb's settings.
 *
 * Nothing else lives here.  The SQL-callable functions are in the files of
 * their concern (service.c, ownership.c, plan.c, dot.c, job.c, ...); this
 * file only defines the GUCs those files read and, when preloaded,
 * registers the launcher that resumes interrupted jobs (launcher.c).  The library may be loaded on demand by
 * the first splitdb call or at server start through shared_preload_libraries;
 * both paths run _PG_init once per process.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/splitdb.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "access/xact.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "compat.h"
#include "metadata/ownerrights.h"
#include "migrate/capture.h"
#include "reference/constraintsfwd.h"
#include "reference/execdepth.h"
#include "reference/fdwwatch.h"
#include "migrate/launcher.h"
#include "reference/refcheck.h"
#include "reference/refstats.h"
#include "reference/shimforms.h"
#include "splitdb.h"

PG_MODULE_MAGIC;

/* seconds to wait for a sibling to answer a connection attempt */
int			splitdb_connect_timeout = 10;

/* rows per copy batch, each one a checkpoint */
int			splitdb_batch_rows = 100000;
int			splitdb_copy_streams = SPLITDB_COPY_STREAMS_AUTO;
int			splitdb_copy_readers = SPLITDB_COPY_READERS_AUTO;
int			splitdb_fence_timeout = 60000;

/* kB of maintenance_work_mem for each index build in a sibling */
int			splitdb_maintenance_work_mem = 262144;

/* online mode: the bounded lock waits of the capture and the cutover */
int			splitdb_cutover_lock_timeout = 250;
int			splitdb_cutover_max_freeze = 500;
int			splitdb_cutover_attempts = 20;
char	   *splitdb_migrate_pause_at = NULL;
/* capture triggers write their logs directly (capturelog.c), not through SPI */
bool		splitdb_capture_direct = true;
/* splitdb.relay_waiting: keys wait to be handed back (refcheck_relay.c) */
bool		splitdb_relay_waiting = false;
/* splitdb.deferred_waiting: deferred triggers may wait (refcheck_relay.c) */
bool		splitdb_deferred_waiting = false;

PGDLLEXPORT void _PG_init(void);

/*
 * _PG_init
 *		Define splitdb's settings.
 */
void
_PG_init(void)
{
	DefineCustomIntVariable("splitdb.connect_timeout",
							"Seconds to wait when connecting to a sibling database.",
							"Used when the foreign server sets no connect_timeout of its own. "
							"Zero waits indefinitely.",
							&splitdb_connect_timeout,
							10,
							0,
							3600,
							PGC_USERSET,
							GUC_UNIT_S,
							NULL,
							NULL,
							NULL);

	DefineCustomIntVariable("splitdb.copy_streams",
							"Connections to the sibling over which a migration copies each batch.",
							"The sibling parses and writes the rows in one backend per stream. 0 (the default) "
							"takes the free cores when the job's run starts: the cores idle over a "
							"100 ms sample, 1 to 8. A job takes the value of the session that calls splitdb_migrate().",
							&splitdb_copy_streams,
							SPLITDB_COPY_STREAMS_AUTO,
							0,
							SPLITDB_MAX_COPY_STREAMS,
							PGC_SUSET,
							0,
							NULL,
							NULL,
							NULL);

	DefineCustomIntVariable("splitdb.copy_readers",
							"Processes that read a large table side by side during a migration.",
							"A table of at least 100,000 rows is split into key ranges, each read by the job's "
							"worker or by a copier (a background worker) with streams of its own. 0 (the default) "
							"takes one reader per four free cores when the job's run starts, 1 to 4; 1 reads every "
							"table in the worker alone. A job takes the value of the session that calls splitdb_migrate().",
							&splitdb_copy_readers,
							SPLITDB_COPY_READERS_AUTO,
							0,
							SPLITDB_MAX_COPY_READERS,
							PGC_SUSET,
							0,
							NULL,
							NULL,
							NULL);

	DefineCustomIntVariable("splitdb.maintenance_work_mem",
							"maintenance_work_mem of the sibling's sessions that build a migration's indexes.",
							"Each session that builds indexes sets it for its builds, as many at once as the "
							"job has streams. A job takes the value of the session that calls splitdb_migrate().",
							&splitdb_maintenance_work_mem,
							262144,
							1024,
							MAX_KILOBYTES,
							PGC_SUSET,
							GUC_UNIT_KB,
							NULL,
							NULL,
							NULL);

	DefineCustomIntVariable("splitdb.batch_rows",
							"Rows per copy batch of a migration; each batch is a checkpoint.",
							"A job resumes after the last batch it finished. A job takes the value of the session that calls splitdb_migrate().",
							&splitdb_batch_rows,
							100000,
							1,
							INT_MAX,
							PGC_SUSET,
							0,
							NULL,
							NULL,
							NULL);

	DefineCustomIntVariable("splitdb.fence_timeout",
							"How long a resumed migration waits for the sibling's sessions of its earlier run to end.",
							"A run first ends the sessions an earlier run left in the sibling; those it may not "
							"end (another role's, or not splitdb's) it waits for this long, then fails. "
							"A job takes the value of the session that calls splitdb_migrate().",
							&splitdb_fence_timeout,
							60000,
							1,
							INT_MAX,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL,
							NULL,
							NULL);

	DefineCustomIntVariable("splitdb.cutover_lock_timeout",
							"How long an online migration waits for the locks of its capture or its cutover, per attempt.",
							"While the request waits, the application's statements on the tables queue behind it; "
							"after this long it lets go, catches up and tries again. "
							"A job takes the value of the session that calls splitdb_migrate().",
							&splitdb_cutover_lock_timeout,
							250,
							1,
							600000,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL,
							NULL,
							NULL);

	DefineCustomIntVariable("splitdb.cutover_max_freeze",
							"The longest an online migration's cutover may hold writes before the point of no return.",
							"Counted from the moment the cutover holds the tables' locks; a last replay that "
							"would take longer lets go, catches up and tries again. "
							"A job takes the value of the session that calls splitdb_migrate().",
							&splitdb_cutover_max_freeze,
							500,
							1,
							600000,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL,
							NULL,
							NULL);

	DefineCustomIntVariable("splitdb.cutover_attempts",
							"How many times an online migration tries to take its locks before the job fails.",
							"Between attempts it replays, and waits 100 ms, doubling up to 5 s. A failed job "
							"resumes with splitdb_migrate() without copying again. "
							"A job takes the value of the session that calls splitdb_migrate().",
							&splitdb_cutover_attempts,
							20,
							1,
							10000,
							PGC_SUSET,
							0,
							NULL,
							NULL,
							NULL);

	DefineCustomStringVariable("splitdb.origin",
							   "Where the writes of this session come from, for cross-service references.",
							   "Set by the servers splitdb creates: \"source\" on the connections of the source's shims and "
							   "reference checks, the service's name on those of a sibling. It grants nothing: a database "
							   "skips the checks of a write only for a session that proved where it comes from "
							   "(splitdb.origin_prove()).",
							   &splitdb_origin,
							   "",
							   PGC_USERSET,
							   GUC_NOT_IN_SAMPLE,
							   NULL,
							   NULL,
							   NULL);

	DefineCustomStringVariable("splitdb.rollback_pause_at",
							   "Test hook: a point where the worker of splitdb_rollback() waits to be stopped.",
							   "partitions_made (after the partitions the sibling got are made in the archive), replayed (after the rounds without locks), locked, between_commits or before_cleanup: the worker waits there while a session holds the advisory lock (1936747638, job id); empty (the default): nowhere. For tests.",
							   &splitdb_rollback_pause_at,
							   "",
							   PGC_SUSET,
							   GUC_NOT_IN_SAMPLE,
							   NULL,
							   NULL,
							   NULL);

	DefineCustomStringVariable("splitdb.migrate_pause_at",
							   "Test hook: a point where the worker of splitdb_migrate() waits.",
							   "copying (after each batch), indexing (after the indexing step), catching_up (before each round), "
							   "verifying (after a verification that passed), cutover (before each attempt to lock) "
							   "cutover_committing (after the sibling's part of the cutover committed) or done (after the commit "
							   "that made the job done): the worker waits "
							   "there while a session holds the advisory lock (1936747639, 0); empty (the default): nowhere. For tests.",
							   &splitdb_migrate_pause_at,
							   "",
							   PGC_SUSET,
							   GUC_NOT_IN_SAMPLE,
							   NULL,
							   NULL,
							   NULL);
	DefineCustomBoolVariable("splitdb.capture_direct",
							 "Logs captured keys straight into the capture log, without a query.",
							 "The capture triggers insert each key into the log's heap and indexes as the "
							 "log's owner. Off, or for a log with triggers, rules, row security or columns "
							 "of its own, they run an INSERT ... SELECT from the transition tables through SPI.",
							 &splitdb_capture_direct,
							 true,
							 PGC_SUSET,
							 0,
							 NULL,
							 NULL,
							 NULL);

	DefineCustomBoolVariable("splitdb.check_connection",
							 "Checks referenced keys on a connection of splitdb's own.",
							 "The BEGIN of its remote transaction travels with the checks of every reference to "
							 "a database, and its COMMIT follows the local commit without a wait: one round trip "
							 "per referenced database for a single-row write. Off, checks use postgres_fdw's "
							 "connection (three round trips).",
							 &splitdb_check_connection,
							 true,
							 PGC_USERSET,
							 0,
							 NULL,
							 NULL,
							 NULL);

	/*
	 * Reported to the client with every change (GUC_REPORT), so that the
	 * source asks for the keys a write through a shim left it only when
	 * some wait; nobody can set it (PGC_INTERNAL), so that nothing a
	 * session runs can hide a waiting key.
	 */
	DefineCustomBoolVariable("splitdb.relay_waiting",
							 "Shows whether keys wait to be handed back to the database whose write left them here.",
							 "Set by splitdb only: on once a write through a shim leaves this session keys that "
							 "the database it came from must check, off once splitdb.reference_relayed() or "
							 "splitdb.reference_relay() hands them back.",
							 &splitdb_relay_waiting,
							 false,
							 PGC_INTERNAL,
							 GUC_REPORT | GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE | GUC_NO_RESET_ALL,
							 NULL,
							 NULL,
							 NULL);

	/*
	 * The same for the deferred triggers that a write from another database
	 * may have queued: the writer fires them before it commits only when
	 * some may wait.
	 */
	DefineCustomBoolVariable("splitdb.deferred_waiting",
							 "Shows whether deferred triggers may wait in a session whose writes another database enforces.",
							 "Set by splitdb only: on once a statement of such a session writes a table with a "
							 "deferrable trigger, off once SET CONSTRAINTS ALL IMMEDIATE has fired them.",
							 &splitdb_deferred_waiting,
							 false,
							 PGC_INTERNAL,
							 GUC_REPORT | GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE | GUC_NO_RESET_ALL,
							 NULL,
							 NULL,
							 NULL);

	/*
	 * A session reports the settings of libraries loaded before it started
	 * (shared_preload_libraries) as it starts; loaded later, the setting
	 * is reported once set, at the next ReadyForQuery.  No key can wait
	 * before the library is loaded.  Not during a parallel operation, where
	 * no setting may change: the source then sees no report, and asks.
	 */
	if (!process_shared_preload_libraries_in_progress && IsUnderPostmaster &&
		!IsInParallelMode())
	{
		SetConfigOption("splitdb.relay_waiting", "off", PGC_INTERNAL, PGC_S_OVERRIDE);
		SetConfigOption("splitdb.deferred_waiting", "off", PGC_INTERNAL, PGC_S_OVERRIDE);
	}

	/* before the prefix is reserved: the setting of ownerrights.c */
	splitdb_owner_rights_init();

	MarkGUCPrefixReserved("splitdb");

	/* checks on splitdb's own connections must know of writes through postgres_fdw */
	splitdb_fdwwatch_init();

	/* a proved session's own rows are those of the client's statement, not nested ones */
	splitdb_execdepth_init();

	/* before postgres_fdw's first connection: locks that outlive its commit */
	splitdb_refcheck_init();

	/* SET CONSTRAINTS ALL reaches the siblings written through shims */
	splitdb_constraintsfwd_init();

	/* ON CONFLICT with a target and WHERE CURRENT OF on a shim: refused with their reason */
	splitdb_shimforms_init();

	/* a MERGE into a captured partitioned table logs a T (capturemerge.c) */
	splitdb_capturemerge_init();

	/* preloaded: resume jobs that a restart interrupted, count reference checks */
	if (process_shared_preload_libraries_in_progress)
	{
		splitdb_launcher_register();
		splitdb_refstats_init();
	}
}
