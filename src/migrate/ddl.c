/*-------------------------------------------------------------------------
 *
 * ddl.c
 *	  DDL for a service's sibling database, read from the source catalogs:
 *	  which statements, and in what order (ddlapply.c runs them).
 *
 * The statements are produced by catalog queries that call PostgreSQL's own
 * deparsers (format_type, pg_get_expr, pg_get_constraintdef,
 * pg_get_indexdef, pg_get_triggerdef, pg_get_functiondef, ...), the same ones
 * pg_dump relies on, so the sibling's tables come out as pg_dump would show
 * the originals.  They run in three stages: before the data (schemas,
 * extensions, collations, types, functions, sequences, tables with their
 * columns and CHECK constraints, partitions, column settings, comments,
 * the owners and grants of the types and functions), after it (primary
 * keys, secondary indexes, unique and exclusion constraints, index
 * attachments, replica identity and CLUSTER ON, extended statistics,
 * foreign keys among the service's tables, triggers, policies, the
 * comments on these), and in the cutover's sibling transaction (the
 * triggers' enabled states, the owners and grants of the tables and
 * sequences, FORCE ROW LEVEL SECURITY).  Until then the copies belong to
 * the role the job connects as and grant nothing: no other role reads or
 * writes them before the shims exist, and no trigger of theirs fires on the
 * rows the online rounds replay.  The test of
 * this file is an oracle:
 * `pg_dump --schema-only -t` of each table gives the same text in the sibling
 * as in the source, but for the cross-service foreign keys
 * (test/t/003_schema_oracle.pl).
 *
 * Invariants:
 * - The queries run with search_path = pg_catalog, pg_temp (the worker's
 *   setting), so every name the deparsers print is schema-qualified.
 * - Every identifier is quoted by the catalog functions (quote_ident, %I,
 *   regclass output); literals in DDL, which takes no parameters, go through
 *   quote_literal (%L).
 * - Foreign keys with an end outside the service are never produced here:
 *   they become cross-service references (cutover.c).
 * - A statement that creates an object carries a guard, the name of a
 *   remote query (ddlapply.c) that is true when the object already exists,
 *   so a resumed job skips what an earlier run made; the others (ALTER ...
 *   SET, COMMENT, GRANT, REVOKE) give the same result when they run twice.
 * - Each statement is one SQL command: the sibling runs it through the
 *   extended protocol, which refuses several commands in one string.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/ddl.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "metadata/catalog.h"
#include "metadata/catalog_sql.h"
#include "compat.h"
#include "migrate/ddl.h"
#include "splitdb.h"

/* $1: the OIDs of every relation the job moves, partitions included */
#define DDL_OWNED_CTE "owned AS (SELECT u.relid FROM unnest($1::oid[]) u(relid))"

/* a column definition: a is pg_attribute, ad its pg_attrdef row */
#define SQL_COLUMN_DEF \
	"format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod))" \
	" || CASE WHEN a.attcollation <> 0 AND a.attcollation <>" \
	"          (SELECT ty.typcollation FROM pg_type ty WHERE ty.oid = a.atttypid)" \
	"         THEN ' COLLATE ' || a.attcollation::regcollation::text ELSE '' END" \
	" || CASE WHEN a.attidentity IN ('a', 'd') THEN" \
	"      (SELECT format(' GENERATED %s AS IDENTITY (SEQUENCE NAME %s START WITH %s INCREMENT BY %s" \
	" MINVALUE %s MAXVALUE %s CACHE %s%s)'," \
	"               CASE a.attidentity WHEN 'a' THEN 'ALWAYS' ELSE 'BY DEFAULT' END," \
	"               q.seqrelid::regclass, q.seqstart, q.seqincrement, q.seqmin, q.seqmax, q.seqcache," \
	"               CASE WHEN q.seqcycle THEN ' CYCLE' ELSE '' END)" \
	"         FROM pg_depend d JOIN pg_sequence q ON q.seqrelid = d.objid" \
	"        WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass" \
	"          AND d.refobjid = a.attrelid AND d.refobjsubid = a.attnum AND d.deptype = 'i')" \
	"    ELSE '' END" \
	" || CASE WHEN a.attgenerated = 's'" \
	"         THEN format(' GENERATED ALWAYS AS (%s) STORED', pg_get_expr(ad.adbin, ad.adrelid))" \
	"         WHEN ad.adbin IS NOT NULL THEN ' DEFAULT ' || pg_get_expr(ad.adbin, ad.adrelid)" \
	"         ELSE '' END" \
	" || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END"

/* how deep a relation sits under partitioned or inheritance parents */
#define SQL_DEPTH(rel) \
	"(WITH RECURSIVE up(rel) AS (" \
	"   SELECT dh.inhparent FROM pg_inherits dh WHERE dh.inhrelid = " rel \
	"   UNION SELECT dh.inhparent FROM pg_inherits dh JOIN up ON dh.inhrelid = up.rel)" \
	" SELECT count(*) FROM up)"

/*
 * What the owned tables' index expressions, defaults and constraints, and
 * the functions in fns, name by OID in pg_depend (a COLLATE clause, a
 * regconfig constant): the OIDs of catalog refclass.  Needs fns.
 */
#define SQL_EXPRESSION_USES(refclass) \
	"  SELECT d.refobjid FROM pg_depend d WHERE d.refclassid = '" refclass "'::regclass" \
	"   AND ((d.classid = 'pg_class'::regclass AND d.objid IN" \
	"          (SELECT i.indexrelid FROM pg_index i JOIN owned o ON o.relid = i.indrelid))" \
	"     OR (d.classid = 'pg_attrdef'::regclass AND d.objid IN" \
	"          (SELECT ad.oid FROM pg_attrdef ad JOIN owned o ON o.relid = ad.adrelid))" \
	"     OR (d.classid = 'pg_constraint'::regclass AND d.objid IN" \
	"          (SELECT k.oid FROM pg_constraint k JOIN owned o ON o.relid = k.conrelid))" \
	"     OR (d.classid = 'pg_proc'::regclass AND d.objid IN (SELECT fn FROM fns)))"

/*
 * The text search configurations the service's indexes, defaults,
 * constraints and functions use: by OID (a regconfig constant, in pg_depend)
 * or by name (in a function's body or a trigger's arguments, where
 * PostgreSQL records nothing), and the dictionaries they map tokens to.
 * Needs fns.
 */
#define SQL_USED_TS_CONFIGS \
	" tscfgs(cfg) AS (" \
	SQL_EXPRESSION_USES("pg_ts_config") \
	"  UNION SELECT c.oid FROM pg_ts_config c JOIN pg_proc p ON p.oid IN (SELECT fn FROM fns)" \
	"   WHERE " SPLITDB_OID_NOT_BUILT_IN("c.oid") " AND position(c.cfgname::text IN p.prosrc) > 0" \
	"  UNION SELECT c.oid FROM pg_ts_config c JOIN pg_trigger t ON t.tgrelid IN (SELECT relid FROM owned)" \
	"   WHERE " SPLITDB_OID_NOT_BUILT_IN("c.oid") " AND position(c.cfgname::text IN encode(t.tgargs, 'escape')) > 0)," \
	" tsdicts AS (SELECT DISTINCT m.mapdict AS dict FROM pg_ts_config_map m JOIN tscfgs c ON c.cfg = m.mapcfg)"

/*
 * Each query returns rows of (kind, name, schema, guard, arg1, arg2, sql), in
 * the order the statements must run.
 */

/*
 * extensions whose types, functions or operator classes the service's
 * tables use (an exclusion constraint over btree_gist's classes, say), and
 * the extensions those require (earthdistance's cube), the required first
 */
