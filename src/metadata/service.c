/*-------------------------------------------------------------------------
 *
 * service.c
 *	  Registering and dropping services: splitdb_add_service() and
 *	  splitdb_drop_service().
 *
 * A service is a name, a sibling database and the postgres_fdw server that
 * reaches it.  Either the DBA brings an existing server (any host), or
 * splitdb makes a server and a user mapping for a database on this cluster,
 * creating the database when allowed.
 *
 * Invariants:
 * - The catalog row, the server and the user mapping are made in the
 *   caller's transaction and vanish with it on error.  CREATE DATABASE cannot
 *   run in a transaction block, so it goes through a separate connection to
 *   this server; it runs last, after every check that can fail before it, and
 *   is undone by DROP DATABASE when the reachability check after it fails.
 * - A service is only registered once its sibling answered a query, so a
 *   registered service was reachable when it was made.
 * - Messages never show a password: connection failures relay libpq's own
 *   message (see remote.c).
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/metadata/service.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "metadata/catalog.h"
#include "compat.h"
#include "remote/deparse.h"
#include "remote/remote.h"
#include "splitdb.h"

PG_FUNCTION_INFO_V1(splitdb_add_service);
PG_FUNCTION_INFO_V1(splitdb_drop_service);

static char *arg_name(FunctionCallInfo fcinfo, int argno, const char *what);
static char *check_sibling(const char *server, const char *service,
						   bool *is_source);
static void add_external_service(SplitdbService *svc, const char *dbname);
static void add_local_service(SplitdbService *svc, const char *dbname,
							  bool create_database);
static void run_utility(const char *sql);
static void run_on_local(const char *sql);
static int64 count_foreign_tables(const char *server);
static void drop_user_mappings(const char *server);

/*
 * arg_name
 *		A name argument as a C string; NULL when the argument is NULL.
 *
 * what: how to call the argument in an error message
 */
static char *
arg_name(FunctionCallInfo fcinfo, int argno, const char *what)
{
	char	   *s;

	if (PG_ARGISNULL(argno))
		return NULL;
	s = NameStr(*PG_GETARG_NAME(argno));
	if (s[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s cannot be empty", what),
				 errhint("Pass a name of at least one character.")));
	return pstrdup(s);
}

/*
 * run_utility
 *		Run a utility statement of ours in the caller's transaction.
 */
static void
run_utility(const char *sql)
{
	int			rc = splitdb_spi_exec(sql, 0, NULL, NULL, NULL, false, 0);

	if (rc != SPI_OK_UTILITY)
		splitdb_spi_failed(sql, rc);
}

/*
 * run_on_local
 *		Run a statement that cannot run in a transaction block, on a separate
 *		connection to this server.  It commits on its own.
 */
static void
run_on_local(const char *sql)
{
	PGconn	   *volatile conn = NULL;

	PG_TRY();
	{
		conn = splitdb_remote_connect_local(get_database_name(MyDatabaseId));
		splitdb_remote_command(conn, sql, 0, NULL, NULL);
	}
	PG_FINALLY();
	{
		splitdb_remote_disconnect(conn);
	}
	PG_END_TRY();
}

/*
 * check_sibling
 *		Connect through a server and ask the sibling which database it is;
 *		refuse one whose encoding is not the source's
 *		(splitdb_remote_check_encoding()).
 *
 * is_source: set to true when the server reaches this very database (same
 *            database name on a server started at the same instant)
 *
 * Raises ERROR with the connection error when the sibling cannot be reached.
 * Returns the sibling's current_database(), palloc'd.
 */
