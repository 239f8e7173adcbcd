/*-------------------------------------------------------------------------
 *
 * plan.c
 *	  The migration plan of a service: what splitdb_plan() shows.
 *
 * The plan is read from the system catalogs, never from the data: one query
 * per kind of object (types, sequences, tables, indexes, foreign keys, views,
 * rules, policies, triggers, publications, inheritance), each returning rows
 * of (action, object, detail) in the order a migration would carry them out.
 * The steps are then numbered in the fixed order of SplitdbPlanAction, so a
 * type comes before the table that uses it, a table before its data, the data
 * before secondary indexes and foreign keys.  Warnings and blockers come last.
 * What a view's query asks that a shim cannot serve is found by walking the
 * query tree (viewwalk.c); the SQL fragments the plan shares with the DDL of
 * the sibling are in metadata/catalog_sql.h.
 *
 * Invariants:
 * - Nothing here writes; a plan can be asked for at any time, by anyone.
 * - The queries run under the caller's search_path = pg_catalog, pg_temp
 *   (set on the SQL functions), so catalog names are unqualified and every
 *   regclass or regtype prints schema-qualified.  The service name is always
 *   a parameter.
 * - Foreign keys are taken with conparentid = 0: the copies PostgreSQL makes
 *   on partitions are implied by their parent's and are not steps of their
 *   own, while keys declared only on partitions are.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/plan/plan.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "metadata/catalog.h"
#include "compat.h"
#include "plan/plan.h"
#include "plan/viewwalk.h"
#include "reference/reference.h"
#include "splitdb.h"

PG_FUNCTION_INFO_V1(splitdb_plan);

static const char *const action_names[SPLITDB_PLAN_NACTIONS] = {
	"create_type",
	"create_sequence",
	"create_table",
	"copy_data",
	"create_index",
	"keep_foreign_key",
	"convert_reference",
	"repoint_view",
	"warning",
	"blocker"
};

/*
 * SQL fragments shared by the queries below.
 *
 * colnames(rel, attnums): the quoted column names, comma-separated.
 * tables_label(oids): "public.a, public.b" for a set of relations.
 */
#define SQL_COLNAMES(rel, keys) \
	"(SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.ord)" \
	"   FROM unnest(" keys ") WITH ORDINALITY k(attnum, ord)" \
	"   JOIN pg_attribute a ON a.attrelid = " rel " AND a.attnum = k.attnum)"

#define SQL_PRIMARY_KEY(rel) \
	"(SELECT " SQL_COLNAMES("pk.conrelid", "pk.conkey") \
	"   FROM pg_constraint pk WHERE pk.conrelid = " rel " AND pk.contype = 'p')"

/* a unique index on NOT NULL columns, usable as a key when there is no PK */
#define SQL_UNIQUE_KEY(rel) \
	"(SELECT " SQL_COLNAMES("ui.indrelid", "(ui.indkey::int2[])[0:ui.indnkeyatts - 1]") \
	"   FROM pg_index ui WHERE ui.indrelid = " rel " AND ui.indisunique AND ui.indisvalid" \
	"    AND ui.indpred IS NULL AND ui.indexprs IS NULL" \
	"    AND NOT EXISTS (SELECT FROM unnest((ui.indkey::int2[])[0:ui.indnkeyatts - 1]) k(attnum)" \
	"                     JOIN pg_attribute a ON a.attrelid = ui.indrelid AND a.attnum = k.attnum" \
	"                    WHERE NOT a.attnotnull)" \
	"  ORDER BY ui.indnatts, ui.indexrelid LIMIT 1)"

#define SQL_FK_ACTION(c) \
	"CASE " c " WHEN 'a' THEN 'NO ACTION' WHEN 'r' THEN 'RESTRICT'" \
	" WHEN 'c' THEN 'CASCADE' WHEN 'n' THEN 'SET NULL' WHEN 'd' THEN 'SET DEFAULT' END"

/*
 * Types the owned tables' columns need, walked through arrays, domains,
 * composite types and ranges; deepest dependencies first.
 */
static const char *const sql_types =
"WITH RECURSIVE " SPLITDB_OWNED_CTE ","
SPLITDB_TYPE_WALK_CTE
" SELECT 'create_type', t.oid::regtype::text,"
"  concat_ws('; ',"
"   CASE t.typtype"
"    WHEN 'e' THEN format('enum with labels %s',"
"      (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)"
"         FROM pg_enum e WHERE e.enumtypid = t.oid))"
"    WHEN 'd' THEN format('domain over %s', format_type(t.typbasetype, t.typtypmod))"
"      || CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END"
"      || coalesce(' ' || (SELECT string_agg(pg_get_constraintdef(c.oid), ' ' ORDER BY c.conname)"
"                            FROM pg_constraint c WHERE c.contypid = t.oid AND c.contype = 'c'), '')"
"    WHEN 'c' THEN format('composite type (%s)',"
"      (SELECT string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)"
"         FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped))"
"    WHEN 'r' THEN format('range over %s',"
"      (SELECT format_type(r.rngsubtype, NULL) FROM pg_range r WHERE r.rngtypid = t.oid))"
"   END,"
"   'used by ' || u.tables,"
"   (SELECT 'also used by relations that stay (' || string_agg(DISTINCT a.attrelid::regclass::text, ', ')"
"           || '); the source keeps its own copy'"
"      FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
"     WHERE a.atttypid IN (t.oid, t.typarray) AND NOT a.attisdropped AND a.attnum > 0"
"       AND c.relkind IN ('r', 'p', 'f', 'm')"
"       AND a.attrelid NOT IN (SELECT relid FROM owned)))"
" FROM used u JOIN pg_type t ON t.oid = u.typid"
" WHERE " SPLITDB_USER_TYPE("t")
" ORDER BY u.depth DESC, 2";

/*
 * Collations of owned columns and indexes that are not built in: they must
 * exist in the sibling before the types and tables that use them, so they
 * are listed first among the create_type steps.
 */
static const char *const sql_collations =
"WITH " SPLITDB_OWNED_CTE ","
" uses AS ("
"  SELECT a.attrelid AS rel, a.attcollation AS coll"
"    FROM pg_attribute a JOIN owned o ON o.relid = a.attrelid"
"   WHERE a.attnum > 0 AND NOT a.attisdropped"
"  UNION"
"  SELECT i.indrelid, u.coll"
"    FROM pg_index i JOIN owned o ON o.relid = i.indrelid,"
"         unnest(i.indcollation::oid[]) u(coll))"
" SELECT 'create_type', c.oid::regcollation::text,"
"  format('collation (provider %s%s); used by %s',"
"   CASE c.collprovider WHEN 'i' THEN 'icu' WHEN 'c' THEN 'libc' ELSE 'default' END,"
"   CASE WHEN NOT c.collisdeterministic THEN ', nondeterministic' ELSE '' END,"
"   string_agg(DISTINCT u.rel::regclass::text, ', '))"
" FROM uses u JOIN pg_collation c ON c.oid = u.coll"
" WHERE " SPLITDB_OID_NOT_BUILT_IN("c.oid")
"   AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_collation'::regclass"
"                    AND d.objid = c.oid AND d.deptype = 'e')"
" GROUP BY c.oid, c.collprovider, c.collisdeterministic"
" ORDER BY 2";

