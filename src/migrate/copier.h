/*-------------------------------------------------------------------------
 *
 * copier.h
 *	  The readers of a large table: the job's worker and its copiers.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/copier.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_COPIER_H
#define SPLITDB_COPIER_H

#include "migrate/worker_int.h"

extern bool splitdb_copier_copy_table(SplitdbJob *job, SplitdbJobTable *t);
extern void splitdb_copier_stop_all(bool wait);

#endif							/* SPLITDB_COPIER_H */