static char *
check_sibling(const char *server, const char *service, bool *is_source)
{
	PGconn	   *volatile conn = NULL;
	char	   *dbname = NULL;
	char	   *started = NULL;
	char		ours[32];

	PG_TRY();
	{
		PGresult   *res;

		conn = splitdb_remote_connect_server(server, service);
		splitdb_remote_check_encoding(conn, service);
		res = splitdb_remote_exec(conn, SPLITDB_DATABASE_IDENTITY_SQL, 0, NULL, service);
		/* neither value can be NULL */
		dbname = pstrdup(splitdb_remote_value(res, 0, 0));
		started = pstrdup(splitdb_remote_value(res, 0, 1));
		splitdb_remote_clear(res);
	}
	PG_FINALLY();
	{
		splitdb_remote_disconnect(conn);
	}
	PG_END_TRY();

	/* PgStartTime counts from 2000-01-01; the remote gave Unix microseconds */
	snprintf(ours, sizeof(ours), INT64_FORMAT,
			 (int64) (PgStartTime +
					  (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY));
	*is_source = strcmp(dbname, get_database_name(MyDatabaseId)) == 0 &&
		strcmp(started, ours) == 0;
	return dbname;
}

/*
 * add_external_service
 *		Register a service reached through a server the DBA made.
 *
 * dbname: the database the caller expects, or NULL for whatever the server
 *         points at
 */
static void
add_external_service(SplitdbService *svc, const char *dbname)
{
	SplitdbService *other;
	char	   *remote_db;
	bool		is_source;

	other = splitdb_catalog_service_of_server(svc->server);
	if (other != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("server \"%s\" is already used by service \"%s\"",
						svc->server, other->service),
				 errhint("Each service needs a server of its own.")));

	remote_db = check_sibling(svc->server, svc->service, &is_source);
	if (dbname != NULL && strcmp(dbname, remote_db) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("server \"%s\" reaches database \"%s\", not \"%s\"",
						svc->server, remote_db, dbname),
				 errhint("Leave dbname out when passing a server, or change the server's dbname option.")));
	if (is_source)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("server \"%s\" reaches the source database \"%s\" itself",
						svc->server, remote_db),
				 errhint("A sibling must be another database; point the server's dbname option at it.")));

	svc->dbname = remote_db;
	svc->server_created = false;
	svc->database_created = false;
	svc->mapping_role = NULL;
	splitdb_catalog_insert_service(svc);
}

/*
 * database_field
 *		A text column of a pg_database row, palloc'd; NULL for NULL.
 */
static char *
database_field(HeapTuple tup, AttrNumber attno)
{
	bool		isnull;
	Datum		d = SysCacheGetAttr(DATABASEOID, tup, attno, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

/*
 * new_database_locale
 *		The encoding and locale a sibling that splitdb creates takes: NULL
 *		where template1 has the source database's (a plain CREATE DATABASE
 *		then gives them, and whatever the DBA put in template1), else the
 *		source's, for a copy of template0.  A sibling of another encoding
 *		would be refused (splitdb_remote_check_encoding()), and one of
 *		another collation would sort the service's text otherwise.
 */
static SplitdbDatabaseLocale *
new_database_locale(void)
{
	Oid			template1 = get_database_oid("template1", true);
	HeapTuple	ours;
	HeapTuple	theirs;
	Form_pg_database src;
	SplitdbDatabaseLocale *locale = palloc0(sizeof(SplitdbDatabaseLocale));
	bool		same = false;

	ours = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(MyDatabaseId));
	if (!HeapTupleIsValid(ours))
		elog(ERROR, "cache lookup failed for database %u", MyDatabaseId);
	src = (Form_pg_database) GETSTRUCT(ours);
	locale->encoding = pg_encoding_to_char(src->encoding);
	locale->collate = database_field(ours, Anum_pg_database_datcollate);
	locale->ctype = database_field(ours, Anum_pg_database_datctype);
	if (src->datlocprovider == COLLPROVIDER_ICU)
		locale->icu_locale = database_field(ours, Anum_pg_database_daticulocale);

	theirs = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(template1));
	if (HeapTupleIsValid(theirs))
	{
		Form_pg_database t = (Form_pg_database) GETSTRUCT(theirs);
		char	   *icu = database_field(theirs, Anum_pg_database_daticulocale);

		same = t->encoding == src->encoding && t->datlocprovider == src->datlocprovider &&
			strcmp(database_field(theirs, Anum_pg_database_datcollate), locale->collate) == 0 &&
			strcmp(database_field(theirs, Anum_pg_database_datctype), locale->ctype) == 0 &&
			(locale->icu_locale == NULL || (icu != NULL && strcmp(icu, locale->icu_locale) == 0));
		ReleaseSysCache(theirs);
	}
	ReleaseSysCache(ours);
	return same ? NULL : locale;
}