static const char *const sql_extensions =
"WITH RECURSIVE " DDL_OWNED_CTE "," SPLITDB_TYPE_WALK_CTE "," SPLITDB_USED_FUNCTIONS_CTE ","
SQL_USED_TS_CONFIGS ","
" members AS ("
"  SELECT d.refobjid AS ext FROM used u JOIN pg_depend d ON d.classid = 'pg_type'::regclass"
"     AND d.objid = u.typid AND d.deptype = 'e'"
"  UNION SELECT d.refobjid FROM fns f JOIN pg_depend d ON d.classid = 'pg_proc'::regclass"
"     AND d.objid = f.fn AND d.deptype = 'e'"
"  UNION SELECT d.refobjid FROM pg_index i JOIN owned o ON o.relid = i.indrelid,"
"         unnest(i.indclass::oid[]) u(opc)"
"    JOIN pg_depend d ON d.classid = 'pg_opclass'::regclass AND d.objid = u.opc AND d.deptype = 'e'"
"  UNION SELECT d.refobjid FROM tsdicts t JOIN pg_depend d ON d.classid = 'pg_ts_dict'::regclass"
"     AND d.objid = t.dict AND d.deptype = 'e'"
"  UNION SELECT d.refobjid FROM tsdicts t JOIN pg_ts_dict td ON td.oid = t.dict"
"     JOIN pg_depend d ON d.classid = 'pg_ts_template'::regclass"
"     AND d.objid = td.dicttemplate AND d.deptype = 'e'),"
/* and the extensions they require, each before those that require it */
" required (ext, depth) AS ("
"  SELECT m.ext, 0 FROM members m"
"  UNION ALL SELECT d.refobjid, r.depth + 1 FROM required r JOIN pg_depend d"
"     ON d.classid = 'pg_extension'::regclass AND d.objid = r.ext"
"    AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'n'"
"   WHERE r.depth < 16)"
" SELECT 'extension', quote_ident(e.extname), n.nspname, NULL, NULL, NULL,"
"  format('CREATE EXTENSION IF NOT EXISTS %I WITH SCHEMA %I', e.extname, n.nspname)"
" FROM (SELECT ext, max(depth) AS depth FROM required GROUP BY ext) r"
" JOIN pg_extension e ON e.oid = r.ext JOIN pg_namespace n ON n.oid = e.extnamespace"
" WHERE e.extname <> 'plpgsql'"
" ORDER BY r.depth DESC, 2";

/* collations of owned columns and indexes, and those the functions use, that are not built in */
static const char *const sql_collations =
"WITH RECURSIVE " DDL_OWNED_CTE "," SPLITDB_TYPE_WALK_CTE "," SPLITDB_USED_FUNCTIONS_CTE ","
" uses AS ("
"  SELECT a.attcollation AS coll FROM pg_attribute a JOIN owned o ON o.relid = a.attrelid"
"   WHERE a.attnum > 0 AND NOT a.attisdropped"
"  UNION SELECT u.coll FROM pg_index i JOIN owned o ON o.relid = i.indrelid,"
"         unnest(i.indcollation::oid[]) u(coll)"
/* COLLATE in an expression of an index, a constraint, a default */
"  UNION" SQL_EXPRESSION_USES("pg_collation")
/* and in a function's body, where PostgreSQL records nothing */
"  UNION SELECT c.oid FROM pg_collation c JOIN pg_proc p ON p.oid IN (SELECT fn FROM fns)"
"   WHERE " SPLITDB_OID_NOT_BUILT_IN("c.oid") " AND p.prosrc ILIKE '%collate%' AND position(c.collname::text IN p.prosrc) > 0)"
" SELECT 'collation', c.oid::regcollation::text, n.nspname, 'regcollation', c.oid::regcollation::text, NULL,"
"  CASE WHEN c.collprovider = 'i'"
"   THEN format('CREATE COLLATION %s (provider = icu, locale = %L%s)', c.oid::regcollation,"
"               c.colliculocale, CASE WHEN NOT c.collisdeterministic THEN ', deterministic = false' ELSE '' END)"
"   ELSE format('CREATE COLLATION %s (provider = libc, lc_collate = %L, lc_ctype = %L)', c.oid::regcollation,"
"               c.collcollate, c.collctype) END"
" FROM uses u JOIN pg_collation c ON c.oid = u.coll JOIN pg_namespace n ON n.oid = c.collnamespace"
" WHERE " SPLITDB_USER_OBJECT("pg_collation", "c")
" ORDER BY 2";

/* the users' text search dictionaries those configurations use */
static const char *const sql_ts_dictionaries =
"WITH RECURSIVE " DDL_OWNED_CTE "," SPLITDB_TYPE_WALK_CTE "," SPLITDB_USED_FUNCTIONS_CTE "," SQL_USED_TS_CONFIGS
" SELECT 'text search dictionary', d.oid::regdictionary::text, n.nspname, 'tsdict', n.nspname, d.dictname::text,"
"  format('CREATE TEXT SEARCH DICTIONARY %s (TEMPLATE = %I.%I%s)', d.oid::regdictionary,"
"         tn.nspname, tt.tmplname, coalesce(', ' || d.dictinitoption, ''))"
" FROM tsdicts u JOIN pg_ts_dict d ON d.oid = u.dict JOIN pg_namespace n ON n.oid = d.dictnamespace"
" JOIN pg_ts_template tt ON tt.oid = d.dicttemplate JOIN pg_namespace tn ON tn.oid = tt.tmplnamespace"
" WHERE " SPLITDB_USER_OBJECT("pg_ts_dict", "d")
" ORDER BY 2";

/*
 * The users' text search configurations: each is created, then gets one
 * mapping statement per token type, in token order.
 */
static const char *const sql_ts_configurations =
"WITH RECURSIVE " DDL_OWNED_CTE "," SPLITDB_TYPE_WALK_CTE "," SPLITDB_USED_FUNCTIONS_CTE "," SQL_USED_TS_CONFIGS
" SELECT kind, name, schema, guard, arg1, arg2, sql FROM ("
"  SELECT 'text search configuration' AS kind, c.oid::regconfig::text AS name, n.nspname AS schema,"
"   'tsconfig' AS guard, n.nspname::text AS arg1, c.cfgname::text AS arg2,"
"   format('CREATE TEXT SEARCH CONFIGURATION %s (PARSER = %I.%I)', c.oid::regconfig, pn.nspname, pr.prsname) AS sql,"
"   -1 AS tokid"
"  FROM tscfgs u JOIN pg_ts_config c ON c.oid = u.cfg JOIN pg_namespace n ON n.oid = c.cfgnamespace"
"  JOIN pg_ts_parser pr ON pr.oid = c.cfgparser JOIN pg_namespace pn ON pn.oid = pr.prsnamespace"
"  WHERE " SPLITDB_USER_OBJECT("pg_ts_config", "c")
"  UNION ALL"
"  SELECT 'text search mapping', format('%s %s', c.oid::regconfig, t.alias), NULL,"
"   'tsmapping', c.oid::regconfig::text, t.alias,"
"   format('ALTER TEXT SEARCH CONFIGURATION %s ADD MAPPING FOR %I WITH %s', c.oid::regconfig, t.alias,"
"          string_agg(m.mapdict::regdictionary::text, ', ' ORDER BY m.mapseqno)),"
"   t.tokid"
"  FROM tscfgs u JOIN pg_ts_config c ON c.oid = u.cfg"
"  JOIN pg_ts_config_map m ON m.mapcfg = c.oid"
"  CROSS JOIN LATERAL ts_token_type(c.cfgparser) t"
"  WHERE t.tokid = m.maptokentype AND " SPLITDB_USER_OBJECT("pg_ts_config", "c")
"  GROUP BY c.oid, t.alias, t.tokid) s"
" ORDER BY CASE WHEN s.tokid = -1 THEN s.name ELSE s.arg1 END, s.tokid";

/* the constraint k calls a function made by a user */
#define SQL_CALLS_USER_FUNCTION(k) \
	"EXISTS (SELECT FROM pg_depend fd JOIN pg_proc fp ON fp.oid = fd.refobjid" \
	"         WHERE fd.classid = 'pg_constraint'::regclass AND fd.objid = " k ".oid" \
	"           AND fd.refclassid = 'pg_proc'::regclass AND " SPLITDB_USER_FUNCTION("fp") ")"

/*
 * Enums, domains, composite types and ranges: those of the tables, deepest
 * dependency first, then those only the functions name in their bodies
 * (SPLITDB_BODY_TYPES_CTE), which may use the former.  A domain's CHECK
 * constraint that calls a user's function is left out: the functions come
 * after the types, and sql_domain_constraints adds it once they are there.
 */
