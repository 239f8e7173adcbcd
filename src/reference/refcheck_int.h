/*-------------------------------------------------------------------------
 *
 * refcheck_int.h
 *	  What the files of the cross-service reference engine (refcheck*.c)
 *	  share: the definition of a reference end, the queues, and the
 *	  transaction state.
 *
 * Nothing outside src/reference/refcheck*.c includes this header; the rest
 * of splitdb sees refcheck.h.  The functions are grouped by the file that
 * defines them.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/refcheck_int.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SPLITDB_REFCHECK_INT_H
#define SPLITDB_REFCHECK_INT_H

#include "commands/trigger.h"
#include "fmgr.h"
#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "nodes/parsenodes.h"
#include "nodes/pg_list.h"
#include "utils/hsearch.h"
#include "utils/typcache.h"

#include "reference/refstats.h"
#include "remote/remote.h"

/* how many distinct keys a referencing end queues before it checks early */
#define SPLITDB_REFCHECK_MAX_PENDING	250000

/* a batch this small is looked up with splitdb_refcheck_small_batch_sql() */
#define SPLITDB_REFCHECK_SMALL_BATCH	64

/* what a queued key asks for */
typedef enum PendingKind
{
	PENDING_CHECK,				/* child: the key must exist in the parent */
	PENDING_DELETE,				/* parent: a row with this key was deleted */
	PENDING_UPDATE,				/* parent: a row's key changed from old to new */
	PENDING_MOVED				/* parent: an UPDATE moved the row with this key
								 * to another partition; its new key is not
								 * known here */
} PendingKind;

typedef struct PendingKey
{
	char	   *ident;			/* kind and old key, serialized: the dedup key */
	PendingKind kind;
	char	  **old;			/* key values in text form, never NULL */
	char	  **new;			/* PENDING_UPDATE: the new key, NULLs allowed */
	uint64		seq;			/* queue order, across all queues */
	Oid			writer;			/* the role whose statement wrote the row */
	SubTransactionId subid;		/* the oldest subtransaction that queued it */
} PendingKey;

/* a queue of keys, without duplicates */
typedef struct PendingSet
{
	List	   *keys;
	HTAB	   *seen;			/* ident -> present */
	uint64		seq;			/* when its first key was queued */
	SubTransactionId newest_subid;	/* the newest subid of its keys */
} PendingSet;

/* one trigger's reference end, read from splitdb.reference_end */
typedef struct RefDef
{
	Oid			tgoid;			/* the trigger */
	Oid			relid;			/* its relation (a partition for a clone) */
	bool		valid;			/* false once the relation changed */
	int64		reference_id;
	char		side;			/* 'c' child, 'p' parent */
	char	   *conname;
	char	   *here;
	char	   *own_table;
	Oid			own_server;		/* InvalidOid: own_table is a table here */
	char	   *other_location;
	Oid			other_server;	/* InvalidOid: other_table is a table here */
	char	   *other_table;
	char	   *other_database;
	Oid			owner;			/* enforcement runs as this role */
	int			nkeys;
	char	  **own_cols;
	char	  **own_types;
	char	  **other_cols;
	char	  **other_types;
	AttrNumber *attnums;		/* own columns in the trigger's relation */
	Oid		   *typoutput;
	FmgrInfo   *outfinfo;		/* the output functions, looked up once */
	TypeCacheEntry **typcache;	/* referencing side: equality of the key */
	bool		match_full;
	char		on_delete;
	char		on_update;
	int			nset;			/* ON DELETE SET NULL/DEFAULT columns, 0: all */
	char	  **set_cols;
	bool		shim_deferrable;	/* a shim end of a DEFERRABLE reference */
	bool		initially_deferred;
	bool		always;			/* checks writes from the source's shims too */
	bool		pin_output;		/* a key type's text form follows DateStyle & co */
	char	  **fk_collates;	/* referenced side: " COLLATE x" of each
								 * nondeterministic key column, for the
								 * referencing rows; NULL: none */
	PendingSet	now;			/* checked at the end of the statement */
	PendingSet	at_commit;		/* checked at commit */
	PendingSet	relay;			/* skipped here, for the database that wrote */
	bool		relayed;		/* made for keys relayed back from elsewhere */
	char	   *single_sql;		/* splitdb_refcheck_single_key_sql(), once made */
	StringInfoData ident_buf;	/* add_pending's scratch for the dedup key */
	SplitdbRefCounter *counter;
	struct RefDef *next;
} RefDef;

