/*-------------------------------------------------------------------------
 *
 * refcheck_xact.c
 *	  The transaction state of cross-service reference enforcement, its
 *	  transaction callbacks, and postgres_fdw's connection it uses.
 *
 * Everything a transaction queues or remembers lives in one struct,
 * refcheck_xact (its comment in refcheck_int.h says what lives how long),
 * whose lists are allocated in a child of TopTransactionContext made on
 * first use (splitdb_refcheck_xact_context).  At the end of the transaction
 * xact_reset() forgets it all at once; the memory goes with the
 * transaction.  A subtransaction that aborts takes back what its
 * statements queued (subxact_callback).
 *
 * At commit, xact_callback checks what is still queued; an error there
 * aborts the commit.  The statements run as the owner of the trigger's
 * relation, like built-in foreign keys.  In the other database they run
 * through postgres_fdw's connection for the user mapping the transaction
 * wrote through there, else the writing role's when it has one, else the
 * owner's (splitdb_refcheck_mapping), so they share the remote transaction
 * of the shims written through in the same transaction: they see its rows,
 * never wait for its locks, and commit and roll back with the local
 * transaction (savepoints included).  For
 * that, splitdb's transaction callback must run before postgres_fdw's at
 * commit (splitdb_refcheck_fdw_connection).
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/refcheck_xact.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/partition.h"
#include "foreign/foreign.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "reference/refcheck_int.h"
#include "remote/checkconn.h"
#include "remote/prepared.h"

/* what the transaction queued and remembers: see refcheck_int.h */
RefcheckXactState refcheck_xact;

/* for the life of the backend */
static bool callbacks_registered = false;
static bool fdw_callbacks_first = false;

static void xact_callback(XactEvent event, void *arg);
static void subxact_callback(SubXactEvent event, SubTransactionId mySubid,
							 SubTransactionId parentSubid, void *arg);

/*
 * splitdb_refcheck_register_callbacks
 *		Once per backend: the definition cache, its invalidation, and the
 *		transaction callback that checks deferred keys at commit.
 */
void
splitdb_refcheck_register_callbacks(void)
{
	if (callbacks_registered)
		return;
	splitdb_refcheck_defs_init();
	RegisterXactCallback(xact_callback, NULL);
	RegisterSubXactCallback(subxact_callback, NULL);
	callbacks_registered = true;
}

/*
 * callbacks_before_fdw
 *		Once postgres_fdw has a connection, and so its transaction callback:
 *		register splitdb's again, once per backend, so that it runs first at
 *		commit, while the remote transactions are still open.
 */
static void
callbacks_before_fdw(void)
{
	if (fdw_callbacks_first)
		return;
	splitdb_refcheck_register_callbacks();
	UnregisterXactCallback(xact_callback, NULL);
	RegisterXactCallback(xact_callback, NULL);
	fdw_callbacks_first = true;
}

/*
 * splitdb_refcheck_note_fdw_writer
 *		A statement writes through a foreign table of a server with userid's
 *		user mapping (fdwwatch.c): remember the mapping, once, for
 *		splitdb_refcheck_mapping() and for splitdb_refcheck_fire_deferred(),
 *		which needs its remote transaction still open at commit.
 */
void
splitdb_refcheck_note_fdw_writer(Oid serverid, Oid userid)
{
	UserMapping *um;
	MemoryContext old;
	FdwWriter  *fw;
	ListCell   *lc;

	if (!SearchSysCacheExists2(USERMAPPINGUSERSERVER, ObjectIdGetDatum(userid),
							   ObjectIdGetDatum(serverid)) &&
		!SearchSysCacheExists2(USERMAPPINGUSERSERVER, ObjectIdGetDatum(InvalidOid),
							   ObjectIdGetDatum(serverid)))
		return;					/* postgres_fdw refuses the write */
	/* its remote transaction is open: commit takes back what it left */
	callbacks_before_fdw();
	um = GetUserMapping(userid, serverid);
	foreach(lc, refcheck_xact.fdw_writers)
	{
		fw = lfirst(lc);
		if (fw->umid == um->umid)
			return;
	}
	old = MemoryContextSwitchTo(splitdb_refcheck_xact_context());
	fw = palloc(sizeof(FdwWriter));
	fw->serverid = serverid;
	fw->umid = um->umid;
	fw->userid = userid;
	refcheck_xact.fdw_writers = lappend(refcheck_xact.fdw_writers, fw);
	MemoryContextSwitchTo(old);
}

