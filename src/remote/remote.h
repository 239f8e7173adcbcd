/*-------------------------------------------------------------------------
 *
 * remote.h
 *	  Connections from splitdb to other databases over libpq.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/remote/remote.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_REMOTE_H
#define SPLITDB_REMOTE_H

#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "libpq-fe.h"
#include "nodes/pg_list.h"

/*
 * Which database a connection reaches: its name, and the instant its server
 * started in Unix microseconds.  Two connections that give the same pair
 * reach the same database.
 */
#define SPLITDB_DATABASE_IDENTITY_SQL \
	"SELECT pg_catalog.current_database()," \
	" (pg_catalog.extract('epoch', pg_catalog.pg_postmaster_start_time())" \
	"  * 1000000)::pg_catalog.int8::pg_catalog.text"

extern PGconn *splitdb_remote_connect_server(const char *servername,
											 const char *service);
extern UserMapping *splitdb_remote_user_mapping(const char *servername,
											   ForeignServer **server);
extern PGconn *splitdb_remote_connect_mapping(ForeignServer *server,
											  UserMapping *mapping,
											  const char *service,
											  bool fdw_rules);
extern void splitdb_remote_report(PGresult *res, PGconn *conn, const char *sql,
								  const char *service) pg_attribute_noreturn();
extern PGconn *splitdb_remote_connect_local(const char *dbname);
extern PGconn *splitdb_remote_fdw_connection(UserMapping *mapping);
extern PGresult *splitdb_remote_exec(PGconn *conn, const char *sql,
									 int nparams, const char *const *values,
									 const char *service);
extern void splitdb_remote_send(PGconn *conn, const char *sql, int nparams,
								const char *const *values, const char *service);
extern void splitdb_remote_prepare(PGconn *conn, const char *name,
								   const char *sql, int nparams,
								   const char *service);
extern PGresult *splitdb_remote_exec_prepared(PGconn *conn, const char *name,
											  const char *sql, int nparams,
											  const char *const *values,
											  const char *service);
extern PGresult *splitdb_remote_exec_between(PGconn *conn, const char *before,
											 const char *after, const char *name,
											 const char *sql, int nparams,
											 const char *const *values,
											 const char *service);
extern PGresult *splitdb_remote_finish(PGconn *conn, const char *sql,
										const char *service);
extern PGresult *splitdb_remote_finish_unless(PGconn *conn, const char *sql,
											   const char *service, int code);
extern void splitdb_remote_copy_begin(PGconn *conn, const char *sql,
									  const char *service);
extern bool splitdb_remote_copy_offer(PGconn *conn, const char *data, int len,
									  const char *service);
extern void splitdb_remote_wait_writable(PGconn *const *conns, int nconns);
extern int	splitdb_remote_wait_ready(PGconn *const *conns, const bool *busy,
									  int nconns, const char *service);
extern void splitdb_remote_copy_end_send(PGconn *conn, const char *service);
extern void splitdb_remote_copy_result(PGconn *conn, const char *sql,
									   const char *service);
extern void splitdb_remote_copy_out_begin(PGconn *conn, const char *sql,
										  const char *service);
extern int	splitdb_remote_copy_out_row(PGconn *conn, StringInfo buf,
										const char *sql, const char *service);
extern void splitdb_remote_disconnect(PGconn *conn);
/* how long an interrupted pipeline is read for before it is given up */
#define SPLITDB_DRAIN_TIMEOUT_MS 5000

extern bool splitdb_remote_drain_syncs(PGconn *conn, int syncs, int timeout_ms);
extern bool splitdb_remote_cancel_drain(PGconn *conn, int syncs, int timeout_ms);
extern void splitdb_remote_close_drained(PGconn *conn, int syncs, int timeout_ms);
extern void splitdb_remote_rollback_open(PGconn *conn, const char *service);
extern bool splitdb_remote_in_transaction(const PGconn *conn);
extern bool splitdb_remote_try_command(PGconn *conn, const char *sql,
									   const char *service);
extern List *splitdb_remote_result_rows(PGresult *res);

/*
 * Reading results.  No file outside src/remote/ calls libpq (test/check-layers
 * enforces it); these are what the rest of splitdb reads a PGresult with.
 */
extern void splitdb_remote_command(PGconn *conn, const char *sql,
								   int nparams, const char *const *values,
								   const char *service);
extern char *splitdb_remote_scalar(PGconn *conn, const char *sql,
								   int nparams, const char *const *values,
								   const char *service);
extern int	splitdb_remote_ntuples(const PGresult *res);
extern char *splitdb_remote_value(const PGresult *res, int row, int col);
extern void splitdb_remote_clear(PGresult *res);
extern int	splitdb_remote_backend_pid(const PGconn *conn);
extern const char *splitdb_remote_parameter(const PGconn *conn, const char *name);
extern void splitdb_remote_check_encoding(PGconn *conn, const char *service);
extern void splitdb_remote_check_library(PGconn *conn, const char *service);
extern char *splitdb_remote_local_host(void);

/* servertrust.c */
extern void splitdb_remote_check_server_owner(ForeignServer *server);

#endif							/* SPLITDB_REMOTE_H */
