/*-------------------------------------------------------------------------
 *
 * ownerrights.c
 *	  splitdb.owner_rights: in the sessions where splitdb writes and builds
 *	  as a superuser, a function that a role without superuser owns runs
 *	  with its owner's rights, in a security-restricted operation.
 *
 * splitdb's workers run as the superuser who called splitdb_migrate(), and
 * reach the sibling as that role's user mapping (a superuser too).  There
 * they copy rows into tables, replay rows, build indexes and validate
 * constraints: PostgreSQL then evaluates the tables' CHECK constraints,
 * index expressions and predicates, generated columns and their types'
 * domain checks with the current user's rights.  A copy in the sibling is
 * owned by that superuser until the cutover, so even the index builds,
 * which PostgreSQL runs as the table's owner, run as a superuser there;
 * and the rollback's replays write the archived originals as the worker.
 * A table owner's function in any of those places would run as a
 * superuser, and could make its owner one (test/t/033_owner_code.pl).
 *
 * With splitdb.owner_rights on, such a function (any function whose owner
 * is not a superuser, in a trusted language: its owner wrote the body) runs
 * as its owner whenever a superuser calls it, as
 * if it were SECURITY DEFINER, and inside a security-restricted operation,
 * as PostgreSQL runs an index expression during a build: it cannot SET
 * ROLE back, nor create temporary objects, and the settings it changes
 * (search_path, datestyle, ...) are undone when it returns, so that the
 * statements that splitdb runs next in the session read no name and no
 * value differently.  It can do nothing its owner could not do.  Its owner
 * wrote it, so running it with these rights grants nobody anything; a
 * function that a superuser owns or wrote (C and the other untrusted
 * languages), and every call by a role that is not a superuser, is left
 * alone.
 *
 * The setting is PGC_SUSET, so that code that runs as its owner cannot turn
 * it off for the calls that follow in the same session.  splitdb's
 * background workers set it (splitdb_worker_pin_settings and the
 * rollback's), and so does every session that splitdb opens in a sibling
 * as a superuser (remote.c, setup_session).
 *
 * Invariants:
 * - The hook only ever lowers the rights of a call: it changes the user
 *   only from a superuser to the function's owner.
 * - Every switch is undone at the call's end or abort (fmgr_security_definer
 *   calls the hook with FHET_END or FHET_ABORT), in last-in first-out
 *   order; an abort of the transaction resets the user anyway.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/metadata/ownerrights.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/transam.h"
#include "catalog/pg_language.h"
#include "catalog/pg_proc.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "metadata/ownerrights.h"
#include "splitdb.h"

bool		splitdb_owner_rights = false;

static needs_fmgr_hook_type prev_needs_fmgr_hook = NULL;
static fmgr_hook_type prev_fmgr_hook = NULL;

/* the user and context each call in progress found, innermost last */
typedef struct SavedUser
{
	Oid			userid;
	int			sec;
	bool		switched;
	int			nestlevel;		/* GUC nest level of the call, if switched */
} SavedUser;

static SavedUser *saved = NULL;
static int	nsaved = 0;
static int	maxsaved = 0;

/*
 * function_owner
 *		The owner of function fn_oid, or InvalidOid when it has none that
 *		the hook must act for: a function of PostgreSQL's own, one a
 *		superuser owns, or one in a language that is not trusted (C, internal,
 *		plpython3u, ...), whose body only a superuser could have written and
 *		its owner cannot replace: the functions of a trusted extension that a
 *		role without superuser created (citext's, for example), which a copy
 *		or an index build may call for every row, are left alone.
 */
static Oid
function_owner(Oid fn_oid)
{
	HeapTuple	tuple;
	Form_pg_proc proc;
	Oid			owner;
	Oid			lang;
	bool		trusted = false;

	if (fn_oid < FirstNormalObjectId)
		return InvalidOid;
	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn_oid));
	if (!HeapTupleIsValid(tuple))
		return InvalidOid;
	proc = (Form_pg_proc) GETSTRUCT(tuple);
	owner = proc->proowner;
	lang = proc->prolang;
	ReleaseSysCache(tuple);
	if (superuser_arg(owner))
		return InvalidOid;
	tuple = SearchSysCache1(LANGOID, ObjectIdGetDatum(lang));
	if (HeapTupleIsValid(tuple))
	{
		trusted = ((Form_pg_language) GETSTRUCT(tuple))->lanpltrusted;
		ReleaseSysCache(tuple);
	}
	return trusted ? owner : InvalidOid;
}