static const char *const sql_types =
"WITH RECURSIVE " DDL_OWNED_CTE "," SPLITDB_TYPE_WALK_CTE "," SPLITDB_USED_FUNCTIONS_CTE ","
SPLITDB_BODY_TYPES_CTE
" SELECT 'type', t.oid::regtype::text, n.nspname, 'regtype', t.oid::regtype::text, NULL,"
"  CASE t.typtype"
"   WHEN 'e' THEN format('CREATE TYPE %s AS ENUM (%s)', t.oid::regtype,"
"     (SELECT coalesce(string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder), '')"
"        FROM pg_enum e WHERE e.enumtypid = t.oid))"
"   WHEN 'd' THEN format('CREATE DOMAIN %s AS %s', t.oid::regtype, format_type(t.typbasetype, t.typtypmod))"
"     || CASE WHEN t.typcollation <> 0 AND t.typcollation <>"
"                  (SELECT b.typcollation FROM pg_type b WHERE b.oid = t.typbasetype)"
"             THEN ' COLLATE ' || t.typcollation::regcollation::text ELSE '' END"
"     || CASE WHEN t.typdefaultbin IS NOT NULL THEN ' DEFAULT ' || pg_get_expr(t.typdefaultbin, 0) ELSE '' END"
"     || CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END"
"     || coalesce((SELECT string_agg(format(' CONSTRAINT %I %s', c.conname, pg_get_constraintdef(c.oid)), '' ORDER BY c.conname)"
"                    FROM pg_constraint c WHERE c.contypid = t.oid AND c.contype = 'c'"
"                     AND NOT " SQL_CALLS_USER_FUNCTION("c") "), '')"
"   WHEN 'c' THEN format('CREATE TYPE %s AS (%s)', t.oid::regtype,"
"     (SELECT coalesce(string_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod))"
"              || CASE WHEN a.attcollation <> 0 AND a.attcollation <>"
"                           (SELECT ty.typcollation FROM pg_type ty WHERE ty.oid = a.atttypid)"
"                      THEN ' COLLATE ' || a.attcollation::regcollation::text ELSE '' END,"
"              ', ' ORDER BY a.attnum), '')"
"        FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped))"
"   WHEN 'r' THEN (SELECT format('CREATE TYPE %s AS RANGE (subtype = %s%s%s%s, multirange_type_name = %s)',"
"       t.oid::regtype, format_type(r.rngsubtype, NULL),"
"       CASE WHEN oc.opcdefault THEN '' ELSE format(', subtype_opclass = %I.%I', ocn.nspname, oc.opcname) END,"
"       CASE WHEN r.rngcollation <> 0 AND r.rngcollation <>"
"                 (SELECT s.typcollation FROM pg_type s WHERE s.oid = r.rngsubtype)"
"            THEN ', collation = ' || r.rngcollation::regcollation::text ELSE '' END,"
"       CASE WHEN r.rngsubdiff <> 0 THEN ', subtype_diff = ' || r.rngsubdiff::regproc::text ELSE '' END,"
"       r.rngmultitypid::regtype)"
"     FROM pg_range r JOIN pg_opclass oc ON oc.oid = r.rngsubopc"
"     JOIN pg_namespace ocn ON ocn.oid = oc.opcnamespace WHERE r.rngtypid = t.oid)"
"  END"
" FROM (SELECT typid, depth, 0 AS pass FROM used UNION ALL SELECT typid, depth, 1 FROM body_types) u"
" JOIN pg_type t ON t.oid = u.typid JOIN pg_namespace n ON n.oid = t.typnamespace"
" WHERE " SPLITDB_USER_TYPE("t")
" ORDER BY u.pass, u.depth DESC, 2";

/*
 * Functions made by users that defaults, constraints, indexes, triggers and
 * policies call.  One without a search_path setting of its own resolves
 * names with the search_path of the session that calls it: in the sibling,
 * where postgres_fdw's sessions run with search_path = pg_catalog and the
 * database's settings are not the source's, it gets the path its owner's
 * sessions start with in the source (SPLITDB_SESSION_PATH), so its
 * unqualified names find the same objects whichever way a write arrives.
 */
static const char *const sql_functions =
"WITH RECURSIVE " DDL_OWNED_CTE "," SPLITDB_TYPE_WALK_CTE "," SPLITDB_USED_FUNCTIONS_CTE
" SELECT 'function', p.oid::regprocedure::text, n.nspname, NULL, NULL, NULL, pg_get_functiondef(p.oid)"
" FROM fns f JOIN pg_proc p ON p.oid = f.fn JOIN pg_namespace n ON n.oid = p.pronamespace"
" WHERE " SPLITDB_USER_FUNCTION("p")
" UNION ALL"
" SELECT 'function search_path', p.oid::regprocedure::text, n.nspname, NULL, NULL, NULL,"
"  format('ALTER FUNCTION %s SET search_path TO %s', p.oid::regprocedure,"
"         " SPLITDB_PATH_LIST(SPLITDB_SESSION_PATH("p")) ")"
" FROM fns f JOIN pg_proc p ON p.oid = f.fn JOIN pg_namespace n ON n.oid = p.pronamespace"
"  JOIN pg_language l ON l.oid = p.prolang"
" WHERE " SPLITDB_USER_FUNCTION("p") " AND l.lanname NOT IN ('c', 'internal')"
"  AND NOT EXISTS (SELECT FROM unnest(p.proconfig) g WHERE g LIKE 'search\\_path=%')"
" ORDER BY 2, 1";

/*
 * The domains' CHECK constraints that sql_types left out because they call
 * a user's function, added once sql_functions made the functions.
 */
static const char *const sql_domain_constraints =
"WITH RECURSIVE " DDL_OWNED_CTE "," SPLITDB_TYPE_WALK_CTE "," SPLITDB_USED_FUNCTIONS_CTE ","
SPLITDB_BODY_TYPES_CTE
" SELECT 'domain constraint', format('%s.%I', t.oid::regtype, c.conname), n.nspname, 'domain constraint',"
"  t.oid::regtype::text, c.conname::text,"
"  format('ALTER DOMAIN %s ADD CONSTRAINT %I %s', t.oid::regtype, c.conname, pg_get_constraintdef(c.oid))"
" FROM (SELECT typid FROM used UNION SELECT typid FROM body_types) u"
" JOIN pg_type t ON t.oid = u.typid AND t.typtype = 'd' JOIN pg_namespace n ON n.oid = t.typnamespace"
" JOIN pg_constraint c ON c.contypid = t.oid AND c.contype = 'c'"
" WHERE " SPLITDB_USER_TYPE("t") " AND " SQL_CALLS_USER_FUNCTION("c")
" ORDER BY 2";

/* sequences the owned columns own or call, except identity sequences (made with their table) */
#define SQL_USED_SEQUENCES \
	" seqs AS (" \
	"  SELECT d.objid AS seq FROM pg_depend d JOIN owned o ON o.relid = d.refobjid" \
	"    JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'" \
	"   WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype = 'a'" \
	"  UNION SELECT d.refobjid FROM pg_depend d JOIN pg_attrdef ad ON d.classid = 'pg_attrdef'::regclass" \
	"     AND d.objid = ad.oid JOIN owned o ON o.relid = ad.adrelid" \
	"    JOIN pg_class s ON s.oid = d.refobjid AND s.relkind = 'S'" \
	"   WHERE d.refclassid = 'pg_class'::regclass)"

static const char *const sql_sequences =
"WITH " DDL_OWNED_CTE "," SQL_USED_SEQUENCES
" SELECT 'sequence', s.oid::regclass::text, n.nspname, 'regclass', s.oid::regclass::text, NULL,"
"  format('CREATE %sSEQUENCE %s AS %s INCREMENT BY %s MINVALUE %s MAXVALUE %s START WITH %s CACHE %s%s',"
"    CASE WHEN s.relpersistence = 'u' THEN 'UNLOGGED ' ELSE '' END, s.oid::regclass,"
"    format_type(q.seqtypid, NULL), q.seqincrement, q.seqmin, q.seqmax, q.seqstart, q.seqcache,"
"    CASE WHEN q.seqcycle THEN ' CYCLE' ELSE '' END)"
" FROM seqs x JOIN pg_class s ON s.oid = x.seq JOIN pg_sequence q ON q.seqrelid = s.oid"
" JOIN pg_namespace n ON n.oid = s.relnamespace"
" WHERE NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = s.oid"
"                    AND d.deptype = 'i')"
" ORDER BY 2";

