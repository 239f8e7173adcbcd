/*-------------------------------------------------------------------------
 *
 * jobstate.h
 *	  A service's last job as the ways out of a migration read it
 *	  (jobstate.c): splitdb_cancel(), splitdb_finalize(), splitdb_doctor().
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/jobstate.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_JOBSTATE_H
#define SPLITDB_JOBSTATE_H

/*
 * The first keys of splitdb's advisory locks, one per use, all distinct:
 * each use chooses its second key on its own.  docs/reference.md lists them.
 *
 * First key of the advisory locks: with the service's name hashed, the lock
 * that serializes splitdb_migrate() calls; with a job id, the session lock
 * the job's one worker holds while it runs.
 */
#define SPLITDB_MIGRATE_LOCK_KEY	0x73706c74	/* "splt" */
#define SPLITDB_JOB_LOCK_KEY		0x73706c75
/*
 * With a job id: the transaction lock a splitdb_cancel() of the job holds
 * from before it stops the worker to its commit (jobexit.c).
 */
#define SPLITDB_CANCEL_LOCK_KEY		0x73706c63
/*
 * With 0: the transaction lock a new job's worker holds from the moment it
 * stamps its job's splitdb.job.started_at to the commit of its claim, so
 * that jobs become visible in the order of their started_at (shareddb.c).
 */
#define SPLITDB_CLAIM_LOCK_KEY		0x73706c6f
/*
 * With a hash of the job, table and range: the session lock a reader holds
 * on the key range of a table it copies (range.c).
 */
#define SPLITDB_RANGE_LOCK_KEY		0x73706c72
/*
 * Test hooks (pause.c): with 0, the lock a session holds to keep a worker
 * at its splitdb.migrate_pause_at point (1936747639); with a job id, the
 * one for a rollback's splitdb.rollback_pause_at point (1936747638).
 */
#define SPLITDB_MIGRATE_PAUSE_KEY	0x73706c77
#define SPLITDB_ROLLBACK_PAUSE_KEY	0x73706c76

/* the newest job of a service */
typedef struct SplitdbJobState
{
	bool		found;
	int64		job_id;
	char	   *state;			/* "failed" for a job whose worker is gone */
	char	   *phase;
	int32		worker_pid;		/* 0 when none */
	char	   *last_error;
	char	   *last_sqlstate;
} SplitdbJobState;

extern SplitdbJobState splitdb_jobstate_last(const char *service);
extern void splitdb_jobstate_lock_service(const char *service);
extern bool splitdb_jobstate_try_lock(int32 key, int64 job_id);

#endif							/* SPLITDB_JOBSTATE_H */
