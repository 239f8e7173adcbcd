/*-------------------------------------------------------------------------
 *
 * ownerrights.h
 *	  splitdb.owner_rights: functions that no superuser owns run with their
 *	  owner's rights when a superuser calls them (ownerrights.c).
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/metadata/ownerrights.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_OWNERRIGHTS_H
#define SPLITDB_OWNERRIGHTS_H

extern bool splitdb_owner_rights;

/* from _PG_init: the setting and the function manager hooks */
extern void splitdb_owner_rights_init(void);

#endif							/* SPLITDB_OWNERRIGHTS_H */
