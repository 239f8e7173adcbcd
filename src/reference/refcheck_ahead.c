/*-------------------------------------------------------------------------
 *
 * refcheck_ahead.c
 *	  Lookups of referenced keys sent ahead by the BEFORE row trigger of
 *	  a referencing end.
 *
 * The BEFORE trigger sends the lookup of a row's key to the parent's
 * database on splitdb's own connection (checkconn.c) while this server
 * writes the row; the statement's check then takes the answer instead of a
 * round trip (splitdb_refcheck_fast_pass).  At most one lookup per end is
 * out at a time, remembered in refcheck_xact.ahead_sent for the
 * transaction; checkconn.c drops the answers no one took at its end, and
 * a subtransaction that aborts forgets them (splitdb_refcheck_forget_ahead).
 * An answer is only a guess: it is used for a key the statement queued and
 * found, else the key is checked as usual.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/refcheck_ahead.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "reference/refcheck_int.h"
#include "reference/refstats.h"
#include "remote/checkconn.h"
#include "remote/remote.h"

/* the lookup sent ahead for an end, or NULL */
static AheadSent *
find_ahead_sent(RefDef *def)
{
	ListCell   *lc;

	foreach(lc, refcheck_xact.ahead_sent)
	{
		AheadSent  *as = lfirst(lc);

		if (as->reference_id == def->reference_id && as->side == def->side &&
			as->relid == def->relid)
			return as;
	}
	return NULL;
}

/*
 * trigger_fires
 *		Whether a trigger fires in this session, as PostgreSQL decides
 *		(session_replication_role and ENABLE/DISABLE TRIGGER).
 */
static bool
trigger_fires(Trigger *tg)
{
	if (SessionReplicationRole == SESSION_REPLICATION_ROLE_REPLICA)
		return tg->tgenabled == TRIGGER_FIRES_ON_REPLICA ||
			tg->tgenabled == TRIGGER_FIRES_ALWAYS;
	return tg->tgenabled == TRIGGER_FIRES_ON_ORIGIN ||
		tg->tgenabled == TRIGGER_FIRES_ALWAYS;
}

/*
 * ahead_triggers
 *		Copies of the relation's BEFORE ROW triggers that call fn_oid for
 *		the event and fire in this session; their number in *n.  Copies,
 *		since the relcache entry's trigger descriptor is rebuilt, and the
 *		old one freed, when an invalidation of the relation is processed,
 *		which the catalog reads of the definitions and user mappings that
 *		follow may do (the executor keeps a copy of its own for the same
 *		reason).  Only what splitdb_refcheck_get_def_for() reads is copied.
 */
static Trigger *
ahead_triggers(TriggerData *td, Oid fn_oid, int *n)
{
	TriggerDesc *trigdesc = td->tg_relation->trigdesc;
	int			event = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ?
		TRIGGER_TYPE_UPDATE : TRIGGER_TYPE_INSERT;
	Trigger    *copies = palloc0(sizeof(Trigger) * Max(trigdesc->numtriggers, 1));

	*n = 0;
	for (int i = 0; i < trigdesc->numtriggers; i++)
	{
		Trigger    *tg = &trigdesc->triggers[i];
		Trigger    *c = &copies[*n];

		if (tg->tgfoid != fn_oid || !trigger_fires(tg) ||
			!TRIGGER_TYPE_MATCHES(tg->tgtype, TRIGGER_TYPE_ROW, TRIGGER_TYPE_BEFORE, event))
			continue;
		c->tgoid = tg->tgoid;
		c->tgname = pstrdup(tg->tgname);
		c->tgfoid = tg->tgfoid;
		c->tgtype = tg->tgtype;
		c->tgenabled = tg->tgenabled;
		c->tgnargs = tg->tgnargs;
		c->tgargs = palloc(sizeof(char *) * Max(tg->tgnargs, 1));
		for (int a = 0; a < tg->tgnargs; a++)
			c->tgargs[a] = pstrdup(tg->tgargs[a]);
		(*n)++;
	}
	return copies;
}

