/*-------------------------------------------------------------------------
 *
 * attachcheck.h
 *	  The rows of a partition attached to a table that references another
 *	  database, checked (attachcheck.c).
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/attachcheck.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_ATTACHCHECK_H
#define SPLITDB_ATTACHCHECK_H

#include "commands/event_trigger.h"

extern void splitdb_check_attached_partitions(EventTriggerData *trigdata);
extern List *splitdb_partitions_made(Node *parsetree, bool foreign_only);

#endif							/* SPLITDB_ATTACHCHECK_H */
