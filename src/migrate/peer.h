/*-------------------------------------------------------------------------
 *
 * peer.h
 *	  What a failed cutover leaves in the other siblings (peer.c).
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/peer.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_PEER_H
#define SPLITDB_PEER_H

#include "nodes/pg_list.h"
#include "remote/remote.h"

extern int	splitdb_peer_cancel(const char *service, int64 job_id, List *artifacts, bool cut);
extern void splitdb_peer_check_databases(PGconn *conn, const char *service,
										 int64 job_id);

#endif							/* SPLITDB_PEER_H */
