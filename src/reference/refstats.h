/*-------------------------------------------------------------------------
 *
 * refstats.h
 *	  Counters of cross-service reference enforcement, in shared memory
 *	  (refstats.c).
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/refstats.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_REFSTATS_H
#define SPLITDB_REFSTATS_H

/* one (database, reference, side)'s counters; opaque outside refstats.c */
typedef struct SplitdbRefCounter SplitdbRefCounter;

extern void splitdb_refstats_init(void);
extern SplitdbRefCounter *splitdb_refstats_get(int64 reference_id, char side);
extern void splitdb_refstats_add(SplitdbRefCounter *c, uint64 checks,
								 uint64 violations, uint64 round_trips,
								 uint64 time_us);

#endif							/* SPLITDB_REFSTATS_H */
