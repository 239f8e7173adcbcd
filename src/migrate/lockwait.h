/*-------------------------------------------------------------------------
 *
 * lockwait.h
 *	  One attempt at work in the source under a bounded lock wait
 *	  (lockwait.c).
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/lockwait.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_LOCKWAIT_H
#define SPLITDB_LOCKWAIT_H

#include "nodes/pg_list.h"
#include "storage/lockdefs.h"
#include "utils/elog.h"

/* the work of an attempt; it raises an error to fail */
typedef void (*SplitdbLockwaitWork) (void *arg);

extern ErrorData *splitdb_subxact_catch(SplitdbLockwaitWork fn, void *arg,
										int catch_code);
extern ErrorData *splitdb_subxact_rehearse(SplitdbLockwaitWork fn, void *arg);
extern ErrorData *splitdb_lockwait_attempt(SplitdbLockwaitWork fn, void *arg,
										   int lock_timeout_ms);
extern void splitdb_lockwait_relations(List *relids, LOCKMODE mode, int budget_ms);

#endif							/* SPLITDB_LOCKWAIT_H */
