/*-------------------------------------------------------------------------
 *
 * copy.h
 *	  Streaming a table's rows into the sibling, in key-ordered batches.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/copy.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_COPY_H
#define SPLITDB_COPY_H

#include "fmgr.h"
#include "remote/remote.h"

/* what the copy of one table needs, read once per run */
typedef struct SplitdbCopySource
{
	Oid			relid;
	char	   *name;			/* schema-qualified, quoted; the same in the sibling */
	char	   *columns;		/* quoted list of the copied columns */
	int			ncolumns;
	Oid		   *types;			/* type of each copied column */
	FmgrInfo   *out;			/* send (binary) or output (text) function */
	Oid		   *base_types;		/* each column's type, domains resolved */
	int		   *send_kinds;		/* binary: how each column is written (copy.c) */
	bool		binary;			/* binary COPY; text when a type cannot cross */
	int			nkeys;			/* 0: no key, one pass */
	int		   *keypos;			/* position of each key column among the columns */
	char	   *key_list;		/* quoted key columns, comma-separated */
	char	  **key_names;		/* each key column, quoted */
	char	  **key_types;		/* format_type() of each key column */
} SplitdbCopySource;

/*
 * The keys a reader copies (range.c): those k with lower <= k < upper,
 * compared as rows over the first nlower (nupper) key columns; a NULL
 * bound is unbounded.  A table read whole has none (NULL).
 */
typedef struct SplitdbKeyBounds
{
	char	  **lower;			/* text forms of the leading key columns */
	int			nlower;
	char	  **upper;
	int			nupper;
} SplitdbKeyBounds;

extern bool splitdb_copy_crosses_in_binary(Oid typid);
extern SplitdbCopySource *splitdb_copy_source(Oid relid);
extern char **splitdb_copy_key(MemoryContext cxt, char **key, int n);
extern int64 splitdb_copy_batch(PGconn *const *conns, int nconns,
								SplitdbCopySource *src,
								const SplitdbKeyBounds *bounds,
								char ***last_key, int64 batch_rows,
								int64 *bytes, const char *service);
extern int64 splitdb_copy_rows(PGconn *conn, SplitdbCopySource *src,
							   const char *query, bool (*go_on) (void *arg),
							   void *arg, const char *service);
extern void splitdb_copy_trim(PGconn *conn, SplitdbCopySource *src,
							  const SplitdbKeyBounds *bounds,
							  char **last_key, const char *service);
extern void splitdb_copy_truncate(PGconn *conn, const char *names,
								  const char *service);
extern void splitdb_copy_empty(PGconn *conn, const char *name,
							   const char *service);
extern void splitdb_copy_replica(PGconn *conn, bool copying,
								 const char *service);

#endif							/* SPLITDB_COPY_H */
