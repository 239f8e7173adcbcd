/*-------------------------------------------------------------------------
 *
 * pause.h
 *	  The test hooks' wait (pause.c).
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/pause.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_PAUSE_H
#define SPLITDB_PAUSE_H

extern void splitdb_pause_while_locked(int32 key1, int32 key2, const char *name);

#endif							/* SPLITDB_PAUSE_H */
