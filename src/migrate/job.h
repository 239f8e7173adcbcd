/*-------------------------------------------------------------------------
 *
 * job.h
 *	  Migration jobs: starting them, and what their worker is told.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/job.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_JOB_H
#define SPLITDB_JOB_H

#include "postmaster/bgworker.h"

#include "migrate/jobstate.h"
#include "remote/remote.h"

/* what a job's worker is started with, in bgw_extra */
typedef struct SplitdbWorkerArgs
{
	Oid			dboid;			/* the source database */
	Oid			roleoid;		/* the role the worker runs as */
	int64		job_id;
	bool		resume;			/* continue an existing job */
	int32		batch_rows;		/* splitdb.batch_rows of the caller */
	int32		copy_streams;	/* splitdb.copy_streams of the caller; 0: auto */
	int32		fence_timeout;	/* splitdb.fence_timeout of the caller, ms */
	int32		maintenance_work_mem;	/* splitdb.maintenance_work_mem of the
										 * caller, kB; 0: the worker's own */
	int32		nrelations;		/* a new job: the relations the caller checked */
	int32		relset_hash;	/* ... and their digest (SPLITDB_RELSET_SQL) */
	int32		copy_readers;	/* splitdb.copy_readers of the caller; 0: auto */
	int32		cutover_lock_timeout;	/* the job's settings, to record: */
	int32		cutover_max_freeze; /* splitdb_job_cutover_settings(), or */
	int32		cutover_attempts;	/* the job's row (the launcher) */
	bool		online;			/* a new job: mode => 'online' */
	int8		pause_at;		/* test hook: SplitdbPausePoint */
	char		service[NAMEDATALEN];
} SplitdbWorkerArgs;

/*
 * The cutover settings a job runs with, recorded in its splitdb.job row
 * when it starts: the waits of online mode's lock attempts (installing the
 * capture, the cutover, a cancel's removal of the capture).
 */
typedef struct SplitdbCutoverSettings
{
	int32		lock_timeout;	/* splitdb.cutover_lock_timeout, ms */
	int32		max_freeze;		/* splitdb.cutover_max_freeze, ms */
	int32		attempts;		/* splitdb.cutover_attempts */
} SplitdbCutoverSettings;

/*
 * Test hook (splitdb.migrate_pause_at): where the worker waits while a
 * session holds the advisory lock (SPLITDB_MIGRATE_PAUSE_KEY, 0).
 */
typedef enum SplitdbPausePoint
{
	SPLITDB_PAUSE_NONE,
	SPLITDB_PAUSE_COPYING,		/* after each batch of the copy */
	SPLITDB_PAUSE_CATCHING_UP,	/* before each round of catching up */
	SPLITDB_PAUSE_CUTOVER,		/* before each attempt to lock for the cutover
								 * (offline: before the cutover) */
	SPLITDB_PAUSE_CUTOVER_COMMITTING,	/* the sibling's part committed, the
										 * source's not yet */
	SPLITDB_PAUSE_INDEXING,		/* after the indexing step */
	SPLITDB_PAUSE_VERIFYING,	/* after a verification that passed */
	SPLITDB_PAUSE_DONE			/* after the commit that made the job done,
								 * before the worker ends */
} SplitdbPausePoint;


StaticAssertDecl(sizeof(SplitdbWorkerArgs) <= BGW_EXTRALEN,
				 "SplitdbWorkerArgs must fit in bgw_extra");

/* the advisory lock keys: migrate/jobstate.h */

/*
 * The digest of a set of relations, over rows with a relid column: how many
 * there are, and a hash of their sorted OIDs.  splitdb_migrate() computes it
 * over the relations it checked and the worker over those it records, so
 * that a job only starts with the relations the caller's checks passed.
 */
#define SPLITDB_RELSET_SQL(from) \
	"SELECT pg_catalog.count(*)::integer," \
	"       coalesce(pg_catalog.hashtext(pg_catalog.string_agg(d.relid::pg_catalog.oid::pg_catalog.text, ','" \
	"                                    ORDER BY d.relid::pg_catalog.oid)), 0)" \
	"  FROM (" from ") d"

/* bgw_type of job workers, as pg_stat_activity.backend_type shows it */
#define SPLITDB_WORKER_TYPE		"splitdb worker"

/* bgw_type of the copiers a job's worker starts (copier.c) */
#define SPLITDB_COPIER_TYPE		"splitdb copier"

extern void splitdb_bgworker_init(BackgroundWorker *worker, const char *function,
								  const char *name, const char *type);
extern BackgroundWorkerHandle *splitdb_job_start_worker(const SplitdbWorkerArgs *args,
														bool must);
extern void splitdb_job_cutover_settings(int64 job_id, SplitdbCutoverSettings *settings);
extern void splitdb_job_check_role(PGconn *conn, const char *service, const char *call);
extern void splitdb_job_check_plan(const char *service);

#endif							/* SPLITDB_JOB_H */