/*
 * Tables, parents before children: columns with their properties and CHECK
 * constraints.  The primary key comes after the data (sql_constraints), as
 * pg_dump does it: one sorted build is cheaper than inserting every row into
 * the index, and the copy's parallel streams do not split each other's index
 * pages.  A partition is made as a table of its own and attached afterwards,
 * as pg_dump does, so its constraint and index names are the originals'.
 */
static const char *const sql_tables =
"WITH " DDL_OWNED_CTE
" SELECT 'table', c.oid::regclass::text, n.nspname, 'regclass', c.oid::regclass::text, NULL,"
"  format('CREATE %sTABLE %s (%s)%s%s%s',"
"   CASE WHEN c.relpersistence = 'u' THEN 'UNLOGGED ' ELSE '' END, c.oid::regclass,"
"   concat_ws(', ',"
"    (SELECT string_agg(" SQL_COLUMN_DEF ", ', ' ORDER BY a.attnum)"
"       FROM pg_attribute a LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum"
"      WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
"        AND (a.attislocal OR c.relispartition)),"
"    (SELECT string_agg(format('CONSTRAINT %I %s', k.conname, pg_get_constraintdef(k.oid)), ', '"
"                       ORDER BY k.contype DESC, k.conname)"
"       FROM pg_constraint k WHERE k.conrelid = c.oid"
"        AND k.contype = 'c' AND k.convalidated AND (k.conislocal OR c.relispartition))),"
"   CASE WHEN NOT c.relispartition THEN"
"     (SELECT ' INHERITS (' || string_agg(i.inhparent::regclass::text, ', ' ORDER BY i.inhseqno) || ')'"
"        FROM pg_inherits i WHERE i.inhrelid = c.oid) ELSE NULL END,"
"   CASE WHEN c.relkind = 'p' THEN ' PARTITION BY ' || pg_get_partkeydef(c.oid) ELSE '' END,"
"   CASE WHEN c.reloptions IS NOT NULL THEN ' WITH (' || array_to_string(c.reloptions, ', ') || ')' ELSE '' END)"
" FROM owned o JOIN pg_class c ON c.oid = o.relid JOIN pg_namespace n ON n.oid = c.relnamespace"
" ORDER BY " SQL_DEPTH("c.oid") ", 2";

/* serial sequences follow their column */
static const char *const sql_owned_by =
"WITH " DDL_OWNED_CTE
" SELECT 'sequence owner', s.oid::regclass::text, NULL, NULL, NULL, NULL,"
"  format('ALTER SEQUENCE %s OWNED BY %s.%I', s.oid::regclass, d.refobjid::regclass, a.attname)"
" FROM pg_depend d JOIN owned o ON o.relid = d.refobjid"
" JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'"
" JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid"
" WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype = 'a'"
" ORDER BY 2";

/* partitions join their parents */
static const char *const sql_attach =
"WITH " DDL_OWNED_CTE
" SELECT 'partition', c.oid::regclass::text, NULL, 'partition', c.oid::regclass::text, NULL,"
"  format('ALTER TABLE ONLY %s ATTACH PARTITION %s %s', i.inhparent::regclass, c.oid::regclass,"
"         pg_get_expr(c.relpartbound, c.oid))"
" FROM owned o JOIN pg_class c ON c.oid = o.relid JOIN pg_inherits i ON i.inhrelid = c.oid"
" WHERE c.relispartition"
" ORDER BY " SQL_DEPTH("c.oid") " DESC, 2";

/* every sequence starts where the source's stands (name and value: parameters) */
static const char *const sql_sequence_values =
"WITH " DDL_OWNED_CTE "," SQL_USED_SEQUENCES ","
" allseqs AS (SELECT seq FROM seqs"
"  UNION SELECT d.objid FROM pg_depend d JOIN owned o ON o.relid = d.refobjid"
"   WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype = 'i')"
" SELECT 'sequence value', s.seq::regclass::text, NULL, NULL, s.seq::regclass::text,"
"  coalesce(pg_sequence_last_value(s.seq), q.seqstart)::text,"
"  'SELECT pg_catalog.setval($1::pg_catalog.regclass, $2::pg_catalog.int8, '"
"  || (pg_sequence_last_value(s.seq) IS NOT NULL)::text || ')'"
" FROM allseqs s JOIN pg_sequence q ON q.seqrelid = s.seq"
" ORDER BY 2";

/*
 * What CREATE TABLE cannot say about a column: its statistics target, a
 * storage or compression other than its type's, attribute options.
 *
 * NB: this server keeps a version of each column among its attribute
 * options (pg_attver=N).  The server sets it and ignores a value given by
 * ALTER TABLE; like pg_dump, we leave it out.
 */
static const char *const sql_column_settings =
"WITH " DDL_OWNED_CTE ","
" cols AS ("
"  SELECT c.oid AS relid, a.attname, a.attstattarget, a.attstorage, t.typstorage, a.attcompression,"
"         (SELECT array_agg(x.opt ORDER BY x.n) FROM unnest(a.attoptions) WITH ORDINALITY x(opt, n)"
"           WHERE split_part(x.opt, '=', 1) <> 'pg_attver') AS attoptions"
"    FROM owned o JOIN pg_class c ON c.oid = o.relid"
"    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
"    JOIN pg_type t ON t.oid = a.atttypid)"
" SELECT 'column settings', format('%s.%I', a.relid::regclass, a.attname), NULL, NULL, NULL, NULL,"
"  format('ALTER TABLE ONLY %s %s', a.relid::regclass, concat_ws(', ',"
"   CASE WHEN a.attstattarget >= 0"
"        THEN format('ALTER COLUMN %I SET STATISTICS %s', a.attname, a.attstattarget) END,"
"   CASE WHEN a.attstorage <> a.typstorage"
"        THEN format('ALTER COLUMN %I SET STORAGE %s', a.attname,"
"                    CASE a.attstorage WHEN 'p' THEN 'PLAIN' WHEN 'e' THEN 'EXTERNAL'"
"                                      WHEN 'm' THEN 'MAIN' ELSE 'EXTENDED' END) END,"
"   CASE WHEN a.attcompression <> ''"
"        THEN format('ALTER COLUMN %I SET COMPRESSION %s', a.attname,"
"                    CASE a.attcompression WHEN 'l' THEN 'lz4' ELSE 'pglz' END) END,"
"   CASE WHEN a.attoptions IS NOT NULL"
"        THEN format('ALTER COLUMN %I SET (%s)', a.attname, array_to_string(a.attoptions, ', ')) END))"
" FROM cols a"
" WHERE a.attstattarget >= 0 OR a.attstorage <> a.typstorage OR a.attcompression <> ''"
"    OR a.attoptions IS NOT NULL"
" ORDER BY 2";

/* comments on tables, columns, types, sequences and functions */
static const char *const sql_comments =
"WITH RECURSIVE " DDL_OWNED_CTE "," SPLITDB_TYPE_WALK_CTE "," SQL_USED_SEQUENCES "," SPLITDB_USED_FUNCTIONS_CTE
" SELECT 'comment', c.oid::regclass::text, NULL, NULL, NULL, NULL,"
"  CASE WHEN d.objsubid = 0"
"   THEN format('COMMENT ON TABLE %s IS %L', c.oid::regclass, d.description)"
"   ELSE format('COMMENT ON COLUMN %s.%I IS %L', c.oid::regclass,"
"               (SELECT a.attname FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum = d.objsubid),"
"               d.description) END"
" FROM owned o JOIN pg_class c ON c.oid = o.relid"
" JOIN pg_description d ON d.classoid = 'pg_class'::regclass AND d.objoid = c.oid"
" UNION ALL"
" SELECT 'comment', s.seq::regclass::text, NULL, NULL, NULL, NULL,"
"  format('COMMENT ON SEQUENCE %s IS %L', s.seq::regclass, d.description)"
" FROM seqs s JOIN pg_description d ON d.classoid = 'pg_class'::regclass AND d.objoid = s.seq AND d.objsubid = 0"
" UNION ALL"
" SELECT 'comment', t.oid::regtype::text, NULL, NULL, NULL, NULL,"
"  format('COMMENT ON %s %s IS %L', CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, t.oid::regtype, d.description)"
" FROM used u JOIN pg_type t ON t.oid = u.typid"
" JOIN pg_description d ON d.classoid = 'pg_type'::regclass AND d.objoid = t.oid"
" WHERE " SPLITDB_USER_TYPE("t")
" UNION ALL"
" SELECT 'comment', p.oid::regprocedure::text, NULL, NULL, NULL, NULL,"
"  format('COMMENT ON %s %s IS %L', CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END,"
"         p.oid::regprocedure, d.description)"
" FROM fns f JOIN pg_proc p ON p.oid = f.fn"
" JOIN pg_description d ON d.classoid = 'pg_proc'::regclass AND d.objoid = p.oid"
" WHERE " SPLITDB_USER_FUNCTION("p")
" ORDER BY 2, 7";

