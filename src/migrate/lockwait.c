/*-------------------------------------------------------------------------
 *
 * lockwait.c
 *	  One attempt at work in the source under a bounded lock wait: the
 *	  drops of a cancel and of the doctor's repairs; the locks of a
 *	  service's relations taken within one budget for them all; and the
 *	  subtransaction both attempts and other callers catch an error in.
 *
 * DROP TRIGGER and DROP TABLE wait for every open transaction that touched
 * the table, and the application's statements then queue behind them.  An
 * attempt runs the work in a subtransaction with lock_timeout set for it
 * alone; when a lock does not come in time, everything the attempt did is
 * rolled back and the caller decides whether to wait (the cutover's
 * backoff, splitdb_online_backoff()) and try again, so that no statement of
 * the application waits behind splitdb longer than one attempt.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/lockwait.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "portability/instr_time.h"
#include "storage/lmgr.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "migrate/lockwait.h"

/*
 * subxact_run
 *		Run fn(arg) in a subtransaction, released (keep) or rolled back
 *		(!keep) when fn returns; rolled back when it raises.  Returns NULL
 *		when fn returned, or a copy of its error (in the caller's memory
 *		context) when that error's SQLSTATE is catch_code, or whatever it is
 *		when catch_code is 0; any other error is raised again.
 */
static ErrorData *
subxact_run(SplitdbLockwaitWork fn, void *arg, int catch_code, bool keep)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ErrorData  *volatile why = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		fn(arg);
		if (keep)
			ReleaseCurrentSubTransaction();
		else
			RollbackAndReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		if (catch_code != 0 && edata->sqlerrcode != catch_code)
			ReThrowError(edata);
		why = edata;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return why;
}

/*
 * splitdb_subxact_catch
 *		Run fn(arg) in a subtransaction.  Returns NULL, the subtransaction
 *		released (what fn did, its locks included, now the caller's); or,
 *		everything fn did rolled back, a copy of its error (in the caller's
 *		memory context) when that error's SQLSTATE is catch_code, or
 *		whatever it is when catch_code is 0.  Any other error is raised
 *		again.  In a transaction; the caller's SPI connection outlives it.
 */
ErrorData *
splitdb_subxact_catch(SplitdbLockwaitWork fn, void *arg, int catch_code)
{
	return subxact_run(fn, arg, catch_code, true);
}

/*
 * splitdb_subxact_rehearse
 *		Run fn(arg) in a subtransaction and roll everything it did back,
 *		whether it returns or raises: whether the work would go through,
 *		without doing it.  Returns NULL, or a copy of its error (in the
 *		caller's memory context).  In a transaction; the caller's SPI
 *		connection outlives it.
 */
ErrorData *
splitdb_subxact_rehearse(SplitdbLockwaitWork fn, void *arg)
{
	return subxact_run(fn, arg, 0, false);
}

/* splitdb_lockwait_attempt()'s work: fn(arg) under its own lock_timeout */
typedef struct LockwaitWork
{
	SplitdbLockwaitWork fn;
	void	   *arg;
	int			lock_timeout_ms;
} LockwaitWork;

static void
under_lock_timeout(void *arg)
{
	LockwaitWork *w = (LockwaitWork *) arg;
	int			nest = NewGUCNestLevel();

	(void) set_config_option("lock_timeout", psprintf("%d", w->lock_timeout_ms),
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	w->fn(w->arg);
	AtEOXact_GUC(true, nest);
}

/*
 * splitdb_lockwait_attempt
 *		Run fn(arg) in a subtransaction, with lock_timeout set to
 *		lock_timeout_ms for it alone.  Returns NULL, the subtransaction
 *		released (its locks now the caller's, to the end of its
 *		transaction); or, everything fn did rolled back, a copy of the
 *		lock_not_available error (in the caller's memory context).  Any
 *		other error is raised.  In a transaction, connected to SPI when fn
 *		needs it.
 */
ErrorData *
splitdb_lockwait_attempt(SplitdbLockwaitWork fn, void *arg, int lock_timeout_ms)
{
	LockwaitWork w = {fn, arg, lock_timeout_ms};

	return splitdb_subxact_catch(under_lock_timeout, &w, ERRCODE_LOCK_NOT_AVAILABLE);
}

/*
 * splitdb_lockwait_relations
 *		Lock every relation of relids in mode, in OID order (the order of
 *		every splitdb lock on a service's relations), waiting at most
 *		budget_ms for all of them together.  Held to the end of the
 *		transaction.
 *
 * lock_timeout applies to each lock request on its own: with a blocker on
 * each of N relations, locking them one after another would wait N times
 * the timeout, while the relations locked first already hold their
 * writers.  So each request that has to wait gets what is left of the
 * budget as its lock_timeout (restored afterwards), and once nothing is
 * left the next raises lock_not_available without waiting.  A request
 * granted at once costs no setting.  In a transaction.
 */
void
splitdb_lockwait_relations(List *relids, LOCKMODE mode, int budget_ms)
{
	List	   *sorted = list_copy(relids);
	instr_time	start;
	int			nest = NewGUCNestLevel();
	ListCell   *lc;

	list_sort(sorted, list_oid_cmp);
	INSTR_TIME_SET_CURRENT(start);
	foreach(lc, sorted)
	{
		Oid			relid = lfirst_oid(lc);
		instr_time	spent;
		long		left;

		if (ConditionalLockRelationOid(relid, mode))
			continue;
		INSTR_TIME_SET_CURRENT(spent);
		INSTR_TIME_SUBTRACT(spent, start);
		left = budget_ms - (long) INSTR_TIME_GET_MILLISEC(spent);
		if (left < 1)
		{
			char	   *name = get_rel_name(relid);

			ereport(ERROR,
					(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
					 errmsg("could not lock relation \"%s\" within the %d ms the locks of the attempt may take in all",
							name ? name : "?", budget_ms),
					 errhint("Find the sessions that hold or wait for locks on relation \"%s\" (pg_locks, pg_stat_activity) and end them, or raise splitdb.cutover_lock_timeout, which sets this budget.",
							 name ? name : "?")));
		}
		(void) set_config_option("lock_timeout", psprintf("%ld", left),
								 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
								 true, 0, false);
		LockRelationOid(relid, mode);
	}
	AtEOXact_GUC(true, nest);
	list_free(sorted);
}
