/*-------------------------------------------------------------------------
 *
 * online.h
 *	  Online mode: the source's change capture during a job and the replay
 *	  rounds that carry the captured writes into the sibling.
 *
 * Private to src/migrate/: the steps (step.c) and cancel.c use it.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/online.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_ONLINE_H
#define SPLITDB_ONLINE_H

#include "migrate/worker_int.h"

/* what a replay round found and did */
typedef struct SplitdbRound
{
	int64		entries;		/* log entries replayed */
	int64		rows;			/* rows written in the sibling */
	double		seconds;		/* how long the round took */
} SplitdbRound;

extern void splitdb_online_backoff(int attempt);
extern void splitdb_online_retry(SplitdbJob *job, const char *what,
								 void (*fn) (SplitdbJob *job, int attempt),
								 void (*between) (SplitdbJob *job),
								 void (*give_up) (SplitdbJob *job));
extern void splitdb_online_capture(SplitdbJob *job);
extern bool splitdb_online_capture_intact(int64 job_id);
extern void splitdb_online_round(SplitdbJob *job, bool check, int budget_ms,
								 SplitdbRound *round);
extern int64 splitdb_online_pending(int64 job_id);
extern void splitdb_online_record_lag(SplitdbJob *job, const SplitdbRound *round,
									  int64 pending);
extern List *splitdb_online_captured(int64 job_id);
extern void splitdb_online_remove_capture(int64 job_id);

#endif							/* SPLITDB_ONLINE_H */