/*
 * Keys checked on splitdb's own connections (checkconn.c) in this transaction,
 * per reference end and server: if the transaction then writes to that server
 * through postgres_fdw, they are checked again there (refcheck_fast.c,
 * hand_over), so that postgres_fdw's remote transaction holds their locks.
 * The list shares the queued keys, which live until the transaction ends
 * anyway: it costs a list cell per key.
 */
typedef struct FastChecked
{
	RefDef	   *def;
	Oid			serverid;
	Oid			writer;			/* the role whose statement was checked */
	List	   *keys;			/* PendingKey */
} FastChecked;

/*
 * Lookups of keys sent ahead by the BEFORE trigger of a referencing end
 * (refcheck_ahead.c), at most one per end, waiting for the statement's check;
 * the end is known by reference, side and relation, as its BEFORE and
 * AFTER triggers each have a definition of their own.
 */
typedef struct AheadSent
{
	int64		reference_id;
	char		side;
	Oid			relid;
	uint64		id;				/* checkconn.c's handle */
	char	   *ident;			/* the key, as splitdb_refcheck_key_ident() makes it */
} AheadSent;

/* a queued key whose lookup went out ahead, for splitdb_refcheck_fast_pass() */
typedef struct AheadKey
{
	RefDef	   *def;
	PendingKey *pk;
	uint64		id;
} AheadKey;

/*
 * Keys of referencing ends found (and locked FOR KEY SHARE) on
 * postgres_fdw's connection in this transaction.  postgres_fdw commits its
 * remote transactions at pre-commit, before the local commit makes the
 * referencing rows visible, so those locks would end too early for a
 * concurrent delete of the referenced row: refcheck_hold.c takes them again
 * on splitdb's own connection, whose remote transaction ends after the
 * local commit (see "Locks past the commit" in docs/architecture.md).
 */
typedef struct HeldKeys
{
	RefDef	   *def;
	Oid			writer;			/* the role whose statement was checked */
	int			nest_level;		/* of the subtransaction that checked them */
	List	   *keys;			/* PendingKey */
} HeldKeys;

/*
 * The SET CONSTRAINTS of this transaction, newest first, for the deferrable
 * references whose end here is a shim (tables have constraint triggers,
 * which PostgreSQL defers itself).  Each is dropped with the subtransaction
 * it ran in, as PostgreSQL restores its own state then.
 */
typedef struct ConstraintsSet
{
	char	   *schemaname;		/* NULL: any schema */
	char	   *conname;		/* NULL: ALL */
	bool		deferred;
	int			nest_level;		/* of the subtransaction it ran in */
} ConstraintsSet;

/*
 * RefcheckXactState
 *		What one transaction queued and remembers, besides the queues of its
 *		definitions (RefDef.now, at_commit, relay).
 *
 * The lists live in cxt, a child of TopTransactionContext made on first use
 * (splitdb_refcheck_xact_context); the transaction callback forgets them
 * all at the transaction's end (refcheck_xact.c, xact_reset), when the
 * memory goes too.  A subtransaction that aborts drops its own entries of
 * constraints_set and fdw_checked, and the lookups sent ahead.  The last
 * three fields belong to one call (a flush, a relay), which sets them and
 * restores them as it returns (flush_depth and relaying on error too; an
 * error may leave caller_userid set, which nothing reads outside a flush):
 * the reset clears them all the same.
 */
