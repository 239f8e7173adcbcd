/*-------------------------------------------------------------------------
 *
 * remote.c
 *	  Connections from splitdb to other databases over libpq.
 *
 * Every statement splitdb sends to another database goes through this file,
 * and only the files of src/remote/ call libpq.  Every connection splitdb
 * opens itself is opened here, with the interruptible libpqsrv_* helpers, so
 * a cancel or a SIGTERM ends any wait.  Connection parameters come from a
 * postgres_fdw foreign server and the user mapping of the current user,
 * exactly the pair postgres_fdw itself would use, so what splitdb reaches is
 * what the shim will reach later.  The connections that are kept past one
 * call are kept in src/remote/ too: checkconn.c (the checks of references),
 * nextval.c (the shims' sequence defaults); postgres_fdw's own connections,
 * which splitdb borrows, are found through splitdb_remote_fdw_connection().
 * docs/architecture.md "Connections and caches" lists them all.
 *
 * Invariants:
 * - A connection returned by a splitdb_remote_connect_* function is owned by
 *   the caller, who must give it to splitdb_remote_disconnect() on every
 *   path, errors included.  One returned by splitdb_remote_fdw_connection()
 *   is postgres_fdw's, and is never closed by splitdb.
 * - postgres_fdw's password rule for roles that are not superusers is
 *   applied in one place, refuse_without_password(), with postgres_fdw's
 *   messages.
 * - Messages never contain a password: connection failures show libpq's own
 *   message, which never includes one, and never the connection options.
 * - Remote errors are relayed with the remote SQLSTATE, message, detail and
 *   hint, plus a context line naming the service and the statement.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/remote/remote.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_foreign_data_wrapper.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "commands/dbcommands.h"
#include "fmgr.h"
#include "foreign/foreign.h"
#include "libpq/libpq-be-fe-helpers.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/syscache.h"
#include "utils/varlena.h"

#include "compat.h"
#include "remote/remote.h"
#include "splitdb.h"

/* the foreign-data wrapper a sibling's server must use */
#define POSTGRES_FDW_NAME	"postgres_fdw"

/* room for the options splitdb adds to those of the server and mapping */
#define EXTRA_CONN_OPTIONS	4

static bool is_libpq_option(const char *keyword);
static int	append_options(List *options, const char **keywords,
						   const char **values, int n);
static PGconn *connect_with(const char **keywords, const char **values,
							const char *target, const char *hint);
static void setup_session(PGconn *conn);
static char *mapping_role_words(UserMapping *mapping);
static void notice_processor(void *arg, const char *message);

/*
 * is_libpq_option
 *		True when keyword is a connection option libpq understands.
 *
 * Servers and user mappings also carry postgres_fdw's own options
 * (fetch_size, updatable, ...), which libpq would reject.
 */
static bool
is_libpq_option(const char *keyword)
{
	static PQconninfoOption *defaults = NULL;
	PQconninfoOption *opt;

	if (defaults == NULL)
	{
		defaults = PQconndefaults();
		if (defaults == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory"),
					 errdetail("Could not get libpq's default connection options.")));
	}

	/* splitdb sets these itself */
	if (strcmp(keyword, "fallback_application_name") == 0 ||
		strcmp(keyword, "client_encoding") == 0 ||
		strcmp(keyword, "replication") == 0)
		return false;

	for (opt = defaults; opt->keyword != NULL; opt++)
	{
		/* debug options ("D" flag) are not for users to set */
		if (strcmp(opt->keyword, keyword) == 0)
			return strchr(opt->dispchar, 'D') == NULL;
	}
	return false;
}

/*
 * append_options
 *		Copy the libpq options of a DefElem list into keywords[]/values[].
 *
 * n: number of entries already filled.  Returns the new count.  The arrays
 * must have room for every element of options.
 */
static int
append_options(List *options, const char **keywords, const char **values,
			   int n)
{
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *d = (DefElem *) lfirst(lc);

		if (!is_libpq_option(d->defname))
			continue;
		keywords[n] = d->defname;
		values[n] = defGetString(d);
		n++;
	}
	return n;
}

/*
 * connect_with
 *		Open a connection and check that it is usable.
 *
 * keywords/values: NULL-terminated libpq options
 * target:          how to name the target in a failure message
 * hint:            what to tell the user when the connection fails
 *
 * On failure raises ERROR with SQLSTATE 08001 and libpq's message (which never
 * contains a password) as detail.  Returns the open connection, which the
 * caller owns.
 */
