/*-------------------------------------------------------------------------
 *
 * shimguard.h
 *	  Refusing the writes a shim cannot apply safely (shimguard.c).
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/shimguard.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_SHIMGUARD_H
#define SPLITDB_SHIMGUARD_H

#include "nodes/plannodes.h"

extern void splitdb_shimguard_check(PlannedStmt *stmt);

#endif							/* SPLITDB_SHIMGUARD_H */
