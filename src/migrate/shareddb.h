/*-------------------------------------------------------------------------
 *
 * shareddb.h
 *	  Whether a service's sibling is the database of a service that a
 *	  cross-service reference joins it to (shareddb.c).
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/shareddb.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_SHAREDDB_H
#define SPLITDB_SHAREDDB_H

#include "remote/remote.h"

extern void splitdb_shareddb_check(PGconn *conn, const char *service,
								   int64 job_id);

#endif							/* SPLITDB_SHAREDDB_H */
