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

/* shimrights.c: roles whose writes through a shim with row triggers fail */
extern const char *const splitdb_plan_sql_shim_rights;

/* shimmappings.c: roles without a user mapping for the service's server */
extern const char *const splitdb_plan_sql_shim_mappings;

/* sharedsibling.c: another service, joined by a reference, in the same database */
extern const char *const splitdb_plan_sql_shared_sibling;

/* rowtype.c: functions bound to a moving table's row type */
extern const char *const splitdb_plan_sql_row_type_functions;

/* functions.c: the checks of the functions the sibling gets */
extern const char *const splitdb_plan_sql_function_checks;

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
 * A note for the warnings about policies and triggers that move (plan.c):
 * an expression or a function body that reads a setting with
 * current_setting() reads the sibling's session, where the source's SET and
 * set_config() do not reach (postgres_fdw opens sessions of its own).  A
 * name match in the policy's expressions, in the user functions they call
 * (pg_depend) and in the trigger's function; nothing deeper.
 */
#define SPLITDB_SETTINGS_RE "'\\mcurrent_setting\\s*\\('"
#define SPLITDB_SETTINGS_NOTE(what) \
	"'; the " what " reads settings with current_setting(), which in the sibling are those of the" \
	" shim''s remote session, not what a session of the source set with SET or set_config(); change" \
	" the " what ", or give the settings to the user mapping''s role there (ALTER ROLE ... SET) when they do not vary'"
#define SPLITDB_POLICY_SETTINGS_NOTE \
	" CASE WHEN concat(pg_get_expr(p.polqual, p.polrelid), ' ', pg_get_expr(p.polwithcheck, p.polrelid))" \
	"   ~* " SPLITDB_SETTINGS_RE " OR EXISTS (SELECT FROM pg_depend sd JOIN pg_proc sf ON sf.oid = sd.refobjid" \
	"   WHERE sd.classid = 'pg_policy'::regclass AND sd.objid = p.oid AND sd.refclassid = 'pg_proc'::regclass" \
	"     AND sf.prosrc ~* " SPLITDB_SETTINGS_RE ")" \
	" THEN " SPLITDB_SETTINGS_NOTE("policy") " ELSE '' END"
#define SPLITDB_TRIGGER_SETTINGS_NOTE \
	" CASE WHEN (SELECT sf.prosrc FROM pg_proc sf WHERE sf.oid = t.tgfoid) ~* " SPLITDB_SETTINGS_RE \
	" THEN " SPLITDB_SETTINGS_NOTE("trigger''s function") " ELSE '' END"

/*
 * A note for the warnings about triggers that move (plan.c): a trigger's
 * function that sends notifications (NOTIFY, pg_notify()) sends them in
 * the sibling's database once the trigger fires there, and a session that
 * LISTENs in the source hears none.  A name match in the trigger's
 * function; nothing deeper.
 */
#define SPLITDB_NOTIFY_RE "'\\m(pg_notify\\s*\\(|notify\\s+[[:alpha:]_\"])'"
#define SPLITDB_TRIGGER_NOTIFY_NOTE \
	" CASE WHEN (SELECT sf.prosrc FROM pg_proc sf WHERE sf.oid = t.tgfoid) ~* " SPLITDB_NOTIFY_RE \
	" THEN '; the trigger''s function sends notifications (NOTIFY or pg_notify()), which it will send in" \
	" the sibling''s database: a session that LISTENs in the source no longer hears them; LISTEN in the" \
	" sibling''s database instead' ELSE '' END"

/*
 * Cross-service references with an end that has row-level security
 * (plan.c): splitdb's checks and actions on that end, run from the other
 * database, run there as the table's owner past the policies, as
 * PostgreSQL's foreign keys read the table; on a connection that splitdb
 * cannot prove they run as the role of a user mapping with row_security
 * off, and fail where the policies apply to that role.
 */
#define SPLITDB_PLAN_RLS_REFERENCES \
	" UNION ALL" \
	" SELECT 'warning', format('%s.%s', k.conrelid::regclass, quote_ident(k.conname))," \
	"  format('reference %s from %s to %s: table %s has row-level security; the checks and actions that" \
	" splitdb runs on it from the other database run there as the table''s owner, past the policies, as a" \
	" foreign key reads the table, except on a connection that splitdb cannot prove (a transaction that" \
	" read or wrote another foreign table of that server first, databases that share no secret): there they" \
	" run as the role of a user mapping with row_security off, so that no policy runs its functions with" \
	" that role''s rights, and fail (42501) where the policies apply to that role; keep such reads and" \
	" writes out of those transactions, or map the roles that write to a role that the policies do not" \
	" apply to there (BYPASSRLS, or the table''s owner without FORCE ROW LEVEL SECURITY)'," \
	"   quote_ident(k.conname), k.conrelid::regclass, k.confrelid::regclass, c.oid::regclass)" \
	"  FROM pg_constraint k JOIN pg_class c ON c.oid IN (k.conrelid, k.confrelid) AND c.relrowsecurity" \
	" WHERE k.contype = 'f' AND k.conparentid = 0" \
	"   AND (k.conrelid IN (SELECT relid FROM owned)) <> (k.confrelid IN (SELECT relid FROM owned))"

