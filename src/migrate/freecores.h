/*-------------------------------------------------------------------------
 *
 * freecores.h
 *	  The free cores when a job's run starts (freecores.c).
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/freecores.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_FREECORES_H
#define SPLITDB_FREECORES_H

extern int	splitdb_free_cores(int64 job_id, const char *service, const char *setting,
							   const char *verb, const char *unit, int per, int max);

#endif							/* SPLITDB_FREECORES_H */
