/*-------------------------------------------------------------------------
 *
 * checkconn_int.h
 *	  The state of splitdb's check connections, shared by checkconn.c and
 *	  checkconn_ahead.c (the answers of statements sent ahead).
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/remote/checkconn_int.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_CHECKCONN_INT_H
#define SPLITDB_CHECKCONN_INT_H

#include "libpq-fe.h"
#include "nodes/pg_list.h"
#include "storage/latch.h"
#include "utils/hsearch.h"

/*
 * What the connection has sent and not read yet, in the order the answers
 * come back.  The queue and its items live in TopMemoryContext: an answer
 * may be read in a later transaction than the one that sent its statement.
 */
typedef enum ItemKind
{
	ITEM_SYNC,					/* a pipeline sync */
	ITEM_QUIET,					/* SET, COMMIT, ROLLBACK: an error is logged */
	ITEM_CHECKED,				/* START TRANSACTION, PREPARE: an error is relayed */
	ITEM_AHEAD,					/* a statement sent ahead: its result is kept */
	ITEM_OWN					/* stmts[index] of the running checkconn_run */
} ItemKind;

typedef struct Item
{
	ItemKind	kind;
	uint64		id;				/* ITEM_AHEAD: the handle */
	bool		wanted;			/* ITEM_AHEAD: false once forgotten */
	int			index;			/* ITEM_OWN */
	char	   *sql;			/* for an error's context (ITEM_AHEAD, ITEM_CHECKED) */
	char	   *prepares;		/* a PREPARE: the statement's name */
	PGresult   *result;			/* ITEM_AHEAD, once read (NULL: it failed) */
} Item;

typedef struct CheckConn
{
	Oid			umid;			/* hash key: the user mapping */
	Oid			serverid;
	PGconn	   *conn;			/* NULL: closed */
	WaitEventSet *wait;			/* the latch, postmaster death, the socket */
	uint32		server_hash;	/* syscache hash values, for invalidation */
	uint32		mapping_hash;
	bool		invalidated;	/* server or mapping changed: reopen when idle */
	bool		in_xact;
	bool		held;			/* locks that matter taken in the remote transaction */
	bool		failed;
	bool		busy;
	bool		ending;			/* the server said the session ends (FATAL) */
	int			lock_timeout;	/* what the remote transaction set, in ms (0: none) */
	List	   *queue;			/* Item: sent, not read */
	List	   *ahead;			/* Item: ITEM_AHEAD read, not taken */
} CheckConn;

/* what reading a queue found */
typedef struct ReadState
{
	struct SplitdbCheckStmt *stmts; /* where ITEM_OWN results go */
	PGresult   *first_error;	/* the first error to relay */
	char	   *error_sql;		/* its statement */
	bool		lost;			/* the connection failed */
	bool		ahead_failed;	/* a statement sent ahead, wanted no more, failed */
} ReadState;

/* the connections, by user mapping (CheckConn); NULL before the first */
extern HTAB *splitdb_checkconn_conns;

extern void splitdb_checkconn_free_item(Item *it);
extern void splitdb_checkconn_lose(CheckConn *cc);
extern bool splitdb_checkconn_drain(CheckConn *cc, Item *upto, ReadState *rs);
extern bool splitdb_checkconn_ahead_pending(CheckConn *cc);
extern void splitdb_checkconn_notice(void *arg, const PGresult *res);

#endif							/* SPLITDB_CHECKCONN_INT_H */
