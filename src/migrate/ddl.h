/*-------------------------------------------------------------------------
 *
 * ddl.h
 *	  DDL for a service's sibling database, read from the source catalogs
 *	  (ddl.c) and run there (ddlapply.c).
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/ddl.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_DDL_H
#define SPLITDB_DDL_H

#include "remote/remote.h"

/* one statement to run in the sibling */
typedef struct SplitdbDdl
{
	char	   *kind;			/* table, index, grant, ...: for messages */
	char	   *name;			/* the object, schema-qualified */
	char	   *schema;			/* schema the object lives in, or NULL */
	char	   *guard;			/* remote check that says the step is done */
	char	   *arg1;			/* first parameter of the guard; of a "sequence
								 * value" (no guard), of the statement: the
								 * sequence */
	char	   *arg2;			/* second parameter of the guard, or NULL; of a
								 * "sequence value", of the statement: the
								 * value, never pasted into its text */
	char	   *sql;			/* the statement */
} SplitdbDdl;

/* the two moments DDL runs: before the data and after it */
typedef enum SplitdbDdlStage
{
	SPLITDB_DDL_BEFORE_DATA,	/* types, sequences, tables with keys */
	SPLITDB_DDL_AFTER_DATA,		/* indexes, constraints, triggers, policies */
	SPLITDB_DDL_CUTOVER			/* the tables' owners and privileges */
} SplitdbDdlStage;

extern List *splitdb_ddl_build(SplitdbDdlStage stage, const char *service,
							   List *relids, const char *roles);
extern bool splitdb_ddl_present(PGconn *conn, const SplitdbDdl *d,
								const char *service);
extern void splitdb_ddl_apply(PGconn *conn, List *items, const char *service);
extern bool splitdb_ddl_side_by_side(const SplitdbDdl *d);
extern void splitdb_ddl_apply_side_by_side(PGconn *const *conns, int nconns,
										   List *items, const char *service,
										   void (*started) (const char *running, void *arg),
										   void *arg, List **deferred);

#endif							/* SPLITDB_DDL_H */
