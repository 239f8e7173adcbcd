/*-------------------------------------------------------------------------
 *
 * refcheck.h
 *	  Cross-service reference triggers: foreign-key semantics across
 *	  databases.  What the rest of splitdb uses of the engine; its files
 *	  share refcheck_int.h.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/refcheck.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_REFCHECK_H
#define SPLITDB_REFCHECK_H

/*
 * SQL fragments shared with splitdb_orphans: keys travel as one text[]
 * parameter per key column and are compared with the target's columns after
 * a cast to the target column's type.
 */
extern char *splitdb_refcheck_keys_from(int nkeys, bool with_new);
extern char *splitdb_refcheck_key_match(const char *alias, char **cols,
										char **types, int nkeys);

/*
 * From _PG_init, after splitdb_fdwwatch_init(): hear of writes through
 * foreign tables and SET CONSTRAINTS, and the callback that holds locks past
 * postgres_fdw's commit
 */
extern void splitdb_refcheck_init(void);

#endif							/* SPLITDB_REFCHECK_H */