static PGconn *
connect_with(const char **keywords, const char **values, const char *target,
			 const char *hint)
{
	PGconn	   *conn;

	conn = libpqsrv_connect_params(keywords, values, false,
								   SPLITDB_WAIT_EVENT_REMOTE);
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
	{
		char	   *msg = conn ? pchomp(PQerrorMessage(conn)) : pstrdup("out of memory");

		libpqsrv_disconnect(conn);
		ereport(ERROR,
				(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
				 errmsg("could not connect to %s", target),
				 errdetail_internal("%s", msg),
				 errhint("%s", hint)));
	}
	PQsetNoticeProcessor(conn, notice_processor, NULL);
	setup_session(conn);
	return conn;
}

/*
 * notice_processor
 *		Remote notices ("schema ... already exists, skipping") go to the
 *		server log at DEBUG1 instead of the worker's stderr.
 */
static void
notice_processor(void *arg, const char *message)
{
	elog(DEBUG1, "remote notice: %s", message);
}

/*
 * setup_session
 *		Give a new session the fixed settings splitdb relies on: catalog names
 *		resolve in pg_catalog only; values cross in one form whatever the
 *		sibling's defaults (xmloption content, as pg_dump: xml fragments too;
 *		money in lc_monetary C, as the worker writes and reads it); its
 *		commits durable (synchronous_commit off raised to on: a cutover's or
 *		a rollback's commit in the sibling that a crash there took back,
 *		after the source's had committed, would leave the source switched
 *		against a sibling that is not); as a
 *		superuser, splitdb loaded (the sibling need not preload it; a
 *		server without the library skips this) and splitdb.owner_rights
 *		on, so that the functions of the tables' owners that the session's
 *		writes, index builds and validations call run as their owners
 *		(metadata/ownerrights.c).  On failure the connection is closed and
 *		ERROR raised.
 */
static void
setup_session(PGconn *conn)
{
	PGresult   *res;

	res = libpqsrv_exec(conn,
						"DO $splitdb$ BEGIN"
						" IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r"
						"      WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER) THEN"
						"  BEGIN LOAD 'splitdb'; EXCEPTION WHEN undefined_file THEN NULL; END;"
						"  PERFORM pg_catalog.set_config('" SPLITDB_OWNER_RIGHTS_GUC "', 'on', false);"
						" END IF; END $splitdb$;"
						"SELECT pg_catalog.set_config('search_path', 'pg_catalog', false),"
						" pg_catalog.set_config('timezone', 'UTC', false), pg_catalog.set_config('datestyle', 'ISO, YMD', false),"
						" pg_catalog.set_config('intervalstyle', 'postgres', false),"
						" pg_catalog.set_config('extra_float_digits', '3', false),"
						" pg_catalog.set_config('xmloption', 'content', false),"
						" pg_catalog.set_config('lc_monetary', 'C', false),"
						" pg_catalog.set_config('synchronous_commit',"
						"  CASE pg_catalog.current_setting('synchronous_commit') WHEN 'off' THEN 'on'"
						"   ELSE pg_catalog.current_setting('synchronous_commit') END, false)",
						SPLITDB_WAIT_EVENT_REMOTE);
	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		char	   *msg = pchomp(PQerrorMessage(conn));

		PQclear(res);
		libpqsrv_disconnect(conn);
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not set up a session on a sibling"),
				 errdetail_internal("%s", msg),
				 errhint("Check that the sibling's server is running and accepts sessions of this role; then try again.")));
	}
	PQclear(res);
}

/*
 * splitdb_remote_connect_server
 *		Connect to the database a postgres_fdw foreign server points at.
 *
 * servername: the foreign server
 * service:    the service it belongs to, for messages only (may be NULL)
 *
 * Uses the server's options and the current user's user mapping (or the
 * PUBLIC one), like postgres_fdw.  Raises ERROR when the server does not
 * exist, is not a postgres_fdw server, has no user mapping for the current
 * user, or cannot be reached.  Returns a connection the caller owns.
 */
PGconn *
splitdb_remote_connect_server(const char *servername, const char *service)
{
	ForeignServer *server;
	UserMapping *mapping = splitdb_remote_user_mapping(servername, &server);

	return splitdb_remote_connect_mapping(server, mapping, service, false);
}

/*
 * splitdb_remote_user_mapping
 *		The postgres_fdw server servername and the user mapping of the
 *		current user on it (or the PUBLIC one), the pair postgres_fdw would
 *		use; *server is set to the server.
 *
 * Raises ERROR when the server does not exist, is not a postgres_fdw
 * server, or has no user mapping for the current user.
 */
