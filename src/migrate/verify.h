/*-------------------------------------------------------------------------
 *
 * verify.h
 *	  Row counts and order-independent checksums on both sides of a split.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/verify.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_VERIFY_H
#define SPLITDB_VERIFY_H

#include "remote/remote.h"

/* one table to verify */
typedef struct SplitdbVerifyTable
{
	char	   *source_name;	/* in the source: the original or its archived copy */
	char	   *target_name;	/* in the sibling: the original name */
	Oid			relid;			/* the source table */
	char	   *terms;			/* the row hash's terms, in attribute order */
	int			nterms;			/* how many */
	char	   *text_terms;		/* the same with numeric, jsonb and float
								 * terms as text, or NULL where there are
								 * none */
} SplitdbVerifyTable;

/* both sides of one table */
typedef struct SplitdbVerifyResult
{
	int64		source_rows;
	char	   *source_checksum;
	bool		present;		/* the sibling has the table */
	int64		target_rows;
	char	   *target_checksum;
	bool		ok;
} SplitdbVerifyResult;

/* the row hashes of the source, where the extension is (rowhash.c) */
#define SPLITDB_ROW_HASH_LOCAL "splitdb.row_hash"
#define SPLITDB_ROW_DIGEST_LOCAL "splitdb.row_digest"
/* the sibling session's row digest, when it could make it */
#define SPLITDB_ROW_DIGEST_REMOTE "pg_temp.splitdb_row_digest"
/* the C symbol of the digest this library computes (rowhash.c) */
#define SPLITDB_ROW_DIGEST_SYMBOL "splitdb_row_digest_v2"

extern char *splitdb_verify_row_terms(Oid relid, int *nterms, char **text_terms);
extern char *splitdb_verify_row_hash(const char *terms, int nterms,
									 const char *func);
extern List *splitdb_verify_tables(const char *service, MemoryContext cxt);
extern const char *splitdb_verify_prepare_remote(PGconn *conn,
												 const char *service);
extern void splitdb_verify_drop_remote(PGconn *conn, const char *remote_hash,
									   const char *service);
extern void splitdb_verify_table(PGconn *conn, const SplitdbVerifyTable *t,
								 const char *remote_hash, const char *service,
								 SplitdbVerifyResult *r);

#endif							/* SPLITDB_VERIFY_H */
