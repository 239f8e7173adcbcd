/*-------------------------------------------------------------------------
 *
 * ddlguard.h
 *	  Refusing DDL on the tables of a migration under way and on archived
 *	  originals.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/ddlguard.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_DDLGUARD_H
#define SPLITDB_DDLGUARD_H

extern void splitdb_ddl_guard_off_for_xact(void);
extern void splitdb_archive_guard_install(int64 job_id, const char *service);

#endif							/* SPLITDB_DDLGUARD_H */