/*
 * splitdb_refcheck_mapping
 *		The user mapping enforcement uses on a server: the writing role's
 *		own (or PUBLIC) one when it has one and this transaction wrote
 *		through it there, else the first one this transaction wrote
 *		through there, else the writing role's, else the owner's.
 *
 * A role with a mapping may write the other database through shims, in
 * postgres_fdw's remote transaction for that mapping.  Checks and actions
 * there must see those rows and must not wait for their locks, which only
 * that remote transaction does (like PostgreSQL's own foreign keys, which
 * run in the writing session).  The rows may have been written through
 * another role's mapping than the writing role's: through a view of
 * another owner (postgres_fdw takes the view owner's), or by the caller of
 * the SECURITY DEFINER function that writes now.  A role without one, in a
 * transaction that wrote nothing there, cannot have written there, so
 * enforcement runs as the owner, and the role needs no rights on the
 * server.
 */
UserMapping *
splitdb_refcheck_mapping(Oid serverid, Oid writer, Oid owner)
{
	UserMapping *mine = NULL;
	FdwWriter  *first = NULL;
	ListCell   *lc;

	if (OidIsValid(writer) &&
		(SearchSysCacheExists2(USERMAPPINGUSERSERVER, ObjectIdGetDatum(writer),
							   ObjectIdGetDatum(serverid)) ||
		 SearchSysCacheExists2(USERMAPPINGUSERSERVER, ObjectIdGetDatum(InvalidOid),
							   ObjectIdGetDatum(serverid))))
		mine = GetUserMapping(writer, serverid);
	foreach(lc, refcheck_xact.fdw_writers)
	{
		FdwWriter  *fw = lfirst(lc);

		if (fw->serverid != serverid)
			continue;
		if (mine != NULL && mine->umid == fw->umid)
			return mine;
		if (first == NULL)
			first = fw;
	}
	if (first != NULL)
		return GetUserMapping(first->userid, serverid);
	return mine != NULL ? mine : GetUserMapping(owner, serverid);
}

/*
 * splitdb_refcheck_fdw_connection
 *		postgres_fdw's connection to a server for
 *		splitdb_refcheck_mapping(), in the remote transaction that mirrors
 *		this one.
 *
 * postgres_fdw registers its transaction callback with its first
 * connection; splitdb's must run before it at commit, while the remote
 * transactions are still open, so it is registered again after that.
 */
PGconn *
splitdb_refcheck_fdw_connection(Oid serverid, Oid writer, Oid owner)
{
	PGconn	   *conn;

	conn = splitdb_remote_fdw_connection(splitdb_refcheck_mapping(serverid, writer, owner));
	callbacks_before_fdw();
	refcheck_xact.fdw_enforced = true;
	return conn;
}

/*
 * splitdb_refcheck_order_callbacks
 *		Before a key of an end that reaches another database is queued:
 *		make sure postgres_fdw's remote transaction, and with it its
 *		transaction callback, exists before commit, so that splitdb's runs
 *		first (see splitdb_refcheck_fdw_connection), through the mapping
 *		that the key's writer will use.  Once per backend.
 */
void
splitdb_refcheck_order_callbacks(RefDef *def, Oid writer)
{
	if (fdw_callbacks_first ||
		(!OidIsValid(def->other_server) && !OidIsValid(def->own_server)))
		return;
	splitdb_refcheck_fdw_connection(OidIsValid(def->other_server) ?
									def->other_server : def->own_server,
									writer, def->owner);
}

/*
 * has_deferrable_trigger
 *		Whether a relation has a deferrable trigger (a constraint trigger of a
 *		deferrable reference, among others).  False for one that is gone.
 */
static bool
has_deferrable_trigger(Oid relid)
{
	Relation	rel = RelationIdGetRelation(relid);
	bool		found = false;

	if (rel == NULL)
		return false;
	if (rel->trigdesc != NULL)
	{
		for (int i = 0; i < rel->trigdesc->numtriggers && !found; i++)
			found = rel->trigdesc->triggers[i].tgdeferrable;
	}
	RelationClose(rel);
	return found;
}

/*
 * splitdb_refcheck_note_table_writer
 *		A statement writes table relid as role writer (fdwwatch.c): remember
 *		the role when the table has a deferrable trigger, whose events may
 *		fire later under another role (SET ROLE before COMMIT, the end of a
 *		SECURITY DEFINER function), for splitdb_refcheck_table_writer().
 *		Not a statement of a foreign key's enforcement (PostgreSQL's actions
 *		and splitdb's, which run as a table's owner with row-level security
 *		not forced): the rows it changes were not written by that owner's
 *		role, and the keys they queue take the writer being enforced
 *		(splitdb_refcheck_add_pending).
 */
