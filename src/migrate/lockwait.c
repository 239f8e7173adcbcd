/*-------------------------------------------------------------------------
 *
 * lockwait.c
 *	  One attempt at work in the source under a bounded lock wait: the
 *	  drops of a cancel and of the doctor's repairs.
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
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "migrate/lockwait.h"

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
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ErrorData  *volatile why = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		int			nest = NewGUCNestLevel();

		(void) set_config_option("lock_timeout", psprintf("%d", lock_timeout_ms),
								 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
								 true, 0, false);
		fn(arg);
		AtEOXact_GUC(true, nest);
		ReleaseCurrentSubTransaction();
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
		if (edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
			ReThrowError(edata);
		why = edata;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return why;
}
