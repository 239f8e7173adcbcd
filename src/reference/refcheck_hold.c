/*-------------------------------------------------------------------------
 *
 * refcheck_hold.c
 *	  Locks of cross-service reference checks held past postgres_fdw's
 *	  commit.
 *
 * A referencing row becomes visible at the local commit; until then the lock
 * on its referenced row must hold, or a concurrent delete of that row finds no
 * referencing row and leaves one without it.  splitdb's own connection ends
 * its remote transaction after the local commit, but postgres_fdw commits its
 * own at pre-commit.  So the keys found on postgres_fdw's connection are
 * locked again on splitdb's own (splitdb_refcheck_hold_locks): at pre-commit,
 * while postgres_fdw's remote transaction still holds them (FOR KEY SHARE does
 * not conflict with FOR KEY SHARE, so no gap opens); a row that only
 * postgres_fdw's remote transaction sees (written through a shim in this
 * transaction) or that it locked more strongly, once postgres_fdw has
 * committed (late_xact_callback).  A key gone by then was deleted by a
 * concurrent transaction that won the race: this one fails.  See "Locks past
 * the commit" in docs/architecture.md.
 *
 * The keys wait in refcheck_xact.fdw_checked (with the subtransaction that
 * checked them) and refcheck_xact.hold_late, for one transaction.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/refcheck_hold.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <dlfcn.h>

#include "access/xact.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "metadata/catalog.h"
#include "reference/refcheck.h"
#include "reference/refcheck_int.h"
#include "reference/refstats.h"
#include "remote/checkconn.h"
#include "remote/remote.h"

/*
 * Whether postgres_fdw was loaded in this backend before splitdb: its
 * transaction callback then runs after splitdb's late one, which therefore
 * cannot wait for postgres_fdw's commit (see late_xact_callback()).  Set
 * once, when the library loads.
 */
static bool fdw_loaded_first = false;

/* keys per statement of splitdb_refcheck_hold_locks() */
#define HOLD_CHUNK 10000

/*
 * splitdb_refcheck_remember_fdw_checked
 *		Keep the keys that a check on postgres_fdw's connection found
 *		(found[1..n], as splitdb_refcheck_positions() returns), for
 *		splitdb_refcheck_hold_locks().
 */
void
splitdb_refcheck_remember_fdw_checked(RefDef *def, List *keys, bool *found)
{
	MemoryContext old = MemoryContextSwitchTo(splitdb_refcheck_xact_context());
	HeldKeys   *hk = palloc(sizeof(HeldKeys));
	ListCell   *lc;

	hk->def = def;
	hk->writer = OidIsValid(refcheck_xact.caller_userid) ?
		refcheck_xact.caller_userid : GetUserId();
	hk->nest_level = GetCurrentTransactionNestLevel();
	hk->keys = NIL;
	foreach(lc, keys)
	{
		if (found[foreach_current_index(lc) + 1])
			hk->keys = lappend(hk->keys, lfirst(lc));
	}
	if (hk->keys != NIL)
		refcheck_xact.fdw_checked = lappend(refcheck_xact.fdw_checked, hk);
	MemoryContextSwitchTo(old);
}

/*
 * hold_sql
 *		Lock the referenced rows of a batch of keys FOR KEY SHARE; returns
 *		the positions of the keys found.  skip_locked: leave out a row that
 *		postgres_fdw's remote transaction of this one locked more strongly
 *		(waiting for it would wait for ourselves).
 */
static char *
hold_sql(RefDef *def, bool skip_locked)
{
	return psprintf("SELECT k.i FROM %s JOIN %s t ON %s FOR KEY SHARE OF t%s",
					splitdb_refcheck_keys_from(def->nkeys, false), def->other_table,
					splitdb_refcheck_key_match_as("t", def->other_cols, def->other_types,
												  def->own_types, def->nkeys, true, NULL),
					skip_locked ? " SKIP LOCKED" : "");
}

/*
 * run_holds
 *		Lock the keys of a list of HeldKeys on splitdb's own connections,
 *		one pipeline per user mapping, at most HOLD_CHUNK keys a statement.
 *		Returns the keys not found, as HeldKeys.
 */