/*
 * Sequences: serial and identity sequences of owned columns, and sequences
 * that owned columns' defaults call.  A sequence that also feeds a table
 * that stays gets a warning.
 */
static const char *const sql_sequences =
"WITH " SPLITDB_OWNED_CTE ","
" uses AS ("
"  SELECT d.objid AS seq, d.refobjid AS rel, d.refobjsubid AS att,"
"         CASE d.deptype WHEN 'i' THEN 'identity' ELSE 'owner' END AS how"
"    FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'"
"   WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass"
"     AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0"
"  UNION"
"  SELECT d.refobjid, ad.adrelid, ad.adnum, 'default'"
"    FROM pg_depend d JOIN pg_attrdef ad ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid"
"    JOIN pg_class s ON s.oid = d.refobjid AND s.relkind = 'S'"
"   WHERE d.refclassid = 'pg_class'::regclass),"
" cols AS ("
"  SELECT u.seq, u.rel, u.rel IN (SELECT relid FROM owned) AS moves,"
"         format('%s.%s', u.rel::regclass, quote_ident(a.attname)) AS col,"
"         CASE WHEN bool_or(u.how = 'identity') THEN"
"                format('identity column (GENERATED %s)',"
"                       CASE a.attidentity WHEN 'a' THEN 'ALWAYS' ELSE 'BY DEFAULT' END)"
"              WHEN bool_or(u.how = 'owner') AND bool_or(u.how = 'default') THEN 'serial column'"
"              WHEN bool_or(u.how = 'owner') THEN 'owned by column'"
"              ELSE 'default of column' END AS role"
"    FROM uses u JOIN pg_attribute a ON a.attrelid = u.rel AND a.attnum = u.att"
"   GROUP BY u.seq, u.rel, a.attname, a.attidentity),"
" seqs AS ("
"  SELECT seq,"
"         string_agg(role || ' ' || col, ', ' ORDER BY col) FILTER (WHERE moves) AS mine,"
"         string_agg(col, ', ' ORDER BY col) FILTER (WHERE NOT moves) AS others,"
"         bool_or(moves AND role LIKE 'identity%') AS identity"
"    FROM cols GROUP BY seq HAVING bool_or(moves))"
" SELECT 'create_sequence', seq::regclass::text,"
"        mine || CASE WHEN identity THEN '; made with its table, current value carried over'"
"                     ELSE '; current value carried over' END"
"   FROM seqs"
" UNION ALL"
" SELECT 'warning', seq::regclass::text,"
"        format('sequence %s also feeds %s, which stays; after the move each database draws from its own copy, so values can repeat across them',"
"               seq::regclass, others)"
"   FROM seqs WHERE others IS NOT NULL"
" ORDER BY 1 DESC, 2";

/* Tables, parents before partitions and inheritance children */
static const char *const sql_tables =
"WITH " SPLITDB_OWNED_CTE
" SELECT 'create_table', c.oid::regclass::text,"
"  concat_ws('; ',"
"   CASE WHEN c.relispartition THEN"
"     format('partition of %s %s', (SELECT i.inhparent::regclass FROM pg_inherits i WHERE i.inhrelid = c.oid),"
"            pg_get_expr(c.relpartbound, c.oid)) END,"
"   CASE WHEN c.relkind = 'p' THEN"
"     format('partitioned by %s with %s partitions', pg_get_partkeydef(c.oid),"
"            (SELECT count(*) FROM pg_inherits i WHERE i.inhparent = c.oid)) END,"
"   CASE WHEN NOT c.relispartition THEN"
"     (SELECT 'inherits from ' || string_agg(i.inhparent::regclass::text, ', ' ORDER BY i.inhseqno)"
"        FROM pg_inherits i WHERE i.inhrelid = c.oid) END,"
"   (SELECT format('%s column%s', count(*), CASE WHEN count(*) = 1 THEN '' ELSE 's' END)"
"           || CASE WHEN count(*) FILTER (WHERE a.attidentity <> '') > 0"
"                   THEN format(', %s identity', count(*) FILTER (WHERE a.attidentity <> '')) ELSE '' END"
"           || CASE WHEN count(*) FILTER (WHERE a.attgenerated <> '') > 0"
"                   THEN format(', %s generated', count(*) FILTER (WHERE a.attgenerated <> '')) ELSE '' END"
"      FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),"
"   coalesce('primary key (' || " SQL_PRIMARY_KEY("c.oid") " || ')', 'no primary key'),"
"   CASE WHEN c.relpersistence = 'u' THEN 'unlogged' END)"
" FROM owned o JOIN pg_class c ON c.oid = o.relid"
" ORDER BY (WITH RECURSIVE up(rel) AS ("
"            SELECT i.inhparent FROM pg_inherits i WHERE i.inhrelid = c.oid"
"            UNION SELECT i.inhparent FROM pg_inherits i JOIN up ON i.inhrelid = up.rel)"
"          SELECT count(*) FROM up), 2";

/* Data, for every owned table with storage */
static const char *const sql_copy =
"WITH " SPLITDB_OWNED_CTE
" SELECT 'copy_data', c.oid::regclass::text,"
"  concat_ws('; ',"
"   CASE WHEN c.reltuples < 0 THEN 'row count unknown (never analyzed)'"
"        ELSE format('about %s rows', c.reltuples::bigint) END,"
"   pg_size_pretty(pg_table_size(c.oid)),"
"   coalesce('batches in primary key order (' || " SQL_PRIMARY_KEY("c.oid") " || ')',"
"            'batches in unique key order (' || " SQL_UNIQUE_KEY("c.oid") " || ')',"
"            'one pass: no key to order batches by'))"
" FROM owned o JOIN pg_class c ON c.oid = o.relid"
" WHERE c.relkind = 'r'"
" ORDER BY 2";

/*
 * Secondary indexes, with unique and exclusion constraints; an index that
 * belongs to a partitioned index comes with its parent.
 */
static const char *const sql_indexes =
"WITH " SPLITDB_OWNED_CTE
" SELECT 'create_index', i.indexrelid::regclass::text,"
"  CASE WHEN con.oid IS NOT NULL"
"       THEN format('constraint %s on %s: %s', quote_ident(con.conname), i.indrelid::regclass,"
"                   pg_get_constraintdef(con.oid))"
"       ELSE pg_get_indexdef(i.indexrelid) END"
" FROM pg_index i JOIN owned o ON o.relid = i.indrelid"
" LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid"
"                            AND con.contype IN ('u', 'x')"
" WHERE NOT i.indisprimary AND i.indisvalid"
"   AND NOT EXISTS (SELECT FROM pg_inherits h WHERE h.inhrelid = i.indexrelid)"
" ORDER BY i.indrelid::regclass::text, 2";

