/*-------------------------------------------------------------------------
 *
 * catalog.h
 *	  Reading and writing splitdb's own catalog tables.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/metadata/catalog.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_CATALOG_H
#define SPLITDB_CATALOG_H

#include "executor/spi.h"
#include "utils/array.h"

/* one row of splitdb.service */
typedef struct SplitdbService
{
	char	   *service;		/* service name */
	char	   *dbname;			/* sibling database */
	char	   *server;			/* postgres_fdw server reaching it */
	bool		server_created; /* splitdb made the server */
	bool		database_created;	/* splitdb made the database */
	char	   *mapping_role;	/* role of the user mapping splitdb made, or
								 * NULL */
} SplitdbService;

/* how splitdb_catalog_get_service locks the row it returns */
typedef enum SplitdbRowLock
{
	SPLITDB_LOCK_NONE,
	SPLITDB_LOCK_SHARE,
	SPLITDB_LOCK_UPDATE
} SplitdbRowLock;

/*
 * SQL of every relation each service owns, the one definition that the plan,
 * the graph, verification and the jobs share: the view splitdb.owned_relation
 * (sql/splitdb--0.1.sql).  Columns: relid (oid), service (name),
 * partition_root (oid; NULL for a table owned by itself).  Use it as a
 * subquery; names are qualified, so any search_path works.
 */
#define SPLITDB_OWNED_RELATION_SQL \
	"SELECT relid, service, partition_root FROM splitdb.owned_relation"

/*
 * SQL fragments for names that function bodies hold as text, where
 * PostgreSQL records no dependency:
 * - SPLITDB_NAME_RE: a regular expression group matching one identifier,
 *   quoted or not;
 * - SPLITDB_FOLD(x): the name an identifier x so matched stands for;
 * - SPLITDB_NAME_RESOLVES(qual, nsp, p): whether a name with qualifier
 *   qual (NULL when none) written in the body of function p can name an
 *   object of schema nsp: the qualifier's schema, else a schema of p's own
 *   search_path setting, else (p has none, and its callers' path decides)
 *   any schema.
 */
#define SPLITDB_NAME_RE "(\"(?:[^\"]|\"\")+\"|[[:alpha:]_][[:alnum:]_$]*)"
#define SPLITDB_FOLD(x) \
	"CASE WHEN left(" x ", 1) = '\"' THEN replace(substr(" x ", 2, length(" x ") - 2), '\"\"', '\"')" \
	" ELSE translate(" x ", 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') END"
#define SPLITDB_NAME_RESOLVES(qual, nsp, p) \
	"CASE WHEN " qual " IS NOT NULL THEN " nsp " = " SPLITDB_FOLD(qual) \
	" WHEN NOT EXISTS (SELECT FROM unnest(" p ".proconfig) g WHERE g LIKE 'search\\_path=%')" \
	" THEN true" \
	" ELSE " nsp " = ANY (SELECT btrim(e, ' \"')" \
	"                FROM unnest(" p ".proconfig) g," \
	"                     unnest(string_to_array(substr(g, 13), ',')) e" \
	"               WHERE g LIKE 'search\\_path=%') END"

/*
 * SQL fragments for the search_path a function without a search_path
 * setting of its own resolves names with in this database:
 * - SPLITDB_SESSION_PATH(p): the setting its owner's sessions start with
 *   (pg_db_role_setting: the owner in this database, the owner, this
 *   database, every role, in that order), else the default "$user", public;
 * - SPLITDB_PATH_LIST(path): such a setting as the list of quoted literals
 *   that SET search_path TO takes.
 */
#define SPLITDB_SESSION_PATH(p) \
	"coalesce((SELECT substr(c, 13) FROM pg_catalog.pg_db_role_setting s, unnest(s.setconfig) c" \
	"  WHERE c LIKE 'search\\_path=%' AND s.setrole IN (" p ".proowner, 0)" \
	"    AND s.setdatabase IN (0, (SELECT d.oid FROM pg_catalog.pg_database d" \
	"                              WHERE d.datname = current_database()))" \
	"  ORDER BY s.setrole = 0, s.setdatabase = 0 LIMIT 1), '\"$user\", public')"
