/*-------------------------------------------------------------------------
 *
 * plan.h
 *	  The migration plan of a service: what splitdb_plan() shows.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/plan/plan.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_PLAN_H
#define SPLITDB_PLAN_H

/* the catalog-query fragments, for files that still take them from here */
#include "metadata/catalog_sql.h"

/*
 * The kinds of plan steps, in the order a migration carries them out;
 * warnings and blockers come last.
 */
typedef enum SplitdbPlanAction
{
	SPLITDB_PLAN_CREATE_TYPE,
	SPLITDB_PLAN_CREATE_SEQUENCE,
	SPLITDB_PLAN_CREATE_TABLE,
	SPLITDB_PLAN_COPY_DATA,
	SPLITDB_PLAN_CREATE_INDEX,
	SPLITDB_PLAN_KEEP_FOREIGN_KEY,
	SPLITDB_PLAN_CONVERT_REFERENCE,
	SPLITDB_PLAN_REPOINT_VIEW,
	SPLITDB_PLAN_WARNING,
	SPLITDB_PLAN_BLOCKER,
	SPLITDB_PLAN_NACTIONS
} SplitdbPlanAction;

/* one row of the plan */
typedef struct SplitdbPlanStep
{
	SplitdbPlanAction action;
	char	   *object;
	char	   *detail;
} SplitdbPlanStep;

extern List *splitdb_plan_build(const char *service);
extern const char *splitdb_plan_action_name(SplitdbPlanAction action);
/* onlinekey.c: the warning for a table whose keys are all DEFERRABLE */
extern const char *const splitdb_plan_sql_online_keys;

/* rowtype.c: functions bound to a moving table's row type */
extern const char *const splitdb_plan_sql_row_type_functions;

/*
 * The plan queries take $1 = the service name, $2 = the OIDs of the tables it
 * owns, $3/$4 = every owned table of every service with its service.  The
 * sets are computed once (splitdb_plan_build) and passed as arrays, which the
 * planner estimates well, instead of being recomputed in every query.
 */
#define SPLITDB_OWNED_CTE \
	"owned AS (SELECT u.relid FROM unnest($2::oid[]) u(relid))"
#define SPLITDB_OWNER_CTE \
	"owner AS (SELECT w.relid, w.service FROM unnest($3::oid[], $4::name[]) w(relid, service))"

#endif							/* SPLITDB_PLAN_H */
