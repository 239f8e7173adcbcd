/*-------------------------------------------------------------------------
 *
 * deparse.c
 *	  SQL text that splitdb sends, built with every identifier quoted.
 *
 * Utility statements (CREATE SERVER, CREATE DATABASE, ...) take no
 * parameters, so their names and option values must be spliced into the
 * text.  This file is the only place that does so: identifiers go through
 * quote_identifier() and values through quote_literal_cstr(), never through
 * a bare %s.  Every function returns a palloc'd string in the current memory
 * context.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/remote/deparse.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "utils/builtins.h"

#include "compat.h"
#include "remote/deparse.h"

/*
 * splitdb_deparse_create_server
 *		CREATE SERVER for a postgres_fdw server that reaches a database.
 *		Its batch_size lets postgres_fdw send an INSERT through a shim 100
 *		rows to a statement, not one (it sends one row at a time all the
 *		same for a shim with row triggers for INSERT, or with RETURNING).
 */
char *
splitdb_deparse_create_server(const char *server, const char *host, int port,
							  const char *dbname)
{
	StringInfoData buf;
	char		portstr[16];

	snprintf(portstr, sizeof(portstr), "%d", port);

	initStringInfo(&buf);
	appendStringInfo(&buf,
					 "CREATE SERVER %s FOREIGN DATA WRAPPER postgres_fdw"
					 " OPTIONS (host %s, port %s, dbname %s, batch_size '100')",
					 quote_identifier(server),
					 quote_literal_cstr(host),
					 quote_literal_cstr(portstr),
					 quote_literal_cstr(dbname));
	return buf.data;
}

/*
 * splitdb_deparse_create_user_mapping
 *		CREATE USER MAPPING that connects as the role of the same name.
 */
char *
splitdb_deparse_create_user_mapping(const char *server, const char *role)
{
	return psprintf("CREATE USER MAPPING FOR %s SERVER %s OPTIONS (user %s)",
					quote_identifier(role),
					quote_identifier(server),
					quote_literal_cstr(role));
}

/*
 * splitdb_deparse_drop_user_mapping
 *		DROP USER MAPPING of a role, or of PUBLIC when role is NULL.
 */
char *
splitdb_deparse_drop_user_mapping(const char *server, const char *role)
{
	return psprintf("DROP USER MAPPING FOR %s SERVER %s",
					role ? quote_identifier(role) : "PUBLIC",
					quote_identifier(server));
}

/*
 * splitdb_deparse_drop_server
 *		DROP SERVER; it fails if anything still depends on the server.
 */
char *
splitdb_deparse_drop_server(const char *server)
{
	return psprintf("DROP SERVER %s", quote_identifier(server));
}

/*
 * splitdb_deparse_create_database
 *		CREATE DATABASE with the server's defaults (a copy of template1), or,
 *		with locale, a copy of template0 in that encoding and locale.
 */
char *
splitdb_deparse_create_database(const char *dbname,
								const SplitdbDatabaseLocale *locale)
{
	if (locale == NULL)
		return psprintf("CREATE DATABASE %s", quote_identifier(dbname));
	return psprintf("CREATE DATABASE %s TEMPLATE template0 ENCODING %s LC_COLLATE %s LC_CTYPE %s%s%s",
					quote_identifier(dbname), quote_literal_cstr(locale->encoding),
					quote_literal_cstr(locale->collate), quote_literal_cstr(locale->ctype),
					locale->icu_locale ? " LOCALE_PROVIDER icu ICU_LOCALE " : " LOCALE_PROVIDER libc",
					locale->icu_locale ? quote_literal_cstr(locale->icu_locale) : "");
}

/*
 * splitdb_deparse_drop_database
 *		DROP DATABASE, used only to undo a CREATE DATABASE of the same call.
 */
char *
splitdb_deparse_drop_database(const char *dbname)
{
	return psprintf("DROP DATABASE IF EXISTS %s", quote_identifier(dbname));
}
