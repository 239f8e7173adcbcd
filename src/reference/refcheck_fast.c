/*-------------------------------------------------------------------------
 *
 * refcheck_fast.c
 *	  Checks of cross-service references on splitdb's own connection
 *	  (checkconn.c), and their hand-over to postgres_fdw's.
 *
 * A referencing end whose parent is in another database that this
 * transaction has not written to through postgres_fdw is checked on
 * splitdb's own connection: all the ends of one user mapping in one
 * pipeline, whose remote transaction holds the locks until after the local
 * commit with no round trips of postgres_fdw's own.  Once the transaction
 * is about to write to that server through postgres_fdw (fdwwatch.c, or
 * splitdb's own actions), later checks there take postgres_fdw's
 * connection, which sees those writes, and the keys checked so far are
 * checked again there first (hand_over), so that postgres_fdw's remote
 * transaction holds their locks before splitdb's ends.
 *
 * What this remembers is transaction state (refcheck_xact): the keys checked
 * here (refcheck_xact.fast_checked), the servers used
 * (refcheck_xact.fdw_written) and changed (refcheck_xact.fdw_modified) through
 * postgres_fdw.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/refcheck_fast.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "reference/fdwwatch.h"
#include "reference/refcheck_int.h"
#include "reference/refstats.h"
#include "remote/checkconn.h"
#include "remote/remote.h"
#include "splitdb.h"

/* a batch of keys of one referencing end, for splitdb_refcheck_fast_pass() */
typedef struct FastBatch
{
	RefDef	   *def;
	List	   *keys;
	Oid			writer;			/* the keys' writer, whose mapping checks them */
	UserMapping *mapping;
} FastBatch;

static void hand_over(Oid serverid);
static void mark_modified(Oid serverid);

/*
 * splitdb_refcheck_checkconn_usable
 *		Whether keys of a referencing end may be checked on splitdb's own
 *		connection (checkconn.c): its parent is in another database that
 *		this transaction has not written to through postgres_fdw
 *		(fdwwatch.c).  A check there holds its locks until after the local
 *		commit, with no round trips of postgres_fdw's own.
 */
bool
splitdb_refcheck_checkconn_usable(RefDef *def)
{
	return def->side == 'c' && OidIsValid(def->other_server) &&
		splitdb_check_connection && !IsInParallelMode() &&
		splitdb_fdwwatch_complete() &&
		!list_member_oid(refcheck_xact.fdw_written, def->other_server) &&
		!splitdb_checkconn_failed(def->other_server);
}

/*
 * splitdb_refcheck_fast_eligible
 *		Whether a batch of keys of an end may be checked on splitdb's own
 *		connection: splitdb_refcheck_checkconn_usable() and at least one key.
 */
bool
splitdb_refcheck_fast_eligible(RefDef *def, List *keys)
{
	return keys != NIL && splitdb_refcheck_checkconn_usable(def);
}

/*
 * splitdb_refcheck_remember_checked
 *		Keep keys checked on splitdb's own connection, for hand_over(), with
 *		their writer, through whose user mapping they were checked.
 */
void
splitdb_refcheck_remember_checked(RefDef *def, List *keys, Oid writer)
{
	MemoryContext old = MemoryContextSwitchTo(splitdb_refcheck_xact_context());
	FastChecked *fc = palloc(sizeof(FastChecked));

	fc->def = def;
	fc->serverid = def->other_server;
	fc->writer = writer;
	fc->keys = list_copy(keys);
	refcheck_xact.fast_checked = lappend(refcheck_xact.fast_checked, fc);
	MemoryContextSwitchTo(old);
}

/*
 * mark_result_hits
 *		splitdb_refcheck_mark_hits() read straight from a lookup's result,
 *		without copying its rows: set hit[i] for each position i (1..n)
 *		that a row names in its first column.
 */
static void
mark_result_hits(PGresult *res, int n, bool *hit)
{
	int			ntuples = res ? splitdb_remote_ntuples(res) : 0;

	for (int r = 0; r < ntuples; r++)
	{
		char	   *v = splitdb_remote_value(res, r, 0);
		int64		i = v ? pg_strtoint64(v) : 0;

		if (i >= 1 && i <= n)
			hit[i] = true;
	}
}

/*
 * fast_check
 *		Check the batches of one user mapping in one pipeline on its own
 *		connection: one round trip for all of them.  Keys found are locked
 *		there until the end of the transaction; keys not found are checked
 *		again the usual way (splitdb_refcheck_flush_set), which reports
 *		them.
 */
