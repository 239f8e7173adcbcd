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
 * A sequence whose CACHE is n > 1 has n values drawn in one round trip,
 * and the rest kept here for the next calls, as PostgreSQL's own sequence
 * cache keeps them for its session: the values a session did not use are
 * lost when it ends (a gap), and sessions interleave theirs.  With CACHE 1
 * (the default) each call is one round trip, as each nextval() of such a
 * sequence is one change of it.
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
 * - Cached values belong to the connection they were drawn on: reopening
 *   it forgets them.
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
#include "nodes/pg_list.h"
#include "storage/ipc.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "remote/nextval.h"
#include "remote/remote.h"

/* the connection kept for splitdb_remote_nextval(), per backend */
static PGconn *nextval_conn = NULL;
static Oid	nextval_server = InvalidOid;
static Oid	nextval_user = InvalidOid;
static bool nextval_exit_registered = false;

/* values drawn and not used yet, per sequence (TopMemoryContext) */
typedef struct CachedValues
{
	char	   *sequence;		/* as the shim's default names it */
	int64	   *values;
	int			n;
	int			next;
} CachedValues;

static List *nextval_cache = NIL;

/* forget the cached values: the connection they were drawn on is gone */
static void
forget_cache(void)
{
	ListCell   *lc;

	foreach(lc, nextval_cache)
	{
		CachedValues *c = lfirst(lc);

		pfree(c->sequence);
		if (c->values != NULL)
			pfree(c->values);
		pfree(c);
	}
	list_free(nextval_cache);
	nextval_cache = NIL;
}

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
 * nextval_connection
 *		The kept connection to the database of postgres_fdw server
 *		servername as the current user, opened first when there is none for
 *		that server and user, or it broke.
 *
 * service: names the service in messages.  Raises ERROR when the server or
 * the user mapping is missing, the database cannot be reached, or the
 * password rule of postgres_fdw is not kept (2F003).
 */
static PGconn *
nextval_connection(const char *servername, const char *service)
{
	ForeignServer *server = GetForeignServerByName(servername, false);

	if (nextval_conn != NULL &&
		(nextval_server != server->serverid || nextval_user != GetUserId() ||
		 PQstatus(nextval_conn) != CONNECTION_OK))
	{
		splitdb_remote_disconnect(nextval_conn);
		nextval_conn = NULL;
		forget_cache();
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

/*
 * splitdb_nextval_draw
 *		The next value of sequence (a name the sibling resolves, with
 *		search_path pg_catalog) in the database of postgres_fdw server
 *		servername, for the current user: a cached one, or those of one
 *		round trip that draws as many as the sequence's CACHE, the first
 *		returned and the others cached.  service names the service in
 *		messages.  Raises the sibling's error (relayed) when the sequence
 *		cannot be used.
 */
int64
splitdb_nextval_draw(const char *servername, const char *service, const char *sequence)
{
	PGconn	   *conn = nextval_connection(servername, service);
	const char *params[1] = {sequence};
	CachedValues *c = NULL;
	PGresult   *res;
	ListCell   *lc;
	int			n;

	foreach(lc, nextval_cache)
		if (strcmp(((CachedValues *) lfirst(lc))->sequence, sequence) == 0)
			c = lfirst(lc);
	if (c != NULL && c->next < c->n)
		return c->values[c->next++];

	res = splitdb_remote_exec(conn,
							  "SELECT pg_catalog.nextval($1::pg_catalog.regclass)"
							  "  FROM pg_catalog.generate_series(1, (SELECT COALESCE(pg_catalog.max(q.seqcache), 1)"
							  "         FROM pg_catalog.pg_sequence q"
							  "        WHERE q.seqrelid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass))",
							  1, params, service);
	n = splitdb_remote_ntuples(res);
	if (n < 1)
	{
		splitdb_remote_clear(res);
		elog(ERROR, "nextval() returned no value");
	}
	if (c == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		c = palloc0(sizeof(CachedValues));
		c->sequence = pstrdup(sequence);
		nextval_cache = lappend(nextval_cache, c);
		MemoryContextSwitchTo(old);
	}
	if (c->values != NULL)
		pfree(c->values);
	c->values = MemoryContextAlloc(TopMemoryContext, sizeof(int64) * n);
	for (int i = 0; i < n; i++)
		c->values[i] = pg_strtoint64(splitdb_remote_value(res, i, 0));
	splitdb_remote_clear(res);
	c->n = n;
	c->next = 1;
	return c->values[0];
}
