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
 * The plan queries take $1 = the service name, $2 = the OIDs of the tables it
 * owns, $3/$4 = every owned table of every service with its service.  The
 * sets are computed once (splitdb_plan_build) and passed as arrays, which the
 * planner estimates well, instead of being recomputed in every query.
 */
#define SPLITDB_OWNED_CTE \
	"owned AS (SELECT u.relid FROM unnest($2::oid[]) u(relid))"
#define SPLITDB_OWNER_CTE \
	"owner AS (SELECT w.relid, w.service FROM unnest($3::oid[], $4::name[]) w(relid, service))"


/*
 * The types the owned tables' columns need, walked through arrays, domains,
 * composite types and ranges: CTEs walk(typid, depth, relid) and
 * used(typid, depth, tables), deepest dependency with the highest depth.
 * Needs the owned CTE before it.
 */
#define SPLITDB_TYPE_WALK_CTE \
	" walk(typid, depth, relid) AS (" \
	"  SELECT a.atttypid, 0, a.attrelid FROM pg_attribute a JOIN owned o ON o.relid = a.attrelid" \
	"   WHERE a.attnum > 0 AND NOT a.attisdropped" \
	"  UNION" \
	"  SELECT x.typid, w.depth + 1, w.relid FROM walk w JOIN pg_type t ON t.oid = w.typid" \
	"   CROSS JOIN LATERAL (" \
	"     SELECT t.typelem WHERE t.typelem <> 0 AND t.typlen = -1" \
	"     UNION ALL SELECT t.typbasetype WHERE t.typtype = 'd'" \
	"     UNION ALL SELECT a.atttypid FROM pg_attribute a" \
	"                WHERE t.typtype = 'c' AND a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped" \
	"     UNION ALL SELECT r.rngsubtype FROM pg_range r WHERE r.rngtypid = t.oid" \
	"     UNION ALL SELECT r.rngtypid FROM pg_range r WHERE r.rngmultitypid = t.oid) x(typid)" \
	"   WHERE w.depth < 32)," \
	" used AS (SELECT typid, max(depth) AS depth," \
	"                 string_agg(DISTINCT relid::regclass::text, ', ') AS tables" \
	"            FROM walk GROUP BY typid)"

/* t is a type splitdb must create in the sibling: made by a user, not by an extension */
#define SPLITDB_USER_TYPE(t) \
	"(" t ".typtype IN ('e', 'd', 'c', 'r') AND " t ".oid >= 16384" \
	" AND (" t ".typtype <> 'c' OR (SELECT c.relkind FROM pg_class c WHERE c.oid = " t ".typrelid) = 'c')" \
	" AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_type'::regclass" \
	"                  AND d.objid = " t ".oid AND d.deptype = 'e'))"

#endif							/* SPLITDB_PLAN_H */