/*
 * Foreign keys with an owned end: kept when both ends move to this service,
 * converted to a cross-service reference otherwise.
 */
static const char *const sql_foreign_keys =
"WITH " SPLITDB_OWNED_CTE ", " SPLITDB_OWNER_CTE
" SELECT CASE WHEN co.service IS NOT DISTINCT FROM po.service"
"             THEN 'keep_foreign_key' ELSE 'convert_reference' END,"
"  format('%s.%s', c.conrelid::regclass, quote_ident(c.conname)),"
"  CASE WHEN co.service IS NOT DISTINCT FROM po.service THEN"
"    pg_get_constraintdef(c.oid)"
"    || CASE WHEN c.conrelid = c.confrelid THEN '; self-reference' ELSE '' END"
"  ELSE"
"    format('references %s (%s) from columns (%s); %s; ON DELETE %s%s, ON UPDATE %s; MATCH %s; %s; referenced key: %s',"
"      c.confrelid::regclass,"
"      " SQL_COLNAMES("c.confrelid", "c.confkey") ","
"      " SQL_COLNAMES("c.conrelid", "c.conkey") ","
"      CASE WHEN co.service = $1"
"           THEN format('child moves to service %s, parent %s', quote_ident(co.service),"
"                       coalesce('moves to service ' || quote_ident(po.service), 'stays in the source'))"
"           ELSE format('parent moves to service %s, child %s', quote_ident(po.service),"
"                       coalesce('moves to service ' || quote_ident(co.service), 'stays in the source'))"
"      END,"
"      " SQL_FK_ACTION("c.confdeltype") ","
"      CASE WHEN c.confdelsetcols IS NOT NULL AND cardinality(c.confdelsetcols) > 0"
"           THEN ' (' || " SQL_COLNAMES("c.conrelid", "c.confdelsetcols") " || ')' ELSE '' END,"
"      " SQL_FK_ACTION("c.confupdtype") ","
"      CASE c.confmatchtype WHEN 'f' THEN 'FULL' WHEN 'p' THEN 'PARTIAL' ELSE 'SIMPLE' END,"
"      CASE WHEN NOT c.condeferrable THEN 'NOT DEFERRABLE'"
"           WHEN c.condeferred THEN 'DEFERRABLE INITIALLY DEFERRED'"
"           ELSE 'DEFERRABLE INITIALLY IMMEDIATE' END,"
"      (SELECT CASE WHEN x.indisprimary THEN 'primary key'"
"                   WHEN k.oid IS NOT NULL THEN format('unique constraint %s', quote_ident(k.conname))"
"                   ELSE format('unique index %s', c.conindid::regclass) END"
"         FROM pg_index x LEFT JOIN pg_constraint k ON k.conindid = x.indexrelid"
"                                                  AND k.conrelid = x.indrelid AND k.contype IN ('p', 'u')"
"        WHERE x.indexrelid = c.conindid))"
"  END"
" FROM pg_constraint c"
" LEFT JOIN owner co ON co.relid = c.conrelid"
" LEFT JOIN owner po ON po.relid = c.confrelid"
" WHERE c.contype = 'f' AND c.conparentid = 0"
"   AND (c.conrelid IN (SELECT relid FROM owned) OR c.confrelid IN (SELECT relid FROM owned))"
/*
 * References that an earlier job of another service made (their foreign
 * key is gone), whose end in the source this service owns: the cutover
 * moves that end (splitdb_cutover_record_references)
 */
" UNION ALL"
" SELECT 'convert_reference', format('%s.%s', r.child_table, quote_ident(r.constraint_name)),"
"  format('references %s (%s) from columns (%s); %s; ON DELETE %s%s, ON UPDATE %s; MATCH %s; %s;"
" a cross-service reference since job %s, whose end in the source moves with this service',"
"   r.parent_table,"
"   (SELECT string_agg(quote_ident(x), ', ' ORDER BY o) FROM unnest(r.parent_columns) WITH ORDINALITY u(x, o)),"
"   (SELECT string_agg(quote_ident(x), ', ' ORDER BY o) FROM unnest(r.child_columns) WITH ORDINALITY u(x, o)),"
"   CASE WHEN r.child_relid IN (SELECT relid FROM owned)"
"        THEN format('child moves to service %s, parent is in service %s', quote_ident($1),"
"                    quote_ident(r.parent_service))"
"        ELSE format('parent moves to service %s, child is in service %s', quote_ident($1),"
"                    quote_ident(r.child_service)) END,"
"   r.on_delete,"
"   CASE WHEN cardinality(r.delete_set_columns) > 0"
"        THEN ' (' || (SELECT string_agg(quote_ident(x), ', ' ORDER BY o)"
"                        FROM unnest(r.delete_set_columns) WITH ORDINALITY u(x, o)) || ')' ELSE '' END,"
"   r.on_update, r.match_type,"
"   CASE WHEN NOT r.is_deferrable THEN 'NOT DEFERRABLE'"
"        WHEN r.initially_deferred THEN 'DEFERRABLE INITIALLY DEFERRED'"
"        ELSE 'DEFERRABLE INITIALLY IMMEDIATE' END,"
"   r.job_id)"
" FROM splitdb.reference r JOIN splitdb.job j ON j.job_id = r.job_id"
" WHERE r.dropped_at IS NOT NULL AND j.service IS DISTINCT FROM $1"
"   AND ((r.child_relid IN (SELECT relid FROM owned) AND r.parent_service IS NOT NULL)"
"        OR (r.parent_relid IN (SELECT relid FROM owned) AND r.child_service IS NOT NULL))"
" ORDER BY 1 DESC, 2";

/*
 * Views and materialized views that read owned tables directly, with what
 * else they read; the C code below decides between repoint_view, warning and
 * blocker.
 */