/*
 * add_local_service
 *		Register a service whose sibling is a database of this cluster,
 *		making the server, the user mapping and, when allowed, the database.
 */
static void
add_local_service(SplitdbService *svc, const char *dbname,
				  bool create_database)
{
	char	   *server;
	char	   *role = GetUserNameFromId(GetUserId(), false);
	bool		db_exists;
	bool		is_source;

	if (strcmp(dbname, get_database_name(MyDatabaseId)) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot use the source database \"%s\" as the sibling of service \"%s\"",
						dbname, svc->service),
				 errhint("Pass dbname => '...' to name another database.")));

	server = psprintf("%s%s", SPLITDB_SERVER_PREFIX, svc->service);
	if (strlen(server) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("service name \"%s\" is too long for a server name", svc->service),
				 errdetail("splitdb names the server \"%s\" followed by the service name, which must fit in %d bytes.",
						   SPLITDB_SERVER_PREFIX, NAMEDATALEN - 1),
				 errhint("Choose a shorter service name, or create a server yourself and pass server => '...'.")));
	if (GetForeignServerByName(server, true) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("server \"%s\" already exists", server),
				 errhint("Pass server => '%s' to use it for this service, or drop it.", server)));

	db_exists = OidIsValid(get_database_oid(dbname, true));
	if (!db_exists && !create_database)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_DATABASE),
				 errmsg("database \"%s\" does not exist", dbname),
				 errhint("Create it, or call splitdb_add_service() with create_database => true.")));

	/*
	 * CREATE DATABASE commits on its own connection; inside a transaction
	 * block a later ROLLBACK would leave it behind without its service.
	 */
	if (!db_exists && IsTransactionBlock())
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("splitdb_add_service() cannot create database \"%s\" inside a transaction block",
						dbname),
				 errhint("Call it on its own, or create the database first and pass create_database => false.")));

	/* transactional part first: it rolls back if anything below fails */
	run_utility(splitdb_deparse_create_server(server, splitdb_remote_local_host(),
											  PostPortNumber, dbname));
	run_utility(splitdb_deparse_create_user_mapping(server, role));

	svc->dbname = pstrdup(dbname);
	svc->server = server;
	svc->server_created = true;
	svc->database_created = !db_exists;
	svc->mapping_role = role;
	splitdb_catalog_insert_service(svc);

	if (db_exists)
	{
		(void) check_sibling(server, svc->service, &is_source);
		return;
	}

	run_on_local(splitdb_deparse_create_database(dbname, new_database_locale()));
	PG_TRY();
	{
		(void) check_sibling(server, svc->service, &is_source);
	}
	PG_CATCH();
	{
		/* the database is ours alone and empty: take it back */
		run_on_local(splitdb_deparse_drop_database(dbname));
		PG_RE_THROW();
	}
	PG_END_TRY();
}

/*
 * splitdb_add_service
 *		SQL: splitdb_add_service(service name, dbname text = NULL,
 *		                         server name = NULL,
 *		                         create_database bool = true) RETURNS void
 *
 * Registers a service.  With server, the sibling is whatever that
 * postgres_fdw server reaches (checked at once).  Without it, the sibling is
 * database dbname (default: the service name) on this cluster, created when
 * missing and create_database is true, reached through a new server
 * "splitdb_<service>" and a user mapping for the caller.
 */
Datum
splitdb_add_service(PG_FUNCTION_ARGS)
{
	SplitdbService svc = {0};
	char	   *dbname;
	char	   *server;
	bool		create_database;

	splitdb_require_superuser("splitdb_add_service");

	svc.service = arg_name(fcinfo, 0, "service name");
	if (svc.service == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("service name cannot be null"),
				 errhint("Name the service to add.")));
	dbname = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (dbname != NULL && dbname[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("database name cannot be empty"),
				 errhint("Name the sibling database, or leave dbname out to use the service's name.")));
	server = arg_name(fcinfo, 2, "server name");
	create_database = PG_ARGISNULL(3) ? true : PG_GETARG_BOOL(3);

	splitdb_spi_connect();

	if (splitdb_catalog_get_service(svc.service, SPLITDB_LOCK_NONE, true) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("service \"%s\" already exists", svc.service),
				 errhint("Choose another name, or drop it first with splitdb_drop_service().")));

	if (server != NULL)
	{
		svc.server = server;
		add_external_service(&svc, dbname);
	}
	else
		add_local_service(&svc, dbname ? dbname : svc.service, create_database);

	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * count_foreign_tables
 *		How many foreign tables use a server.
 */
