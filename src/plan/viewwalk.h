/*-------------------------------------------------------------------------
 *
 * viewwalk.h
 *	  What a view over a service's tables asks that a shim cannot answer
 *	  (viewwalk.c).
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/plan/viewwalk.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_VIEWWALK_H
#define SPLITDB_VIEWWALK_H

#include "lib/stringinfo.h"
#include "nodes/pg_list.h"

extern void splitdb_view_unservable(Oid view, List *owned, StringInfo reasons);

#endif							/* SPLITDB_VIEWWALK_H */
