/*-------------------------------------------------------------------------
 *
 * worker_int.h
 *	  What the job's worker (worker.c) and its steps (step.c) share: the
 *	  job in memory, its phases, and the worker's transactions.
 *
 * Private to src/migrate/: worker.c, step.c, and the copy's readers
 * (range.c, copier.c), which run their transactions in the worker and in
 * its copiers alike.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/worker_int.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_WORKER_INT_H
#define SPLITDB_WORKER_INT_H

#include "migrate/copy.h"
#include "remote/remote.h"
#include "splitdb.h"

/*
 * The phases of a job, in the order a job goes through them.  Their names,
 * as splitdb.job stores them and splitdb_status shows them, are written in
 * worker.c's table of steps only.
 */
typedef enum SplitdbPhase
{
	SPLITDB_PHASE_QUEUED,
	SPLITDB_PHASE_PREPARING,
	SPLITDB_PHASE_COPYING,
	SPLITDB_PHASE_INDEXING,
	SPLITDB_PHASE_CATCHING_UP,
	SPLITDB_PHASE_VERIFYING,
	SPLITDB_PHASE_CUTTING_OVER,
	SPLITDB_PHASE_DONE
} SplitdbPhase;

/*
 * The phases of one table of a job (splitdb.job_table.phase); their names
 * are written in worker.c's table of table phases only.
 */
typedef enum SplitdbTablePhase
{
	SPLITDB_TABLE_PENDING,		/* not in the sibling yet */
	SPLITDB_TABLE_CREATED,		/* created there, no checkpoint yet */
	SPLITDB_TABLE_COPYING,		/* rows up to last_key are there */
	SPLITDB_TABLE_COPIED,
	SPLITDB_TABLE_INDEXED,
	SPLITDB_TABLE_VERIFIED,
	SPLITDB_TABLE_CUT_OVER
} SplitdbTablePhase;

/* one table of the job */
typedef struct SplitdbJobTable
{
	Oid			relid;
	char	   *name;			/* original name, quoted; also the sibling's */
	char		relkind;
	SplitdbTablePhase phase;
	int64		rows_copied;
	char	  **last_key;		/* the checkpoint, text form; NULL for none */
	SplitdbCopySource *src;		/* built when first needed; lives with the job */
} SplitdbJobTable;

/* the job a worker runs */
typedef struct SplitdbJob
{
	int64		job_id;
	char	   *service;
	char	   *server;
	SplitdbPhase phase;			/* the phase it is in */
	List	   *tables;			/* SplitdbJobTable, by name */
	List	   *relids;			/* every relation, partitions included */
	PGconn	   *conn;			/* the sibling */
	int64		batch_rows;		/* rows per copy batch */
	int			copy_streams;	/* connections a batch is copied over */
	int			copy_readers;	/* processes that read a large table */
	int			maintenance_work_mem;	/* kB, for each index build */
	bool		online;			/* online mode: the source captures writes */
	bool		recopy_if_written;	/* offline, resumed: a failed verification
									 * copies again once instead of failing */
	bool		sent_back;		/* the step sent the tables back to copying */
	int			cutover_lock_timeout;	/* ms per lock attempt */
	int			cutover_max_freeze; /* ms the cutover may hold writes */
	int			cutover_attempts;	/* lock attempts before the job fails */
	int			pause_at;		/* test hook: SplitdbPausePoint (job.h) */
	PGconn	   *streams[SPLITDB_MAX_COPY_STREAMS];	/* [0] is conn */
	bool		copy_replica;	/* the copy's connections write in replica */
	MemoryContext job_cxt;		/* lives as long as the job runs */
	MemoryContext step_cxt;		/* the running step's; deleted after it */
} SplitdbJob;

/* names <-> phases (worker.c) */
extern const char *splitdb_worker_phase_name(SplitdbPhase phase);
extern SplitdbPhase splitdb_worker_phase_of(const char *name);
extern const char *splitdb_worker_table_phase_name(SplitdbTablePhase phase);
extern SplitdbTablePhase splitdb_worker_table_phase_of(const char *name);

/* the worker's transactions and what they record (worker.c) */
extern void splitdb_worker_begin(const char *fmt,...) pg_attribute_printf(1, 2);
extern void splitdb_worker_begin_snapshot(const char *fmt,...) pg_attribute_printf(1, 2);
extern void splitdb_worker_commit(void);
extern void splitdb_worker_commit_busy(void);
extern void splitdb_worker_sql(const char *sql, int nparams,
							   const char *const *params);
extern void splitdb_worker_working_on(const char *fmt,...) pg_attribute_printf(1, 2);
/* jobexit.c: the failure, told apart from a stop by splitdb_cancel() */
extern void splitdb_worker_record_failure(int64 job_id, int sqlerrcode,
										  const char *message);
extern void splitdb_worker_clear_working_on(void);
extern void splitdb_worker_connect_streams(SplitdbJob *job);
extern void splitdb_worker_close_streams(void);
extern void splitdb_worker_pin_settings(const char *application_name);
extern void splitdb_worker_pause_at(SplitdbJob *job, int point, const char *name);

/* the steps, one per phase that does work (step.c) */
extern void splitdb_step_prepare(SplitdbJob *job);
extern void splitdb_step_copy(SplitdbJob *job);
extern void splitdb_step_index(SplitdbJob *job);
extern void splitdb_step_catch_up(SplitdbJob *job);
extern void splitdb_step_resume_online(SplitdbJob *job);
extern void splitdb_step_verify(SplitdbJob *job);
extern void splitdb_step_cutover(SplitdbJob *job);
extern void splitdb_step_cut_over(SplitdbJob *job);

/* text forms of parameters, in the current memory context */
static inline char *
splitdb_worker_int64_text(int64 v)
{
	return psprintf(INT64_FORMAT, v);
}

static inline char *
splitdb_worker_oid_text(Oid oid)
{
	return psprintf("%u", oid);
}

#endif							/* SPLITDB_WORKER_INT_H */
