/*-------------------------------------------------------------------------
 *
 * deparse.h
 *	  SQL text that splitdb sends, built with every identifier quoted.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/remote/deparse.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_DEPARSE_H
#define SPLITDB_DEPARSE_H

extern char *splitdb_deparse_create_server(const char *server,
										   const char *host, int port,
										   const char *dbname);
extern char *splitdb_deparse_create_user_mapping(const char *server,
												 const char *role);
extern char *splitdb_deparse_drop_user_mapping(const char *server,
											   const char *role);
extern char *splitdb_deparse_drop_server(const char *server);
/* the encoding and locale a new database takes, when not template1's */
typedef struct SplitdbDatabaseLocale
{
	const char *encoding;
	const char *collate;
	const char *ctype;
	const char *icu_locale;		/* NULL: the libc provider */
} SplitdbDatabaseLocale;

extern char *splitdb_deparse_create_database(const char *dbname,
											 const SplitdbDatabaseLocale *locale);
extern char *splitdb_deparse_drop_database(const char *dbname);

#endif							/* SPLITDB_DEPARSE_H */