/*
 * ahead_key
 *		The key of the row for an end whose lookup may go ahead: a
 *		referencing end, with its parent in another database reachable on
 *		splitdb's own connection, whose key has no NULL (those the AFTER
 *		trigger decides) and, for an update, changed.  NULL when it may
 *		not.
 */
static char **
ahead_key(RefDef *def, TriggerData *td)
{
	TupleTableSlot *slot = td->tg_trigslot;
	char	  **texts;

	if (def->side != 'c' || def->shim_deferrable || find_ahead_sent(def) != NULL ||
		splitdb_refcheck_origin_skips(def) || !splitdb_refcheck_checkconn_usable(def))
		return NULL;
	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
	{
		slot = td->tg_newslot;
		if (splitdb_refcheck_keys_equal(def, td->tg_trigslot, slot))
			return NULL;
	}
	texts = palloc(sizeof(char *) * def->nkeys);
	return splitdb_refcheck_key_texts(def, slot, texts) == 0 ? texts : NULL;
}

/*
 * splitdb_refcheck_send_ahead
 *		BEFORE ROW trigger of a referencing end: send the lookups of the
 *		row's keys to the parents' databases now, on splitdb's own
 *		connections, so that the other servers find and lock the rows
 *		while this one writes its own; splitdb_refcheck_fast_pass() takes
 *		the answers.  The
 *		first such trigger of a row sends for every end of the relation
 *		whose BEFORE trigger fires (fn_oid is the trigger function): one
 *		pipeline and one sync per connection.  At most one key per end is
 *		out at a time, so a statement of many rows sends only its first.
 *
 * The keys sent are only a guess: a later BEFORE trigger may change them,
 * or drop the row.  splitdb_refcheck_fast_pass() uses an answer only for
 * a key the
 * statement queued, and only when the row was found; else the key is
 * checked as usual.  A guess that was wrong leaves a parent row locked FOR
 * KEY SHARE until commit, which only makes a concurrent delete of it wait.
 */
void
splitdb_refcheck_send_ahead(TriggerData *td, Oid fn_oid)
{
	Trigger    *ends;
	int			nends;
	int			n = 0;
	RefDef	  **defs;
	char	 ***keys;
	UserMapping **mappings;
	bool	   *done;
	SplitdbCheckStmt *stmts;
	int		   *which;
	uint64	   *ids;
	MemoryContext old;

	/* an earlier BEFORE trigger of the row sent for this end too */
	if (td->tg_relation->trigdesc == NULL ||
		find_ahead_sent(splitdb_refcheck_get_def(td)) != NULL)
		return;
	ends = ahead_triggers(td, fn_oid, &nends);
	defs = palloc(sizeof(RefDef *) * Max(nends, 1));
	keys = palloc(sizeof(char **) * Max(nends, 1));
	mappings = palloc(sizeof(UserMapping *) * Max(nends, 1));
	for (int i = 0; i < nends; i++)
	{
		Trigger    *tg = &ends[i];
		RefDef	   *def;

		def = splitdb_refcheck_get_def_for(tg, td->tg_relation);
		if ((keys[n] = ahead_key(def, td)) == NULL)
			continue;
		defs[n] = def;
		mappings[n] = splitdb_refcheck_mapping(def->other_server, GetUserId(),
											   def->owner);
		n++;
	}

	/* one pipeline per connection */
	done = palloc0(sizeof(bool) * Max(n, 1));
	stmts = palloc0(sizeof(SplitdbCheckStmt) * Max(n, 1));
	which = palloc(sizeof(int) * Max(n, 1));
	ids = palloc(sizeof(uint64) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		int			m = 0;

		if (done[i])
			continue;
		for (int j = i; j < n; j++)
		{
			if (done[j] || mappings[j]->umid != mappings[i]->umid)
				continue;
			done[j] = true;
			stmts[m].sql = splitdb_refcheck_single_key_sql(defs[j]);
			stmts[m].nparams = defs[j]->nkeys;
			stmts[m].values = (const char **) keys[j];
			splitdb_refcheck_lookup_stmt(&stmts[m], defs[j], SPLITDB_LOOKUP_LOCK,
										 splitdb_refcheck_one_key_columns(keys[j],
																		  defs[j]->nkeys));
			which[m++] = j;
		}
		splitdb_checkconn_send_ahead(mappings[i], stmts, m, ids);

		/* what went out, remembered for the transaction */
		old = MemoryContextSwitchTo(splitdb_refcheck_xact_context());
		for (int k = 0; k < m; k++)
		{
			RefDef	   *def = defs[which[k]];
			AheadSent  *as;

			if (ids[k] == 0)
				continue;
			as = palloc(sizeof(AheadSent));
			as->reference_id = def->reference_id;
			as->side = def->side;
			as->relid = def->relid;
			as->id = ids[k];
			as->ident = splitdb_refcheck_key_ident(PENDING_CHECK, keys[which[k]],
												   def->nkeys);
			refcheck_xact.ahead_sent = lappend(refcheck_xact.ahead_sent, as);
		}
		MemoryContextSwitchTo(old);
	}
}

