/*-------------------------------------------------------------------------
 *
 * constraintsfwd.h
 *	  SET CONSTRAINTS ALL for the remote transactions that write through
 *	  shims (constraintsfwd.c).
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/constraintsfwd.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_CONSTRAINTSFWD_H
#define SPLITDB_CONSTRAINTSFWD_H

extern void splitdb_constraintsfwd_init(void);

/* called with each user mapping this transaction wrote through a shim with */
typedef void (*SplitdbShimMappingFn) (Oid serverid, Oid userid);
extern void splitdb_constraintsfwd_foreach_shim(SplitdbShimMappingFn fn);

#endif							/* SPLITDB_CONSTRAINTSFWD_H */
