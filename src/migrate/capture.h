/*-------------------------------------------------------------------------
 *
 * capture.h
 *	  Change capture: the keys of the rows written to a table, logged in
 *	  its database for a replay into another (replay.h).
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/capture.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_CAPTURE_H
#define SPLITDB_CAPTURE_H

#include "remote/remote.h"

/* schema of the capture logs, in the database that captures */
#define SPLITDB_CAPTURE_SCHEMA		"splitdb_capture"

extern void splitdb_capture_record(int64 job_id, const char *service,
								   PGconn *conn);
extern void splitdb_capture_prepare_sibling(const char *service, PGconn *conn);
extern void splitdb_capture_install(int64 job_id, const char *service,
									PGconn *conn);
extern char *splitdb_capture_problem(int64 job_id, const char *service,
									 PGconn *conn);
extern char *splitdb_capture_tables(int64 job_id);
extern bool splitdb_capture_closed(PGconn *conn, const char *service, int64 job_id);

/* capturemerge.c */
extern void splitdb_capturemerge_init(void);

/* capturepart.c */
struct EventTriggerData;
extern void splitdb_capture_new_partitions(struct EventTriggerData *trigdata);

#endif							/* SPLITDB_CAPTURE_H */
