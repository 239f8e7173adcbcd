/*-------------------------------------------------------------------------
 *
 * catalog.h
 *	  Reading and writing splitdb's own catalog tables.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/metadata/catalog.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_CATALOG_H
#define SPLITDB_CATALOG_H

#include "executor/spi.h"
#include "utils/array.h"

#include "metadata/catalog_sql.h"

/* one row of splitdb.service */
typedef struct SplitdbService
{
	char	   *service;		/* service name */
	char	   *dbname;			/* sibling database */
	char	   *server;			/* postgres_fdw server reaching it */
	bool		server_created; /* splitdb made the server */
	bool		database_created;	/* splitdb made the database */
	char	   *mapping_role;	/* role of the user mapping splitdb made, or
								 * NULL */
} SplitdbService;

/* how splitdb_catalog_get_service locks the row it returns */
typedef enum SplitdbRowLock
{
	SPLITDB_LOCK_NONE,
	SPLITDB_LOCK_SHARE,
	SPLITDB_LOCK_UPDATE
} SplitdbRowLock;

extern SplitdbService *splitdb_catalog_get_service(const char *service,
												   SplitdbRowLock lock,
												   bool missing_ok);
extern void splitdb_catalog_insert_service(const SplitdbService *svc);
extern void splitdb_catalog_delete_service(const char *service);
extern SplitdbService *splitdb_catalog_service_of_server(const char *server);
extern int64 splitdb_catalog_count_owned(const char *service);
extern char *splitdb_catalog_owner_of(Oid relid);
extern Oid	splitdb_catalog_relowner(Oid relid);
extern Oid	splitdb_catalog_partition_root_of(Oid relid);
extern bool splitdb_catalog_insert_owned(Oid relid, const char *service,
										 Oid partition_root);
extern int	splitdb_catalog_delete_owned(Oid relid, const char *service);
extern void splitdb_catalog_require_no_job(const char *service, const char *what);
extern void splitdb_require_superuser(const char *function);
extern void splitdb_require_own_transaction(const char *function, const char *detail,
											 const char *call);
/*
 * SPI, one way: connect, run, and report a failure.  Every file that uses SPI
 * goes through these, so an SPI failure always reads the same.
 */
extern void splitdb_spi_connect(void);
extern void splitdb_spi_failed(const char *sql, int rc) pg_attribute_noreturn();
extern int	splitdb_spi_exec(const char *sql, int nparams, Oid *types,
							 Datum *values, const char *nulls, bool read_only,
							 long count);
extern int	splitdb_spi_exec_latest(const char *sql, int nparams, Oid *types,
									Datum *values, const char *nulls, long count);
extern void splitdb_catalog_exec_text(const char *sql, int nparams,
									  const char *const *params, bool read_only);
extern void splitdb_catalog_exec_text_latest(const char *sql, int nparams,
											 const char *const *params, bool read_only);
extern List *splitdb_catalog_result_rows(void);
extern char **splitdb_catalog_array_elems(HeapTuple tuple, TupleDesc desc,
										  int col, int *n);
extern char *splitdb_catalog_text_array(char *const *items, int n);
extern char **splitdb_catalog_text_items(ArrayType *array, int *n);
extern char **splitdb_catalog_parse_text_array(const char *literal, int *n);
extern Datum splitdb_catalog_text_array_datum(char *const *items, int n);
extern void splitdb_error_unknown_service(const char *service);
extern bool splitdb_type_is_object_oid(Oid typid);
extern char *splitdb_message_name(const char *qualified);

#endif							/* SPLITDB_CATALOG_H */