void
splitdb_refcheck_note_table_writer(Oid relid, Oid writer)
{
	MemoryContext old;
	TableWriter *tw;
	ListCell   *lc;

	if (InNoForceRLSOperation())
		return;
	tw = NULL;
	foreach(lc, refcheck_xact.table_writers)
	{
		if (((TableWriter *) lfirst(lc))->relid == relid)
		{
			tw = lfirst(lc);
			refcheck_xact.table_writers =
				foreach_delete_current(refcheck_xact.table_writers, lc);
			break;
		}
	}
	if (tw == NULL && !has_deferrable_trigger(relid))
		return;
	old = MemoryContextSwitchTo(splitdb_refcheck_xact_context());
	if (tw == NULL)
	{
		tw = palloc(sizeof(TableWriter));
		tw->relid = relid;
	}
	tw->writer = writer;
	/* the most recent first, for splitdb_refcheck_table_writer() */
	refcheck_xact.table_writers = lcons(tw, refcheck_xact.table_writers);
	MemoryContextSwitchTo(old);
}

/*
 * partition_ancestors
 *		The partitioned tables relid is a partition of, looked up once per
 *		transaction: splitdb_refcheck_table_writer() runs for every row a
 *		deferrable trigger fires on, and the lookup scans pg_inherits.
 */
static List *
partition_ancestors(Oid relid)
{
	MemoryContext old;
	LeafAncestors *la;
	ListCell   *lc;

	foreach(lc, refcheck_xact.leaf_ancestors)
	{
		la = lfirst(lc);
		if (la->relid == relid)
			return la->ancestors;
	}
	old = MemoryContextSwitchTo(splitdb_refcheck_xact_context());
	la = palloc(sizeof(LeafAncestors));
	la->relid = relid;
	la->ancestors = get_rel_relispartition(relid) ? get_partition_ancestors(relid) : NIL;
	refcheck_xact.leaf_ancestors = lappend(refcheck_xact.leaf_ancestors, la);
	MemoryContextSwitchTo(old);
	return la->ancestors;
}

/*
 * splitdb_refcheck_table_writer
 *		The role of the last statement of this transaction that wrote relid,
 *		or a table relid is a partition of; InvalidOid when none is known.
 */
Oid
splitdb_refcheck_table_writer(Oid relid)
{
	List	   *ancestors = NIL;
	bool		looked_up = false;
	ListCell   *lc;

	foreach(lc, refcheck_xact.table_writers)
	{
		TableWriter *tw = lfirst(lc);

		if (tw->relid == relid)
			return tw->writer;
		if (!looked_up)
		{
			ancestors = partition_ancestors(relid);
			looked_up = true;
		}
		if (list_member_oid(ancestors, tw->relid))
			return tw->writer;
	}
	return InvalidOid;
}

/*
 * splitdb_refcheck_xact_context
 *		The memory of this transaction's queues and lists, made on first
 *		use; the pointers into it are reset at the transaction's end.
 */
MemoryContext
splitdb_refcheck_xact_context(void)
{
	/* the transaction callback forgets what lives here */
	splitdb_refcheck_register_callbacks();
	if (refcheck_xact.cxt == NULL)
		refcheck_xact.cxt = AllocSetContextCreate(TopTransactionContext,
												  "splitdb queued keys",
												  ALLOCSET_DEFAULT_SIZES);
	return refcheck_xact.cxt;
}

/*
 * xact_reset
 *		At the end of a transaction: forget everything it queued and
 *		remembered (the memory goes with the transaction), and the
 *		definitions that were replaced or made for relayed keys.
 */
static void
xact_reset(void)
{
	/* checkconn.c drops the answers of the lookups sent ahead */
	MemSet(&refcheck_xact, 0, sizeof(refcheck_xact));
	refcheck_xact.caller_userid = InvalidOid;
	refcheck_xact.caller_sec = 0;
	splitdb_refcheck_defs_reset();
}

/*
 * xact_callback
 *		At commit, check what is still queued (deferred references, and keys
 *		of statements that fired no statement trigger); an error here aborts
 *		the commit.  At the end of a transaction, forget the transaction
 *		state (xact_reset).
 */