/*
 * needs_owner_rights
 *		needs_fmgr_hook: with splitdb.owner_rights on, the functions that a
 *		role without superuser owns go through owner_rights_hook (and are
 *		not inlined by the planner, which asks the same).
 */
static bool
needs_owner_rights(Oid fn_oid)
{
	if (prev_needs_fmgr_hook && prev_needs_fmgr_hook(fn_oid))
		return true;
	return splitdb_owner_rights && OidIsValid(function_owner(fn_oid));
}

/* push the user and context in force, with whether this call changes them */
static SavedUser *
push_saved(Oid userid, int sec, bool switched)
{
	if (nsaved == maxsaved)
	{
		int			n = maxsaved == 0 ? 16 : maxsaved * 2;

		saved = saved == NULL
			? MemoryContextAlloc(TopMemoryContext, n * sizeof(SavedUser))
			: repalloc(saved, n * sizeof(SavedUser));
		maxsaved = n;
	}
	saved[nsaved].userid = userid;
	saved[nsaved].sec = sec;
	saved[nsaved].switched = switched;
	saved[nsaved].nestlevel = 0;
	return &saved[nsaved++];
}

/*
 * owner_rights_hook
 *		fmgr_hook: at the start of a call by a superuser, with the setting
 *		on, become the function's owner in a security-restricted operation;
 *		at its end or abort, become again who called.
 */
static void
owner_rights_hook(FmgrHookEventType event, FmgrInfo *flinfo, Datum *private)
{
	if (prev_fmgr_hook)
		prev_fmgr_hook(event, flinfo, private);

	if (event == FHET_START)
	{
		SavedUser  *s;
		Oid			userid;
		int			sec;
		Oid			owner = InvalidOid;

		GetUserIdAndSecContext(&userid, &sec);
		if (splitdb_owner_rights && superuser_arg(userid))
			owner = function_owner(flinfo->fn_oid);
		s = push_saved(userid, sec, OidIsValid(owner));
		if (OidIsValid(owner))
		{
			/* what the call sets goes with it, as in an index build */
			s->nestlevel = NewGUCNestLevel();
			SetUserIdAndSecContext(owner, sec | SECURITY_LOCAL_USERID_CHANGE |
								   SECURITY_RESTRICTED_OPERATION);
		}
	}
	else if (nsaved > 0)
	{
		/* FHET_END, FHET_ABORT (whose (sub)transaction abort undoes the settings) */
		SavedUser  *s = &saved[--nsaved];

		if (s->switched && event == FHET_END)
			AtEOXact_GUC(false, s->nestlevel);
		if (s->switched)
			SetUserIdAndSecContext(s->userid, s->sec);
	}
}

/*
 * splitdb_owner_rights_init
 *		From _PG_init: define splitdb.owner_rights and install the hooks.
 */
void
splitdb_owner_rights_init(void)
{
	DefineCustomBoolVariable(SPLITDB_OWNER_RIGHTS_GUC,
							 "Runs functions that no superuser owns with their owner's rights when a superuser calls them.",
							 "In a security-restricted operation, as PostgreSQL runs an index expression. "
							 "splitdb's workers, and the sessions it opens in a sibling as a superuser, turn it "
							 "on: the constraints, index expressions, generated columns and domain checks of the "
							 "tables they write then run nothing of a table owner's with a superuser's rights.",
							 &splitdb_owner_rights,
							 false,
							 PGC_SUSET,
							 0,
							 NULL,
							 NULL,
							 NULL);
	prev_needs_fmgr_hook = needs_fmgr_hook;
	needs_fmgr_hook = needs_owner_rights;
	prev_fmgr_hook = fmgr_hook;
	fmgr_hook = owner_rights_hook;
}