static const char *const sql_views =
"WITH " SPLITDB_OWNED_CTE ","
" deps AS ("
"  SELECT DISTINCT r.ev_class AS view, d.refobjid AS rel, d.refobjsubid AS att"
"    FROM pg_rewrite r JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid"
"   WHERE r.rulename = '_RETURN' AND d.refclassid = 'pg_class'::regclass"
"     AND d.refobjid <> r.ev_class AND " SPLITDB_NOT_ARCHIVED("r.ev_class") ")"
" SELECT d.view, d.view::regclass::text, v.relkind = 'm',"
"  string_agg(DISTINCT d.rel::regclass::text, ', ') FILTER (WHERE d.rel IN (SELECT relid FROM owned)),"
"  string_agg(DISTINCT d.rel::regclass::text, ', ')"
"    FILTER (WHERE d.rel NOT IN (SELECT relid FROM owned) AND c.relkind IN ('r', 'p', 'f')),"
"  string_agg(DISTINCT format('%s of %s', CASE d.att WHEN -2 THEN 'xmin' WHEN -3 THEN 'cmin'"
"                                          WHEN -4 THEN 'xmax' WHEN -5 THEN 'cmax' END,"
"                             d.rel::regclass), ', ')"
"    FILTER (WHERE d.att BETWEEN -5 AND -2 AND d.rel IN (SELECT relid FROM owned)),"
"  (SELECT e.extname FROM pg_depend x JOIN pg_extension e ON e.oid = x.refobjid"
"    WHERE x.classid = 'pg_class'::regclass AND x.objid = d.view AND x.deptype = 'e'),"
/* what uses a materialized view, which the cutover creates anew */
"  (SELECT string_agg(DISTINCT coalesce((SELECT format('%s %s',"
"                                                      CASE u.relkind WHEN 'm' THEN 'materialized view'"
"                                                                     ELSE 'view' END, u.oid::regclass)"
"                                          FROM pg_rewrite ur JOIN pg_class u ON u.oid = ur.ev_class"
"                                         WHERE x.classid = 'pg_rewrite'::regclass AND ur.oid = x.objid),"
"                                        pg_describe_object(x.classid, x.objid, x.objsubid)), ', ')"
"     FROM pg_depend x"
"    WHERE v.relkind = 'm' AND x.deptype = 'n'"
"      AND ((x.refclassid = 'pg_class'::regclass AND x.refobjid = d.view)"
"           OR (x.refclassid = 'pg_type'::regclass AND x.refobjid = v.reltype))"
"      AND NOT (x.classid = 'pg_rewrite'::regclass"
"               AND x.objid IN (SELECT r.oid FROM pg_rewrite r WHERE r.ev_class = d.view)))"
" FROM deps d JOIN pg_class c ON c.oid = d.rel JOIN pg_class v ON v.oid = d.view"
" GROUP BY d.view, v.relkind, v.reltype"
" HAVING bool_or(d.rel IN (SELECT relid FROM owned))"
" ORDER BY 2";

/*
 * Everything else that can stop or change a migration: warnings and
 * blockers, one query for all of them.
 */
static const char *const sql_checks =
"WITH RECURSIVE " SPLITDB_OWNED_CTE ", " SPLITDB_OWNER_CTE ","
/* the user triggers on owned tables, each with its function and their callees */
" trigger_fns(tg, fn) AS ("
"  SELECT t.oid, t.tgfoid FROM pg_trigger t JOIN owned o ON o.relid = t.tgrelid"
"   WHERE NOT t.tgisinternal AND t.tgparentid = 0 AND " SPLITDB_NOT_OWN_TRIGGER("t")
"  UNION"
"  SELECT tf.tg, c.callee FROM trigger_fns tf CROSS JOIN LATERAL (" SPLITDB_FUNCTION_CALLS("tf.fn") ") c(callee)),"
/*
 * the types of the owned tables' columns, and the types they are made of:
 * a domain's base type, an array's element type, a composite type's
 * attributes' types, a range's subtype, a multirange's range
 */
" col_type(relid, attname, ty) AS ("
"  SELECT a.attrelid, a.attname, a.atttypid FROM pg_attribute a JOIN owned o ON o.relid = a.attrelid"
"   WHERE a.attnum > 0 AND NOT a.attisdropped"
"  UNION"
"  SELECT ct.relid, ct.attname, x.ty FROM col_type ct JOIN pg_type t ON t.oid = ct.ty"
"   CROSS JOIN LATERAL ("
"    SELECT t.typbasetype WHERE t.typtype = 'd'"
"    UNION ALL SELECT t.typelem WHERE t.typsubscript = 'array_subscript_handler'::regproc"
"    UNION ALL SELECT ca.atttypid FROM pg_attribute ca"
"     WHERE ca.attrelid = t.typrelid AND t.typrelid <> 0 AND ca.attnum > 0 AND NOT ca.attisdropped"
"    UNION ALL SELECT g.rngsubtype FROM pg_range g WHERE g.rngtypid = t.oid"
"    UNION ALL SELECT g.rngtypid FROM pg_range g WHERE g.rngmultitypid = t.oid) x(ty))"
/* rules on owned tables */
" SELECT 'blocker' AS action, format('%s.%s', r.ev_class::regclass, quote_ident(r.rulename)) AS object,"
"  format('rule %s on %s (ON %s%s) cannot follow its table: the shim left in the source is a foreign table, which has no rules; drop the rule or move its logic into the sibling before migrating',"
"   quote_ident(r.rulename), r.ev_class::regclass,"
"   CASE r.ev_type WHEN '1' THEN 'SELECT' WHEN '2' THEN 'UPDATE' WHEN '3' THEN 'INSERT' ELSE 'DELETE' END,"
"   CASE WHEN r.is_instead THEN ' DO INSTEAD' ELSE '' END) AS detail"
"  FROM pg_rewrite r JOIN owned o ON o.relid = r.ev_class WHERE r.rulename <> '_RETURN'"
/*
 * casts from or to those types (those made after PostgreSQL's own, which
 * only a superuser could cast) through a function that a role who is no
 * superuser owns, and may replace: the worker, a superuser, reads rows with
 * to_jsonb() and ::text and passes keys as text cast to their type, which
 * call such casts
 */
