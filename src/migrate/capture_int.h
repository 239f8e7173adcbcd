/*-------------------------------------------------------------------------
 *
 * capture_int.h
 *	  What the capture trigger (capture.c) asks of its direct writer
 *	  (capturelog.c) and of the executor hooks that see a MERGE
 *	  (capturemerge.c).
 *
 * Private to src/migrate/.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/capture_int.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_CAPTURE_INT_H
#define SPLITDB_CAPTURE_INT_H

#include "commands/trigger.h"
#include "utils/tuplestore.h"

extern void splitdb_capturelog_refuse(TriggerData *td, const char *detail) pg_attribute_noreturn();
extern Tuplestorestate *splitdb_capturelog_source(TriggerData *td);
extern bool splitdb_capturelog_write(TriggerData *td);
extern bool splitdb_capturemerge_running(Oid relid);

#endif							/* SPLITDB_CAPTURE_INT_H */
