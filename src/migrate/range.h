/*-------------------------------------------------------------------------
 *
 * range.h
 *	  Key ranges of a large table, each copied by a reader of its own.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/range.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_RANGE_H
#define SPLITDB_RANGE_H

#include "migrate/copy.h"
#include "nodes/pg_list.h"
#include "remote/remote.h"

/*
 * A table is split only when each of its ranges holds at least this many
 * rows: below it, starting a reader (a background worker, a connection to
 * the sibling) costs about as much as it saves.
 */
#define SPLITDB_MIN_RANGE_ROWS		50000

/* rows the sampled planning reads, at most: a block sample of this size */
#define SPLITDB_RANGE_SAMPLE_ROWS	30000

/* one range of a table, as splitdb.job_range records it */
typedef struct SplitdbRange
{
	int			range_no;
	SplitdbKeyBounds bounds;
	char	  **last_key;		/* the checkpoint; NULL: none yet */
	bool		done;
} SplitdbRange;

/*
 * A reader of a table's ranges: the job's worker, or one of its copiers
 * (copier.c).  check runs before each batch and raises an error when the
 * reader must stop.
 */
typedef struct SplitdbRangeReader
{
	int64		job_id;
	int			worker_pid;		/* the job's worker: checkpoints are recorded
								 * only while it runs the job */
	Oid			relid;
	const char *table;			/* quoted name, for messages */
	const char *service;
	SplitdbCopySource *src;
	PGconn	   *const *conns;	/* the reader's streams */
	int			nconns;
	int64		batch_rows;
	void		(*check) (void *arg);
	void	   *check_arg;
} SplitdbRangeReader;

extern int	splitdb_range_count(int64 rows, int readers);
extern int	splitdb_range_plan(int64 job_id, Oid relid, SplitdbCopySource *src,
							   int64 rows, int nranges);
extern List *splitdb_range_load(int64 job_id, Oid relid);
extern void splitdb_range_forget(int64 job_id, Oid relid);
extern int	splitdb_range_read(SplitdbRangeReader *reader, bool wait);

#endif							/* SPLITDB_RANGE_H */