" UNION ALL"
" SELECT 'blocker', format('(%s AS %s)', c.castsource::regtype, c.casttarget::regtype),"
"  format('cast (%s AS %s) runs function %s, owned by role %s, who is no superuser; splitdb''s worker, a superuser, may call it when it reads or writes column %s (to_jsonb(), ::text and keys passed as text call casts), so that role could run code as a superuser; drop the cast, or have a superuser own the function, before migrating',"
"   c.castsource::regtype, c.casttarget::regtype, c.castfunc::regprocedure, quote_ident(r.rolname),"
"   min(format('%s.%s', ct.relid::regclass, quote_ident(ct.attname))))"
"  FROM col_type ct JOIN pg_cast c ON (c.castsource = ct.ty OR c.casttarget = ct.ty) AND c.castmethod = 'f'"
"  JOIN pg_proc p ON p.oid = c.castfunc JOIN pg_roles r ON r.oid = p.proowner"
" WHERE NOT r.rolsuper AND ct.ty >= " CppAsString2(FirstNormalObjectId)
" GROUP BY c.castsource, c.casttarget, c.castfunc, r.rolname"
/* owner code that calls built-in functions acting with the caller's rights (plan.h) */
SPLITDB_PLAN_CALLER_RIGHTS
/* rules elsewhere that use owned tables */
" UNION ALL"
" SELECT DISTINCT 'blocker', format('%s.%s', r.ev_class::regclass, quote_ident(r.rulename)),"
"  format('rule %s on %s uses %s, which moves; it refers to the table by OID and would keep using the archived original; drop it and recreate it after the cutover',"
"   quote_ident(r.rulename), r.ev_class::regclass, d.refobjid::regclass)"
"  FROM pg_rewrite r JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid"
"  JOIN owned o ON o.relid = d.refobjid AND d.refclassid = 'pg_class'::regclass"
" WHERE r.rulename <> '_RETURN' AND r.ev_class NOT IN (SELECT relid FROM owned)"
/* functions with SQL-standard bodies that use owned tables */
" UNION ALL"
" SELECT DISTINCT 'blocker', p.oid::regprocedure::text,"
"  format('function %s has a SQL-standard body that uses %s, which moves; the body refers to the table by OID and would keep using the archived original; recreate the function after the cutover',"
"   p.oid::regprocedure, d.refobjid::regclass)"
"  FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid"
"  JOIN owned o ON o.relid = d.refobjid AND d.refclassid = 'pg_class'::regclass"
/* policies on owned tables */
" UNION ALL"
" SELECT 'warning', format('%s.%s', p.polrelid::regclass, quote_ident(p.polname)),"
"  format('policy %s on %s (FOR %s TO %s) is recreated in the sibling, where it applies to the role the shim''s user mapping connects as, not to the roles of the monolith%s',"
"   quote_ident(p.polname), p.polrelid::regclass,"
"   CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'"
"                 WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,"
"   (SELECT string_agg(CASE WHEN u.role = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END, ', '"
"                      ORDER BY u.role = 0 DESC, r.rolname)"
"      FROM unnest(p.polroles) u(role) LEFT JOIN pg_roles r ON r.oid = u.role), " SPLITDB_POLICY_SETTINGS_NOTE ")"
"  FROM pg_policy p JOIN owned o ON o.relid = p.polrelid"
/* row-level security enabled on owned tables */
" UNION ALL"
" SELECT 'warning', c.oid::regclass::text,"
"  format('table %s has row-level security enabled%s; it is enabled in the sibling too, where it applies to the role the shim''s user mapping connects as',"
"   c.oid::regclass, CASE WHEN c.relforcerowsecurity THEN ' and forced' ELSE '' END)"
"  FROM pg_class c JOIN owned o ON o.relid = c.oid WHERE c.relrowsecurity"
SPLITDB_PLAN_RLS_REFERENCES
/* policies elsewhere that read owned tables */
" UNION ALL"
" SELECT DISTINCT 'blocker', format('%s.%s', p.polrelid::regclass, quote_ident(p.polname)),"
"  format('policy %s on %s reads %s, which moves; the policy refers to the table by OID and would keep reading the archived original; recreate it after the cutover',"
"   quote_ident(p.polname), p.polrelid::regclass, d.refobjid::regclass)"
"  FROM pg_policy p JOIN pg_depend d ON d.classid = 'pg_policy'::regclass AND d.objid = p.oid"
"  JOIN owned o ON o.relid = d.refobjid AND d.refclassid = 'pg_class'::regclass"
" WHERE p.polrelid NOT IN (SELECT relid FROM owned)"
/* user triggers on owned tables */
" UNION ALL"
" SELECT 'warning', format('%s.%s', t.tgrelid::regclass, quote_ident(t.tgname)),"
"  format('trigger %s on %s calls %s; it moves with the table and fires in the sibling, %s%s',"
"   quote_ident(t.tgname), t.tgrelid::regclass, t.tgfoid::regprocedure,"
"   CASE WHEN tp.pronamespace = 'pg_catalog'::regnamespace"
"        THEN 'which has that built-in function too' ELSE 'so the function is created there too' END,"
"   " SPLITDB_TRIGGER_SETTINGS_NOTE " || " SPLITDB_TRIGGER_NOTIFY_NOTE ")"
"  FROM pg_trigger t JOIN owned o ON o.relid = t.tgrelid JOIN pg_proc tp ON tp.oid = t.tgfoid"
" WHERE NOT t.tgisinternal AND t.tgparentid = 0 AND " SPLITDB_NOT_OWN_TRIGGER("t")
/*
 * ... whose function, or a function it calls, names relations that stay: a
 * name after FROM, JOIN, INTO, UPDATE, TABLE or TRUNCATE in a LANGUAGE sql
 * or plpgsql body, as that body's search_path finds it (PostgreSQL records
 * no dependency)
 */
" UNION ALL"
" SELECT 'warning', format('%s.%s', t.tgrelid::regclass, quote_ident(t.tgname)),"
"  format('trigger %s on %s calls %s, which names relations that do not move with it (%s); the trigger fires in the sibling, which has no such relations, so its statements on them fail there; assign them to the service too, or change the function',"
"   quote_ident(t.tgname), t.tgrelid::regclass, t.tgfoid::regprocedure,"
"   string_agg(DISTINCT CASE WHEN p.oid = t.tgfoid THEN c.oid::regclass::text"
"                            ELSE format('%s in %s', c.oid::regclass, p.oid::regprocedure) END, ', '))"
"  FROM trigger_fns tf JOIN pg_trigger t ON t.oid = tf.tg"
"  JOIN pg_proc p ON p.oid = tf.fn"
"  JOIN pg_language l ON l.oid = p.prolang AND l.lanname IN ('sql', 'plpgsql')"
"  CROSS JOIN LATERAL regexp_matches(p.prosrc,"
"   '\\m(?:from|join|into|update|table|truncate)[[:space:]]+(?:only[[:space:]]+)?"
"(?:" SPLITDB_NAME_RE "[[:space:]]*\\.[[:space:]]*)?" SPLITDB_NAME_RE "', 'gi') m"
"  JOIN pg_class c ON c.relname = " SPLITDB_FOLD("m[2]") " AND c.relkind IN ('r', 'p', 'v', 'm', 'f')"
"  JOIN pg_namespace cn ON cn.oid = c.relnamespace"
" WHERE c.oid NOT IN (SELECT relid FROM owned)"
"   AND cn.nspname NOT IN ('pg_catalog', 'information_schema', 'splitdb', '" SPLITDB_ARCHIVE_SCHEMA "')"
"   AND " SPLITDB_NAME_RESOLVES("m[1]", "cn.nspname", "p")
" GROUP BY t.oid, t.tgname, t.tgrelid, t.tgfoid"
/* publications */
" UNION ALL"
" SELECT 'warning', c.oid::regclass::text,"
"  format('table %s is published by publication %s; after the move its changes are published by the sibling, so subscribers must subscribe there',"
"   c.oid::regclass, quote_ident(pt.pubname))"
"  FROM pg_publication_tables pt"
"  JOIN pg_namespace n ON n.nspname = pt.schemaname"
"  JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename"
"  JOIN owned o ON o.relid = c.oid"
/*
 * GENERATED ALWAYS identity columns: the shim's column is a generated one,
 * which no INSERT may give a value, not even with OVERRIDING SYSTEM VALUE
 * (postgres_fdw could not send that clause to the sibling anyway)
 */