typedef struct RefcheckXactState
{
	MemoryContext cxt;			/* NULL until the transaction queues */

	/* keys checked on splitdb's own connections: FastChecked */
	List	   *fast_checked;

	/* lookups sent ahead, waiting for the statement's check: AheadSent */
	List	   *ahead_sent;

	/* servers this transaction used through postgres_fdw (fdwwatch.c, run_remote) */
	List	   *fdw_written;

	/*
	 * Servers whose rows this transaction changed or locked through
	 * postgres_fdw beyond the checks' FOR KEY SHARE: writes and row marks
	 * through foreign tables (fdwwatch.c) and splitdb's actions.  There,
	 * postgres_fdw's remote transaction may hold rows that no other session
	 * sees or may lock yet.
	 */
	List	   *fdw_modified;

	/*
	 * A check or action of this transaction ran on postgres_fdw's
	 * connection: its remote transaction cannot be prepared.
	 */
	bool		fdw_enforced;

	/* keys found on postgres_fdw's connection, to hold past its commit: HeldKeys */
	List	   *fdw_checked;

	/* what hold_locks() at pre-commit left for after postgres_fdw's commit */
	List	   *hold_late;

	/* the SET CONSTRAINTS of this transaction, newest first: ConstraintsSet */
	List	   *constraints_set;

	/* inside splitdb.reference_relay(): skipped keys go back to the caller */
	bool		relaying;

	/*
	 * A subtransaction aborted: postgres_fdw deallocates the prepared
	 * statements of its connections at commit (prepared.c).
	 */
	bool		subxact_aborted;

	/*
	 * flush_set() calls running: the statement triggers of the rows their
	 * actions change here leave the keys queued, and the running flush works
	 * them off, so chains of actions do not nest.
	 */
	int			flush_depth;

	/* the role whose statement is being checked, while enforcement runs as the owner */
	Oid			caller_userid;
	int			caller_sec;		/* and its security context */

	/*
	 * The role of the last statement that wrote each table with a deferrable
	 * trigger (TableWriter): the writer of the keys its constraint triggers
	 * queue when they fire later, at commit or SET CONSTRAINTS ... IMMEDIATE,
	 * under whatever role is current then.  The most recent first.
	 */
	List	   *table_writers;
	List	   *leaf_ancestors; /* LeafAncestors of the partitions looked up */

	/*
	 * The user mappings this transaction wrote through with postgres_fdw
	 * (FdwWriter), in order: their remote transactions hold rows that no
	 * other session sees.
	 */
	List	   *fdw_writers;
} RefcheckXactState;

/* refcheck_xact.fdw_writers: a user mapping written through */
typedef struct FdwWriter
{
	Oid			serverid;
	Oid			umid;
	Oid			userid;			/* the role it was taken for */
} FdwWriter;

/* refcheck_xact.table_writers: a table and the role that last wrote it */
typedef struct TableWriter
{
	Oid			relid;
	Oid			writer;
} TableWriter;

/* refcheck_xact.leaf_ancestors: a relation's partition ancestors (NIL: none) */
typedef struct LeafAncestors
{
	Oid			relid;
	List	   *ancestors;
} LeafAncestors;

extern RefcheckXactState refcheck_xact;

/* refcheck_def.c: definitions */
extern void splitdb_refcheck_defs_init(void);
extern RefDef *splitdb_refcheck_defs(void);
extern List *splitdb_refcheck_defs_in_queue_order(bool at_commit);
extern MemoryContext splitdb_refcheck_def_context(void);
extern void splitdb_refcheck_defs_reset(void);
extern RefDef *splitdb_refcheck_get_def(TriggerData *td);
extern RefDef *splitdb_refcheck_get_def_for(Trigger *tg, Relation rel);
extern RefDef *splitdb_refcheck_relayed_def(int64 reference_id, char side);
extern RefDef *splitdb_refcheck_acting_def(int64 reference_id);
extern RefDef *splitdb_refcheck_reading_def(int64 reference_id, char side,
											MemoryContext cxt, Oid *relid);
extern bool splitdb_refcheck_relation_is_or_under(Oid relid, Oid target);
extern bool splitdb_refcheck_end_dropped(int64 reference_id, char side);

/* refcheck_xact.c: transaction state and callbacks, postgres_fdw's connection */
extern void splitdb_refcheck_register_callbacks(void);
extern MemoryContext splitdb_refcheck_xact_context(void);
extern UserMapping *splitdb_refcheck_mapping(Oid serverid, Oid writer, Oid owner);
extern PGconn *splitdb_refcheck_fdw_connection(Oid serverid, Oid writer, Oid owner);
extern void splitdb_refcheck_order_callbacks(RefDef *def, Oid writer);
extern void splitdb_refcheck_note_table_writer(Oid relid, Oid writer);
extern Oid	splitdb_refcheck_table_writer(Oid relid);
extern void splitdb_refcheck_note_fdw_writer(Oid serverid, Oid userid);

