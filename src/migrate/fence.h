/*-------------------------------------------------------------------------
 *
 * fence.h
 *	  Fencing a migration job's sessions in its sibling from an earlier run.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/fence.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_FENCE_H
#define SPLITDB_FENCE_H

#include "remote/remote.h"

extern int	splitdb_fence_take(PGconn *conn, int64 job_id, int timeout_ms,
							   const char *service);
extern void splitdb_fence_join(PGconn *conn, int64 job_id, const char *service);

#endif							/* SPLITDB_FENCE_H */