/*
 * SPLITDB_CALLER_RIGHTS_FN(p): true for the functions (pg_proc row p) that
 * act with the rights of the role that runs them in a way their caller's
 * expression does not show, and that splitdb.owner_rights cannot run as
 * their owner (PostgreSQL's own, which it calls without the hook, and any
 * that a superuser owns or whose language is not trusted):
 * - PostgreSQL's own that run SQL text they are given (query_to_xml() and
 *   its kin, ts_stat(), ts_rewrite()), read whole tables or other
 *   sessions' statements (table_to_xml() and its kin, pg_stat_get_activity()
 *   and pg_stat_get_backend_*()), change settings (set_config(), the
 *   superuser-only ones included), sequences, large objects or replication
 *   slots, write WAL messages, end or hold sessions (pg_terminate_backend(),
 *   advisory locks, pg_sleep());
 * - dblink's, which connect anywhere as whoever runs them;
 * - any of those that PUBLIC may not execute: EXECUTE is checked against the
 *   role that runs the expression, which is a superuser in the worker.
 */
#define SPLITDB_CALLER_RIGHTS_FN(p) \
"((" p ".oid < " CppAsString2(FirstNormalObjectId) \
"   AND (" p ".proname IN ('query_to_xml', 'query_to_xmlschema', 'query_to_xml_and_xmlschema'," \
"                         'cursor_to_xml', 'cursor_to_xmlschema', 'table_to_xml', 'table_to_xmlschema'," \
"                         'table_to_xml_and_xmlschema', 'schema_to_xml', 'schema_to_xmlschema'," \
"                         'schema_to_xml_and_xmlschema', 'database_to_xml', 'database_to_xmlschema'," \
"                         'database_to_xml_and_xmlschema', 'ts_stat', 'ts_rewrite', 'set_config'," \
"                         'nextval', 'setval', 'currval', 'loread', 'lowrite', 'pg_cancel_backend'," \
"                         'pg_terminate_backend', 'pg_stat_get_activity', 'pg_logical_emit_message')" \
"        OR " p ".proname ~ '^(lo_|pg_stat_get_backend_|pg_(try_)?advisory_|pg_sleep|pg_logical_slot_)'" \
"        OR " p ".proname ~ 'replication_slot'))" \
" OR (" p ".proname LIKE 'dblink%'" \
"     AND EXISTS (SELECT FROM pg_roles sr WHERE sr.oid = " p ".proowner AND sr.rolsuper))" \
" OR (NOT EXISTS (SELECT FROM pg_catalog.aclexplode(coalesce(" p ".proacl," \
"                                                    pg_catalog.acldefault('f', " p ".proowner))) a" \
"                  WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE')" \
"     AND (EXISTS (SELECT FROM pg_roles sr WHERE sr.oid = " p ".proowner AND sr.rolsuper)" \
"          OR NOT EXISTS (SELECT FROM pg_language l WHERE l.oid = " p ".prolang AND l.lanpltrusted))))"

/*
 * The expressions of an owned table that PostgreSQL evaluates when splitdb's
 * worker writes or builds it, a superuser in the source and in the
 * sibling (its CHECK constraints, stored generated columns, index
 * expressions and predicates, exclusion constraints among them, partition
 * keys, triggers' conditions), with the role who wrote them (the table's
 * owner), and the CHECK constraints of the domains they evaluate: those of
 * the columns' types and what those are made of (col_type), those that an
 * expression casts to, and those that a domain's own constraint or base
 * type names, followed through.  Domains appear in a stored expression as
 * the type of one of its nodes (resulttype, consttype, ...).
 */