static List *
run_holds(List *held, bool skip_locked)
{
	List	   *chunks = NIL;
	List	   *missing = NIL;
	ListCell   *lc;

	/* one statement per chunk, cut in one walk of each list */
	foreach(lc, held)
	{
		HeldKeys   *hk = lfirst(lc);
		HeldKeys   *chunk = NULL;
		ListCell   *kc;

		foreach(kc, hk->keys)
		{
			if (chunk == NULL || list_length(chunk->keys) == HOLD_CHUNK)
			{
				chunk = palloc(sizeof(HeldKeys));
				*chunk = *hk;
				chunk->keys = NIL;
				chunks = lappend(chunks, chunk);
			}
			chunk->keys = lappend(chunk->keys, lfirst(kc));
		}
	}

	while (chunks != NIL)
	{
		HeldKeys   *first = linitial(chunks);
		UserMapping *mapping = splitdb_refcheck_mapping(first->def->other_server,
														first->writer,
														first->def->owner);
		List	   *group = NIL;
		List	   *rest = NIL;
		SplitdbCheckStmt *stmts;

		foreach(lc, chunks)
		{
			HeldKeys   *hk = lfirst(lc);

			if (splitdb_refcheck_mapping(hk->def->other_server, hk->writer,
										 hk->def->owner)->umid == mapping->umid)
				group = lappend(group, hk);
			else
				rest = lappend(rest, hk);
		}
		stmts = palloc0(sizeof(SplitdbCheckStmt) * list_length(group));
		foreach(lc, group)
		{
			HeldKeys   *hk = lfirst(lc);
			SplitdbCheckStmt *st = &stmts[foreach_current_index(lc)];

			st->sql = hold_sql(hk->def, skip_locked);
			st->nparams = hk->def->nkeys;
			st->values = splitdb_refcheck_key_literals(hk->def, hk->keys, false);
			splitdb_refcheck_lookup_stmt(st, hk->def, SPLITDB_LOOKUP_LOCK |
										 (skip_locked ? SPLITDB_LOOKUP_SKIP_LOCKED : 0),
										 st->values);
		}
		splitdb_checkconn_run(mapping, stmts, list_length(group), NULL);
		foreach(lc, group)
		{
			HeldKeys   *hk = lfirst(lc);
			SplitdbCheckStmt *st = &stmts[foreach_current_index(lc)];
			int			n = list_length(hk->keys);
			bool	   *hit = palloc0(sizeof(bool) * (n + 1));
			HeldKeys   *miss = NULL;
			ListCell   *kc;

			splitdb_refcheck_mark_hits(splitdb_remote_result_rows(st->result), n,
									   hit);
			splitdb_remote_clear(st->result);
			splitdb_refstats_add(hk->def->counter, 0, 0, 1, 0);
			foreach(kc, hk->keys)
			{
				if (hit[foreach_current_index(kc) + 1])
					continue;
				if (miss == NULL)
				{
					miss = palloc(sizeof(HeldKeys));
					*miss = *hk;
					miss->keys = NIL;
					missing = lappend(missing, miss);
				}
				miss->keys = lappend(miss->keys, lfirst(kc));
			}
		}
		chunks = rest;
	}
	return missing;
}

/*
 * still_carried
 *		The keys of hk that a row of the referencing end still carries, as
 *		the owner of its relation: a row deleted or changed later in the
 *		transaction (by a CASCADE of its own delete of the referenced row,
 *		say) needs no lock any more.
 */
static List *
still_carried(HeldKeys *hk)
{
	RefDef	   *def = hk->def;
	Oid			save_userid;
	int			save_sec;
	Oid			prev_caller = refcheck_xact.caller_userid;
	int			nest;
	bool	   *carried;
	List	   *keys = NIL;
	ListCell   *lc;

	GetUserIdAndSecContext(&save_userid, &save_sec);
	refcheck_xact.caller_userid = hk->writer;
	SetUserIdAndSecContext(def->owner,
						   save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_NOFORCE_RLS);
	nest = splitdb_refcheck_pin_search_path();
	splitdb_spi_connect();
	carried = splitdb_refcheck_positions(def, hk->keys, false, false, false);
	SPI_finish();
	AtEOXact_GUC(true, nest);
	SetUserIdAndSecContext(save_userid, save_sec);
	refcheck_xact.caller_userid = prev_caller;

	foreach(lc, hk->keys)
	{
		if (carried[foreach_current_index(lc) + 1])
			keys = lappend(keys, lfirst(lc));
	}
	return keys;
}

/*
 * splitdb_refcheck_hold_locks
 *		At pre-commit, before postgres_fdw commits: lock again on splitdb's
 *		own connections the keys found on postgres_fdw's; what is not found
 *		there yet, and still carried by a row here, waits for
 *		late_xact_callback().
 */
void
splitdb_refcheck_hold_locks(void)
{
	MemoryContext old;
	List	   *missing;
	ListCell   *lc;

	if (refcheck_xact.fdw_checked == NIL)
		return;
	missing = run_holds(refcheck_xact.fdw_checked, true);
	refcheck_xact.fdw_checked = NIL;
	foreach(lc, missing)
	{
		HeldKeys   *hk = lfirst(lc);

		hk->keys = still_carried(hk);
		if (hk->keys == NIL)
			continue;
		old = MemoryContextSwitchTo(splitdb_refcheck_xact_context());
		refcheck_xact.hold_late = lappend(refcheck_xact.hold_late, hk);
		MemoryContextSwitchTo(old);
	}
}

