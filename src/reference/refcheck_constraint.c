/*-------------------------------------------------------------------------
 *
 * refcheck_constraint.c
 *	  SET CONSTRAINTS for the deferred checks of shims.
 *
 * A deferrable reference has constraint triggers on tables, so PostgreSQL
 * itself fires their events at commit (or at SET CONSTRAINTS ...
 * IMMEDIATE).  Shims are foreign tables, which cannot have constraint
 * triggers: their deferred keys wait for commit in a queue of their own
 * (RefDef.at_commit), and the SET CONSTRAINTS of the transaction, which
 * fdwwatch.c passes on once PostgreSQL ran it, decide which keys wait.
 * The statements are kept, newest first, in refcheck_xact.constraints_set;
 * each is dropped with the subtransaction it ran in (refcheck_xact.c), as
 * PostgreSQL restores its own state then.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/refcheck_constraint.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/trigger.h"
#include "nodes/parsenodes.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "reference/refcheck_int.h"

/*
 * constraints_set_matches
 *		Whether a SET CONSTRAINTS entry names a reference end's constraint.
 */
static bool
constraints_set_matches(ConstraintsSet *cs, RefDef *def)
{
	char	   *nspname;

	if (cs->conname == NULL)
		return true;
	if (strcmp(cs->conname, def->conname) != 0)
		return false;
	if (cs->schemaname == NULL)
		return true;
	nspname = get_namespace_name(get_rel_namespace(def->relid));
	return nspname != NULL && strcmp(cs->schemaname, nspname) == 0;
}

/*
 * splitdb_refcheck_shim_deferred
 *		Whether the checks of a shim end of a deferrable reference wait for
 *		commit now: as the newest SET CONSTRAINTS that names it says, else
 *		as the reference was declared.
 */
bool
splitdb_refcheck_shim_deferred(RefDef *def)
{
	ListCell   *lc;

	foreach(lc, refcheck_xact.constraints_set)
	{
		ConstraintsSet *cs = lfirst(lc);

		if (constraints_set_matches(cs, def))
			return cs->deferred;
	}
	return def->initially_deferred;
}

/*
 * splitdb_refcheck_constraints_set
 *		After PostgreSQL ran SET CONSTRAINTS (fdwwatch.c's utility hook,
 *		through refcheck.c's callback).
 *
 * PostgreSQL has changed the deferral of the constraint triggers of tables,
 * and for IMMEDIATE fired the events they had deferred, whose keys are now
 * queued for the statement.  Here the same SET CONSTRAINTS reaches the
 * shims: it is remembered for the rest of the transaction, and for
 * IMMEDIATE the keys their ends had deferred join the statement's queue.
 * Then, as PostgreSQL checks a constraint made immediate at once, every
 * queued key is checked: a violation is the error of SET CONSTRAINTS.
 */
void
splitdb_refcheck_constraints_set(ConstraintsSetStmt *stmt)
{
	MemoryContext old = MemoryContextSwitchTo(splitdb_refcheck_xact_context());
	List	   *names = stmt->constraints;
	bool		pending = false;
	bool		pushed = false;
	ListCell   *lc;

	if (names == NIL)
		names = list_make1(NULL);
	foreach(lc, names)
	{
		RangeVar   *rv = lfirst(lc);
		ConstraintsSet *cs = palloc0(sizeof(ConstraintsSet));

		cs->schemaname = rv && rv->schemaname ? pstrdup(rv->schemaname) : NULL;
		cs->conname = rv ? pstrdup(rv->relname) : NULL;
		cs->deferred = stmt->deferred;
		cs->nest_level = GetCurrentTransactionNestLevel();
		refcheck_xact.constraints_set = lcons(cs,
											  refcheck_xact.constraints_set);
	}
	MemoryContextSwitchTo(old);

	for (RefDef *def = splitdb_refcheck_defs(); def != NULL; def = def->next)
	{
		if (!stmt->deferred && def->at_commit.keys != NIL &&
			!splitdb_refcheck_shim_deferred(def))
		{
			ListCell   *kc;

			/* the keys deferred so far are checked now, in their order */
			foreach(kc, def->at_commit.keys)
			{
				PendingKey *pk = lfirst(kc);

				splitdb_refcheck_add_pending(def, pk->kind, pk->old, pk->new,
											 false, pk->writer);
			}
			memset(&def->at_commit, 0, sizeof(PendingSet));
		}
		if (def->now.keys != NIL)
			pending = true;
	}
	if (!pending)
		return;
	/* as PostgreSQL, take a snapshot only when something is checked */
	if (!ActiveSnapshotSet())
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		pushed = true;
	}
	while (splitdb_refcheck_flush_all(false))
		;
	if (pushed)
		PopActiveSnapshot();
}
