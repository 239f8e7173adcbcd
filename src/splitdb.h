/*-------------------------------------------------------------------------
 *
 * splitdb.h
 *	  Names and limits shared by every splitdb module.
 *
 * Only constants and the GUC variables live here; each module declares its
 * own functions in a header of its own.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/splitdb.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_H
#define SPLITDB_H

/* schema of splitdb's own catalog tables */
#define SPLITDB_SCHEMA				"splitdb"

/* prefix of the foreign servers splitdb creates for services on this cluster */
#define SPLITDB_SERVER_PREFIX		"splitdb_"

/* schema that keeps the moved originals until finalize */
#define SPLITDB_ARCHIVE_SCHEMA		"splitdb_archive"

/*
 * the setting that makes functions no superuser owns run with their owner's
 * rights when a superuser calls them (metadata/ownerrights.c): on in
 * splitdb's workers and in its superuser sessions in siblings
 */
#define SPLITDB_OWNER_RIGHTS_GUC	"splitdb.owner_rights"

/*
 * SQL condition: relation rel (an OID expression) is not in the archive,
 * where a materialized view keeps reading originals that move later
 */
#define SPLITDB_NOT_ARCHIVED(rel) \
" NOT EXISTS (SELECT FROM pg_catalog.pg_class ac JOIN pg_catalog.pg_namespace an" \
"             ON an.oid = ac.relnamespace WHERE ac.oid = " rel \
"              AND an.nspname = '" SPLITDB_ARCHIVE_SCHEMA "')"

/* application_name of every connection splitdb opens */
#define SPLITDB_APPLICATION_NAME	"splitdb"

/* GUCs (splitdb.c) */
extern int	splitdb_connect_timeout;
extern int	splitdb_batch_rows;
extern int	splitdb_copy_streams;
extern int	splitdb_copy_readers;
extern int	splitdb_fence_timeout;
extern int	splitdb_maintenance_work_mem;
extern int	splitdb_cutover_lock_timeout;
extern int	splitdb_cutover_max_freeze;
extern int	splitdb_cutover_attempts;
extern char *splitdb_migrate_pause_at;

/* the most connections a job copies over (splitdb.copy_streams) */
#define SPLITDB_MAX_COPY_STREAMS	16

/*
 * splitdb.copy_streams = 0: as many streams as free cores when a job's run
 * starts (the cores idle over a short sample, freecores.c), at least 1 and
 * at most SPLITDB_MAX_AUTO_COPY_STREAMS
 */
#define SPLITDB_COPY_STREAMS_AUTO	0
#define SPLITDB_MAX_AUTO_COPY_STREAMS	8

/* the most processes that read one table (splitdb.copy_readers) */
#define SPLITDB_MAX_COPY_READERS	16

/*
 * splitdb.copy_readers = 0: a reader per SPLITDB_STREAMS_PER_READER free
 * cores (one reader keeps about that many streams busy), at least 1 and at
 * most SPLITDB_MAX_AUTO_COPY_READERS
 */
#define SPLITDB_COPY_READERS_AUTO	0
#define SPLITDB_STREAMS_PER_READER	4
#define SPLITDB_MAX_AUTO_COPY_READERS	4
extern char *splitdb_origin;
extern bool splitdb_capture_direct;
extern bool splitdb_check_connection;
/* keys wait in this session's relay queue (refcheck_relay.c); reported to the client */
extern bool splitdb_relay_waiting;
/* deferred triggers may wait in this session (refcheck_relay.c); reported to the client */
extern bool splitdb_deferred_waiting;
extern char *splitdb_rollback_pause_at;

#endif							/* SPLITDB_H */
