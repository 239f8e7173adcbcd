/*-------------------------------------------------------------------------
 *
 * fdwwatch.h
 *	  Noticing the writes of a transaction through foreign tables
 *	  (fdwwatch.c).
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/fdwwatch.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_FDWWATCH_H
#define SPLITDB_FDWWATCH_H

extern void splitdb_fdwwatch_init(void);
extern bool splitdb_fdwwatch_complete(void);

#endif							/* SPLITDB_FDWWATCH_H */
