/*-------------------------------------------------------------------------
 *
 * prepared.h
 *	  Prepared statements on borrowed connections (prepared.c).
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/remote/prepared.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_PREPARED_H
#define SPLITDB_PREPARED_H

#include "libpq-fe.h"

extern PGresult *splitdb_prepared_exec(PGconn *conn, const char *sql,
									   int nparams, const char *const *values,
									   const char *service);
extern const char *splitdb_prepared_ensure(PGconn *conn, const char *sql,
										   int nparams, const char *service);
extern const char *splitdb_prepared_name(PGconn *conn, const char *sql,
										 bool *is_new);
extern void splitdb_prepared_drop(PGconn *conn);
extern void splitdb_prepared_forget_name(PGconn *conn, const char *name);
extern void splitdb_prepared_forget(void);

#endif							/* SPLITDB_PREPARED_H */