UserMapping *
splitdb_remote_user_mapping(const char *servername, ForeignServer **server)
{
	ForeignDataWrapper *fdw;

	*server = GetForeignServerByName(servername, true);
	if (*server == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("server \"%s\" does not exist", servername),
				 errhint("Create it with CREATE SERVER ... FOREIGN DATA WRAPPER postgres_fdw.")));

	fdw = GetForeignDataWrapper((*server)->fdwid);
	if (strcmp(fdw->fdwname, POSTGRES_FDW_NAME) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("server \"%s\" is not a postgres_fdw server", servername),
				 errdetail("It uses foreign-data wrapper \"%s\".", fdw->fdwname),
				 errhint("Sibling databases are reached through postgres_fdw servers.")));

	/* GetUserMapping raises a plain error; look first to give a hint */
	if (!OidIsValid(GetSysCacheOid2(USERMAPPINGUSERSERVER,
									Anum_pg_user_mapping_oid,
									ObjectIdGetDatum(GetUserId()),
									ObjectIdGetDatum((*server)->serverid))) &&
		!OidIsValid(GetSysCacheOid2(USERMAPPINGUSERSERVER,
									Anum_pg_user_mapping_oid,
									ObjectIdGetDatum(InvalidOid),
									ObjectIdGetDatum((*server)->serverid))))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("user mapping not found for user \"%s\", server \"%s\"",
						GetUserNameFromId(GetUserId(), false), servername),
				 errhint("Create one with CREATE USER MAPPING FOR CURRENT_USER SERVER %s OPTIONS (user '...', password '...').",
						 quote_identifier(servername))));
	return GetUserMapping(GetUserId(), (*server)->serverid);
}

/*
 * password_required
 *		postgres_fdw's rule for a mapping whose role is not a superuser: the
 *		connection must use a password, unless a superuser set
 *		password_required 'false' on the mapping.
 */
static bool
password_required(UserMapping *mapping)
{
	ListCell   *lc;

	if (superuser_arg(mapping->userid))
		return false;
	foreach(lc, mapping->options)
	{
		DefElem    *d = (DefElem *) lfirst(lc);

		if (strcmp(d->defname, "password_required") == 0)
			return defGetBoolean(d);
	}
	return true;
}

/*
 * refuse_without_password
 *		The one place that applies postgres_fdw's password rule (above) and
 *		says it was broken, in postgres_fdw's words (SQLSTATE 2F003), so
 *		that splitdb's refusal reads as postgres_fdw's own for the same
 *		mapping.
 *
 * Called twice per connection: with conn NULL before connecting, when the
 * options (n of keywords[]/values[]) must then hold a non-empty password;
 * with the new connection after connecting, when the server must have
 * asked for that password (the connection is closed before the error).
 * Returns normally when the rule does not apply or is kept.
 */
static void
refuse_without_password(UserMapping *mapping, PGconn *conn,
						const char *const *keywords,
						const char *const *values, int n)
{
	if (!password_required(mapping))
		return;
	if (conn == NULL)
	{
		for (int i = 0; i < n; i++)
			if (strcmp(keywords[i], "password") == 0 && values[i][0] != '\0')
				return;
		ereport(ERROR,
				(errcode(ERRCODE_S_R_E_PROHIBITED_SQL_STATEMENT_ATTEMPTED),
				 errmsg("password is required"),
				 errdetail("Non-superuser must provide a password in the user mapping."),
				 errhint("Add a password to the user mapping, or have a superuser set password_required 'false' on it.")));
	}
	if (!PQconnectionUsedPassword(conn))
	{
		libpqsrv_disconnect(conn);
		ereport(ERROR,
				(errcode(ERRCODE_S_R_E_PROHIBITED_SQL_STATEMENT_ATTEMPTED),
				 errmsg("password is required"),
				 errdetail("Non-superuser cannot connect if the server does not request a password."),
				 errhint("Target server's authentication method must be changed or set the parameter password_required=false in the user mapping attributes.")));
	}
}

/*
 * mapping_role_words
 *		How a connection failure's hint names the role whose user mapping
 *		was used: "the current user" when it is the current user's (its own
 *		or PUBLIC's), else that role, quoted, with the role the mapping's
 *		user option logs in as when that is another one.  The checks of
 *		cross-service references log in through the mapping of a table's
 *		owner (refcheck_xact.c), so "the current user" would send a DBA to
 *		the wrong mapping, and an owner that cannot log in (NOLOGIN) shows
 *		only here.
 */