/* refcheck.c: splitdb's trigger functions and the names of their triggers */
extern bool splitdb_refcheck_handback_name(const char *tgname);
extern bool splitdb_refcheck_function_is(Oid funcid, const char *name);

/* refcheck_constraint.c: SET CONSTRAINTS for shims */
extern bool splitdb_refcheck_shim_deferred(RefDef *def);
extern void splitdb_refcheck_constraints_set(ConstraintsSetStmt *stmt);

/* refcheck_queue.c: the key queues */
extern bool splitdb_refcheck_origin_skips(RefDef *def);
extern int	splitdb_refcheck_key_texts(RefDef *def, TupleTableSlot *slot, char **texts);
extern int	splitdb_refcheck_pin_output(void);
extern bool splitdb_refcheck_keys_equal(RefDef *def, TupleTableSlot *oldslot,
										TupleTableSlot *newslot);
extern void splitdb_refcheck_queue_child(RefDef *def, TriggerData *td, bool relay,
										 Oid writer);
extern void splitdb_refcheck_queue_parent(RefDef *def, TriggerData *td, bool relay,
										  Oid writer);
extern char *splitdb_refcheck_key_ident(PendingKind kind, char **old, int nkeys);
extern void splitdb_refcheck_forget_subxact(PendingSet *set, SubTransactionId subid);
extern void splitdb_refcheck_add_pending(RefDef *def, PendingKind kind, char **old,
										 char **new, bool relay, Oid writer);
extern Oid	splitdb_refcheck_key_writer(PendingKey *pk);
extern bool splitdb_refcheck_one_writer(List *keys);
extern PendingKey *splitdb_refcheck_take_queued(PendingSet *set, char *ident);

/* refcheck_sql.c: the SQL of keys */
extern char *splitdb_refcheck_small_batch_sql(RefDef *def, int n, const char *table,
											  char **cols, char **types, char **valtypes,
											  bool lock, bool first_only);
extern char *splitdb_refcheck_key_batch_sql(RefDef *def, const char *table, char **cols,
											char **types, char **valtypes, bool lock,
											bool first_only);
extern char *splitdb_refcheck_key_match_as(const char *alias, char **cols, char **types,
										   char **valtypes, int nkeys,
										   bool col_referenced, char **collates);
extern char *splitdb_refcheck_action_sql(RefDef *def, char action, bool is_update);

/* refcheck_eqop.c: comparisons as PostgreSQL's foreign keys compare */
extern void splitdb_refcheck_append_key_cond(StringInfo buf, const char *col,
											 const char *coltype, const char *valexpr,
											 const char *valtype, bool col_referenced);
extern bool splitdb_refcheck_same_key_types(char **types, char **valtypes, int nkeys);
extern const char *splitdb_refcheck_eq_operator(const char *type);
extern char *splitdb_refcheck_single_key_sql(RefDef *def);
extern Datum *splitdb_refcheck_key_arrays(RefDef *def, List *keys, bool new);
extern const char **splitdb_refcheck_array_texts(Datum *arrays, int n);
extern const char **splitdb_refcheck_key_literals(RefDef *def, List *keys, bool new);
extern const char **splitdb_refcheck_key_literals_n(int nkeys, List *keys, bool new);
extern int	splitdb_refcheck_mark_hits(List *rows, int n, bool *hit);
extern const char *splitdb_refcheck_table_name(const char *qualified);
extern char *splitdb_refcheck_key_columns_text(char **cols, int nkeys);
extern char *splitdb_refcheck_key_values_text(char **values, int nkeys);
extern int	splitdb_refcheck_pin_search_path(void);
extern int	splitdb_refcheck_action_search_path(const char *base);

/* refcheck_check.c: checks and actions */
extern Oid	splitdb_refcheck_table_owner(const char *table);
extern List *splitdb_refcheck_run_remote(RefDef *def, Oid server, const char *sql,
										 int nparams, const char **values, bool prepare);
extern bool *splitdb_refcheck_positions(RefDef *def, List *keys, bool other, bool lock,
										bool first_only);