/*
 * Owners of the types and functions the tables use, where the role exists
 * in the sibling's cluster.  The tables and sequences keep the connecting
 * role as their owner until the cutover (sql_access_owners).
 */
static const char *const sql_owners =
"WITH RECURSIVE " DDL_OWNED_CTE "," SPLITDB_TYPE_WALK_CTE "," SPLITDB_USED_FUNCTIONS_CTE
" SELECT 'owner', t.oid::regtype::text, NULL, 'norole', r.rolname::text, NULL,"
"  format('ALTER %s %s OWNER TO %I', CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, t.oid::regtype, r.rolname)"
" FROM used u JOIN pg_type t ON t.oid = u.typid JOIN pg_roles r ON r.oid = t.typowner"
" WHERE " SPLITDB_USER_TYPE("t")
" UNION ALL"
" SELECT 'owner', p.oid::regprocedure::text, NULL, 'norole', r.rolname::text, NULL,"
"  format('ALTER %s %s OWNER TO %I', CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END,"
"         p.oid::regprocedure, r.rolname)"
" FROM fns f JOIN pg_proc p ON p.oid = f.fn JOIN pg_roles r ON r.oid = p.proowner"
" WHERE " SPLITDB_USER_FUNCTION("p")
" ORDER BY 2";

/*
 * The grants and revokes that make an object's ACL the original's: grants
 * to roles that exist in the sibling's cluster (or to PUBLIC), one
 * statement per grantee and grant option, and revokes of what the defaults
 * give but the ACL no longer has (the owner's own privileges, PUBLIC's
 * EXECUTE on a function, PUBLIC's USAGE on a type), one per grantee.
 * objs(keyword, name, acl, owner, objtype) lists the objects; role_ok, a
 * condition on r (the grantee's pg_roles row, NULL for PUBLIC), says
 * whether a statement for that grantee is made.
 *
 * Limitation (docs/operations.md): every grant is made by the migrating
 * role, so its grantor is the owner; a privilege that another role granted
 * through a grant option shows the owner as grantor in the sibling.
 * PostgreSQL 15 accepts GRANTED BY only for the current user, and a SET
 * ROLE around the grant would break one command per statement.
 */
#define SQL_ACL_STATEMENTS(guard, role_ok) \
	" SELECT 'grant', o.name, NULL, " guard ", coalesce(r.rolname::text, 'public'), NULL," \
	"  format('GRANT %s ON %s %s TO %s%s', string_agg(a.privilege_type, ', ' ORDER BY a.privilege_type)," \
	"         o.keyword, o.name, CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END," \
	"         CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)" \
	" FROM objs o, aclexplode(o.acl) a LEFT JOIN pg_roles r ON r.oid = a.grantee" \
	" WHERE a.grantee <> o.owner AND " role_ok \
	" GROUP BY o.keyword, o.name, a.grantee, r.rolname, a.is_grantable" \
	" UNION ALL" \
	" SELECT 'revoke', o.name, NULL, " guard ", coalesce(r.rolname::text, 'public'), NULL," \
	"  format('REVOKE %s ON %s %s FROM %s', string_agg(d.privilege_type, ', ' ORDER BY d.privilege_type)," \
	"         o.keyword, o.name, CASE WHEN d.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END)" \
	" FROM objs o, aclexplode(acldefault(o.objtype, o.owner)) d LEFT JOIN pg_roles r ON r.oid = d.grantee" \
	" WHERE o.acl IS NOT NULL AND " role_ok \
	"   AND NOT EXISTS (SELECT FROM aclexplode(o.acl) a" \
	"                    WHERE a.grantee = d.grantee AND a.privilege_type = d.privilege_type)" \
	" GROUP BY o.keyword, o.name, d.grantee, r.rolname"

/* privileges on the functions and types the tables use */
static const char *const sql_grants =
"WITH RECURSIVE " DDL_OWNED_CTE "," SPLITDB_TYPE_WALK_CTE "," SPLITDB_USED_FUNCTIONS_CTE ","
" objs AS ("
"  SELECT CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END AS keyword,"
"         p.oid::regprocedure::text AS name, p.proacl AS acl, p.proowner AS owner, 'f'::\"char\" AS objtype"
"    FROM pg_proc p WHERE p.oid IN (SELECT fn FROM fns) AND " SPLITDB_USER_FUNCTION("p")
"  UNION ALL"
"  SELECT CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, t.oid::regtype::text, t.typacl, t.typowner, 'T'"
"    FROM pg_type t WHERE t.oid IN (SELECT typid FROM used) AND " SPLITDB_USER_TYPE("t") ")"
SQL_ACL_STATEMENTS("'norole'", "true")
" ORDER BY 2, 7";

/*
 * The cutover's statements (SPLITDB_DDL_CUTOVER): until then the sibling's
 * tables and sequences belong to the role the job connects as and grant
 * nothing, so no other role reads or writes the copy before the shims
 * exist.  $2 is the text[] of the roles that exist in the sibling's
 * cluster: a role missing there gets nothing, as the guard "norole" skips
 * it before the data.
 *
 * One statement per table: its owner (which its indexes, its row type and
 * the sequences of its serial and identity columns follow) and FORCE ROW
 * LEVEL SECURITY, which would have subjected the connecting role, as the
 * owner, to the table's policies while it replays and verifies.  Then one
 * per sequence that no owned column owns.
 */
static const char *const sql_access_owners =
"WITH " DDL_OWNED_CTE "," SQL_USED_SEQUENCES
" SELECT 'owner', c.oid::regclass::text, NULL, NULL, NULL, NULL,"
"  format('ALTER TABLE ONLY %s %s', c.oid::regclass,"
"         concat_ws(', ', CASE WHEN r.rolname = ANY ($2::text[]) THEN format('OWNER TO %I', r.rolname) END,"
"                   CASE WHEN c.relforcerowsecurity THEN 'FORCE ROW LEVEL SECURITY' END))"
" FROM owned o JOIN pg_class c ON c.oid = o.relid JOIN pg_roles r ON r.oid = c.relowner"
" WHERE r.rolname = ANY ($2::text[]) OR c.relforcerowsecurity"
" UNION ALL"
" SELECT 'owner', c.oid::regclass::text, NULL, NULL, NULL, NULL,"
"  format('ALTER SEQUENCE %s OWNER TO %I', c.oid::regclass, r.rolname)"
" FROM seqs s JOIN pg_class c ON c.oid = s.seq JOIN pg_roles r ON r.oid = c.relowner"
" WHERE r.rolname = ANY ($2::text[])"
"   AND NOT EXISTS (SELECT FROM pg_depend d JOIN owned o ON o.relid = d.refobjid"
"                    WHERE d.classid = 'pg_class'::regclass AND d.objid = s.seq AND d.deptype = 'a')"
" ORDER BY 2";

/*
 * The cutover's privileges on the tables, their sequences and their
 * columns, after the owners (sql_access_owners); column privileges in one
 * statement per table, grantee and grant option.
 */
