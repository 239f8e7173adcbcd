/*-------------------------------------------------------------------------
 *
 * plan.h
 *	  The migration plan of a service: what splitdb_plan() shows.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/plan.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_PLAN_H
#define SPLITDB_PLAN_H

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

/*
 * SQL of the set of tables a service owns: the rows of splitdb.owned_table
 * and every partition of an owned partitioned table, attached before or
 * after the assignment.  $1 is the service name.
 */
#define SPLITDB_OWNED_CTE \
	"owned AS (" \
	"  SELECT o.relid::pg_catalog.oid AS relid FROM splitdb.owned_table o" \
	"   WHERE o.service = $1" \
	"  UNION" \
	"  SELECT t.relid::pg_catalog.oid FROM splitdb.owned_table o," \
	"         LATERAL pg_catalog.pg_partition_tree(o.relid) t" \
	"   WHERE o.service = $1)"

/* SQL of the owner of every owned table, partitions included */
#define SPLITDB_OWNER_CTE \
	"owner AS (" \
	"  SELECT o.relid::pg_catalog.oid AS relid, o.service FROM splitdb.owned_table o" \
	"  UNION" \
	"  SELECT t.relid::pg_catalog.oid, o.service FROM splitdb.owned_table o," \
	"         LATERAL pg_catalog.pg_partition_tree(o.relid) t)"

#endif							/* SPLITDB_PLAN_H */
