/*-------------------------------------------------------------------------
 *
 * origin.h
 *	  Proving which database a session's writes come from (origin.c).
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/origin.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_ORIGIN_H
#define SPLITDB_ORIGIN_H

#include "libpq-fe.h"

/* the receiving end: the location this session proved, or NULL */
extern const char *splitdb_origin_proven(void);
extern void splitdb_origin_check_action(int64 counter, const char *mac_hex,
										const char *request);
extern void splitdb_origin_check_lookup(int64 counter, const char *mac_hex,
										const char *request);

/* the issuing end: prove a postgres_fdw connection before writing through it */
extern void splitdb_origin_prove_connection(PGconn *conn, Oid serverid);
extern bool splitdb_origin_prove_own(PGconn *conn, Oid serverid);
extern void splitdb_origin_forget_connection(PGconn *conn);
extern void splitdb_origin_note_write(Oid relid, Oid userid);
extern void splitdb_origin_note_read(Oid relid, Oid userid);
extern bool splitdb_origin_is_shim(Oid relid);
extern int64 splitdb_origin_next_action(PGconn *conn);
extern char *splitdb_origin_sign(PGconn *conn, const char *request);

/* installation: the secret of a pair of databases (origin_pair.c) */
extern Oid	splitdb_origin_key_owner(void);
extern void splitdb_origin_forget_keyless(void);
extern void splitdb_origin_pair_source(PGconn *conn, const char *location,
									   const char *source_server);
extern void splitdb_origin_pair_siblings(PGconn *conn_a, const char *loc_a,
										 PGconn *conn_b, const char *loc_b);

#endif							/* SPLITDB_ORIGIN_H */