static void
xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			/*
			 * the rows that the siblings' deferred triggers write, to check
			 * here: only while postgres_fdw's remote transactions are still
			 * open (its callback runs after this one), which they are once
			 * this backend wrote through a shim whose sibling holds an end
			 */
			if (event != XACT_EVENT_PRE_PREPARE && fdw_callbacks_first)
				splitdb_refcheck_fire_deferred();
			if (refcheck_xact.cxt != NULL)
			{
				bool		pushed = false;
				ListCell   *lc;

				if (!ActiveSnapshotSet())
				{
					PushActiveSnapshot(GetTransactionSnapshot());
					pushed = true;
				}
				/* keys that no database will take back any more: enforce them here */
				splitdb_refcheck_enforce_unrelayed();
				while (splitdb_refcheck_flush_all(true))
					;
				/*
				 * checks whose remote transaction failed, or whose connection
				 * is gone with their locks: check them again
				 */
				splitdb_checkconn_probe();
				foreach(lc, splitdb_checkconn_failed_servers())
					splitdb_refcheck_fdw_uses(lfirst_oid(lc));
				/* postgres_fdw commits next: its checks' locks move first */
				if (event != XACT_EVENT_PRE_PREPARE)
					splitdb_refcheck_hold_locks();
				if (pushed)
					PopActiveSnapshot();
			}
			/*
			 * on splitdb's connection or on postgres_fdw's (which would
			 * refuse next, naming foreign tables the client may never have
			 * written): the same refusal
			 */
			if (event == XACT_EVENT_PRE_PREPARE &&
				(splitdb_checkconn_any_active() || refcheck_xact.fdw_enforced))
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot prepare a transaction that has checked cross-service references"),
						 errdetail("The checks hold locks in a remote transaction, which cannot be prepared."),
						 errhint("Commit the transaction instead: one that checks cross-service references cannot be prepared, as postgres_fdw refuses to prepare one that used a foreign table.")));
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			splitdb_prepared_forget();
			xact_reset();
			splitdb_checkconn_xact_end(false);
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PREPARE:
			/*
			 * postgres_fdw deallocates every prepared statement of a
			 * connection at the commit of a transaction in which a
			 * subtransaction failed, statements splitdb prepared there since
			 * the failure included
			 */
			if (refcheck_xact.subxact_aborted)
				splitdb_prepared_forget();
			xact_reset();
			splitdb_checkconn_xact_end(true);
			break;
	}
}

/*
 * subxact_callback
 *		A subtransaction that aborts takes the statement-time keys that it
 *		queued with it (splitdb_refcheck_forget_subxact), not those of the
 *		statement that it runs inside (a trigger's PL/pgSQL block that
 *		catches an error): those rows stay, and their keys are checked or
 *		handed back as before.  Commit-time keys stay; their check looks
 *		again at the rows, which the rollback restored.
 */
static void
subxact_callback(SubXactEvent event, SubTransactionId mySubid,
				 SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	ListCell   *lc;

	if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		/* a SET CONSTRAINTS of a released savepoint now belongs to its parent */
		foreach(lc, refcheck_xact.constraints_set)
		{
			ConstraintsSet *cs = lfirst(lc);

			if (cs->nest_level >= level)
				cs->nest_level = level - 1;
		}
		/* and so do the keys it checked */
		foreach(lc, refcheck_xact.fdw_checked)
		{
			HeldKeys   *hk = lfirst(lc);

			if (hk->nest_level >= level)
				hk->nest_level = level - 1;
		}
		return;
	}
	if (event != SUBXACT_EVENT_ABORT_SUB)
		return;
	foreach(lc, refcheck_xact.constraints_set)
	{
		if (((ConstraintsSet *) lfirst(lc))->nest_level >= level)
			refcheck_xact.constraints_set =
				foreach_delete_current(refcheck_xact.constraints_set, lc);
	}
	/* the rows whose keys it checked are gone: their locks need not outlive us */
	foreach(lc, refcheck_xact.fdw_checked)
	{
		if (((HeldKeys *) lfirst(lc))->nest_level >= level)
			refcheck_xact.fdw_checked =
				foreach_delete_current(refcheck_xact.fdw_checked, lc);
	}
	splitdb_prepared_forget();
	refcheck_xact.subxact_aborted = true;
	for (RefDef *def = splitdb_refcheck_defs(); def != NULL; def = def->next)
	{
		splitdb_refcheck_forget_subxact(&def->now, mySubid);
		splitdb_refcheck_forget_subxact(&def->relay, mySubid);
	}
	splitdb_refcheck_forget_ahead();
	splitdb_checkconn_subxact_abort();
}
