/*-------------------------------------------------------------------------
 *
 * trigguard.h
 *	  The event triggers that guard cross-service references: what
 *	  dropguard.c shares with trigguard.c.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/trigguard.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_TRIGGUARD_H
#define SPLITDB_TRIGGUARD_H

#include "fmgr.h"

extern bool splitdb_trigguard_passes(FunctionCallInfo fcinfo);

#endif							/* SPLITDB_TRIGGUARD_H */