static char *
mapping_role_words(UserMapping *mapping)
{
	char	   *role;
	const char *login = NULL;
	ListCell   *lc;

	if (mapping->userid == GetUserId())
		return pstrdup("the current user");
	role = GetUserNameFromId(mapping->userid, true);
	if (role == NULL)
		return pstrdup("the role it is used for");
	foreach(lc, mapping->options)
	{
		DefElem    *d = (DefElem *) lfirst(lc);

		if (strcmp(d->defname, "user") == 0)
			login = defGetString(d);
	}
	if (login == NULL || strcmp(login, role) == 0)
		return psprintf("role \"%s\"", role);
	return psprintf("role \"%s\" (which logs in as \"%s\")", role, login);
}

/*
 * splitdb_remote_connect_mapping
 *		Connect to the database of a postgres_fdw server with the options of
 *		one of its user mappings.
 *
 * server, mapping: the pair, as postgres_fdw would use it
 * service:         names the service in messages (may be NULL)
 * fdw_rules:       apply postgres_fdw's rule for roles that are not
 *                  superusers: a password in the mapping, and a server
 *                  that asks for it (SQLSTATE 2F003 otherwise)
 *
 * Raises ERROR when the database cannot be reached.  Returns a connection
 * the caller owns.
 */
PGconn *
splitdb_remote_connect_mapping(ForeignServer *server, UserMapping *mapping,
							   const char *service, bool fdw_rules)
{
	const char **keywords;
	const char **values;
	int			n = 0;
	int			size;
	char		timeout[16];
	char	   *target;
	char	   *hint;
	PGconn	   *conn;

	splitdb_remote_check_server_owner(server);
	size = list_length(server->options) + list_length(mapping->options) +
		EXTRA_CONN_OPTIONS + 1;
	keywords = palloc0(size * sizeof(char *));
	values = palloc0(size * sizeof(char *));

	n = append_options(server->options, keywords, values, n);
	n = append_options(mapping->options, keywords, values, n);

	if (fdw_rules)
		refuse_without_password(mapping, NULL, keywords, values, n);

	keywords[n] = "fallback_application_name";
	values[n++] = SPLITDB_APPLICATION_NAME;
	keywords[n] = "client_encoding";
	values[n++] = GetDatabaseEncodingName();
	if (splitdb_connect_timeout > 0)
	{
		/* put first, so a connect_timeout of the server's own wins */
		memmove(keywords + 1, keywords, n * sizeof(char *));
		memmove(values + 1, values, n * sizeof(char *));
		snprintf(timeout, sizeof(timeout), "%d", splitdb_connect_timeout);
		keywords[0] = "connect_timeout";
		values[0] = timeout;
		n++;
	}
	keywords[n] = NULL;
	values[n] = NULL;

	target = service ?
		psprintf("server \"%s\" of service \"%s\"", server->servername, service) :
		psprintf("server \"%s\"", server->servername);
	/* without a service, the connection may reach the source (splitdb_source) */
	hint = service ?
		psprintf("Check that the sibling is running and that the options of server \"%s\" and of its user mapping for %s are right.",
				 server->servername, mapping_role_words(mapping)) :
		psprintf("Check that the database that server \"%s\" reaches is running and that the options of the server and of its user mapping for %s are right.",
				 server->servername, mapping_role_words(mapping));

	conn = connect_with(keywords, values, target, hint);
	if (fdw_rules)
		refuse_without_password(mapping, conn, NULL, NULL, 0);
	return conn;
}

/*
 * splitdb_remote_connect_local
 *		Connect to a database of this cluster as the current user.
 *
 * dbname: the database to connect to
 *
 * Goes through the first Unix socket directory of this server, or through
 * localhost when the server listens on no socket.  Used to run statements
 * that cannot run inside a transaction block, such as CREATE DATABASE.
 * Returns a connection the caller owns; raises ERROR when it cannot connect.
 */
PGconn *
splitdb_remote_connect_local(const char *dbname)
{
	const char *keywords[8];
	const char *values[8];
	char		port[16];
	char	   *target;
	int			n = 0;

	snprintf(port, sizeof(port), "%d", PostPortNumber);

	keywords[n] = "host";
	values[n++] = splitdb_remote_local_host();
	keywords[n] = "port";
	values[n++] = port;
	keywords[n] = "dbname";
	values[n++] = dbname;
	keywords[n] = "user";
	values[n++] = GetUserNameFromId(GetUserId(), false);
	keywords[n] = "fallback_application_name";
	values[n++] = SPLITDB_APPLICATION_NAME;
	keywords[n] = "client_encoding";
	values[n++] = GetDatabaseEncodingName();
	keywords[n] = NULL;
	values[n] = NULL;

	target = psprintf("database \"%s\" on this server", dbname);
	return connect_with(keywords, values, target,
						"splitdb connects to this server through its first Unix socket directory, as the current user and without a password; allow that in pg_hba.conf, or create a server with a user mapping that has a password and pass server => '...'.");
}