static int64
count_foreign_tables(const char *server)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	bool		isnull;

	values[0] = CStringGetTextDatum(server);
	splitdb_spi_exec("SELECT pg_catalog.count(*)"
					 " FROM pg_catalog.pg_foreign_table t"
					 " JOIN pg_catalog.pg_foreign_server s ON s.oid = t.ftserver"
					 " WHERE s.srvname = $1::pg_catalog.name",
					 1, types, values, NULL, true, 0);
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * drop_user_mappings
 *		Drop every user mapping of a server splitdb made, one by one, so the
 *		server can then go without CASCADE.
 */
static void
drop_user_mappings(const char *server)
{
	List	   *roles = NIL;
	ListCell   *lc;

	splitdb_catalog_exec_text("SELECT CASE WHEN m.umuser = 0 THEN NULL ELSE r.rolname END"
							  " FROM pg_catalog.pg_user_mapping m"
							  " JOIN pg_catalog.pg_foreign_server s ON s.oid = m.umserver"
							  " LEFT JOIN pg_catalog.pg_roles r ON r.oid = m.umuser"
							  " WHERE s.srvname = $1::pg_catalog.name",
							  1, &server, true);
	foreach(lc, splitdb_catalog_result_rows())
		roles = lappend(roles, ((char **) lfirst(lc))[0]);

	foreach(lc, roles)
		run_utility(splitdb_deparse_drop_user_mapping(server, (char *) lfirst(lc)));
}

/*
 * service_references
 *		The cross-service references with an end in the service's sibling,
 *		either way, for a message: reference 3 ("c_bill_stay_id_fkey" of
 *		public.c_bill), joined with commas, in reference_id order.
 */
static char *
service_references(const char *service)
{
	const char *params[1] = {service};
	char	   *list;

	splitdb_catalog_exec_text("SELECT CASE WHEN pg_catalog.count(*) = 1 THEN 'reference ' ELSE 'references ' END"
							  "       || pg_catalog.string_agg(pg_catalog.format('%s (\"%s\" of %s)', r.reference_id,"
							  "                                                  r.constraint_name, r.child_table),"
							  "                                ', ' ORDER BY r.reference_id)"
							  "  FROM splitdb.reference r"
							  " WHERE $1::pg_catalog.name IN (r.child_service, r.parent_service)",
							  1, params, true);
	list = ((char **) linitial(splitdb_catalog_result_rows()))[0];
	return list != NULL ? list : "cross-service references";
}

/*
 * require_jobs_over
 *		Refuse to drop a service whose migration is not over: every job must
 *		be cancelled or rolled back, or finalized with its shims dropped and
 *		no cross-service reference left that enforces an end in it.
 */
