/*-------------------------------------------------------------------------
 *
 * mapping.h
 *	  The user mappings that cross-service references log in through
 *	  (mapping.c).
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/mapping.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_MAPPING_H
#define SPLITDB_MAPPING_H

#include "nodes/pg_list.h"

/* the server a sibling reaches the source through */
#define SPLITDB_SOURCE_SERVER	"splitdb_source"

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
extern bool splitdb_mapping_is_secret(const char *name);
extern bool splitdb_mapping_offer(Oid owner, const char *forward,
								  List **options_out);
extern char *splitdb_mapping_statement(const char *role, const char *server);

#endif							/* SPLITDB_MAPPING_H */
