/*-------------------------------------------------------------------------
 *
 * nextval.h
 *	  The connection that draws values of the siblings' sequences for the
 *	  shims' defaults (nextval.c).
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/remote/nextval.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_NEXTVAL_H
#define SPLITDB_NEXTVAL_H

#include "libpq-fe.h"

extern PGconn *splitdb_nextval_connection(const char *servername,
										  const char *service);

#endif							/* SPLITDB_NEXTVAL_H */
