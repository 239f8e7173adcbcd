/*-------------------------------------------------------------------------
 *
 * reference.h
 *	  Where the ends of cross-service references live, and the triggers
 *	  that enforce them in every database.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/reference.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_REFERENCE_H
#define SPLITDB_REFERENCE_H

#include "libpq-fe.h"
#include "nodes/pg_list.h"

/* SplitdbMappingNeed and splitdb_reference_plan_mappings() */
#include "reference/mapping.h"

extern void splitdb_install_in_sibling(PGconn *conn, const char *location);
extern void splitdb_reference_install(const char *service, List *reference_ids,
									  PGconn *service_conn, int sibling_lock_timeout);

#endif							/* SPLITDB_REFERENCE_H */