" UNION ALL"
" SELECT 'warning', format('%s.%s', c.oid::regclass, quote_ident(a.attname)),"
"  format('identity column %s.%s is GENERATED ALWAYS; on the shim it is a generated column that the sibling fills, so an INSERT through the shim that gives it a value is refused even with OVERRIDING SYSTEM VALUE (428C9); insert such rows in the sibling directly, or make the column GENERATED BY DEFAULT',"
"   c.oid::regclass, quote_ident(a.attname))"
"  FROM pg_class c JOIN owned o ON o.relid = c.oid"
"  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
" WHERE NOT c.relispartition AND a.attidentity = 'a'"
/* tables without a primary key */
" UNION ALL"
" SELECT 'warning', c.oid::regclass::text,"
"  CASE WHEN " SQL_UNIQUE_KEY("c.oid") " IS NOT NULL"
"   THEN format('table %s has no primary key; its unique key (%s) on NOT NULL columns orders the copy instead',"
"               c.oid::regclass, " SQL_UNIQUE_KEY("c.oid") ")"
"   WHEN c.relkind = 'p' THEN format('partitioned table %s has no primary key and no unique key on NOT NULL columns; its partitions are copied by their own keys (in one pass where they have none), but an online migration needs one on the partitioned table: add a primary key, or migrate with mode => ''offline''', c.oid::regclass)"
"   ELSE format('table %s has no primary key and no unique key on NOT NULL columns; an online migration, the default, needs one, and splitdb_migrate() refuses the service (0A000): add a primary key, or migrate with mode => ''offline'', which copies the table in one pass with no resume point and verifies it by whole-row checksums', c.oid::regclass) END"
"  FROM pg_class c JOIN owned o ON o.relid = c.oid"
" WHERE NOT c.relispartition"
"   AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'p')"
/* an owned table attached as a partition of a table of another database */
" UNION ALL"
" SELECT 'blocker', c.oid::regclass::text,"
"  format('table %s is a partition of %s, which %s; a partition cannot live in another database than its parent; detach it, or assign the partitioned table instead',"
"   c.oid::regclass, i.inhparent::regclass,"
"   coalesce('belongs to service ' || quote_ident(po.service), 'stays in the source'))"
"  FROM pg_class c JOIN owned o ON o.relid = c.oid"
"  JOIN pg_inherits i ON i.inhrelid = c.oid"
"  LEFT JOIN owner po ON po.relid = i.inhparent"
" WHERE c.relispartition AND i.inhparent NOT IN (SELECT relid FROM owned)"
/* invalid indexes, left by a failed CREATE INDEX CONCURRENTLY */
" UNION ALL"
" SELECT 'warning', i.indexrelid::regclass::text,"
"  format('index %s on %s is invalid (a CREATE INDEX CONCURRENTLY failed); it is not created in the sibling; drop or rebuild it',"
"   i.indexrelid::regclass, i.indrelid::regclass)"
"  FROM pg_index i JOIN owned o ON o.relid = i.indrelid WHERE NOT i.indisvalid"
/* inheritance (not partitioning) across the boundary */
" UNION ALL"
" SELECT CASE WHEN po.service IS NOT DISTINCT FROM co.service THEN 'warning' ELSE 'blocker' END,"
"  i.inhrelid::regclass::text,"
"  CASE WHEN po.service IS NOT DISTINCT FROM co.service"
"   THEN format('table %s inherits from %s; both move and the inheritance is recreated in the sibling',"
"               i.inhrelid::regclass, i.inhparent::regclass)"
"   ELSE format('table %s inherits from %s, but only %s moves; inheritance cannot span two databases; assign both tables to the same service or neither',"
"               i.inhrelid::regclass, i.inhparent::regclass,"
"               CASE WHEN co.service = $1 THEN 'the child' ELSE 'the parent' END) END"
"  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid AND NOT c.relispartition"
"  JOIN pg_class p ON p.oid = i.inhparent AND p.relkind = 'r'"
"  LEFT JOIN owner co ON co.relid = i.inhrelid"
"  LEFT JOIN owner po ON po.relid = i.inhparent"
" WHERE co.service = $1 OR po.service = $1"
/* column types that come from extensions */
" UNION ALL"
" SELECT DISTINCT 'warning', t.oid::regtype::text,"
"  format('type %s comes from extension %s, which must be installed in the sibling as well',"
"   t.oid::regtype, quote_ident(e.extname))"
"  FROM pg_attribute a JOIN owned o ON o.relid = a.attrelid"
"  JOIN pg_type t ON t.oid = a.atttypid OR t.typarray = a.atttypid"
"  JOIN pg_depend d ON d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e'"
"  JOIN pg_extension e ON e.oid = d.refobjid"
" WHERE a.attnum > 0 AND NOT a.attisdropped"
/* row types of tables used as column types */
" UNION ALL"
" SELECT DISTINCT CASE WHEN t.typrelid IN (SELECT relid FROM owned) THEN 'warning' ELSE 'blocker' END,"
"  format('%s.%s', a.attrelid::regclass, quote_ident(a.attname)),"
"  CASE WHEN t.typrelid IN (SELECT relid FROM owned)"
"   THEN format('column %s.%s has the row type of table %s, which moves too; that table is created first',"
"               a.attrelid::regclass, quote_ident(a.attname), t.typrelid::regclass)"
"   ELSE format('column %s.%s has the row type of table %s, which stays; a row type cannot be shared across databases; assign that table too or change the column''s type',"
"               a.attrelid::regclass, quote_ident(a.attname), t.typrelid::regclass) END"
"  FROM pg_attribute a JOIN owned o ON o.relid = a.attrelid"
"  JOIN pg_type t ON t.oid = a.atttypid OR t.typarray = a.atttypid"
"  JOIN pg_class r ON r.oid = t.typrelid AND r.relkind <> 'c'"
" WHERE a.attnum > 0 AND NOT a.attisdropped"
/*
 * references to another service that is migrated: once both are, neither
 * can be rolled back (rollback.c check_source)
 */
" UNION ALL"
" SELECT DISTINCT 'warning', format('%s.%s', r.child_table, quote_ident(r.constraint_name)),"
"  format('foreign key %s of %s links this service to service %s, which is migrated; once service %s is migrated too, splitdb_rollback() refuses both services, since the key can come back only with both tables in the source: the way out of this migration is splitdb_cancel() until its cutover, and splitdb_finalize() after',"
"   quote_ident(r.constraint_name), r.child_table, quote_ident(j.service), quote_ident($1))"
"  FROM splitdb.reference r JOIN splitdb.job j ON j.job_id = r.job_id"
" WHERE r.dropped_at IS NOT NULL AND j.service IS DISTINCT FROM $1"
"   AND j.state IN ('cutting_over', 'done', 'finalized')"
"   AND ((r.child_relid IN (SELECT relid FROM owned) AND r.parent_service = j.service)"
"        OR (r.parent_relid IN (SELECT relid FROM owned) AND r.child_service = j.service))"
" ORDER BY 1 DESC, 2, 3";