static void
require_jobs_over(const char *service)
{
	const char *params[1] = {service};
	char	  **row;

	splitdb_catalog_exec_text("SELECT j.job_id::text, j.state,"
							  "       CASE WHEN j.state <> 'finalized' THEN 'state'"
							  "            WHEN EXISTS (SELECT FROM splitdb.artifact a WHERE a.job_id = j.job_id"
							  "                          AND a.kind = 'foreign table' AND a.service IS NULL"
							  "                          AND a.dropped_at IS NULL) THEN 'shims'"
							  "            ELSE 'references' END"
							  "  FROM splitdb.job j"
							  " WHERE j.service = $1::pg_catalog.name"
							  "   AND (j.state NOT IN ('cancelled', 'rolled_back', 'finalized')"
							  "        OR (j.state = 'finalized'"
							  "            AND (EXISTS (SELECT FROM splitdb.artifact a WHERE a.job_id = j.job_id"
							  "                          AND a.kind = 'foreign table' AND a.service IS NULL"
							  "                          AND a.dropped_at IS NULL)"
							  "                 OR EXISTS (SELECT FROM splitdb.reference r"
							  "                             WHERE $1::pg_catalog.name IN (r.child_service, r.parent_service)))))"
							  " ORDER BY j.job_id DESC LIMIT 1",
							  1, params, true);
	if (SPI_processed == 0)
		return;
	row = (char **) linitial(splitdb_catalog_result_rows());
	if (strcmp(row[2], "state") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot drop service \"%s\" because it has a migration job", service),
				 errdetail("Job %s is %s.", row[0], row[1]),
				 strcmp(row[1], "done") == 0 ?
				 errhint("Roll it back with splitdb_rollback('%s'), or finalize it with splitdb_finalize('%s', drop_shim => true), first.",
						 service, service) :
				 errhint("Cancel it with splitdb_cancel('%s') first.", service)));
	if (strcmp(row[2], "shims") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot drop service \"%s\" because the shims of its migration remain", service),
				 errdetail("Job %s is finalized, but its shims were kept.", row[0]),
				 errhint("Drop them with splitdb_finalize('%s', drop_shim => true), or keep the service.",
						 service)));
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("cannot drop service \"%s\" because cross-service references have an end in it", service),
			 errdetail("Job %s is finalized, and its sibling still enforces %s.",
					   row[0], service_references(service)),
			 errhint("splitdb_references lists them; their triggers keep enforcing them in both databases. "
					 "splitdb has no call that drops a cross-service reference, so the service stays registered.")));
}


/*
 * splitdb_drop_service
 *		SQL: splitdb_drop_service(service name) RETURNS void
 *
 * Forgets a service that owns no tables and whose migration jobs are over
 * (require_jobs_over), with its jobs' rows.  The server and user mapping
 * splitdb made for it go too; a server the DBA brought, and the sibling
 * database, are kept.
 */
Datum
splitdb_drop_service(PG_FUNCTION_ARGS)
{
	char	   *service = pstrdup(NameStr(*PG_GETARG_NAME(0)));
	SplitdbService *svc;
	int64		owned;

	splitdb_require_superuser("splitdb_drop_service");

	splitdb_spi_connect();

	/* FOR UPDATE: an assign running now either finishes first or sees us */
	svc = splitdb_catalog_get_service(service, SPLITDB_LOCK_UPDATE, false);
	require_jobs_over(service);

	owned = splitdb_catalog_count_owned(service);
	if (owned > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("cannot drop service \"%s\" because it owns tables", service),
				 errdetail_plural("Service \"%s\" owns %lld table.",
								  "Service \"%s\" owns %lld tables.",
								  owned, service, (long long) owned),
				 errhint("Unassign them first with splitdb_unassign(); splitdb.owned_table lists them.")));

	if (svc->server_created)
	{
		int64		ftables = count_foreign_tables(svc->server);

		if (ftables > 0)
			ereport(ERROR,
					(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
					 errmsg("cannot drop service \"%s\" because foreign tables use its server \"%s\"",
							service, svc->server),
					 errhint("Drop those foreign tables first.")));
		/* someone may have dropped it by hand; then there is nothing to do */
		if (GetForeignServerByName(svc->server, true) != NULL)
		{
			drop_user_mappings(svc->server);
			run_utility(splitdb_deparse_drop_server(svc->server));
		}
	}

	{
		const char *params[1] = {service};

		/* their tables, references and registry rows go with them */
		splitdb_catalog_exec_text("DELETE FROM splitdb.job WHERE service = $1::pg_catalog.name",
								  1, params, false);
	}
	splitdb_catalog_delete_service(service);

	/* before SPI_finish(), which frees svc */
	if (svc->database_created)
		ereport(NOTICE,
				(errmsg("database \"%s\" of service \"%s\" was kept", svc->dbname, service),
				 errhint("Drop it with DROP DATABASE when it is no longer needed.")));

	SPI_finish();
	PG_RETURN_VOID();
}
