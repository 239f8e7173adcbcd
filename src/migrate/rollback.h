/*-------------------------------------------------------------------------
 *
 * rollback.h
 *	  splitdb_rollback(): bringing a migrated service back into the source.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/rollback.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_ROLLBACK_H
#define SPLITDB_ROLLBACK_H

#include "remote/remote.h"

/* restore.c: the source as before the cutover, in the caller's transaction */
extern void splitdb_restore_lock(int64 job_id, const char *service);
extern void splitdb_restore_source(int64 job_id, const char *service, PGconn *conn);

/* archivepart.c */
extern int	splitdb_archive_new_partitions(int64 job_id, const char *service, PGconn *conn);

#endif							/* SPLITDB_ROLLBACK_H */
