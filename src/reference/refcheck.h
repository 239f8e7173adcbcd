/*-------------------------------------------------------------------------
 *
 * refcheck.h
 *	  Cross-service reference triggers: foreign-key semantics across
 *	  databases.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/refcheck.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_REFCHECK_H
#define SPLITDB_REFCHECK_H

#include "nodes/parsenodes.h"

#include "libpq-fe.h"

/* how many distinct keys a referencing end queues before it checks early */
#define SPLITDB_REFCHECK_MAX_PENDING	100000

/*
 * SQL fragments shared with splitdb_orphans: keys travel as one text[]
 * parameter per key column and are compared with the target's columns after
 * a cast to the target column's type.
 */
extern char *splitdb_refcheck_keys_from(int nkeys, bool with_new);
extern char *splitdb_refcheck_key_match(const char *alias, char **cols,
										char **types, int nkeys);

/* from _PG_init: the callback that holds locks past postgres_fdw's commit */
extern void splitdb_refcheck_init(void);

/* the transaction is about to write to a server through postgres_fdw */
extern void splitdb_refcheck_fdw_writes(Oid serverid);
extern void splitdb_refcheck_constraints_set(ConstraintsSetStmt *stmt);

/* counters in shared memory (refstats.c) */
typedef struct SplitdbRefCounter SplitdbRefCounter;
extern void splitdb_refstats_init(void);
extern SplitdbRefCounter *splitdb_refstats_get(int64 reference_id, char side);
extern void splitdb_refstats_add(SplitdbRefCounter *c, uint64 checks,
								 uint64 violations, uint64 round_trips,
								 uint64 time_us);

#endif							/* SPLITDB_REFCHECK_H */