#define SPLITDB_TYPE_OIDS_RE "':[a-z_]*type(?:id)? ([0-9]+)'"
#define SPLITDB_PLAN_WRITTEN_EXPRS \
"  WITH RECURSIVE own_exprs(what, writer, expr) AS (" \
"    SELECT format('constraint %s of table %s', quote_ident(k.conname), k.conrelid::regclass)," \
"           c.relowner, k.conbin::text" \
"      FROM pg_constraint k JOIN owned o ON o.relid = k.conrelid JOIN pg_class c ON c.oid = k.conrelid" \
"     WHERE k.contype = 'c'" \
"    UNION ALL" \
"    SELECT format('generated column %s of table %s', quote_ident(a.attname), a.attrelid::regclass)," \
"           c.relowner, d.adbin::text" \
"      FROM pg_attrdef d JOIN owned o ON o.relid = d.adrelid" \
"      JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum" \
"      JOIN pg_class c ON c.oid = d.adrelid WHERE a.attgenerated = 's'" \
"    UNION ALL" \
"    SELECT format('index %s', i.indexrelid::regclass), c.relowner," \
"           concat_ws(' ', i.indexprs::text, i.indpred::text)" \
"      FROM pg_index i JOIN owned o ON o.relid = i.indrelid JOIN pg_class c ON c.oid = i.indrelid" \
"     WHERE i.indexprs IS NOT NULL OR i.indpred IS NOT NULL" \
"    UNION ALL" \
"    SELECT format('the partition key of table %s', p.partrelid::regclass), c.relowner, p.partexprs::text" \
"      FROM pg_partitioned_table p JOIN owned o ON o.relid = p.partrelid JOIN pg_class c ON c.oid = p.partrelid" \
"     WHERE p.partexprs IS NOT NULL" \
"    UNION ALL" \
"    SELECT format('the condition of trigger %s on %s', quote_ident(t.tgname), t.tgrelid::regclass)," \
"           c.relowner, t.tgqual::text" \
"      FROM pg_trigger t JOIN owned o ON o.relid = t.tgrelid JOIN pg_class c ON c.oid = t.tgrelid" \
"     WHERE t.tgqual IS NOT NULL AND NOT t.tgisinternal)," \
"  doms(ty) AS (" \
"    SELECT ct.ty FROM col_type ct JOIN pg_type t ON t.oid = ct.ty AND t.typtype = 'd'" \
"    UNION" \
"    SELECT t.oid FROM own_exprs x" \
"     CROSS JOIN LATERAL pg_catalog.regexp_matches(x.expr, " SPLITDB_TYPE_OIDS_RE ", 'g') m" \
"      JOIN pg_type t ON t.oid = m[1]::oid AND t.typtype = 'd'" \
"    UNION" \
"    SELECT t2.oid FROM doms d JOIN pg_type t ON t.oid = d.ty" \
"     CROSS JOIN LATERAL (SELECT t.typbasetype" \
"                         UNION ALL" \
"                         SELECT m[1]::oid FROM pg_constraint k" \
"                          CROSS JOIN LATERAL pg_catalog.regexp_matches(k.conbin::text, " SPLITDB_TYPE_OIDS_RE ", 'g') m" \
"                          WHERE k.contypid = t.oid) x(ty)" \
"      JOIN pg_type t2 ON t2.oid = x.ty AND t2.typtype = 'd')" \
"  SELECT what, writer, expr FROM own_exprs" \
"  UNION ALL" \
"  SELECT format('constraint %s of domain %s', quote_ident(k.conname), k.contypid::regtype)," \
"         t.typowner, k.conbin::text" \
"    FROM doms d JOIN pg_constraint k ON k.contypid = d.ty AND k.contype = 'c'" \
"    JOIN pg_type t ON t.oid = d.ty"

/*
 * The blockers for those expressions when a role who is no superuser wrote
 * them and they call a function of SPLITDB_CALLER_RIGHTS_FN, directly or
 * through an operator: splitdb's worker, a superuser, evaluates them when
 * it copies, replays and validates, and splitdb.owner_rights, which runs
 * the owner's own functions as their owner, does not reach these.  A part
 * of plan.c's checks, whose CTEs owned and col_type it reads.
 */
#define SPLITDB_PLAN_CALLER_RIGHTS \
	" UNION ALL" \
	" SELECT DISTINCT 'blocker', e.what," \
	"  format('%s calls %s, which acts with the rights of the role that runs it; splitdb''s worker, a superuser, evaluates it when it copies, replays or validates rows, so what role %s, who is no superuser, wrote would run as a superuser; drop the call, or move it into a function that role owns (splitdb.owner_rights runs such a function as its owner), before migrating'," \
	"   e.what, f.oid::regprocedure, quote_ident(r.rolname))" \
	"  FROM (" SPLITDB_PLAN_WRITTEN_EXPRS ") e" \
	"  JOIN pg_roles r ON r.oid = e.writer AND NOT r.rolsuper" \
	"  CROSS JOIN LATERAL pg_catalog.regexp_matches(e.expr, ':(funcid|opno) ([0-9]+)', 'g') m" \
	"  JOIN pg_proc f ON f.oid = CASE m[1] WHEN 'funcid' THEN m[2]::oid" \
	"                            ELSE (SELECT op.oprcode::oid FROM pg_operator op WHERE op.oid = m[2]::oid) END" \
	" WHERE " SPLITDB_CALLER_RIGHTS_FN("f")

#endif							/* SPLITDB_PLAN_H */
