/*-------------------------------------------------------------------------
 *
 * dot.h
 *	  The foreign-key graph of a service, drawn as Graphviz DOT.
 *
 * dot.c exports only the SQL-callable splitdb_plan_dot(), which fmgr finds
 * by name through PG_FUNCTION_INFO_V1, so no other file needs anything from
 * it and this header declares nothing.  It exists so that the module has the
 * usual pair of files and a place for declarations if another file ever
 * needs one.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/plan/dot.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_DOT_H
#define SPLITDB_DOT_H

#endif							/* SPLITDB_DOT_H */