/* what run_steps() returns a row of: action, object, detail */
static void
add_step(List **steps, SplitdbPlanAction action, char *object, char *detail)
{
	SplitdbPlanStep *step = palloc(sizeof(SplitdbPlanStep));

	step->action = action;
	step->object = object;
	step->detail = detail;
	steps[action] = lappend(steps[action], step);
}

/*
 * action_from_name
 *		The SplitdbPlanAction of a name in action_names[].
 */
static SplitdbPlanAction
action_from_name(const char *name)
{
	for (int i = 0; i < SPLITDB_PLAN_NACTIONS; i++)
		if (strcmp(action_names[i], name) == 0)
			return (SplitdbPlanAction) i;
	elog(ERROR, "unknown plan action \"%s\"", name);
	return SPLITDB_PLAN_BLOCKER;	/* keep compiler quiet */
}

/* the tables each service owns (catalog.h) */
static const char *const sql_owner =
"SELECT r.relid, r.service FROM (" SPLITDB_OWNED_RELATION_SQL ") r ORDER BY 1";

/* the parameters of every plan query */
typedef struct PlanParams
{
	Datum		values[4];		/* service, owned oid[], all oid[], name[] */
	List	   *owned;			/* the service's tables, as a List of OIDs */
} PlanParams;

static const Oid plan_param_types[4] = {NAMEOID, OIDARRAYOID, OIDARRAYOID,
NAMEARRAYOID};

/*
 * plan_params
 *		Read who owns what once, for all the plan queries.
 */
static PlanParams *
plan_params(const char *service)
{
	PlanParams *params = palloc0(sizeof(PlanParams));
	Datum	   *owned;
	Datum	   *all;
	Datum	   *services;
	int			nowned = 0;
	uint64		n;

	splitdb_spi_exec(sql_owner, 0, NULL, NULL, NULL, true, 0);
	n = SPI_processed;
	owned = palloc((n + 1) * sizeof(Datum));
	all = palloc((n + 1) * sizeof(Datum));
	services = palloc((n + 1) * sizeof(Datum));

	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		bool		isnull;
		char	   *owner;

		all[i] = SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull);
		owner = SPI_getvalue(tup, SPI_tuptable->tupdesc, 2);
		services[i] = DirectFunctionCall1(namein, CStringGetDatum(owner));
		if (strcmp(owner, service) == 0)
		{
			owned[nowned++] = all[i];
			params->owned = lappend_oid(params->owned, DatumGetObjectId(all[i]));
		}
	}

	params->values[0] = DirectFunctionCall1(namein, CStringGetDatum(service));
	params->values[1] = PointerGetDatum(construct_array(owned, nowned, OIDOID,
														sizeof(Oid), true,
														TYPALIGN_INT));
	params->values[2] = PointerGetDatum(construct_array(all, (int) n, OIDOID,
														sizeof(Oid), true,
														TYPALIGN_INT));
	params->values[3] = PointerGetDatum(construct_array(services, (int) n,
														NAMEOID, NAMEDATALEN,
														false, TYPALIGN_CHAR));
	return params;
}

/*
 * run_query
 *		Run one of the plan queries and append its (action, object, detail)
 *		rows to steps[].
 *
 * The caller is connected to SPI; the strings live in its SPI context.
 */
static void
run_query(const char *sql, PlanParams *params, List **steps)
{
	splitdb_spi_exec(sql, 4, (Oid *) plan_param_types, params->values, NULL,
					 true, 0);

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;

		add_step(steps, action_from_name(SPI_getvalue(tup, desc, 1)),
				 SPI_getvalue(tup, desc, 2), SPI_getvalue(tup, desc, 3));
	}
}

/*
 * add_view_steps
 *		repoint_view, warning or blocker for each view over owned tables.
 */
static void
add_view_steps(PlanParams *params, List **steps)
{
	SPITupleTable *tuptable;
	uint64		n;

	splitdb_spi_exec(sql_views, 4, (Oid *) plan_param_types, params->values,
					 NULL, true, 0);
	tuptable = SPI_tuptable;
	n = SPI_processed;

	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	tup = tuptable->vals[i];
		TupleDesc	desc = tuptable->tupdesc;
		bool		isnull;
		Oid			view = DatumGetObjectId(SPI_getbinval(tup, desc, 1, &isnull));
		char	   *name = SPI_getvalue(tup, desc, 2);
		bool		matview = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull));
		char	   *moving = SPI_getvalue(tup, desc, 4);
		char	   *staying = SPI_getvalue(tup, desc, 5);
		char	   *syscols = SPI_getvalue(tup, desc, 6);
		char	   *extension = SPI_getvalue(tup, desc, 7);
		char	   *users = SPI_getvalue(tup, desc, 8);
		const char *kind = matview ? "materialized view" : "view";
		StringInfoData reasons;

		initStringInfo(&reasons);
		splitdb_view_unservable(view, params->owned, &reasons);
		if (syscols != NULL)
		{
			if (reasons.len > 0)
				appendStringInfoString(&reasons, ", ");
			appendStringInfo(&reasons, "system column %s", syscols);
		}

		if (extension != NULL)
			add_step(steps, SPLITDB_PLAN_BLOCKER, name,
					 psprintf("%s %s belongs to extension %s and reads %s, which moves; splitdb cannot re-point an extension's view",
							  kind, name, quote_identifier(extension), moving));
		else if (users != NULL)
			add_step(steps, SPLITDB_PLAN_BLOCKER, name,
					 psprintf("materialized view %s reads %s, which moves, and is used by %s; the cutover creates a materialized view anew over the shims, and those would keep using the archived one; drop them before migrating and recreate them after the cutover",
							  name, moving, users));
		else if (reasons.len > 0)
			add_step(steps, SPLITDB_PLAN_BLOCKER, name,
					 psprintf("%s %s uses %s; a foreign table cannot serve that, so the view cannot be re-pointed to the shim; change the view before migrating",
							  kind, name, reasons.data));
		else
		{
			add_step(steps, SPLITDB_PLAN_REPOINT_VIEW, name,
					 psprintf("%s over %s; re-pointed to the shim at cutover%s",
							  kind, moving,
							  matview ? ", then refreshed through it" : ""));
			if (staying != NULL)
				add_step(steps, SPLITDB_PLAN_WARNING, name,
						 psprintf("%s %s reads tables that move (%s) and tables that stay (%s); after the cutover the join runs in the source and reads the moved rows through the shim",
								  kind, name, moving, staying));
		}
	}
}

/* the service's last job, with the database its tables went to */
static const char *const sql_last_job =
"SELECT j.job_id, j.state, s.dbname, r.step FROM splitdb.job j"
" JOIN splitdb.service s ON s.service = j.service"
" LEFT JOIN splitdb.rollback r ON r.job_id = j.job_id"
" WHERE j.service = $1 ORDER BY j.job_id DESC LIMIT 1";