/* free an entry of refcheck_xact.ahead_sent */
static void
free_ahead_sent(AheadSent *as)
{
	pfree(as->ident);
	pfree(as);
}

/* the lookups sent ahead are not wanted: their answers are dropped unread */
void
splitdb_refcheck_forget_ahead(void)
{
	ListCell   *lc;

	foreach(lc, refcheck_xact.ahead_sent)
	{
		AheadSent  *as = lfirst(lc);

		splitdb_checkconn_forget_ahead(as->id);
		free_ahead_sent(as);
	}
	list_free(refcheck_xact.ahead_sent);
	refcheck_xact.ahead_sent = NIL;
}

/*
 * splitdb_refcheck_match_ahead
 *		The queued key of an end whose lookup went out ahead, taken out of
 *		its queue, or NULL: then the answer is not wanted.
 */
AheadKey *
splitdb_refcheck_match_ahead(RefDef *def)
{
	AheadSent  *as = find_ahead_sent(def);
	PendingKey *pk;
	AheadKey   *a;
	MemoryContext old;

	if (as == NULL || def->relayed ||
		!splitdb_refcheck_fast_eligible(def, def->now.keys) ||
		(pk = splitdb_refcheck_take_queued(&def->now, as->ident)) == NULL)
		return NULL;
	a = palloc(sizeof(AheadKey));
	a->def = def;
	a->pk = pk;
	a->id = as->id;
	old = MemoryContextSwitchTo(splitdb_refcheck_xact_context());
	refcheck_xact.ahead_sent = list_delete_ptr(refcheck_xact.ahead_sent, as);
	MemoryContextSwitchTo(old);
	free_ahead_sent(as);
	return a;
}

/*
 * splitdb_refcheck_take_ahead_answers
 *		The answers to the lookups sent ahead for queued keys: a key found
 *		is locked there, and remembered like the keys of refcheck_fast.c; a
 *		key not found (or whose answer was lost) is checked again the usual
 *		way, which reports it.
 */
void
splitdb_refcheck_take_ahead_answers(List *aheads)
{
	ListCell   *lc;

	foreach(lc, aheads)
	{
		AheadKey   *a = lfirst(lc);
		instr_time	start,
					duration;
		PGresult   *res;
		bool		found;

		INSTR_TIME_SET_CURRENT(start);
		res = splitdb_checkconn_take_ahead(a->id, NULL);
		INSTR_TIME_SET_CURRENT(duration);
		INSTR_TIME_SUBTRACT(duration, start);
		found = (res != NULL && splitdb_remote_ntuples(res) > 0);
		splitdb_remote_clear(res);
		if (found)
		{
			splitdb_refstats_add(a->def->counter, 1, 0, 1,
								 INSTR_TIME_GET_MICROSEC(duration));
			splitdb_refcheck_remember_checked(a->def, list_make1(a->pk),
											  splitdb_refcheck_key_writer(a->pk));
		}
		else
			splitdb_refcheck_flush_set(a->def, list_make1(a->pk));
	}
}
