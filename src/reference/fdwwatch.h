/*-------------------------------------------------------------------------
 *
 * fdwwatch.h
 *	  Noticing the writes of a transaction through foreign tables
 *	  (fdwwatch.c).
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/fdwwatch.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_FDWWATCH_H
#define SPLITDB_FDWWATCH_H

#include "nodes/parsenodes.h"

/* what fdwwatch.c tells the callbacks registered with it */
typedef enum SplitdbFdwWatchEvent
{
	SPLITDB_FDWWATCH_WRITE,		/* a statement is about to write to, or lock
								 * rows of, server serverid through a foreign
								 * table */
	SPLITDB_FDWWATCH_WRITE_BEGUN,	/* a statement writes through foreign
									 * table relid of server serverid, with
									 * userid's user mapping: for the executor,
									 * its plan is started (postgres_fdw's
									 * connection taken); for COPY FROM and
									 * TRUNCATE, before they run */
	SPLITDB_FDWWATCH_TABLE_WRITE,	/* a statement writes table relid (not a
									 * foreign table: the relation its plan or
									 * COPY FROM names) as the current role,
									 * userid, as which its triggers run */
	SPLITDB_FDWWATCH_CONSTRAINTS_SET,	/* PostgreSQL ran SET CONSTRAINTS stmt */
	SPLITDB_FDWWATCH_TRUNCATE	/* TRUNCATE names relid (as the command
								 * will find it), before it runs */
} SplitdbFdwWatchEvent;

/*
 * serverid: for SPLITDB_FDWWATCH_WRITE and _WRITE_BEGUN, else InvalidOid
 * relid:    for SPLITDB_FDWWATCH_WRITE_BEGUN, _TABLE_WRITE and _TRUNCATE, else
 *           InvalidOid
 * userid:   for SPLITDB_FDWWATCH_WRITE_BEGUN and _TABLE_WRITE, else InvalidOid
 * stmt:     for SPLITDB_FDWWATCH_CONSTRAINTS_SET, else NULL
 * arg:      as given to splitdb_fdwwatch_register()
 */
typedef void (*SplitdbFdwWatchCallback) (SplitdbFdwWatchEvent event,
										 Oid serverid,
										 Oid relid,
										 Oid userid,
										 ConstraintsSetStmt *stmt,
										 void *arg);

extern void splitdb_fdwwatch_init(void);
extern void splitdb_fdwwatch_register(SplitdbFdwWatchCallback callback,
									  void *arg);
extern bool splitdb_fdwwatch_complete(void);

#endif							/* SPLITDB_FDWWATCH_H */
