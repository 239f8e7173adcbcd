/*-------------------------------------------------------------------------
 *
 * origin_pair.c
 *	  Installation of the secret two databases share (origin.c): the source
 *	  and a sibling, two siblings.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/origin_pair.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "metadata/catalog.h"
#include "reference/mapping.h"
#include "reference/origin.h"
#include "remote/remote.h"
#include "splitdb.h"

/* ----------------------------------------------------------------
 * Installation
 * ---------------------------------------------------------------- */

/* decode the hex of a secret into a bytea */
static bytea *
secret_of_hex(const char *hex, const char *location)
{
	size_t		len = strlen(hex);
	bytea	   *secret;

	if (len == 0 || len % 2 != 0 || len / 2 > 1024)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("the database of \"%s\" answered splitdb.origin_key_make() with no secret",
						location),
				 errhint("Both databases must run the same version of splitdb.")));
	secret = palloc(VARHDRSZ + len / 2);
	SET_VARSIZE(secret, VARHDRSZ + len / 2);
	hex_decode(hex, len, VARDATA(secret));
	return secret;
}

/* splitdb.origin_key_make() on conn; the secret's hex */
static char *
remote_key_make(PGconn *conn, const char *conn_location, const char *location,
				const char *server, const char *here)
{
	const char *params[3] = {location, server, here};
	char	   *hex;

	hex = splitdb_remote_scalar(conn,
								"SELECT splitdb.origin_key_make($1, $2::pg_catalog.name, $3)",
								3, params, conn_location);
	return hex != NULL ? hex : pstrdup("");
}

/*
 * splitdb_origin_pair_source
 *		Give the source and the sibling at location (conn, in its install
 *		transaction, splitdb installed there) their shared secret: the
 *		sibling's, made there when it has none, stored here too, as the
 *		secret of source_server (the source's server of that service).  The
 *		caller is connected to SPI, in the source's transaction.
 */
void
splitdb_origin_pair_source(PGconn *conn, const char *location,
						   const char *source_server)
{
	char	   *hex = remote_key_make(conn, location, "source",
									  SPLITDB_SOURCE_SERVER, location);
	Oid			types[4] = {TEXTOID, NAMEOID, TEXTOID, BYTEAOID};
	Datum		args[4];
	Oid			owner = splitdb_origin_key_owner();
	const char *sql = "INSERT INTO splitdb.origin_key AS k (location, server, here, secret)"
		" VALUES ($1, $2, $3, $4) ON CONFLICT (location) DO UPDATE"
		" SET server = excluded.server, here = excluded.here,"
		" secret = excluded.secret";
	Oid			save_userid;
	int			save_sec;
	int			rc;

	if (!OidIsValid(owner))
		elog(ERROR, "splitdb.origin_key is missing");
	splitdb_origin_forget_keyless();
	args[0] = CStringGetTextDatum(location);
	args[1] = DirectFunctionCall1(namein, CStringGetDatum(source_server));
	args[2] = CStringGetTextDatum("source");
	args[3] = PointerGetDatum(secret_of_hex(hex, location));
	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	rc = splitdb_spi_exec(sql, 4, types, args, NULL, false, 0);
	if (rc != SPI_OK_INSERT)
		splitdb_spi_failed(sql, rc);
	SetUserIdAndSecContext(save_userid, save_sec);
}

/* a value in COPY's text format */
static void
append_copy_text(StringInfo buf, const char *s)
{
	for (; *s; s++)
	{
		if (*s == '\\' || *s == '\t' || *s == '\n' || *s == '\r')
		{
			appendStringInfoChar(buf, '\\');
			appendStringInfoChar(buf, *s == '\t' ? 't' : *s == '\n' ? 'n' : *s == '\r' ? 'r' : '\\');
		}
		else
			appendStringInfoChar(buf, *s);
	}
}

/*
 * splitdb_origin_pair_siblings
 *		Give two siblings their shared secret: a's (made there when it has
 *		none), copied into b with COPY ... FROM STDIN, whose data no log
 *		shows.  Both connections are idle, outside a transaction; each side
 *		commits on its own, and calling this again makes them agree.
 */
void
splitdb_origin_pair_siblings(PGconn *conn_a, const char *loc_a,
							 PGconn *conn_b, const char *loc_b)
{
	const char *copy = "COPY splitdb.origin_key (location, server, here, secret) FROM STDIN";
	char	   *hex = remote_key_make(conn_a, loc_a, loc_b,
									  psprintf("%s%s", SPLITDB_SERVER_PREFIX, loc_b),
									  loc_a);
	const char *params[1] = {loc_a};
	StringInfoData row;

	(void) secret_of_hex(hex, loc_a);
	initStringInfo(&row);
	append_copy_text(&row, loc_a);
	appendStringInfoChar(&row, '\t');
	append_copy_text(&row, psprintf("%s%s", SPLITDB_SERVER_PREFIX, loc_a));
	appendStringInfoChar(&row, '\t');
	append_copy_text(&row, loc_b);
	appendStringInfo(&row, "\t\\\\x%s\n", hex);

	splitdb_remote_command(conn_b, "BEGIN", 0, NULL, loc_b);
	splitdb_remote_command(conn_b, "DELETE FROM splitdb.origin_key WHERE location = $1",
						   1, params, loc_b);
	splitdb_remote_copy_begin(conn_b, copy, loc_b);
	while (!splitdb_remote_copy_offer(conn_b, row.data, row.len, loc_b))
		splitdb_remote_wait_writable(&conn_b, 1);
	splitdb_remote_copy_end_send(conn_b, loc_b);
	splitdb_remote_copy_result(conn_b, copy, loc_b);
	splitdb_remote_command(conn_b, "COMMIT", 0, NULL, loc_b);
	memset(row.data, 0, row.len);
	pfree(row.data);
}
