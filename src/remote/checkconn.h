/*-------------------------------------------------------------------------
 *
 * checkconn.h
 *	  Connections of splitdb's own for the checks of referenced keys
 *	  (checkconn.c).
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/remote/checkconn.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_CHECKCONN_H
#define SPLITDB_CHECKCONN_H

#include "foreign/foreign.h"
#include "libpq-fe.h"

/*
 * one statement of a pipeline; bind (NULL: none), when set, is called with
 * the connection right before the statement is sent (each time it is sent:
 * a statement is sent again on a new connection after a lost one), and may
 * set sql, nparams and values for that connection (a request signed for
 * its session: refcheck_lookup.c)
 */
typedef struct SplitdbCheckStmt
{
	const char *sql;			/* $1..$n text parameters */
	int			nparams;
	const char **values;
	PGresult   *result;			/* set by splitdb_checkconn_run() */
	void		(*bind) (PGconn *conn, struct SplitdbCheckStmt *stmt);
	void	   *bind_arg;		/* the bind callback's */
} SplitdbCheckStmt;

/*
 * Set by the reference layer: prove_hook proves a connection as it opens,
 * before it enters pipeline mode (origin.c), close_hook forgets it as it
 * closes.  NULL: nothing is proved.
 */
extern bool (*splitdb_checkconn_prove_hook) (PGconn *conn, Oid serverid);
extern void (*splitdb_checkconn_close_hook) (PGconn *conn);

extern void splitdb_checkconn_run(UserMapping *mapping, SplitdbCheckStmt *stmts,
								  int n, const char *service);
extern void splitdb_checkconn_send_ahead(UserMapping *mapping,
										 SplitdbCheckStmt *stmts, int n,
										 uint64 *ids);
extern PGresult *splitdb_checkconn_take_ahead(uint64 id, const char *service);
extern void splitdb_checkconn_forget_ahead(uint64 id);
extern bool splitdb_checkconn_active(Oid serverid);
/* whether any connection has a remote transaction open */
#define splitdb_checkconn_any_active() splitdb_checkconn_active(InvalidOid)
extern bool splitdb_checkconn_failed(Oid serverid);
extern List *splitdb_checkconn_failed_servers(void);
extern void splitdb_checkconn_end_server(Oid serverid);
extern void splitdb_checkconn_probe(void);
extern void splitdb_checkconn_subxact_abort(void);
extern void splitdb_checkconn_xact_end(bool commit);

#endif							/* SPLITDB_CHECKCONN_H */
