/*-------------------------------------------------------------------------
 *
 * shape.h
 *	  Whether the sibling's tables of a job still have the columns of
 *	  their archived originals, for a rollback.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/shape.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_SHAPE_H
#define SPLITDB_SHAPE_H

#include "remote/remote.h"

extern char *splitdb_shape_problem(int64 job_id, PGconn *conn, const char *service);
extern char *splitdb_dependents_problem(int64 job_id, PGconn *conn, const char *service);

#endif							/* SPLITDB_SHAPE_H */