static void
fast_check(List *batches, UserMapping *mapping)
{
	int			n = list_length(batches);
	SplitdbCheckStmt *stmts = palloc0(sizeof(SplitdbCheckStmt) * n);
	instr_time	start,
				duration;
	uint64		share;
	ListCell   *lc;

	foreach(lc, batches)
	{
		FastBatch  *b = lfirst(lc);
		SplitdbCheckStmt *st = &stmts[foreach_current_index(lc)];

		st->nparams = b->def->nkeys;
		if (list_length(b->keys) == 1)
		{
			char	  **key = ((PendingKey *) linitial(b->keys))->old;

			st->sql = splitdb_refcheck_single_key_sql(b->def);
			st->values = (const char **) key;
			splitdb_refcheck_lookup_stmt(st, b->def, SPLITDB_LOOKUP_LOCK,
										 splitdb_refcheck_one_key_columns(key, b->def->nkeys));
		}
		else
		{
			RefDef	   *def = b->def;

			/* a small batch is an "= ANY" lookup, which plans fast; else a join */
			st->sql = splitdb_refcheck_small_batch_sql(def, list_length(b->keys),
													   def->other_table, def->other_cols,
													   def->other_types, def->own_types, true, false);
			if (st->sql == NULL)
				st->sql = splitdb_refcheck_key_batch_sql(def, def->other_table,
														 def->other_cols,
														 def->other_types, def->own_types, true, false);
			st->values = splitdb_refcheck_key_literals(def, b->keys, false);
			splitdb_refcheck_lookup_stmt(st, def, SPLITDB_LOOKUP_LOCK, st->values);
		}
	}

	INSTR_TIME_SET_CURRENT(start);
	splitdb_checkconn_run(mapping, stmts, n, NULL);
	INSTR_TIME_SET_CURRENT(duration);
	INSTR_TIME_SUBTRACT(duration, start);
	share = INSTR_TIME_GET_MICROSEC(duration) / n;

	foreach(lc, batches)
	{
		FastBatch  *b = lfirst(lc);
		SplitdbCheckStmt *st = &stmts[foreach_current_index(lc)];
		int			nkeys = list_length(b->keys);
		bool	   *hit = palloc0(sizeof(bool) * (nkeys + 1));
		List	   *found = NIL;
		List	   *missing = NIL;
		ListCell   *kc;

		mark_result_hits(st->result, nkeys, hit);
		splitdb_remote_clear(st->result);
		foreach(kc, b->keys)
		{
			if (hit[foreach_current_index(kc) + 1])
				found = lappend(found, lfirst(kc));
			else
				missing = lappend(missing, lfirst(kc));
		}
		splitdb_refstats_add(b->def->counter, list_length(found), 0, 1, share);
		if (found != NIL)
			splitdb_refcheck_remember_checked(b->def, found, b->writer);
		if (missing != NIL)
			splitdb_refcheck_flush_set(b->def, missing);
	}
}

/*
 * add_batches
 *		Append to batches the keys of one end, one FastBatch per writer (in
 *		the order of their first keys), each with its writer's user mapping
 *		(splitdb_refcheck_mapping).  Returns the longer list.
 */
static List *
add_batches(List *batches, RefDef *def, List *keys)
{
	while (keys != NIL)
	{
		FastBatch  *b = palloc(sizeof(FastBatch));
		List	   *rest = NIL;
		ListCell   *lc;

		b->def = def;
		b->keys = NIL;
		b->writer = splitdb_refcheck_key_writer(linitial(keys));
		b->mapping = splitdb_refcheck_mapping(def->other_server, b->writer,
											  def->owner);
		if (splitdb_refcheck_one_writer(keys))
		{
			b->keys = keys;
			return lappend(batches, b);
		}
		foreach(lc, keys)
		{
			PendingKey *pk = lfirst(lc);

			if (splitdb_refcheck_key_writer(pk) == b->writer)
				b->keys = lappend(b->keys, pk);
			else
				rest = lappend(rest, pk);
		}
		batches = lappend(batches, b);
		keys = rest;
	}
	return batches;
}

/* the batches of fast_pass() that share the first one's user mapping, taken out */
static List *
take_mapping_group(List **batches)
{
	UserMapping *mapping = ((FastBatch *) linitial(*batches))->mapping;
	List	   *group = NIL;
	List	   *rest = NIL;
	ListCell   *lc;

	foreach(lc, *batches)
	{
		FastBatch  *b = lfirst(lc);

		if (b->mapping->umid == mapping->umid)
			group = lappend(group, b);
		else
			rest = lappend(rest, b);
	}
	*batches = rest;
	return group;
}

/*
 * splitdb_refcheck_fast_check_one
 *		fast_check() for the keys of one end, one pipeline per user mapping.
 */
void
splitdb_refcheck_fast_check_one(RefDef *def, List *keys)
{
	List	   *batches = add_batches(NIL, def, keys);

	while (batches != NIL)
	{
		List	   *group = take_mapping_group(&batches);

		fast_check(group, ((FastBatch *) linitial(group))->mapping);
	}
}

/*
 * splitdb_refcheck_fast_pass
 *		Check the queued keys that may be checked on splitdb's own
 *		connections (fast_eligible), grouped per user mapping, and take the
 *		answers to the lookups sent ahead for them.  Returns true when it
 *		checked any.
 */
