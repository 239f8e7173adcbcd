/*-------------------------------------------------------------------------
 *
 * catchup.h
 *	  Online mode's replay rounds, catching up and cutover attempts
 *	  (catchup.c).
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/catchup.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_CATCHUP_H
#define SPLITDB_CATCHUP_H

#include "migrate/worker_int.h"

extern int64 splitdb_catchup_round(SplitdbJob *job, const char *why);
extern void splitdb_catchup_verify_round(SplitdbJob *job);
extern void splitdb_catchup_cutover(SplitdbJob *job);

#endif							/* SPLITDB_CATCHUP_H */