/* postgres_fdw's GetConnection() (its connection.c), found at run time */
typedef PGconn *(*FdwGetConnectionFn) (UserMapping *user, bool will_prep_stmt,
									   void **state);

/*
 * splitdb_remote_fdw_connection
 *		Borrow postgres_fdw's connection for a user mapping: the one its
 *		cache keeps for this backend, in the remote transaction that mirrors
 *		the local one (postgres_fdw opens both when there are none yet).
 *
 * postgres_fdw owns the connection: it opens it under its own password
 * rule, commits and aborts its remote transaction with the local one, and
 * closes it; the caller only runs statements on it.  GetConnection() is
 * found at run time with load_external_function(), so splitdb needs no link
 * to postgres_fdw and no copy of its code.  Raises postgres_fdw's errors.
 */
PGconn *
splitdb_remote_fdw_connection(UserMapping *mapping)
{
	static FdwGetConnectionFn get_connection = NULL;

	if (get_connection == NULL)
		get_connection = (FdwGetConnectionFn)
			load_external_function("$libdir/postgres_fdw", "GetConnection", true, NULL);
	splitdb_remote_check_server_owner(GetForeignServer(mapping->serverid));
	return get_connection(mapping, false, NULL);
}

/*
 * splitdb_remote_local_host
 *		The host to use for a connection to this very server.
 *
 * The first entry of unix_socket_directories, or "localhost" when the server
 * listens on no Unix socket.  Returns a palloc'd string.
 */
char *
splitdb_remote_local_host(void)
{
	const char *dirs = GetConfigOption("unix_socket_directories", false, false);
	char	   *copy;
	List	   *elems;

	if (dirs == NULL || dirs[0] == '\0')
		return pstrdup("localhost");

	copy = pstrdup(dirs);
	if (!SplitDirectoriesString(copy, ',', &elems) || elems == NIL)
		return pstrdup("localhost");
	return pstrdup((char *) linitial(elems));
}

/*
 * report_lost
 *		Raise ERROR 08006 for a connection that broke under a statement (the
 *		other server stopped or crashed, the network failed).
 *
 * libpq's message is several lines, the later ones about the failures that
 * followed the first ("invalid socket"); the detail keeps the first line.
 */
static pg_attribute_noreturn() void
report_lost(const char *libpq_msg, const char *sql, const char *service)
{
	char	   *first = pstrdup(libpq_msg);

	first[strcspn(first, "\n")] = '\0';
	if (service != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("lost the connection to the sibling of service \"%s\"", service),
				 errdetail_internal("%s", first),
				 errhint("Check that the sibling's server is running. Once it is, the statement can be retried; a migration resumes with the next splitdb_migrate()."),
				 errcontext("remote statement on service \"%s\": %s", service, sql)));
	ereport(ERROR,
			(errcode(ERRCODE_CONNECTION_FAILURE),
			 errmsg("lost the connection to the other database"),
			 errdetail_internal("%s", first),
			 errhint("Check that the other database's server is running; the statement can be retried once it is."),
			 errcontext("remote statement: %s", sql)));
}

/*
 * splitdb_remote_report
 *		Raise ERROR for a failed remote statement, keeping what the remote said.
 *
 * res may be NULL (the connection's own message is used).  Frees res.  The
 * SQLSTATE, message, detail and hint are the remote's, and so are the
 * fields that name the object (schema, table, column, data type,
 * constraint), which drivers read to tell which key or column failed; a
 * context line names the service and the statement.  An error without a
 * remote SQLSTATE on a connection that broke is 08006, "lost the
 * connection ..." (report_lost()).
 */