/*
 * report_not_held
 *		A key checked earlier in the transaction is gone at commit: a
 *		concurrent transaction deleted or changed the referenced row once
 *		postgres_fdw had committed, and won the race.
 */
static void
report_not_held(HeldKeys *hk)
{
	RefDef	   *def = hk->def;
	PendingKey *pk = linitial(hk->keys);

	splitdb_refstats_add(def->counter, 0, 1, 0, 0);
	ereport(ERROR,
			(errcode(IsolationUsesXactSnapshot() ? ERRCODE_T_R_SERIALIZATION_FAILURE :
					 ERRCODE_FOREIGN_KEY_VIOLATION),
			 errmsg("insert or update on table \"%s\" violates foreign key constraint \"%s\"",
					splitdb_refcheck_own_name(def), def->conname),
			 splitdb_refcheck_shows_key(def) ?
			 errdetail("Key %s=%s is no longer present in table \"%s\" of database \"%s\": a concurrent transaction deleted or changed it before this one committed.",
					   splitdb_refcheck_key_columns_text(def->own_cols, def->nkeys),
					   splitdb_refcheck_key_values_text(pk->old, def->nkeys),
					   splitdb_refcheck_table_name(def->other_table),
					   def->other_database) :
			 errdetail("Key is no longer present in table \"%s\" of database \"%s\": a concurrent transaction deleted or changed it before this one committed.",
					   splitdb_refcheck_table_name(def->other_table),
					   def->other_database),
			 errhint("The referenced table is in another database since the split; insert the referenced row there first, or retry the transaction."),
			 splitdb_refcheck_errtable(def, true)));
}

/*
 * late_xact_callback
 *		At pre-commit, after postgres_fdw has committed its remote
 *		transactions: lock what splitdb_refcheck_hold_locks() could not,
 *		now that those rows are committed, or fail the commit.
 *
 * Transaction callbacks run newest first.  This one is registered when
 * the library loads, before postgres_fdw's (registered with its first
 * connection), so it runs after it; unless postgres_fdw was loaded first,
 * in which case a row that only its remote transaction could see cannot be
 * held, and the commit is refused rather than left unprotected.
 */
static void
late_xact_callback(XactEvent event, void *arg)
{
	List	   *late = refcheck_xact.hold_late;
	List	   *missing;

	if ((event != XACT_EVENT_PRE_COMMIT && event != XACT_EVENT_PARALLEL_PRE_COMMIT) ||
		late == NIL)
		return;
	refcheck_xact.hold_late = NIL;

	/*
	 * postgres_fdw has not committed yet: a key not found is one that only
	 * its remote transaction sees (the writes of the transaction during
	 * which splitdb loaded went unseen, so refcheck_xact.fdw_modified cannot
	 * tell).
	 */
	if (fdw_loaded_first)
	{
		HeldKeys   *hk = linitial(late);
		RefDef	   *def = hk->def;
		PendingKey *pk = linitial(hk->keys);

		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot hold the lock on key %s=%s of table \"%s\" past the commit",
						splitdb_refcheck_key_columns_text(def->other_cols, def->nkeys),
						splitdb_refcheck_key_values_text(pk->old, def->nkeys),
						splitdb_refcheck_table_name(def->other_table)),
				 errdetail("This transaction wrote or locked that row through postgres_fdw, which this session loaded before splitdb, so postgres_fdw commits after splitdb's last check."),
				 errhint("Add splitdb to shared_preload_libraries or session_preload_libraries, or write the referenced row in a transaction of its own.")));
	}
	missing = run_holds(late, false);
	if (missing != NIL)
		report_not_held(linitial(missing));
}

/*
 * splitdb_refcheck_hold_init
 *		From _PG_init: the transaction callback that must run after
 *		postgres_fdw's (see late_xact_callback).
 */
void
splitdb_refcheck_hold_init(void)
{
	char	   *path;

	/* in the postmaster, no backend can have used postgres_fdw yet */
	if (!process_shared_preload_libraries_in_progress)
	{
		path = psprintf("%s/postgres_fdw%s", pkglib_path, DLSUFFIX);
		if (dlopen(path, RTLD_NOW | RTLD_NOLOAD) != NULL)
			fdw_loaded_first = true;
		pfree(path);
	}
	RegisterXactCallback(late_xact_callback, NULL);
}
