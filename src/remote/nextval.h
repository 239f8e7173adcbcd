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

extern int64 splitdb_nextval_draw(const char *servername, const char *service,
								  const char *sequence);

#endif							/* SPLITDB_NEXTVAL_H */
