/*-------------------------------------------------------------------------
 *
 * cutover.h
 *	  The cutover: archive, shims, views, sequences, cross-service keys.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/cutover.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_CUTOVER_H
#define SPLITDB_CUTOVER_H

#include "libpq-fe.h"

/* schema that keeps the moved originals until finalize */
#define SPLITDB_ARCHIVE_SCHEMA	"splitdb_archive"

extern void splitdb_cutover_record_references(int64 job_id, const char *service);
extern void splitdb_cutover_run(int64 job_id, const char *service,
								const char *server, PGconn *conn);

/* shim.c */
extern List *splitdb_shim_ddl(int64 job_id, const char *service,
							  const char *server);

#endif							/* SPLITDB_CUTOVER_H */
