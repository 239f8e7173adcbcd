/*-------------------------------------------------------------------------
 *
 * execdepth.h
 *	  How deep in nested executor runs this backend is (execdepth.c).
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/execdepth.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_EXECDEPTH_H
#define SPLITDB_EXECDEPTH_H

#include "nodes/plannodes.h"

extern void splitdb_execdepth_init(void);
extern int	splitdb_execdepth(void);
extern PlannedStmt *splitdb_execdepth_outer_stmt(void);
extern CommandId splitdb_execdepth_outer_cid(void);

#endif							/* SPLITDB_EXECDEPTH_H */
