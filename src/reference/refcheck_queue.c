/*-------------------------------------------------------------------------
 *
 * refcheck_queue.c
 *	  The queues of keys that the row triggers of cross-service
 *	  references fill.
 *
 * Row triggers only queue: the referencing ("child") end queues the new key
 * of an inserted or updated row, the referenced ("parent") end queues the
 * old key of a deleted row and the old and new keys of an updated one.
 * Duplicate keys are queued once.  The queue is worked off by the statement
 * trigger splitdb.reference_flush() at the end of every statement, and at
 * commit for deferred references, with one statement per reference: the
 * keys travel as arrays and one remote round trip checks, locks or acts on
 * all of them (refcheck_check.c).  A deferrable reference has constraint
 * triggers on tables, so PostgreSQL itself fires its events at commit (or
 * at SET CONSTRAINTS ... IMMEDIATE); shims are foreign tables, which cannot
 * have constraint triggers, so their deferred keys wait for commit in a
 * queue of their own (refcheck_constraint.c).
 *
 * Keys are kept in text form, as the other database reads them back: with
 * the output settings pinned for the types whose text follows the session's
 * settings.  The queues are part of their RefDef and live in the
 * transaction's memory (refcheck_xact.c), which empties them at its end.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/refcheck_queue.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_collation.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/float.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/typcache.h"

#include "reference/origin.h"
#include "reference/refcheck_int.h"

/*
 * splitdb_refcheck_origin_skips
 *		True when the write comes from the database that enforces this
 *		reference for it (see refcheck_relay.c): only a session that proved
 *		its origin (origin.c) is skipped.
 */
bool
splitdb_refcheck_origin_skips(RefDef *def)
{
	const char *origin = splitdb_origin_proven();

	if (origin == NULL)
		return false;
	if (strcmp(origin, "source") == 0 && strcmp(def->here, "source") != 0 &&
		!def->always)
		return true;
	return strcmp(origin, def->other_location) == 0;
}

/*
 * splitdb_refcheck_pin_output
 *		Make the text form of keys one that any server reads back as the same
 *		value, whatever the session's settings: DateStyle ISO (a day-month
 *		order would otherwise be read as month-day there), IntervalStyle
 *		postgres, floats in their shortest exact form (extra_float_digits
 *		at least 1).  With the default settings nothing is set, so a row
 *		pays only for the nest level.  Returns the GUC nest level to give to
 *		AtEOXact_GUC().
 */
