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

/*
 * A user mapping that a service's references will need and that splitdb
 * cannot create (splitdb_reference_plan_mappings)
 */
typedef struct SplitdbMappingNeed
{
	bool		blocker;		/* missing in the source; else a warning about
								 * a sibling, whose catalogs the plan does not
								 * read */
	char	   *object;			/* "user mapping for <role> on server <server>" */
	char	   *detail;			/* what is missing, and the statement to run */
} SplitdbMappingNeed;

extern List *splitdb_reference_plan_mappings(const char *service);
extern void splitdb_reference_install(const char *service, List *reference_ids,
									  PGconn *service_conn);

#endif							/* SPLITDB_REFERENCE_H */
