/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  The one place where splitdb looks at the PostgreSQL version.
 *
 * splitdb targets PostgreSQL 15 and keeps 14 to 17 within reach.  Every
 * difference between those versions that the code meets is hidden behind a
 * macro here, so no other file carries an #if PG_VERSION_NUM.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/compat.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_COMPAT_H
#define SPLITDB_COMPAT_H

#if PG_VERSION_NUM < 140000
#error "splitdb requires PostgreSQL 14 or later"
#endif

/*
 * MarkGUCPrefixReserved() appeared in PostgreSQL 15; 14 had the older
 * EmitWarningsOnPlaceholders(), which does the same for our purpose.
 */
#if PG_VERSION_NUM < 150000
#define MarkGUCPrefixReserved(prefix) EmitWarningsOnPlaceholders(prefix)
#endif

/*
 * Custom wait events exist from PostgreSQL 17; before that every wait is
 * reported as the generic extension event.
 */
#define SPLITDB_WAIT_EVENT_REMOTE	PG_WAIT_EXTENSION

#endif							/* SPLITDB_COMPAT_H */