int
splitdb_refcheck_pin_output(void)
{
	int			nest = NewGUCNestLevel();

	if (DateStyle != USE_ISO_DATES)
		(void) set_config_option("datestyle", "ISO", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	if (IntervalStyle != INTSTYLE_POSTGRES)
		(void) set_config_option("intervalstyle", "postgres", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	if (extra_float_digits < 1)
		(void) set_config_option("extra_float_digits", "1", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	return nest;
}

/*
 * splitdb_refcheck_key_texts
 *		The key of a row in text form, through the output functions looked
 *		up once per definition (RefDef.outfinfo).  Returns the number of NULL
 *		columns; texts[i] is NULL for those.  The texts are palloc'd in the
 *		current memory context: the row trigger's, which PostgreSQL resets
 *		after each row.
 */
int
splitdb_refcheck_key_texts(RefDef *def, TupleTableSlot *slot, char **texts)
{
	int			nnull = 0;
	int			nest = def->pin_output ? splitdb_refcheck_pin_output() : -1;

	for (int i = 0; i < def->nkeys; i++)
	{
		bool		isnull;
		Datum		d = slot_getattr(slot, def->attnums[i], &isnull);

		if (isnull)
		{
			texts[i] = NULL;
			nnull++;
		}
		else
			texts[i] = OutputFunctionCall(&def->outfinfo[i], d);
	}
	if (nest >= 0)
		AtEOXact_GUC(true, nest);
	return nnull;
}

/*
 * splitdb_refcheck_keys_equal
 *		Whether an update left the key as it was, as PostgreSQL's
 *		ri_KeysEqual() tells it.  The referenced side compares images: a key
 *		changed to one that only compares equal ('Tag1' -> 'TAG1' under a
 *		case-insensitive collation, 1.0 -> 1.00) is a change, so that ON
 *		UPDATE CASCADE carries it and RESTRICT refuses it.  The referencing
 *		side uses the type's equality under the database's default
 *		collation: a key equal to the one before needs no check.
 */
bool
splitdb_refcheck_keys_equal(RefDef *def, TupleTableSlot *oldslot,
							TupleTableSlot *newslot)
{
	for (int i = 0; i < def->nkeys; i++)
	{
		bool		oldnull,
					newnull;
		Datum		o = slot_getattr(oldslot, def->attnums[i], &oldnull);
		Datum		n = slot_getattr(newslot, def->attnums[i], &newnull);
		Form_pg_attribute att = TupleDescAttr(oldslot->tts_tupleDescriptor,
											  def->attnums[i] - 1);

		if (oldnull || newnull)
		{
			if (oldnull != newnull)
				return false;
			continue;
		}
		if (def->side == 'c' && OidIsValid(def->typcache[i]->eq_opr_finfo.fn_oid))
		{
			if (!DatumGetBool(FunctionCall2Coll(&def->typcache[i]->eq_opr_finfo,
												DEFAULT_COLLATION_OID, o, n)))
				return false;
		}
		else if (!datum_image_eq(o, n, att->attbyval, att->attlen))
			return false;
	}
	return true;
}

/* the violation PostgreSQL reports for a MATCH FULL key with some NULLs */
static void
report_match_full(RefDef *def, Relation rel)
{
	ereport(ERROR,
			(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
			 errmsg("insert or update on table \"%s\" violates foreign key constraint \"%s\"",
					RelationGetRelationName(rel), def->conname),
			 errdetail("MATCH FULL does not allow mixing of null and nonnull key values."),
			 errhint("Set every column of the key, or none."),
			 errtableconstraint(rel, def->conname)));
}

/*
 * splitdb_refcheck_queue_child
 *		An inserted row, or an updated one whose key changed: queue its key
 *		for the check in the parent's database.  writer: as for
 *		splitdb_refcheck_add_pending().
 */
void
splitdb_refcheck_queue_child(RefDef *def, TriggerData *td, bool relay, Oid writer)
{
	TupleTableSlot *slot;
	char	   *texts[INDEX_MAX_KEYS];
	int			nnull;

	if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
		return;
	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
	{
		slot = td->tg_newslot;
		if (splitdb_refcheck_keys_equal(def, td->tg_trigslot, slot))
			return;
	}
	else
		slot = td->tg_trigslot;

	/* a row whose key is all NULL references nothing: no text to make */
	if (def->nkeys == 1 && slot_attisnull(slot, def->attnums[0]))
		return;
	nnull = splitdb_refcheck_key_texts(def, slot, texts);
	if (nnull == def->nkeys)
		return;
	if (nnull > 0)
	{
		if (def->match_full)
			report_match_full(def, td->tg_relation);
		return;					/* MATCH SIMPLE */
	}
	splitdb_refcheck_add_pending(def, PENDING_CHECK, texts, NULL, relay, writer);
}

/*
 * row_moved
 *		Whether the row a DELETE trigger fired for was deleted by an UPDATE
 *		that moved it to another partition.  PostgreSQL fires a row
 *		trigger's DELETE there, not UPDATE (only a foreign key's own
 *		triggers see the UPDATE), and marks the old version's t_ctid as
 *		moved, which the trigger's copy of it, read from the page, shows.
 */
static bool
row_moved(TriggerData *td)
{
	/*
	 * as PostgreSQL's own: the move's DELETE is the UPDATE's only for the
	 * copy of a trigger of a table above the partition; a reference to the
	 * partition itself takes it as the delete it is there
	 */
	return td->tg_trigger->tgisclone &&
		td->tg_relation->rd_rel->relkind == RELKIND_RELATION &&
		td->tg_relation->rd_rel->relispartition &&
		td->tg_trigtuple != NULL && td->tg_trigtuple->t_data != NULL &&
		HeapTupleHeaderIndicatesMovedPartitions(td->tg_trigtuple->t_data);
}

/*
 * splitdb_refcheck_queue_parent
 *		A deleted row, or an updated one whose key changed: queue the old key
 *		(and the new one) for the reference's action.  A row that an UPDATE
 *		moved to another partition is queued as moved: its key changed (a
 *		partition key is part of every unique key), but the new one is not
 *		known here, so it is checked as ON UPDATE NO ACTION (RESTRICT when
 *		that is the action) would check it, and never takes the ON DELETE
 *		action.  writer: as for splitdb_refcheck_add_pending().
 */
void
splitdb_refcheck_queue_parent(RefDef *def, TriggerData *td, bool relay, Oid writer)
{
	char	   *old[INDEX_MAX_KEYS];
	char	   *new[INDEX_MAX_KEYS];

	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		return;
	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event) &&
		splitdb_refcheck_keys_equal(def, td->tg_trigslot, td->tg_newslot))
		return;

	if (splitdb_refcheck_key_texts(def, td->tg_trigslot, old) > 0)
		return;					/* a key with a NULL is referenced by no row */
	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
	{
		splitdb_refcheck_key_texts(def, td->tg_newslot, new);
		splitdb_refcheck_add_pending(def, PENDING_UPDATE, old, new, relay, writer);
	}
	else if (row_moved(td))
		splitdb_refcheck_add_pending(def, PENDING_MOVED, old, NULL, relay, writer);
	else
		splitdb_refcheck_add_pending(def, PENDING_DELETE, old, NULL, relay, writer);
}

/* dynahash over C strings */
static uint32
ident_hash(const void *key, Size keysize)
{
	const char *s = *(char *const *) key;

	return hash_bytes((const unsigned char *) s, (int) strlen(s));
}

static int
ident_match(const void *key1, const void *key2, Size keysize)
{
	return strcmp(*(char *const *) key1, *(char *const *) key2);
}

/*
 * append_key_ident
 *		Append the ident of a key to buf: its kind's letter, then
 *		"length:text" for each column.  Made without a format string, as it
 *		runs once per row.
 */
static void
append_key_ident(StringInfo buf, PendingKind kind, char **old, int nkeys)
{
	appendStringInfoChar(buf, "CDUM"[kind]);
	for (int i = 0; i < nkeys; i++)
	{
		size_t		len = strlen(old[i]);
		char		digits[MAXINT8LEN + 1];

		/* a text longer than MaxAllocSize could not have been made */
		appendBinaryStringInfo(buf, digits, pg_ultoa_n((uint32) len, digits));
		appendStringInfoChar(buf, ':');
		appendBinaryStringInfo(buf, old[i], (int) len);
	}
}

/*
 * splitdb_refcheck_key_ident
 *		What tells a queued key from another: its kind and old key, palloc'd
 *		to its size in the current memory context.
 */
char *
splitdb_refcheck_key_ident(PendingKind kind, char **old, int nkeys)
{
	StringInfoData ident;
	char	   *result;

	initStringInfo(&ident);
	append_key_ident(&ident, kind, old, nkeys);
	result = pnstrdup(ident.data, ident.len);
	pfree(ident.data);
	return result;
}

/*
 * The order in which keys were queued, across all queues: PostgreSQL fires
 * its checks in the order their events were queued and reports the first
 * that fails (splitdb_refcheck_defs_in_queue_order(), and the violation
 * sink of splitdb_refcheck_flush_all()).
 */
static uint64 queue_seq = 0;

/* an entry of a PendingSet's hash: the ident (the hash key) and its key */
typedef struct QueuedEntry
{
	char	   *ident;			/* pk->ident */
	PendingKey *pk;
} QueuedEntry;

/*
 * new_pending_key
 *		A queued key in one chunk of the current memory context: the
 *		PendingKey, its arrays, its ident (identlen bytes, NUL added) and
 *		copies of the texts of old and new.
 */
static PendingKey *
new_pending_key(PendingKind kind, char **old, char **new, int nkeys,
				const char *ident, int identlen)
{
	Size		size = MAXALIGN(sizeof(PendingKey)) +
		sizeof(char *) * nkeys * (new ? 2 : 1) + identlen + 1;
	Size		oldlen[INDEX_MAX_KEYS];
	Size		newlen[INDEX_MAX_KEYS];
	PendingKey *pk;
	char	   *p;

	for (int i = 0; i < nkeys; i++)
	{
		oldlen[i] = strlen(old[i]) + 1;
		newlen[i] = (new && new[i]) ? strlen(new[i]) + 1 : 0;
		size += oldlen[i] + newlen[i];
	}
	pk = palloc(size);
	p = (char *) pk + MAXALIGN(sizeof(PendingKey));
	pk->kind = kind;
	pk->seq = ++queue_seq;
	pk->writer = InvalidOid;
	pk->subid = GetCurrentSubTransactionId();
	pk->old = (char **) p;
	p += sizeof(char *) * nkeys;
	pk->new = NULL;
	if (new)
	{
		pk->new = (char **) p;
		p += sizeof(char *) * nkeys;
	}
	pk->ident = p;
	memcpy(p, ident, identlen);
	p[identlen] = '\0';
	p += identlen + 1;
	for (int i = 0; i < nkeys; i++)
	{
		pk->old[i] = p;
		memcpy(p, old[i], oldlen[i]);
		p += oldlen[i];
		if (new)
		{
			pk->new[i] = new[i] ? p : NULL;
			if (new[i])
				memcpy(p, new[i], newlen[i]);
			p += newlen[i];
		}
	}
	return pk;
}

/*
 * splitdb_refcheck_add_pending
 *		Queue a key once.  old and new are copied into the transaction's
 *		queue memory.  relay: the key is not enforced here but handed back
 *		to the database that wrote (see splitdb_reference_relay).  writer:
 *		the role whose statement wrote the row, whose user mapping the
 *		check or action uses (splitdb_refcheck_key_writer); InvalidOid for
 *		the role being checked when a flush runs (a row that an action
 *		changed in turn), else the current role.  A key queued again keeps
 *		its first writer.
 *
 * The ident is made in the definition's scratch buffer and looked up in
 * the queue's hash; only a key not queued yet is copied, in one chunk
 * (new_pending_key), and entered under that copy's ident.
 */
void
splitdb_refcheck_add_pending(RefDef *def, PendingKind kind, char **old,
							 char **new, bool relay, Oid writer)
{
	PendingSet *set = relay ? &def->relay : &def->now;
	StringInfo	ident = &def->ident_buf;
	SubTransactionId subid = GetCurrentSubTransactionId();
	MemoryContext oldcxt;
	QueuedEntry *entry;
	char	   *key;
	uint32		hashvalue;

	Assert(def->nkeys <= INDEX_MAX_KEYS);

	/*
	 * A shim cannot have constraint triggers: its deferred checks wait here.
	 * Only NO ACTION checks are deferred; actions never are.
	 */
	if (!relay && def->shim_deferrable && splitdb_refcheck_shim_deferred(def) &&
		(kind == PENDING_CHECK ||
		 (kind == PENDING_DELETE && def->on_delete == 'a') ||
		 (kind == PENDING_MOVED && def->on_update != 'r') ||
		 (kind == PENDING_UPDATE && def->on_update == 'a')))
		set = &def->at_commit;

	if (ident->data == NULL)
	{
		oldcxt = MemoryContextSwitchTo(splitdb_refcheck_def_context());
		initStringInfo(ident);
		MemoryContextSwitchTo(oldcxt);
	}

	if (!OidIsValid(writer))
		writer = (refcheck_xact.flush_depth > 0 &&
				  OidIsValid(refcheck_xact.caller_userid)) ?
			refcheck_xact.caller_userid : GetUserId();

	oldcxt = MemoryContextSwitchTo(splitdb_refcheck_xact_context());

	/* the remote transaction must exist before commit */
	if (!relay)
		splitdb_refcheck_order_callbacks(def, writer);
	else
		splitdb_refcheck_relay_waiting(true);

	if (set->seen == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(char *);
		ctl.entrysize = sizeof(QueuedEntry);
		ctl.hash = ident_hash;
		ctl.match = ident_match;
		ctl.hcxt = refcheck_xact.cxt;
		set->seen = hash_create("splitdb queued keys", 256, &ctl,
								HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
	}

	resetStringInfo(ident);
	append_key_ident(ident, kind, old, def->nkeys);
	key = ident->data;
	hashvalue = get_hash_value(set->seen, &key);
	entry = hash_search_with_hash_value(set->seen, &key, hashvalue, HASH_FIND, NULL);
	if (entry == NULL)
	{
		PendingKey *pk = new_pending_key(kind, old, new, def->nkeys,
										 ident->data, ident->len);

		pk->writer = writer;

		/* entered only once the copy exists, so it never names the scratch */
		entry = hash_search_with_hash_value(set->seen, &pk->ident, hashvalue,
											HASH_ENTER, NULL);
		entry->pk = pk;
		if (set->keys == NIL)
			set->seq = pk->seq;
		set->keys = lappend(set->keys, pk);
		set->newest_subid = Max(set->newest_subid, subid);
	}
	else if (subid < entry->pk->subid)
		entry->pk->subid = subid;	/* queued again, by a row outside that one */
	MemoryContextSwitchTo(oldcxt);

	/* a referencing end checks early rather than grow without bound */
	if (!relay && def->side == 'c' && set == &def->now &&
		list_length(def->now.keys) >= SPLITDB_REFCHECK_MAX_PENDING)
	{
		List	   *keys = def->now.keys;

		/* the keys live on; their hash is not needed any more */
		hash_destroy(def->now.seen);
		memset(&def->now, 0, sizeof(PendingSet));
		if (splitdb_refcheck_fast_eligible(def, keys))
			splitdb_refcheck_fast_check_one(def, keys);
		else
			splitdb_refcheck_flush_set(def, keys);
	}
}

/*
 * splitdb_refcheck_key_writer
 *		The role whose user mapping a queued key is checked or acted on
 *		through: its writer, or the current role for a key that has none.
 */
Oid
splitdb_refcheck_key_writer(PendingKey *pk)
{
	return OidIsValid(pk->writer) ? pk->writer : GetUserId();
}

/*
 * splitdb_refcheck_one_writer
 *		Whether every key of a list has the same writer (the usual case: the
 *		keys of one statement), so that it need not be split per writer.
 */
bool
splitdb_refcheck_one_writer(List *keys)
{
	Oid			writer;
	ListCell   *lc;

	if (keys == NIL)
		return true;
	writer = splitdb_refcheck_key_writer(linitial(keys));
	foreach(lc, keys)
	{
		if (splitdb_refcheck_key_writer(lfirst(lc)) != writer)
			return false;
	}
	return true;
}

/*
 * splitdb_refcheck_take_queued
 *		Take the key of an ident out of a queue; NULL when it is not there.
 */
PendingKey *
splitdb_refcheck_take_queued(PendingSet *set, char *ident)
{
	ListCell   *lc;

	if (set->seen == NULL || hash_search(set->seen, &ident, HASH_FIND, NULL) == NULL)
		return NULL;
	foreach(lc, set->keys)
	{
		PendingKey *pk = lfirst(lc);

		if (strcmp(pk->ident, ident) == 0)
		{
			set->keys = foreach_delete_current(set->keys, lc);
			hash_search(set->seen, &ident, HASH_REMOVE, NULL);
			return pk;
		}
	}
	return NULL;
}

/*
 * splitdb_refcheck_forget_subxact
 *		A subtransaction (subid) aborts: take out of set the keys that only
 *		it, or a subtransaction of its, queued.  Their rows are gone with
 *		it, and a check of them could fail (a referencing row rolled back
 *		with the parent it named) or act on rows no longer there.
 *
 * The keys queued before it began stay: they belong to rows of statements
 * that go on (a statement whose trigger runs a PL/pgSQL block that catches
 * an error still has the keys of its earlier rows to check, or to hand
 * back).  A key's subid is the oldest subtransaction that queued it:
 * subtransaction ids grow, and every subtransaction that began while subid
 * was open is inside it, so a key with a smaller id was queued outside it.
 */
void
splitdb_refcheck_forget_subxact(PendingSet *set, SubTransactionId subid)
{
	SubTransactionId newest = InvalidSubTransactionId;
	ListCell   *lc;

	if (set->keys == NIL || set->newest_subid < subid)
		return;
	foreach(lc, set->keys)
	{
		PendingKey *pk = lfirst(lc);

		if (pk->subid >= subid)
		{
			if (set->seen != NULL)
				(void) hash_search(set->seen, &pk->ident, HASH_REMOVE, NULL);
			set->keys = foreach_delete_current(set->keys, lc);
		}
		else
			newest = Max(newest, pk->subid);
	}
	set->newest_subid = newest;
	if (set->keys != NIL)
		set->seq = ((PendingKey *) linitial(set->keys))->seq;
}