bool
splitdb_refcheck_fast_pass(bool at_commit)
{
	List	   *batches = NIL;
	List	   *aheads = NIL;
	ListCell   *dc;

	/* a key sent ahead is checked by its answer, if it was queued */
	for (RefDef *def = splitdb_refcheck_defs(); def != NULL; def = def->next)
	{
		AheadKey   *a = refcheck_xact.ahead_sent != NIL ?
			splitdb_refcheck_match_ahead(def) : NULL;

		if (a != NULL)
			aheads = lappend(aheads, a);
	}
	/* in the order the keys were queued, which the first violation follows */
	foreach(dc, splitdb_refcheck_defs_in_queue_order(at_commit))
	{
		RefDef	   *def = lfirst(dc);

		for (int which = 0; which < (at_commit ? 2 : 1); which++)
		{
			PendingSet *set = which == 0 ? &def->now : &def->at_commit;
			List	   *keys = set->keys;

			if (!splitdb_refcheck_fast_eligible(def, keys))
				continue;
			memset(set, 0, sizeof(PendingSet));
			batches = add_batches(batches, def, keys);
		}
	}
	/* what no queued key matched: a row dropped, a key changed, or not queued yet */
	splitdb_refcheck_forget_ahead();
	if (batches == NIL && aheads == NIL)
		return false;

	/* the answers sent ahead are read with these pipelines */
	while (batches != NIL)
	{
		List	   *group = take_mapping_group(&batches);

		fast_check(group, ((FastBatch *) linitial(group))->mapping);
	}
	splitdb_refcheck_take_ahead_answers(aheads);
	return true;
}

/*
 * hand_over
 *		Before a write to a server through postgres_fdw: check again, on
 *		postgres_fdw's connection, the keys checked on splitdb's own, so
 *		that postgres_fdw's remote transaction holds their locks, then end
 *		splitdb's.  Also after a remote error ended splitdb's transaction,
 *		whose locks are gone.
 */
static void
hand_over(Oid serverid)
{
	List	   *mine = NIL;
	ListCell   *lc;

	foreach(lc, refcheck_xact.fast_checked)
	{
		FastChecked *fc = lfirst(lc);

		if (fc->serverid != serverid)
			continue;
		mine = lappend(mine, fc);
		refcheck_xact.fast_checked =
			foreach_delete_current(refcheck_xact.fast_checked, lc);
	}
	foreach(lc, mine)
	{
		FastChecked *fc = lfirst(lc);
		Oid			save_userid;
		int			save_sec;

		/* as the writer of the first check, so through the same mapping */
		GetUserIdAndSecContext(&save_userid, &save_sec);
		SetUserIdAndSecContext(fc->writer, save_sec | SECURITY_LOCAL_USERID_CHANGE);
		splitdb_refcheck_flush_set(fc->def, fc->keys);
		SetUserIdAndSecContext(save_userid, save_sec);
	}
	splitdb_checkconn_end_server(serverid);
}

/*
 * splitdb_refcheck_fdw_writes
 *		The transaction is about to write to a server through postgres_fdw
 *		(a shim, splitdb's own actions, any foreign table: fdwwatch.c), or
 *		a check on splitdb's connection to it failed.  From now on checks
 *		of keys there take postgres_fdw's connection, which sees those
 *		writes; the locks taken so far move there first.
 */
void
splitdb_refcheck_fdw_writes(Oid serverid)
{
	mark_modified(serverid);
	splitdb_refcheck_fdw_uses(serverid);
}

/*
 * mark_modified
 *		postgres_fdw's remote transaction on a server is about to change or
 *		lock rows there (see refcheck_xact.fdw_modified).
 */
static void
mark_modified(Oid serverid)
{
	MemoryContext old;

	if (list_member_oid(refcheck_xact.fdw_modified, serverid))
		return;
	old = MemoryContextSwitchTo(splitdb_refcheck_xact_context());
	refcheck_xact.fdw_modified = lappend_oid(refcheck_xact.fdw_modified,
											 serverid);
	MemoryContextSwitchTo(old);
}

/*
 * splitdb_refcheck_fdw_uses
 *		The transaction is about to use a server through postgres_fdw:
 *		later checks of keys there take postgres_fdw's connection, and
 *		the locks taken so far on splitdb's own move there first.
 */
void
splitdb_refcheck_fdw_uses(Oid serverid)
{
	MemoryContext old;

	if (list_member_oid(refcheck_xact.fdw_written, serverid))
		return;
	old = MemoryContextSwitchTo(splitdb_refcheck_xact_context());
	refcheck_xact.fdw_written = lappend_oid(refcheck_xact.fdw_written,
											serverid);
	MemoryContextSwitchTo(old);
	if (splitdb_checkconn_active(serverid) || splitdb_checkconn_failed(serverid))
		hand_over(serverid);
}