static const char *const sql_access_grants =
"WITH " DDL_OWNED_CTE "," SQL_USED_SEQUENCES ","
" objs AS ("
"  SELECT CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END AS keyword,"
"         c.oid::regclass::text AS name, c.relacl AS acl, c.relowner AS owner,"
"         CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::\"char\" AS objtype"
"    FROM pg_class c WHERE c.oid IN (SELECT relid FROM owned UNION SELECT seq FROM seqs"
"                                    UNION SELECT d.objid FROM pg_depend d JOIN owned o ON o.relid = d.refobjid"
"                                     WHERE d.classid = 'pg_class'::regclass AND d.deptype = 'i'"
"                                       AND d.refclassid = 'pg_class'::regclass))"
SQL_ACL_STATEMENTS("NULL", "(r.rolname IS NULL OR r.rolname = ANY ($2::text[]))")
" UNION ALL"
" SELECT 'grant', c.oid::regclass::text, NULL, NULL, coalesce(r.rolname::text, 'public'), NULL,"
"  format('GRANT %s ON TABLE %s TO %s%s',"
"         string_agg(format('%s (%I)', a.privilege_type, at.attname), ', ' ORDER BY at.attnum, a.privilege_type),"
"         c.oid::regclass, CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END,"
"         CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)"
" FROM owned o JOIN pg_class c ON c.oid = o.relid"
" JOIN pg_attribute at ON at.attrelid = c.oid AND at.attnum > 0 AND NOT at.attisdropped AND at.attacl IS NOT NULL,"
" aclexplode(at.attacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee"
" WHERE a.grantee <> c.relowner AND (a.grantee = 0 OR r.rolname = ANY ($2::text[]))"
" GROUP BY c.oid, a.grantee, r.rolname, a.is_grantable"
" ORDER BY 2, 7";

/*
 * The cutover's USAGE on the schemas of the tables, their sequences, types
 * and functions, for each role that has it in the source (the owner
 * included): a schema that the job created there grants nothing, and a
 * table granted to a role is out of its reach without it.  Each statement
 * checks the sibling's privilege first (names only as quote_ident() gives
 * them, cast to regrole and regnamespace), so a schema that was there
 * already is only added to, and a grantor without the grant option there
 * is not asked.  CREATE is not given: it reaches none of the copies.
 */
#define SQL_ACCESS_SCHEMAS \
"WITH RECURSIVE " DDL_OWNED_CTE "," SPLITDB_TYPE_WALK_CTE "," SPLITDB_USED_FUNCTIONS_CTE "," SQL_USED_SEQUENCES\
" SELECT 'grant', quote_ident(n.nspname), NULL, NULL, coalesce(r.rolname::text, 'public'), NULL,"\
"  format('DO %L', format('BEGIN IF NOT %s THEN GRANT USAGE ON SCHEMA %I TO %s%s; END IF; END',"\
"    CASE WHEN a.grantee = 0 THEN format('EXISTS (SELECT FROM pg_catalog.aclexplode((SELECT s.nspacl"\
" FROM pg_catalog.pg_namespace s WHERE s.oid = %L::pg_catalog.regnamespace)) a"\
" WHERE a.grantee = 0 AND a.privilege_type = ''USAGE'')', quote_ident(n.nspname))"\
"    ELSE format('pg_catalog.has_schema_privilege(%L::pg_catalog.regrole, %L::pg_catalog.regnamespace,"\
" ''USAGE'')', quote_ident(r.rolname), quote_ident(n.nspname)) END,"\
"    n.nspname, CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END,"\
"    CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END))"\
" FROM pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a"\
" LEFT JOIN pg_roles r ON r.oid = a.grantee"\
" WHERE a.privilege_type = 'USAGE' AND (a.grantee = 0 OR r.rolname = ANY ($2::text[]))"\
"   AND n.oid IN (SELECT c.relnamespace FROM pg_class c WHERE c.oid IN (SELECT relid FROM owned UNION SELECT seq FROM seqs)"\
"     UNION SELECT t.typnamespace FROM pg_type t WHERE t.oid IN (SELECT typid FROM used) AND " SPLITDB_USER_TYPE("t")\
"     UNION SELECT p.pronamespace FROM pg_proc p WHERE p.oid IN (SELECT fn FROM fns) AND " SPLITDB_USER_FUNCTION("p") ")"

static const char *const sql_access_schemas = SQL_ACCESS_SCHEMAS " ORDER BY 2, 5";

/*
 * Before the data, that USAGE for the owners of the functions the tables
 * use, which run as their owners (metadata/ownerrights.c) while the job
 * copies and builds: it reaches none of the copies.
 */
static const char *const sql_function_owner_schemas =
SQL_ACCESS_SCHEMAS "   AND a.grantee IN (SELECT p.proowner FROM pg_proc p WHERE p.oid IN (SELECT fn FROM fns))"
" ORDER BY 2, 5";

/*
 * Secondary indexes that back no constraint; an index of a partition before
 * the partitioned index it belongs to.  Those of tables that hold rows
 * (kind "index") are built side by side (splitdb_ddl_apply_side_by_side);
 * those of partitioned tables ("partitioned index") come after them.
 */
static const char *const sql_indexes =
"WITH " DDL_OWNED_CTE
" SELECT CASE WHEN c.relkind = 'p' THEN 'partitioned index' ELSE 'index' END,"
"  format('%I.%I', n.nspname, ic.relname), NULL, 'regclass',"
"  format('%I.%I', n.nspname, ic.relname), NULL, pg_get_indexdef(i.indexrelid)"
" FROM pg_index i JOIN owned o ON o.relid = i.indrelid JOIN pg_class c ON c.oid = i.indrelid"
" JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace"
" WHERE i.indisvalid"
"   AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conindid = i.indexrelid"
"                    AND k.conrelid = i.indrelid AND k.contype IN ('p', 'u', 'x'))"
" ORDER BY " SQL_DEPTH("i.indrelid") " DESC, 2";

/*
 * The unique indexes of primary keys and unique constraints of tables that
 * hold rows, built side by side with the other indexes; sql_constraints
 * then makes each the constraint's index (ADD CONSTRAINT ... USING INDEX),
 * which takes a moment.  A key built by ADD CONSTRAINT would hold its
 * table's ACCESS EXCLUSIVE lock for the whole build, and no other index of
 * the table could be built meanwhile.
 */
static const char *const sql_key_indexes =
"WITH " DDL_OWNED_CTE
" SELECT 'key index', format('%I.%I', n.nspname, ic.relname), NULL, 'regclass',"
"  format('%I.%I', n.nspname, ic.relname), NULL, pg_get_indexdef(k.conindid)"
" FROM pg_constraint k JOIN owned o ON o.relid = k.conrelid JOIN pg_class c ON c.oid = k.conrelid"
" JOIN pg_class ic ON ic.oid = k.conindid JOIN pg_namespace n ON n.oid = ic.relnamespace"
" WHERE k.contype IN ('p', 'u') AND c.relkind = 'r'"
" ORDER BY 2";

/*
 * Primary keys first, then unique and exclusion constraints, partitions
 * before their parents; CHECK constraints added NOT VALID.  A key of a
 * table that holds rows takes the index sql_key_indexes built.
 */
static const char *const sql_constraints =
"WITH " DDL_OWNED_CTE
" SELECT 'constraint', format('%s.%I', k.conrelid::regclass, k.conname), NULL, 'constraint',"
"  k.conrelid::regclass::text, k.conname::text,"
"  CASE WHEN k.contype IN ('p', 'u') AND c.relkind = 'r'"
"   THEN format('ALTER TABLE ONLY %s ADD CONSTRAINT %I %s USING INDEX %I%s%s', k.conrelid::regclass,"
"               k.conname, CASE k.contype WHEN 'p' THEN 'PRIMARY KEY' ELSE 'UNIQUE' END, ic.relname,"
"               CASE WHEN k.condeferrable THEN ' DEFERRABLE' ELSE '' END,"
"               CASE WHEN k.condeferred THEN ' INITIALLY DEFERRED' ELSE '' END)"
"   ELSE format('ALTER TABLE ONLY %s ADD CONSTRAINT %I %s', k.conrelid::regclass, k.conname,"
"               pg_get_constraintdef(k.oid)) END"
" FROM pg_constraint k JOIN owned o ON o.relid = k.conrelid JOIN pg_class c ON c.oid = k.conrelid"
" LEFT JOIN pg_class ic ON ic.oid = k.conindid"
" WHERE k.contype IN ('p', 'u', 'x') OR (k.contype = 'c' AND NOT k.convalidated)"
" ORDER BY k.contype <> 'p', " SQL_DEPTH("k.conrelid") " DESC, 2";

