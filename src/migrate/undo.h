/*-------------------------------------------------------------------------
 *
 * undo.h
 *	  Dropping what the artifact registry lists (undo.c).
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/undo.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_UNDO_H
#define SPLITDB_UNDO_H

#include "metadata/artifact.h"
#include "remote/remote.h"

extern bool splitdb_undo_keeps(PGconn *conn, const SplitdbArtifact *a,
							  const char *service);
extern int	splitdb_undo_sibling(PGconn *conn, const char *service, List *artifacts);
extern void splitdb_undo_mark(List *artifacts, const char *service);
extern int	splitdb_undo_source(List *artifacts);

#endif							/* SPLITDB_UNDO_H */