void
splitdb_remote_report(PGresult *res, PGconn *conn, const char *sql,
					  const char *service)
{
	char	   *sqlstate = NULL;
	char	   *primary = NULL;
	char	   *detail = NULL;
	char	   *hint = NULL;
	static const int object_fields[] = {
		PG_DIAG_SCHEMA_NAME, PG_DIAG_TABLE_NAME, PG_DIAG_COLUMN_NAME,
		PG_DIAG_DATATYPE_NAME, PG_DIAG_CONSTRAINT_NAME
	};
	char	   *objects[lengthof(object_fields)] = {0};
	int			code = ERRCODE_CONNECTION_FAILURE;
	char	   *where;

	if (res != NULL)
	{
		char	   *s;

		for (int i = 0; i < lengthof(object_fields); i++)
			if ((s = PQresultErrorField(res, object_fields[i])) != NULL)
				objects[i] = pstrdup(s);

		if ((s = PQresultErrorField(res, PG_DIAG_SQLSTATE)) != NULL)
			sqlstate = pstrdup(s);
		if ((s = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)) != NULL)
			primary = pstrdup(s);
		if ((s = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL)) != NULL)
			detail = pstrdup(s);
		if ((s = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT)) != NULL)
			hint = pstrdup(s);
		PQclear(res);
	}
	if (sqlstate != NULL && strlen(sqlstate) == 5)
		code = MAKE_SQLSTATE(sqlstate[0], sqlstate[1], sqlstate[2],
							 sqlstate[3], sqlstate[4]);
	if (primary == NULL)
		primary = pchomp(PQerrorMessage(conn));
	if (sqlstate == NULL && PQstatus(conn) == CONNECTION_BAD)
		report_lost(primary, sql, service);

	/* errcontext() is a comma expression: keep it out of ?: */
	where = service ?
		psprintf("remote statement on service \"%s\"", service) :
		pstrdup("remote statement");
	ereport(ERROR,
			(errcode(code),
			 errmsg_internal("%s", primary),
			 detail ? errdetail_internal("%s", detail) : 0,
			 hint ? errhint("%s", hint) : 0,
			 objects[0] ? err_generic_string(PG_DIAG_SCHEMA_NAME, objects[0]) : 0,
			 objects[1] ? err_generic_string(PG_DIAG_TABLE_NAME, objects[1]) : 0,
			 objects[2] ? err_generic_string(PG_DIAG_COLUMN_NAME, objects[2]) : 0,
			 objects[3] ? err_generic_string(PG_DIAG_DATATYPE_NAME, objects[3]) : 0,
			 objects[4] ? err_generic_string(PG_DIAG_CONSTRAINT_NAME, objects[4]) : 0,
			 errcontext("%s: %s", where, sql)));
}

/*
 * splitdb_remote_exec
 *		Run one statement, with parameters, and return its result.
 *
 * conn:    an open connection; not consumed
 * sql:     the statement, with $1..$n placeholders; identifiers quoted
 * nparams: number of entries in values[]
 * values:  text form of each parameter; a NULL entry means SQL NULL
 * service: names the service in the error context (may be NULL)
 *
 * The wait is interruptible.  A remote error is relayed with its SQLSTATE.
 * Returns a PGresult of status PGRES_TUPLES_OK or PGRES_COMMAND_OK, which the
 * caller owns and must PQclear().
 */
PGresult *
splitdb_remote_exec(PGconn *conn, const char *sql, int nparams,
					const char *const *values, const char *service)
{
	splitdb_remote_send(conn, sql, nparams, values, service);
	return splitdb_remote_finish(conn, sql, service);
}

/*
 * splitdb_remote_send
 *		Send one statement with text parameters without waiting for it; the
 *		caller collects the result with splitdb_remote_finish() and may work
 *		meanwhile.  Arguments as for splitdb_remote_exec().
 */
void
splitdb_remote_send(PGconn *conn, const char *sql, int nparams,
					const char *const *values, const char *service)
{
	if (!PQsendQueryParams(conn, sql, nparams, NULL, values, NULL, NULL, 0))
		splitdb_remote_report(NULL, conn, sql, service);
}

/*
 * splitdb_remote_prepare
 *		Prepare sql (nparams text parameters) as statement name on conn.
 */
void
splitdb_remote_prepare(PGconn *conn, const char *name, const char *sql,
					   int nparams, const char *service)
{
	if (!PQsendPrepare(conn, name, sql, nparams, NULL))
		splitdb_remote_report(NULL, conn, sql, service);
	PQclear(splitdb_remote_finish(conn, sql, service));
}

/*
 * splitdb_remote_exec_prepared
 *		Run the prepared statement name (whose text, sql, names it in an
 *		error) with text parameters; the result as splitdb_remote_exec().
 */
