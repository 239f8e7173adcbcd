/*-------------------------------------------------------------------------
 *
 * verify.h
 *	  Row counts and order-independent checksums on both sides of a split.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/verify.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_VERIFY_H
#define SPLITDB_VERIFY_H

#endif							/* SPLITDB_VERIFY_H */
