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

extern int	splitdb_peer_cancel(const char *service, int64 job_id, List *artifacts, bool cut);

#endif							/* SPLITDB_PEER_H */
