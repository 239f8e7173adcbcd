/*-------------------------------------------------------------------------
 *
 * shimforms.h
 *	  Refusing, with their reason, the statement forms that postgres_fdw
 *	  cannot apply to a shim (shimforms.c).
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/shimforms.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_SHIMFORMS_H
#define SPLITDB_SHIMFORMS_H

extern void splitdb_shimforms_init(void);

#endif							/* SPLITDB_SHIMFORMS_H */