/* indexes of partitions join the index of their parent */
static const char *const sql_index_attach =
"WITH " DDL_OWNED_CTE
" SELECT 'index partition', format('%I.%I', n.nspname, ic.relname), NULL, 'attached',"
"  format('%I.%I', n.nspname, ic.relname), NULL,"
"  format('ALTER INDEX %s ATTACH PARTITION %s', h.inhparent::regclass, format('%I.%I', n.nspname, ic.relname))"
" FROM pg_index i JOIN owned o ON o.relid = i.indrelid"
" JOIN pg_inherits h ON h.inhrelid = i.indexrelid"
" JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace"
" ORDER BY " SQL_DEPTH("i.indrelid") " DESC, 2";

/*
 * Settings that need the indexes: statistics targets of index columns, the
 * replica identity, the index a table is clustered on.
 */
static const char *const sql_index_settings =
"WITH " DDL_OWNED_CTE
" SELECT 'index settings', i.indexrelid::regclass::text, NULL, NULL, NULL, NULL,"
"  format('ALTER INDEX %s %s', i.indexrelid::regclass,"
"         string_agg(format('ALTER COLUMN %s SET STATISTICS %s', a.attnum, a.attstattarget), ', '"
"                    ORDER BY a.attnum))"
" FROM pg_index i JOIN owned o ON o.relid = i.indrelid"
" JOIN pg_attribute a ON a.attrelid = i.indexrelid AND a.attstattarget >= 0"
" GROUP BY i.indexrelid"
" UNION ALL"
" SELECT 'replica identity', c.oid::regclass::text, NULL, NULL, NULL, NULL,"
"  format('ALTER TABLE ONLY %s REPLICA IDENTITY %s', c.oid::regclass,"
"         CASE c.relreplident WHEN 'f' THEN 'FULL' WHEN 'n' THEN 'NOTHING'"
"          ELSE (SELECT format('USING INDEX %I', ic.relname)"
"                  FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid"
"                 WHERE i.indrelid = c.oid AND i.indisreplident) END)"
" FROM owned o JOIN pg_class c ON c.oid = o.relid"
" WHERE c.relreplident IN ('f', 'n', 'i')"
" UNION ALL"
" SELECT 'cluster', i.indrelid::regclass::text, NULL, NULL, NULL, NULL,"
"  format('ALTER TABLE ONLY %s CLUSTER ON %I', i.indrelid::regclass, ic.relname)"
" FROM pg_index i JOIN owned o ON o.relid = i.indrelid JOIN pg_class ic ON ic.oid = i.indexrelid"
" WHERE i.indisclustered"
" ORDER BY 1, 2";

/* extended statistics, with their statistics targets */
static const char *const sql_statistics =
"WITH " DDL_OWNED_CTE
" SELECT 'statistics', format('%I.%I', n.nspname, s.stxname), n.nspname, 'statistics',"
"  quote_ident(n.nspname), s.stxname::text, pg_get_statisticsobjdef(s.oid)"
" FROM pg_statistic_ext s JOIN owned o ON o.relid = s.stxrelid"
" JOIN pg_namespace n ON n.oid = s.stxnamespace"
" UNION ALL"
" SELECT 'statistics target', format('%I.%I', n.nspname, s.stxname), NULL, NULL, NULL, NULL,"
"  format('ALTER STATISTICS %I.%I SET STATISTICS %s', n.nspname, s.stxname, s.stxstattarget)"
" FROM pg_statistic_ext s JOIN owned o ON o.relid = s.stxrelid"
" JOIN pg_namespace n ON n.oid = s.stxnamespace"
" WHERE s.stxstattarget >= 0"
" ORDER BY 2, 1";

/* foreign keys whose two ends both move to this sibling */
static const char *const sql_foreign_keys =
"WITH " DDL_OWNED_CTE
" SELECT 'foreign key', format('%s.%I', k.conrelid::regclass, k.conname), NULL, 'constraint',"
"  k.conrelid::regclass::text, k.conname::text,"
"  format('ALTER TABLE %s%s ADD CONSTRAINT %I %s',"
"         CASE WHEN c.relkind = 'p' THEN '' ELSE 'ONLY ' END, k.conrelid::regclass, k.conname,"
"         pg_get_constraintdef(k.oid))"
" FROM pg_constraint k JOIN owned o ON o.relid = k.conrelid JOIN pg_class c ON c.oid = k.conrelid"
" WHERE k.contype = 'f' AND k.conparentid = 0 AND k.confrelid IN (SELECT relid FROM owned)"
" ORDER BY 2";

/*
 * User triggers, made in their default state (ENABLE, which fires in no
 * session with session_replication_role = replica): the online rounds
 * write the copies in such a session as the role the job connects as, and
 * a trigger of the application's would fire there with that role's rights,
 * on rows whose triggers already fired in the source.  A partition's clone
 * of its parent's trigger comes with the parent's.
 */
static const char *const sql_triggers =
"WITH " DDL_OWNED_CTE
" SELECT 'trigger', format('%s.%I', t.tgrelid::regclass, t.tgname), NULL, 'trigger',"
"  t.tgrelid::regclass::text, t.tgname::text, pg_get_triggerdef(t.oid)"
" FROM pg_trigger t JOIN owned o ON o.relid = t.tgrelid"
" WHERE NOT t.tgisinternal AND t.tgparentid = 0 AND " SPLITDB_NOT_OWN_TRIGGER("t")
" ORDER BY 1, 2";

/*
 * The triggers' enabled states other than the default (a partition's clone
 * has its own), at the cutover (SPLITDB_DDL_CUTOVER), with the owners: a
 * trigger ENABLE ALWAYS or ENABLE REPLICA would fire in the rounds' replica
 * sessions (sql_triggers).  A run that finds the copies given away puts
 * them back to the default (access.c).
 */
static const char *const sql_trigger_states =
"WITH " DDL_OWNED_CTE
" SELECT 'trigger state', format('%s.%I', t.tgrelid::regclass, t.tgname), NULL, NULL, NULL, NULL,"
"  format('ALTER TABLE %s %s TRIGGER %I', t.tgrelid::regclass,"
"         CASE t.tgenabled WHEN 'D' THEN 'DISABLE' WHEN 'R' THEN 'ENABLE REPLICA'"
"                          ELSE 'ENABLE ALWAYS' END, t.tgname)"
" FROM pg_trigger t JOIN owned o ON o.relid = t.tgrelid"
" WHERE NOT t.tgisinternal AND t.tgenabled <> 'O' AND " SPLITDB_NOT_OWN_TRIGGER("t")
" ORDER BY 1, 2";

/*
 * Row-level security and policies.  FORCE ROW LEVEL SECURITY waits for the
 * cutover (sql_access_owners): until then the connecting role owns the
 * table and replays and verifies its rows, which the policies must not
 * filter.  A policy names only the roles that exist in the sibling's
 * cluster ($2, or every role when NULL), and one that names none of them,
 * and not PUBLIC, is not made: it would apply to no role there, and
 * CREATE POLICY would fail with 42704 after the whole copy.
 */
/* u.role, with pg_roles row r, is PUBLIC or a role of the sibling's cluster */
#define SQL_ROLE_THERE(u, r) "(" u ".role = 0 OR $2 IS NULL OR " r ".rolname = ANY ($2::text[]))"
static const char *const sql_policies =
"WITH " DDL_OWNED_CTE
" SELECT 'row security', c.oid::regclass::text, NULL, NULL, NULL, NULL,"
"  format('ALTER TABLE ONLY %s ENABLE ROW LEVEL SECURITY', c.oid::regclass)"
" FROM owned o JOIN pg_class c ON c.oid = o.relid WHERE c.relrowsecurity"
" UNION ALL"
" SELECT 'policy', format('%s.%I', p.polrelid::regclass, p.polname), NULL, 'policy',"
"  p.polrelid::regclass::text, p.polname::text,"
"  format('CREATE POLICY %I ON %s AS %s FOR %s TO %s%s%s', p.polname, p.polrelid::regclass,"
"   CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,"
"   CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'"
"                 WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,"
"   (SELECT string_agg(CASE WHEN u.role = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END, ', ')"
"      FROM unnest(p.polroles) u(role) LEFT JOIN pg_roles r ON r.oid = u.role WHERE " SQL_ROLE_THERE("u", "r") "),"
"   CASE WHEN p.polqual IS NOT NULL THEN format(' USING (%s)', pg_get_expr(p.polqual, p.polrelid)) ELSE '' END,"
"   CASE WHEN p.polwithcheck IS NOT NULL THEN format(' WITH CHECK (%s)', pg_get_expr(p.polwithcheck, p.polrelid)) ELSE '' END)"
" FROM pg_policy p JOIN owned o ON o.relid = p.polrelid"
" WHERE EXISTS (SELECT FROM unnest(p.polroles) u(role) LEFT JOIN pg_roles r ON r.oid = u.role WHERE " SQL_ROLE_THERE("u", "r") ")"
" ORDER BY 1 DESC, 2";