PGresult *
splitdb_remote_exec_prepared(PGconn *conn, const char *name, const char *sql,
							 int nparams, const char *const *values,
							 const char *service)
{
	if (!PQsendQueryPrepared(conn, name, nparams, values, NULL, NULL, 0))
		splitdb_remote_report(NULL, conn, sql, service);
	return splitdb_remote_finish(conn, sql, service);
}

/*
 * splitdb_remote_finish
 *		Wait for the result of a statement already sent on conn (PQsend*),
 *		interruptibly, and return it (PGRES_TUPLES_OK or PGRES_COMMAND_OK,
 *		the caller's to PQclear()); a remote error is relayed with its
 *		SQLSTATE, sql and service naming it in the context.
 */
PGresult *
splitdb_remote_finish(PGconn *conn, const char *sql, const char *service)
{
	return splitdb_remote_finish_unless(conn, sql, service, 0);
}

/*
 * splitdb_remote_finish_unless
 *		As splitdb_remote_finish(), but a statement that failed with the
 *		SQLSTATE code (an ERRCODE_*; 0: none) returns NULL, its error
 *		dropped (the connection idle again, a transaction block aborted).
 */
PGresult *
splitdb_remote_finish_unless(PGconn *conn, const char *sql, const char *service,
							 int code)
{
	PGresult   *res = libpqsrv_get_result_last(conn, SPLITDB_WAIT_EVENT_REMOTE);

	if (code != 0 && res != NULL && PQresultStatus(res) == PGRES_FATAL_ERROR)
	{
		const char *s = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		if (s != NULL && strlen(s) == 5 &&
			MAKE_SQLSTATE(s[0], s[1], s[2], s[3], s[4]) == code)
		{
			PQclear(res);
			return NULL;
		}
	}
	if (res == NULL ||
		(PQresultStatus(res) != PGRES_TUPLES_OK &&
		 PQresultStatus(res) != PGRES_COMMAND_OK))
		splitdb_remote_report(res, conn, sql, service);
	return res;
}

/*
 * splitdb_remote_disconnect
 *		Close a connection; NULL is accepted and ignored.
 */
void
splitdb_remote_disconnect(PGconn *conn)
{
	if (conn != NULL)
		libpqsrv_disconnect(conn);
}

/*
 * splitdb_remote_result_rows
 *		The rows of a result as arrays of palloc'd C strings (NULL for SQL
 *		NULL), one array per row.  Does not free res.
 */
List *
splitdb_remote_result_rows(PGresult *res)
{
	List	   *rows = NIL;

	for (int r = 0; r < PQntuples(res); r++)
	{
		int			ncols = PQnfields(res);
		char	  **row = palloc(sizeof(char *) * ncols);

		for (int c = 0; c < ncols; c++)
			row[c] = PQgetisnull(res, r, c) ? NULL : pstrdup(PQgetvalue(res, r, c));
		rows = lappend(rows, row);
	}
	return rows;
}

/*
 * splitdb_remote_command
 *		Run a statement whose result is not needed; errors are reported as
 *		splitdb_remote_exec() reports them.
 */
void
splitdb_remote_command(PGconn *conn, const char *sql, int nparams,
					   const char *const *values, const char *service)
{
	PQclear(splitdb_remote_exec(conn, sql, nparams, values, service));
}

/*
 * splitdb_remote_scalar
 *		Run a statement and return its first row's first column, palloc'd in
 *		the current memory context; NULL when there is no row or the value is
 *		NULL.
 */
char *
splitdb_remote_scalar(PGconn *conn, const char *sql, int nparams,
					  const char *const *values, const char *service)
{
	PGresult   *res = splitdb_remote_exec(conn, sql, nparams, values, service);
	char	   *value = NULL;

	if (PQntuples(res) > 0 && PQnfields(res) > 0 && !PQgetisnull(res, 0, 0))
		value = pstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return value;
}

/* splitdb_remote_ntuples: the number of rows of a result; 0 for NULL. */
int
splitdb_remote_ntuples(const PGresult *res)
{
	return res == NULL ? 0 : PQntuples(res);
}

/*
 * splitdb_remote_value
 *		The text of one value of a result, owned by the result (valid until
 *		splitdb_remote_clear()); NULL for an SQL NULL.
 */
