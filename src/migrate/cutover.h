/*-------------------------------------------------------------------------
 *
 * cutover.h
 *	  The cutover: archive, shims, views, sequences, cross-service keys.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/cutover.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_CUTOVER_H
#define SPLITDB_CUTOVER_H

#include "remote/remote.h"

extern void splitdb_cutover_record_references(int64 job_id, const char *service);
extern void splitdb_cutover_refresh_references(int64 job_id);
extern List *splitdb_cutover_other_ends(int64 job_id);
extern ErrorData *splitdb_cutover_install_tries(const char *service, List *ids,
												 PGconn *conn, int lock_timeout,
												 int attempts, int elevel);
extern void splitdb_cutover_run(int64 job_id, const char *service,
								const char *server, PGconn *conn,
								int offline_lock_timeout, int offline_attempts);

/* a materialized view to create again over the shims (matview.c) */
typedef struct SplitdbMatview
{
	Oid			relid;			/* the original, archived at the cutover */
	List	   *statements;		/* CREATE, indexes, owner, grants, comments */
} SplitdbMatview;

/* matview.c */
extern List *splitdb_matview_ddl(int64 job_id);

/* shim.c */
extern List *splitdb_shim_defaults(int64 job_id);
extern List *splitdb_shim_ddl(int64 job_id, const char *service,
							  const char *server);

#endif							/* SPLITDB_CUTOVER_H */
