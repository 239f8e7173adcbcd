/*-------------------------------------------------------------------------
 *
 * launcher.h
 *	  Resuming interrupted jobs after a server restart.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/launcher.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_LAUNCHER_H
#define SPLITDB_LAUNCHER_H

extern void splitdb_launcher_register(void);

#endif							/* SPLITDB_LAUNCHER_H */