char *
splitdb_remote_value(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

/* splitdb_remote_clear: free a result; NULL is allowed. */
void
splitdb_remote_clear(PGresult *res)
{
	PQclear(res);
}

/*
 * splitdb_remote_parameter
 *		The value of a setting that the server reports (ParameterStatus) as
 *		libpq last read it, owned by the connection; NULL when the server
 *		reported none of that name.  Asks the server nothing.
 */
const char *
splitdb_remote_parameter(const PGconn *conn, const char *name)
{
	return PQparameterStatus(conn, name);
}

/*
 * splitdb_remote_check_library
 *		Refuse a sibling session, of a superuser, in which splitdb's library
 *		did not load (setup_session() skips a server without it): there
 *		splitdb.owner_rights is a mere placeholder, so the functions of the
 *		tables' owners that the job's copy, replays, index builds and
 *		validations call would run with the superuser's rights; and the
 *		cutover's CREATE EXTENSION would fail at the end anyway.
 */
void
splitdb_remote_check_library(PGconn *conn, const char *service)
{
	const char *param[1] = {SPLITDB_OWNER_RIGHTS_GUC};
	char	   *vartype;

	vartype = splitdb_remote_scalar(conn,
									"SELECT s.vartype FROM pg_catalog.pg_settings s"
									" WHERE s.name OPERATOR(pg_catalog.=) $1",
									1, param, service);
	if (vartype != NULL && strcmp(vartype, "bool") == 0)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_FILE),
			 errmsg("splitdb's library is not installed on the server of database \"%s\" of service \"%s\"",
					PQdb(conn), service),
			 errdetail("The job's sessions there load it, so that the functions of the tables' owners that its copy, replays and index builds call run with their owners' rights, and the cutover installs the extension there."),
			 errhint("Install the same version of splitdb on the sibling's server, then call splitdb_migrate('%s') again.",
					 service)));
}

/*
 * splitdb_remote_check_encoding
 *		Refuse a sibling whose database encoding is not the source's, as its
 *		server reported it (server_encoding) when the connection started.
 *
 * splitdb copies values in the form they are stored and verifies them by
 * their bytes: text received in another encoding is converted, so a
 * faithful copy would fail verification, and a character the sibling's
 * encoding lacks would fail the copy itself.
 */
void
splitdb_remote_check_encoding(PGconn *conn, const char *service)
{
	const char *theirs = PQparameterStatus(conn, "server_encoding");
	const char *ours = GetDatabaseEncodingName();

	if (theirs != NULL && strcmp(theirs, ours) == 0)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("database \"%s\" of service \"%s\" has encoding \"%s\", but the source has \"%s\"",
					PQdb(conn), service, theirs ? theirs : "unknown", ours),
			 errdetail("splitdb copies values as they are stored, and verifies the copy by their bytes."),
			 errhint("Give the service a sibling with the source's encoding, such as one made with CREATE DATABASE ... TEMPLATE template0 ENCODING '%s' and a locale of that encoding.",
					 ours)));
}

/* splitdb_remote_backend_pid: the pid of the server process behind conn. */
int
splitdb_remote_backend_pid(const PGconn *conn)
{
	return PQbackendPID(conn);
}

/*
 * splitdb_remote_rollback_open
 *		Roll back the transaction open on conn, if one is (a failed attempt
 *		left it there); nothing otherwise.
 */
void
splitdb_remote_rollback_open(PGconn *conn, const char *service)
{
	PGTransactionStatusType status = PQtransactionStatus(conn);

	if (status == PQTRANS_INTRANS || status == PQTRANS_INERROR)
		splitdb_remote_command(conn, "ROLLBACK", 0, NULL, service);
}

/*
 * splitdb_remote_in_transaction
 *		Whether a transaction block is open on conn (in error or not).
 */
bool
splitdb_remote_in_transaction(const PGconn *conn)
{
	PGTransactionStatusType status = PQtransactionStatus(conn);

	return status == PQTRANS_INTRANS || status == PQTRANS_INERROR;
}

/*
 * splitdb_remote_try_command
 *		Run a statement whose result is not needed, for a caller that has a
 *		way on without it: false when the statement failed, its error
 *		dropped (the connection idle again, an open transaction block
 *		aborted: the caller runs it under a savepoint there).  A connection
 *		that broke is reported as splitdb_remote_exec() reports it.
 */
bool
splitdb_remote_try_command(PGconn *conn, const char *sql, const char *service)
{
	PGresult   *res;

	splitdb_remote_send(conn, sql, 0, NULL, service);
	res = libpqsrv_get_result_last(conn, SPLITDB_WAIT_EVENT_REMOTE);
	if (res != NULL && PQresultStatus(res) == PGRES_FATAL_ERROR &&
		PQstatus(conn) == CONNECTION_OK)
	{
		PQclear(res);
		return false;
	}
	if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK)
		splitdb_remote_report(res, conn, sql, service);
	PQclear(res);
	return true;
}