/*
 * Comments on indexes, constraints, extended statistics, triggers and
 * policies, which exist only now.
 */
static const char *const sql_late_comments =
"WITH " DDL_OWNED_CTE
" SELECT 'comment', format('%s.%I', k.conrelid::regclass, k.conname), NULL, NULL, NULL, NULL,"
"  format('COMMENT ON CONSTRAINT %I ON %s IS %L', k.conname, k.conrelid::regclass, d.description)"
" FROM pg_constraint k JOIN owned o ON o.relid = k.conrelid"
" JOIN pg_description d ON d.classoid = 'pg_constraint'::regclass AND d.objoid = k.oid"
" WHERE k.contype <> 'f' OR k.confrelid IN (SELECT relid FROM owned)"
" UNION ALL"
" SELECT 'comment', i.indexrelid::regclass::text, NULL, NULL, NULL, NULL,"
"  format('COMMENT ON INDEX %s IS %L', i.indexrelid::regclass, d.description)"
" FROM pg_index i JOIN owned o ON o.relid = i.indrelid"
" JOIN pg_description d ON d.classoid = 'pg_class'::regclass AND d.objoid = i.indexrelid"
" WHERE NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid)"
" UNION ALL"
" SELECT 'comment', format('%I.%I', n.nspname, s.stxname), NULL, NULL, NULL, NULL,"
"  format('COMMENT ON STATISTICS %I.%I IS %L', n.nspname, s.stxname, d.description)"
" FROM pg_statistic_ext s JOIN owned o ON o.relid = s.stxrelid"
" JOIN pg_namespace n ON n.oid = s.stxnamespace"
" JOIN pg_description d ON d.classoid = 'pg_statistic_ext'::regclass AND d.objoid = s.oid"
" UNION ALL"
" SELECT 'comment', format('%s.%I', t.tgrelid::regclass, t.tgname), NULL, NULL, NULL, NULL,"
"  format('COMMENT ON TRIGGER %I ON %s IS %L', t.tgname, t.tgrelid::regclass, d.description)"
" FROM pg_trigger t JOIN owned o ON o.relid = t.tgrelid"
" JOIN pg_description d ON d.classoid = 'pg_trigger'::regclass AND d.objoid = t.oid"
" WHERE NOT t.tgisinternal"
" UNION ALL"
" SELECT 'comment', format('%s.%I', p.polrelid::regclass, p.polname), NULL, NULL, NULL, NULL,"
"  format('COMMENT ON POLICY %I ON %s IS %L', p.polname, p.polrelid::regclass, d.description)"
" FROM pg_policy p JOIN owned o ON o.relid = p.polrelid"
" JOIN pg_description d ON d.classoid = 'pg_policy'::regclass AND d.objoid = p.oid"
" ORDER BY 2";

/* the queries of each stage, in the order their statements run */
static const char *const *const before_data[] = {
	&sql_extensions, &sql_collations, &sql_ts_dictionaries, &sql_ts_configurations,
	&sql_types, &sql_functions, &sql_domain_constraints, &sql_sequences,
	&sql_tables, &sql_owned_by, &sql_attach, &sql_column_settings,
	&sql_sequence_values, &sql_comments, &sql_owners, &sql_grants, &sql_function_owner_schemas
};
static const char *const *const after_data[] = {
	&sql_indexes, &sql_key_indexes, &sql_constraints, &sql_index_attach, &sql_index_settings,
	&sql_statistics, &sql_foreign_keys, &sql_triggers, &sql_policies,
	&sql_late_comments
};
static const char *const *const at_cutover[] = {
	&sql_trigger_states, &sql_access_owners, &sql_access_grants, &sql_access_schemas
};

/* the text of column col of row row of SPI_tuptable, copied, or NULL */
static char *
copy_value(uint64 row, int col)
{
	char	   *v = SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);

	return v ? pstrdup(v) : NULL;
}

/*
 * run_query
 *		Append the statements one query produces to *items.
 *
 * Allocations are made in cxt, which outlives the caller's SPI connection.
 */
static void
run_query(const char *sql, Datum relids, const char *roles, MemoryContext cxt,
		  List **items)
{
	Oid			types[2] = {OIDARRAYOID, TEXTOID};
	Datum		values[2] = {relids, roles ? CStringGetTextDatum(roles) : (Datum) 0};
	char		nulls[3] = {' ', roles ? ' ' : 'n', '\0'};

	splitdb_spi_exec(sql, 2, types, values, nulls, true, 0);

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);
		SplitdbDdl *d = palloc(sizeof(SplitdbDdl));

		d->kind = copy_value(i, 1);
		d->name = copy_value(i, 2);
		d->schema = copy_value(i, 3);
		d->guard = copy_value(i, 4);
		d->arg1 = copy_value(i, 5);
		d->arg2 = copy_value(i, 6);
		d->sql = copy_value(i, 7);
		if (d->sql != NULL)
			*items = lappend(*items, d);
		MemoryContextSwitchTo(old);
	}
}

/*
 * splitdb_ddl_build
 *		The statements of one stage, in the order they must run.
 *
 * stage:   before or after the data, or at the cutover
 * service: for messages only
 * relids:  the OIDs of every relation the job moves, partitions included
 * roles:   the text[] literal of the roles that exist in the sibling's
 *          cluster (splitdb_access_sibling_roles()): needed at the cutover;
 *          before the data, the schemas' USAGE goes to those only (NULL:
 *          PUBLIC's alone); after the data, the policies name only those
 *          (NULL: all)
 *
 * The caller is in a transaction with search_path = pg_catalog, pg_temp;
 * this function connects to SPI itself.  Before the data, the schemas every
 * object needs come first.  The List lives in the caller's memory context.
 */
List *
splitdb_ddl_build(SplitdbDdlStage stage, const char *service, List *relids,
				  const char *roles)
{
	MemoryContext cxt = CurrentMemoryContext;
	const char *const *const *queries;
	int			nqueries;
	Datum	   *oids;
	Datum		array;
	List	   *items = NIL;
	List	   *schemas = NIL;
	List	   *result = NIL;
	ListCell   *lc;
	int			n = 0;

	oids = palloc(sizeof(Datum) * (list_length(relids) + 1));
	foreach(lc, relids)
		oids[n++] = ObjectIdGetDatum(lfirst_oid(lc));
	array = PointerGetDatum(construct_array(oids, n, OIDOID, sizeof(Oid), true,
											TYPALIGN_INT));

	if (stage == SPLITDB_DDL_BEFORE_DATA)
	{
		queries = before_data;
		nqueries = lengthof(before_data);
	}
	else if (stage == SPLITDB_DDL_AFTER_DATA)
	{
		queries = after_data;
		nqueries = lengthof(after_data);
	}
	else
	{
		Assert(roles != NULL);
		queries = at_cutover;
		nqueries = lengthof(at_cutover);
	}

	splitdb_spi_connect();
	for (int i = 0; i < nqueries; i++)
		run_query(*queries[i], array, roles, cxt, &items);
	SPI_finish();

	/* the schemas, once each, before anything that lives in them */
	foreach(lc, items)
	{
		SplitdbDdl *d = (SplitdbDdl *) lfirst(lc);

		if (d->schema != NULL && !list_member(schemas, makeString(d->schema)))
		{
			SplitdbDdl *s = palloc0(sizeof(SplitdbDdl));

			schemas = lappend(schemas, makeString(d->schema));
			s->kind = "schema";
			s->name = pstrdup(quote_identifier(d->schema));
			s->sql = psprintf("CREATE SCHEMA IF NOT EXISTS %s", s->name);
			result = lappend(result, s);
		}
	}
	(void) service;
	return list_concat(result, items);
}
