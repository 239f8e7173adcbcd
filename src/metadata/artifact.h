/*-------------------------------------------------------------------------
 *
 * artifact.h
 *	  The artifact registry: every object a job makes, recorded before it
 *	  is made, and the events on which it goes.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/metadata/artifact.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_ARTIFACT_H
#define SPLITDB_ARTIFACT_H

#include "nodes/pg_list.h"

/* the events on which an artifact is dropped (splitdb.artifact.drop_on) */
#define SPLITDB_ON_FAILURE		0x01
#define SPLITDB_ON_CANCEL		0x02
#define SPLITDB_ON_ROLLBACK		0x04
#define SPLITDB_ON_FINALIZE		0x08

/* one row of splitdb.artifact */
typedef struct SplitdbArtifact
{
	int64		artifact_id;
	int64		job_id;
	char	   *service;		/* sibling of this service; NULL: the source */
	char	   *kind;			/* as DROP names it, or "capture log" */
	char	   *identity;		/* quoted, qualified name */
	char	   *parent;			/* table of a trigger, constraint, policy */
	int			drop_on;		/* SPLITDB_ON_* bits */
} SplitdbArtifact;

extern int64 splitdb_artifact_record(int64 job_id, const char *service,
									 const char *kind, const char *identity,
									 const char *parent, int drop_on);
extern void splitdb_artifact_dropped(int64 artifact_id);
extern uint64 splitdb_artifact_give_back(int64 job_id, int event);
extern List *splitdb_artifact_list(int64 job_id, int event);
extern char *splitdb_artifact_drop_sql(const SplitdbArtifact *a);
extern char *splitdb_artifact_kept_sql(const SplitdbArtifact *a);

#endif							/* SPLITDB_ARTIFACT_H */
