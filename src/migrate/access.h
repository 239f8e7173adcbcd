/*-------------------------------------------------------------------------
 *
 * access.h
 *	  Who may reach the sibling's copies of a job's tables: nobody but the
 *	  job's connection until the cutover (access.c).
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/access.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_ACCESS_H
#define SPLITDB_ACCESS_H

#include "remote/remote.h"

extern char *splitdb_access_sibling_roles(PGconn *conn, const char *service);
extern void splitdb_access_give(PGconn *conn, List *items, const char *service);
struct SplitdbJob;
extern void splitdb_access_withhold_created(struct SplitdbJob *job);
extern void splitdb_access_take_back(struct SplitdbJob *job);
extern void splitdb_access_check_withheld(const char *service);

#endif							/* SPLITDB_ACCESS_H */
