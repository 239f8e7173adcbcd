/*-------------------------------------------------------------------------
 *
 * replay.h
 *	  Replaying a capture log (capture.h) of another database into a table
 *	  of this one.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/replay.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_REPLAY_H
#define SPLITDB_REPLAY_H

#include "remote/remote.h"

/* one captured table and where its rows go */
typedef struct SplitdbReplayTable
{
	char	   *table;			/* quoted, qualified, in the captured database */
	char	   *log;			/* its log there, quoted, qualified */
	List	   *keys;			/* quoted key columns; NIL: no key */
	Oid			target;			/* the table here the rows go to */
	List	   *ids;			/* the log ids read (bigint[] literals) */
	MemoryContext cxt;			/* where ids live: current at creation */
	int64		nids;
} SplitdbReplayTable;

/* rows a batch moves, and log ids a batch forgets */
#define SPLITDB_REPLAY_BATCH	1000
#define SPLITDB_REPLAY_ID_BATCH	10000

extern char *splitdb_replay_key_list(List *keys);
extern char *splitdb_replay_key_join(List *keys, const char *a, const char *b);
extern char *splitdb_replay_key_rows(Oid relid, List *keys, const char *alias);
extern SplitdbReplayTable *splitdb_replay_table(PGconn *conn, const char *service,
												const char *table, Oid target);
extern int64 splitdb_replay_run(PGconn *conn, const char *service,
								SplitdbReplayTable *t);
extern void splitdb_replay_forget(PGconn *conn, const char *service,
								  SplitdbReplayTable *t);

#endif							/* SPLITDB_REPLAY_H */