/*
 * migrated_detail
 *		The detail of the blocker of a service whose last job cut over (done
 *		or finalized), with the way out that is open, or NULL.  Its owned
 *		tables then name the archived originals, whose plan would describe a
 *		second migration that splitdb_migrate() refuses.
 *
 * in_flight: set to the detail of a warning when the last job has neither
 * cut over nor ended (it runs, or it failed): the way out is a cancel.
 *
 * A done job whose rollback has started and has not restored the source
 * (splitdb.rollback.step replaying) has one way on, as splitdb_status.way_out
 * says: to finish that rollback.
 */
static char *
migrated_detail(const char *service, char **in_flight)
{
	Oid			argtype = NAMEOID;
	Datum		arg = DirectFunctionCall1(namein, CStringGetDatum(service));
	char	   *job;
	char	   *state;
	char	   *rollback_step;
	const char *dbname;

	*in_flight = NULL;
	splitdb_spi_exec(sql_last_job, 1, &argtype, &arg, NULL, true, 1);
	if (SPI_processed == 0)
		return NULL;
	job = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	state = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	dbname = quote_identifier(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3));
	rollback_step = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4);

	if (strcmp(state, "finalized") == 0)
		return psprintf("service %s has already been migrated: job %s is finalized, and its tables live in database %s; the originals are dropped, so there is no way back; nothing is left to plan, see splitdb_status",
						quote_identifier(service), job, dbname);
	if (strcmp(state, "done") == 0 && rollback_step != NULL &&
		strcmp(rollback_step, "replaying") == 0)
		return psprintf("service %s has already been migrated: job %s is done, and its tables live in database %s, their originals in schema splitdb_archive; a splitdb_rollback() of it has started and has not restored them: the way on is splitdb_rollback(%s), which finishes it; nothing is left to plan, see splitdb_status and splitdb.rollback",
						quote_identifier(service), job, dbname,
						quote_literal_cstr(service));
	if (strcmp(state, "done") == 0)
		return psprintf("service %s has already been migrated: job %s is done, and its tables live in database %s, their originals in schema splitdb_archive; the way out: splitdb_rollback(%s) brings the tables back with every write made since, splitdb_finalize(%s) drops the originals; nothing is left to plan, see splitdb_status",
						quote_identifier(service), job, dbname,
						quote_literal_cstr(service), quote_literal_cstr(service));
	if (strcmp(state, "cancelled") != 0 && strcmp(state, "rolled_back") != 0)
		*in_flight = psprintf("job %s of service %s is %s; splitdb_cancel(%s) stops it and removes what it made in database %s, leaving the source as it was",
							  job, quote_identifier(service), state,
							  quote_literal_cstr(service), dbname);
	return NULL;
}

/*
 * add_mapping_steps
 *		A blocker for each user mapping in the source, and a warning for each
 *		in a sibling, that the service's references will need and that
 *		splitdb cannot create (reference.c decides).
 */
static void
add_mapping_steps(const char *service, List **steps)
{
	ListCell   *lc;

	foreach(lc, splitdb_reference_plan_mappings(service))
	{
		SplitdbMappingNeed *need = lfirst(lc);

		add_step(steps, need->blocker ? SPLITDB_PLAN_BLOCKER : SPLITDB_PLAN_WARNING,
				 need->object, need->detail);
	}
}

/*
 * splitdb_plan_build
 *		The plan of a service, as a List of SplitdbPlanStep in step order.
 *
 * service: a registered service (the caller checked)
 *
 * The caller is connected to SPI and runs with search_path = pg_catalog,
 * pg_temp.  The steps live in the caller's SPI context.
 */
List *
splitdb_plan_build(const char *service)
{
	List	   *steps[SPLITDB_PLAN_NACTIONS] = {0};
	List	   *result = NIL;
	PlanParams *params;
	char	   *in_flight;
	char	   *migrated = migrated_detail(service, &in_flight);

	/* the owned tables are archived originals now: nothing is left to plan */
	if (migrated != NULL)
	{
		add_step(steps, SPLITDB_PLAN_BLOCKER, pstrdup(service), migrated);
		return steps[SPLITDB_PLAN_BLOCKER];
	}

	params = plan_params(service);

	run_query(sql_collations, params, steps);
	run_query(sql_types, params, steps);
	run_query(sql_sequences, params, steps);
	run_query(sql_tables, params, steps);
	run_query(sql_copy, params, steps);
	run_query(sql_indexes, params, steps);
	run_query(sql_foreign_keys, params, steps);
	add_view_steps(params, steps);
	run_query(sql_checks, params, steps);
	run_query(splitdb_plan_sql_online_keys, params, steps);
	run_query(splitdb_plan_sql_shim_rights, params, steps);
	run_query(splitdb_plan_sql_shim_mappings, params, steps);
	run_query(splitdb_plan_sql_shared_sibling, params, steps);
	add_mapping_steps(service, steps);
	run_query(splitdb_plan_sql_function_checks, params, steps);
	run_query(splitdb_plan_sql_row_type_functions, params, steps);

	if (in_flight != NULL)
		add_step(steps, SPLITDB_PLAN_WARNING, pstrdup(service), in_flight);
	if (params->owned == NIL)
		add_step(steps, SPLITDB_PLAN_WARNING, pstrdup(service),
				 psprintf("service %s owns no tables; assign some with splitdb_assign()",
						  quote_identifier(service)));

	for (int i = 0; i < SPLITDB_PLAN_NACTIONS; i++)
		result = list_concat(result, steps[i]);
	return result;
}

/*
 * splitdb_plan_action_name
 *		The name splitdb_plan() shows for an action.
 */
const char *
splitdb_plan_action_name(SplitdbPlanAction action)
{
	Assert(action >= 0 && action < SPLITDB_PLAN_NACTIONS);
	return action_names[action];
}

/*
 * splitdb_plan
 *		SQL: splitdb_plan(service name)
 *		RETURNS TABLE(step int, action text, object text, detail text)
 *
 * The dry run of a migration: every step in execution order, then warnings
 * and blockers.  Reads the catalogs only.
 */
Datum
splitdb_plan(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *service = pstrdup(NameStr(*PG_GETARG_NAME(0)));
	List	   *steps;
	ListCell   *lc;
	int			stepno = 0;

	InitMaterializedSRF(fcinfo, 0);

	splitdb_spi_connect();
	(void) splitdb_catalog_get_service(service, SPLITDB_LOCK_NONE, false);
	steps = splitdb_plan_build(service);

	foreach(lc, steps)
	{
		SplitdbPlanStep *step = (SplitdbPlanStep *) lfirst(lc);
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		values[0] = Int32GetDatum(++stepno);
		values[1] = CStringGetTextDatum(splitdb_plan_action_name(step->action));
		values[2] = CStringGetTextDatum(step->object);
		if (step->detail != NULL)
			values[3] = CStringGetTextDatum(step->detail);
		else
			nulls[3] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	SPI_finish();
	return (Datum) 0;
}
