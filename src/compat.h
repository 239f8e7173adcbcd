/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  The one place where splitdb looks at the PostgreSQL version.
 *
 * splitdb targets PostgreSQL 15.  It uses APIs that first appeared there
 * (InitMaterializedSRF, pg_strtoint64, MarkGUCPrefixReserved, the
 * interruptible libpqsrv_* helpers of 15.20) and the catalog column
 * pg_constraint.confdelsetcols, so 15 is the floor.  Every difference with
 * later versions that the code meets is hidden behind a macro here, so no
 * other file carries an #if PG_VERSION_NUM.
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

#if PG_VERSION_NUM < 150000
#error "splitdb requires PostgreSQL 15 or later"
#endif

/*
 * Custom wait events exist from PostgreSQL 17; before that every wait is
 * reported as the generic extension event.
 */
#define SPLITDB_WAIT_EVENT_REMOTE	PG_WAIT_EXTENSION

/*
 * The role whose rights a range table entry of a plan is checked with
 * (InvalidOid: the current user's): in the entry up to 15, in its
 * RTEPermissionInfo from 16.
 */
#if PG_VERSION_NUM >= 160000
#define splitdb_compat_check_as_user(stmt, rte) \
	((rte)->perminfoindex == 0 ? InvalidOid : \
	 getRTEPermissionInfo((stmt)->permInfos, (rte))->checkAsUser)
#else
#define splitdb_compat_check_as_user(stmt, rte) ((rte)->checkAsUser)
#endif

#endif							/* SPLITDB_COMPAT_H */