#define SPLITDB_PATH_LIST(path) \
	"coalesce((SELECT string_agg(quote_literal(" SPLITDB_FOLD("x.m[1]") "), ', ' ORDER BY x.o)" \
	"  FROM regexp_matches(" path ", '\\s*(\"(?:[^\"]|\"\")*\"|[^,[:space:]][^,]*?)\\s*(?:,|$)', 'g')" \
	"       WITH ORDINALITY x(m, o)), '''''')"

/*
 * SQL query: the user functions that function fn (an OID expression) calls:
 * those pg_depend records for a SQL-standard body, and those a LANGUAGE sql
 * or plpgsql body names followed by "(", resolved as
 * SPLITDB_NAME_RESOLVES says.  Its column is q.oid, the callee; a caller
 * may add conditions on q with AND, which apply to the named callees.
 */
#define SPLITDB_FUNCTION_CALLS(fn) \
	"    SELECT d.refobjid FROM pg_depend d" \
	"     WHERE d.classid = 'pg_proc'::regclass AND d.objid = " fn " AND d.refclassid = 'pg_proc'::regclass" \
	"       AND d.refobjid >= 16384" \
	"    UNION" \
	"    SELECT q.oid FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang AND l.lanname IN ('sql', 'plpgsql')" \
	"     CROSS JOIN LATERAL regexp_matches(p.prosrc," \
	"       '(?:" SPLITDB_NAME_RE "[[:space:]]*\\.[[:space:]]*)?" SPLITDB_NAME_RE "[[:space:]]*\\(', 'g') m" \
	"     JOIN pg_proc q ON q.proname = " SPLITDB_FOLD("m[2]") " AND q.oid >= 16384" \
	"     JOIN pg_namespace qn ON qn.oid = q.pronamespace" \
	"     WHERE p.oid = " fn " AND q.oid <> p.oid" \
	"       AND " SPLITDB_NAME_RESOLVES("m[1]", "qn.nspname", "p")

/*
 * SQL condition: trigger alias t is not one of splitdb's own (the triggers
 * that enforce cross-service references, which never move with a table).
 */
#define SPLITDB_NOT_OWN_TRIGGER(t) \
	"NOT EXISTS (SELECT FROM pg_catalog.pg_depend xd" \
	" WHERE xd.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND xd.objid = " t ".tgfoid" \
	"   AND xd.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass" \
	"   AND xd.refobjid = (SELECT xe.oid FROM pg_catalog.pg_extension xe WHERE xe.extname = 'splitdb'))"

extern SplitdbService *splitdb_catalog_get_service(const char *service,
												   SplitdbRowLock lock,
												   bool missing_ok);
extern void splitdb_catalog_insert_service(const SplitdbService *svc);
extern void splitdb_catalog_delete_service(const char *service);
extern SplitdbService *splitdb_catalog_service_of_server(const char *server);
extern int64 splitdb_catalog_count_owned(const char *service);
extern char *splitdb_catalog_owner_of(Oid relid);
extern Oid	splitdb_catalog_partition_root_of(Oid relid);
extern bool splitdb_catalog_insert_owned(Oid relid, const char *service,
										 Oid partition_root);
extern int	splitdb_catalog_delete_owned(Oid relid, const char *service);
extern void splitdb_catalog_require_no_job(const char *service, const char *what);
extern void splitdb_require_superuser(const char *function);
/*
 * SPI, one way: connect, run, and report a failure.  Every file that uses SPI
 * goes through these, so an SPI failure always reads the same.
 */
extern void splitdb_spi_connect(void);
extern void splitdb_spi_failed(const char *sql, int rc) pg_attribute_noreturn();
extern int	splitdb_spi_exec(const char *sql, int nparams, Oid *types,
							 Datum *values, const char *nulls, bool read_only,
							 long count);
extern void splitdb_catalog_exec_text(const char *sql, int nparams,
									  const char *const *params, bool read_only);
extern List *splitdb_catalog_result_rows(void);
extern char **splitdb_catalog_array_elems(HeapTuple tuple, TupleDesc desc,
										  int col, int *n);
extern char *splitdb_catalog_text_array(char *const *items, int n);
extern char **splitdb_catalog_text_items(ArrayType *array, int *n);
extern char **splitdb_catalog_parse_text_array(const char *literal, int *n);
extern Datum splitdb_catalog_text_array_datum(char *const *items, int n);
extern void splitdb_error_unknown_service(const char *service);
extern bool splitdb_type_is_object_oid(Oid typid);

#endif							/* SPLITDB_CATALOG_H */