extern const char *splitdb_refcheck_own_name(RefDef *def);
extern int	splitdb_refcheck_errtable(RefDef *def, bool own);
extern bool splitdb_refcheck_shows_key(RefDef *def);
extern void splitdb_refcheck_flush_set(RefDef *def, List *keys);
extern bool splitdb_refcheck_flush_all(bool at_commit);

/* refcheck_relay.c: the relay of chains */
extern List *splitdb_refcheck_run_relayed(RefDef *def, const char *sql, int nparams,
										  Datum *params, bool modifies);
extern List *splitdb_refcheck_relay_rows(RefDef *def, List *rows);
extern CmdType splitdb_refcheck_statement_writes(TriggerData *td);
extern void splitdb_refcheck_relay_waiting(bool on);
extern void splitdb_refcheck_note_deferrable(Oid relid);
extern void splitdb_refcheck_deferred_fired(ConstraintsSetStmt *stmt);
extern void splitdb_refcheck_relay_run(const char *sql, char **texts, int nparams,
									   Oid owner, bool owner_fires,
									   ReturnSetInfo *rsinfo);

/* refcheck_act.c: actions as the referencing table's owner, here and elsewhere */
extern List *splitdb_refcheck_act_as_owner(const char *sql, int nparams, Oid *types,
										   Datum *values, bool latest, Oid owner,
										   Oid after_userid, int after_sec, int *natts);
extern List *splitdb_refcheck_run_action(RefDef *def, bool is_update, const char *sql,
										 int nparams, Datum *params);
extern void splitdb_refcheck_take_relayed(Relation shim);
extern void splitdb_refcheck_enforce_unrelayed(void);
extern void splitdb_refcheck_fire_deferred(void);
extern char **splitdb_refcheck_collate_clauses(char **names, int n);

/*
 * refcheck_lookup.c: lookups in another database as the owner of the table
 * read there; the flags of a request
 */
#define SPLITDB_LOOKUP_LOCK			0x01	/* FOR KEY SHARE the rows found */
#define SPLITDB_LOOKUP_FIRST		0x02	/* the first position found only */
#define SPLITDB_LOOKUP_SKIP_LOCKED	0x04	/* with LOCK: SKIP LOCKED */
#define SPLITDB_LOOKUP_SAME_TYPES	0x08	/* keys of the table's own key types */
#define SPLITDB_LOOKUP_LATEST		0x10	/* with the latest snapshot */
#define SPLITDB_LOOKUP_ALL			0x1f

struct SplitdbCheckStmt;
extern void splitdb_refcheck_lookup_init(void);
extern void splitdb_refcheck_lookup_stmt(struct SplitdbCheckStmt *st, RefDef *def,
										 int flags, const char *const *columns);
extern const char **splitdb_refcheck_one_key_columns(char **texts, int nkeys);
extern List *splitdb_refcheck_lookup_remote(RefDef *def, Oid server, char side,
											int flags, List *keys, bool *done);

/* refcheck_hold.c: locks past the commit */
extern void splitdb_refcheck_hold_init(void);
extern void splitdb_refcheck_remember_fdw_checked(RefDef *def, List *keys, bool *found);
extern void splitdb_refcheck_hold_locks(void);

/* refcheck_fast.c: checks on splitdb's own connection */
extern bool splitdb_refcheck_checkconn_usable(RefDef *def);
extern bool splitdb_refcheck_fast_eligible(RefDef *def, List *keys);
extern void splitdb_refcheck_remember_checked(RefDef *def, List *keys, Oid writer);
extern void splitdb_refcheck_fast_check_one(RefDef *def, List *keys);
extern bool splitdb_refcheck_fast_pass(bool at_commit);
extern void splitdb_refcheck_fdw_writes(Oid serverid);
extern void splitdb_refcheck_fdw_uses(Oid serverid);

/* refcheck_ahead.c: lookups sent ahead */
extern void splitdb_refcheck_send_ahead(TriggerData *td, Oid fn_oid);
extern void splitdb_refcheck_forget_ahead(void);
extern AheadKey *splitdb_refcheck_match_ahead(RefDef *def);
extern void splitdb_refcheck_take_ahead_answers(List *aheads);

#endif							/* SPLITDB_REFCHECK_INT_H */
