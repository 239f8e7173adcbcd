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

#include "utils/elog.h"

/* the work of an attempt; it raises an error to fail */
typedef void (*SplitdbLockwaitWork) (void *arg);

extern ErrorData *splitdb_lockwait_attempt(SplitdbLockwaitWork fn, void *arg,
										   int lock_timeout_ms);

#endif							/* SPLITDB_LOCKWAIT_H */
