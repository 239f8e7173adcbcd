/*-------------------------------------------------------------------------
 *
 * record.h
 *	  What a migration job records in the artifact registry of the objects
 *	  it makes (record.c).
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/record.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_RECORD_H
#define SPLITDB_RECORD_H

#include "remote/remote.h"

extern void splitdb_record_ddl(int64 job_id, const char *service, PGconn *conn,
							   List *items);
extern void splitdb_record_before_cutover(int64 job_id, const char *service,
										  PGconn *conn);
extern void splitdb_record_cutover(int64 job_id, const char *service,
								   PGconn *conn, List *matview_relids);

#endif							/* SPLITDB_RECORD_H */
