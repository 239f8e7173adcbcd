/*-------------------------------------------------------------------------
 *
 * nextval.c
 *	  The connection that draws values of the siblings' sequences for the
 *	  shims' defaults (splitdb_remote_nextval(), in migrate/shim.c).
 *
 * A shim's serial or identity column defaults to a value drawn from the
 * sibling's sequence, one call per inserted row, so the connection is
 * kept: one per backend, for the postgres_fdw server and the current user
 * of the last call.  It is opened with that user's user mapping (or the
 * PUBLIC one) under postgres_fdw's password rule, as postgres_fdw opens
 * the connection the shim's own writes go through.
 *
 * Invariants:
 * - At most one connection is kept; it is closed and another opened when a
 *   call names another server, comes from another user, or finds it
 *   broken.  A change of the server's or the mapping's options takes
 *   effect with the next such reopening, or in a new session.
 * - The connection is never closed by a transaction's end: nextval() is not
 *   transactional, and the connection runs nothing else.  It is closed at
 *   the backend's exit (a Terminate message), so that the sibling does not
 *   log "unexpected EOF on client connection" for every application
 *   session that inserted through a shim.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/remote/nextval.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "foreign/foreign.h"
#include "libpq-fe.h"
#include "miscadmin.h"
#include "storage/ipc.h"

#include "remote/nextval.h"
#include "remote/remote.h"

/* the connection kept for splitdb_remote_nextval(), per backend */
static PGconn *nextval_conn = NULL;
static Oid	nextval_server = InvalidOid;
static Oid	nextval_user = InvalidOid;
static bool nextval_exit_registered = false;

/*
 * before_shmem_exit: close the kept connection.  It is idle (each call
 * reads its answer), so closing it waits for nothing and raises nothing.
 */
static void
nextval_exit(int code, Datum arg)
{
	splitdb_remote_disconnect(nextval_conn);
	nextval_conn = NULL;
}

/*
 * splitdb_nextval_connection
 *		The kept connection to the database of postgres_fdw server
 *		servername as the current user, opened first when there is none for
 *		that server and user, or it broke.
 *
 * service: names the service in messages.  Raises ERROR when the server or
 * the user mapping is missing, the database cannot be reached, or the
 * password rule of postgres_fdw is not kept (2F003).  The connection
 * belongs to this file: the caller runs statements on it and never closes
 * it.
 */
PGconn *
splitdb_nextval_connection(const char *servername, const char *service)
{
	ForeignServer *server = GetForeignServerByName(servername, false);

	if (nextval_conn != NULL &&
		(nextval_server != server->serverid || nextval_user != GetUserId() ||
		 PQstatus(nextval_conn) != CONNECTION_OK))
	{
		splitdb_remote_disconnect(nextval_conn);
		nextval_conn = NULL;
	}
	if (nextval_conn == NULL)
	{
		UserMapping *mapping;

		if (!nextval_exit_registered)
		{
			before_shmem_exit(nextval_exit, (Datum) 0);
			nextval_exit_registered = true;
		}
		mapping = splitdb_remote_user_mapping(servername, &server);

		nextval_conn = splitdb_remote_connect_mapping(server, mapping, service,
													  true);
		nextval_server = server->serverid;
		nextval_user = GetUserId();
	}
	return nextval_conn;
}
