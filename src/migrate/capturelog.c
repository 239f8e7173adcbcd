/*-------------------------------------------------------------------------
 *
 * capturelog.c
 *	  The capture trigger's direct writer: the keys of a statement's
 *	  transition tables go straight into the relation's log (its heap and
 *	  its indexes, as logical replication's apply does), without a query.
 *
 * A trigger call through SPI (capture.c) costs a lookup query, then an
 * INSERT ... SELECT with its executor start, its snapshot and, for an
 * UPDATE, a UNION of the old and the new keys: for a one-row statement
 * that is most of what capture adds to a write.  Here a call reads the
 * relation's splitdb.capture row by its primary key, reuses what it
 * derived from it (the log, the attribute numbers, the identity sequence:
 * a CaptureTarget kept per backend), and inserts one log row per key with
 * ExecSimpleRelationInsert(): NOT NULL and CHECK constraints, the log's
 * indexes, its unique key.
 *
 * A CaptureTarget is rebuilt when the capture row differs from the one it
 * was built from (read at every call, under the statement's snapshot, so
 * a row changed mid-session is seen at the next statement), and dropped
 * on a relcache invalidation of the relation or of the log (DDL on either:
 * a renamed or dropped column, a new owner, a trigger on the log).
 *
 * The direct path takes a log only when nothing of it would be skipped:
 * a plain table (not partitioned, not a partition) without triggers, rules
 * or row security, whose columns are splitdb_id (an identity), splitdb_op
 * and the key columns, of the relation's types.  Any other log, and a
 * relation that lacks a key column, is left to the SPI path, which
 * behaves (and fails) as an INSERT does.
 *
 * Invariants (those of capture.c):
 * - It writes only into the log of the trigger's own relation's capture
 *   row, and refuses a relation without one.
 * - It writes as the log's owner: INSERT on the log is checked, and the
 *   sequence of splitdb_id is drawn and the constraints are evaluated
 *   under that role, as the SPI path's INSERT would.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/capturelog.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/relation.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "optimizer/optimizer.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"

#include "migrate/capture.h"
#include "migrate/capture_int.h"
#include "splitdb.h"

/* the columns of splitdb.capture the writer reads */
#define Anum_capture_relid			1
#define Anum_capture_log			2
#define Anum_capture_key_columns	3

/*
 * What the direct writer derived from a relation's capture row: one per
 * relation, in CacheMemoryContext.
 */
typedef struct CaptureTarget
{
	Oid			relid;			/* hash key: the captured relation */
	bool		valid;			/* false once DDL touched relid or log */
	Oid			log;			/* the capture row's log */
	ArrayType  *key_columns;	/* its key_columns, to tell a changed row */
	bool		direct;			/* the log takes the direct path */
	Oid			seq;			/* the identity sequence of splitdb_id */
	AttrNumber	id_attr;		/* splitdb_id, splitdb_op in the log */
	AttrNumber	op_attr;
	int			nkeys;
	AttrNumber *rel_attrs;		/* the key columns in the relation */
	AttrNumber *log_attrs;		/* and in the log */
	int16	   *typlen;			/* their types' length and by-value */
	bool	   *typbyval;
	int			nchecks;		/* the log's CHECK constraints, planned */
	Expr	  **checks;
	MemoryContext cxt;			/* what the fields point to */
} CaptureTarget;

static HTAB *capture_targets = NULL;

/* splitdb.capture and its primary key, looked up once per backend */
static Oid	capture_relid = InvalidOid;
static Oid	capture_pkey = InvalidOid;

/*
 * forget_targets
 *		Relcache invalidation callback: drop what was derived from relation
 *		relid (a captured relation, or a log), or everything when relid is
 *		InvalidOid.
 */
static void
forget_targets(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS seq;
	CaptureTarget *t;

	if (relid == InvalidOid || relid == capture_relid)
	{
		capture_relid = InvalidOid;
		capture_pkey = InvalidOid;
	}
	if (capture_targets == NULL)
		return;
	hash_seq_init(&seq, capture_targets);
	while ((t = (CaptureTarget *) hash_seq_search(&seq)) != NULL)
	{
		if (relid == InvalidOid || t->relid == relid || t->log == relid)
			t->valid = false;
	}
}

/* the hash table of targets, and the callback that keeps it true */
static void
init_targets(void)
{
	HASHCTL		ctl;

	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(CaptureTarget);
	ctl.hcxt = CacheMemoryContext;
	capture_targets = hash_create("splitdb capture targets", 16, &ctl,
								  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	CacheRegisterRelcacheCallback(forget_targets, (Datum) 0);
}

/*
 * splitdb_capturelog_refuse
 *		The error of a trigger that calls capture_changes() without being a
 *		capture trigger splitdb installed; detail says why.
 */
void
splitdb_capturelog_refuse(TriggerData *td, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("trigger \"%s\" on \"%s\" is not a splitdb capture trigger",
					td->tg_trigger->tgname, RelationGetRelationName(td->tg_relation)),
			 errdetail_internal("%s", detail),
			 errhint("Drop the trigger: splitdb installs its capture triggers itself.")));
}

/*
 * splitdb_capturelog_source
 *		The transition table whose keys an INSERT, UPDATE or DELETE trigger
 *		call logs (the old one for an UPDATE, which also reads the new), or
 *		an error when the trigger lacks it.  Not for TRUNCATE.
 */
Tuplestorestate *
splitdb_capturelog_source(TriggerData *td)
{
	Tuplestorestate *from;

	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		from = td->tg_newtable;
	else if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
		from = td->tg_oldtable;
	else
		from = td->tg_newtable ? td->tg_oldtable : NULL;
	if (from == NULL)
		splitdb_capturelog_refuse(td, "It lacks the transition tables the capture reads.");
	return from;
}

/*
 * read_capture_row
 *		The log and the key columns (a copy, in the current memory context)
 *		of rel's splitdb.capture row under the newest snapshot, or an error
 *		when it has none: a capture trigger that splitdb did not install
 *		refuses to run.  Read by the table's primary key, no query.
 */
static void
read_capture_row(TriggerData *td, Oid *log, ArrayType **key_columns)
{
	Relation	capture;
	SysScanDesc scan;
	ScanKeyData skey;
	HeapTuple	tuple;
	Snapshot	snap;
	bool		isnull;

	if (capture_targets == NULL)
		init_targets();
	if (!OidIsValid(capture_relid))
	{
		Oid			nsp = get_namespace_oid(SPLITDB_SCHEMA, false);
		Oid			relid = get_relname_relid("capture", nsp);
		Relation	rel;

		if (!OidIsValid(relid))
			elog(ERROR, "could not find table %s.capture", SPLITDB_SCHEMA);
		rel = table_open(relid, AccessShareLock);
		capture_pkey = RelationGetPrimaryKeyIndex(rel);
		table_close(rel, AccessShareLock);
		if (!OidIsValid(capture_pkey))
			elog(ERROR, "table %s.capture has no primary key", SPLITDB_SCHEMA);
		capture_relid = relid;
	}

	capture = table_open(capture_relid, AccessShareLock);
	ScanKeyInit(&skey, Anum_capture_relid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(RelationGetRelid(td->tg_relation)));
	/* under the newest snapshot, as the trigger was found (splitdb_spi_exec_latest) */
	snap = RegisterSnapshot(GetLatestSnapshot());
	scan = systable_beginscan(capture, capture_pkey, true, snap, 1, &skey);
	tuple = systable_getnext(scan);
	if (!HeapTupleIsValid(tuple))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("trigger \"%s\" on \"%s\" is not a splitdb capture trigger",
						td->tg_trigger->tgname, RelationGetRelationName(td->tg_relation)),
				 errdetail("splitdb.capture has no row for the relation."),
				 errhint("Drop the trigger: splitdb installs its capture triggers itself.")));
	*log = DatumGetObjectId(heap_getattr(tuple, Anum_capture_log, RelationGetDescr(capture), &isnull));
	*key_columns = DatumGetArrayTypePCopy(heap_getattr(tuple, Anum_capture_key_columns,
													   RelationGetDescr(capture), &isnull));
	systable_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(capture, AccessShareLock);
}

/* the attribute of desc named name, or InvalidAttrNumber */
static AttrNumber
find_attr(TupleDesc desc, const char *name)
{
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return att->attnum;
	}
	return InvalidAttrNumber;
}

/*
 * build_target
 *		Fill t (relid set) from the capture row (log, key_columns) of
 *		relation rel, whose log logrel is open: whether the log takes the
 *		direct path, and what that path needs.  Allocates in
 *		CacheMemoryContext.
 */
static void
build_target(CaptureTarget *t, Relation rel, Relation logrel, Oid log, ArrayType *key_columns)
{
	TupleDesc	logdesc = RelationGetDescr(logrel);
	TupleDesc	reldesc = RelationGetDescr(rel);
	MemoryContext old;
	Datum	   *names;
	int			nnames;
	int			nused;

	if (t->cxt == NULL)
		t->cxt = AllocSetContextCreate(CacheMemoryContext, "splitdb capture target",
									   ALLOCSET_SMALL_SIZES);
	else
		MemoryContextReset(t->cxt);
	old = MemoryContextSwitchTo(t->cxt);
	t->valid = false;
	t->log = log;
	t->key_columns = (ArrayType *) datumCopy(PointerGetDatum(key_columns), false, -1);
	deconstruct_array(key_columns, NAMEOID, NAMEDATALEN, false, TYPALIGN_CHAR,
					  &names, NULL, &nnames);
	t->nkeys = nnames;
	t->rel_attrs = palloc0(sizeof(AttrNumber) * Max(nnames, 1));
	t->log_attrs = palloc0(sizeof(AttrNumber) * Max(nnames, 1));
	t->typlen = palloc0(sizeof(int16) * Max(nnames, 1));
	t->typbyval = palloc0(sizeof(bool) * Max(nnames, 1));

	/*
	 * The CHECK constraints as ExecRelCheck() would plan them, in the order
	 * of the log's relcache entry, which this target does not outlive
	 */
	t->nchecks = logdesc->constr ? logdesc->constr->num_check : 0;
	t->checks = palloc0(sizeof(Expr *) * Max(t->nchecks, 1));
	for (int i = 0; i < t->nchecks; i++)
		t->checks[i] = expression_planner(stringToNode(logdesc->constr->check[i].ccbin));
	MemoryContextSwitchTo(old);

	/* a log nothing of which the direct path would skip */
	t->direct = logrel->rd_rel->relkind == RELKIND_RELATION &&
		!logrel->rd_rel->relispartition &&
		!logrel->rd_rel->relrowsecurity &&
		logrel->trigdesc == NULL && logrel->rd_rules == NULL &&
		!(logdesc->constr && logdesc->constr->has_generated_stored);

	t->id_attr = find_attr(logdesc, "splitdb_id");
	t->op_attr = find_attr(logdesc, "splitdb_op");
	if (t->id_attr == InvalidAttrNumber || t->op_attr == InvalidAttrNumber ||
		TupleDescAttr(logdesc, t->id_attr - 1)->atttypid != INT8OID ||
		TupleDescAttr(logdesc, t->id_attr - 1)->attidentity == '\0' ||
		TupleDescAttr(logdesc, t->op_attr - 1)->atttypid != CHAROID)
		t->direct = false;
	t->seq = t->direct ? getIdentitySequence(log, t->id_attr, true) : InvalidOid;
	if (!OidIsValid(t->seq))
		t->direct = false;

	nused = 2;
	for (int i = 0; i < nnames && t->direct; i++)
	{
		const char *name = NameStr(*DatumGetName(names[i]));
		AttrNumber	ra = find_attr(reldesc, name);
		AttrNumber	la = find_attr(logdesc, name);

		if (ra == InvalidAttrNumber || la == InvalidAttrNumber || la == t->id_attr ||
			la == t->op_attr ||
			TupleDescAttr(reldesc, ra - 1)->atttypid != TupleDescAttr(logdesc, la - 1)->atttypid)
		{
			t->direct = false;
			break;
		}
		t->rel_attrs[i] = ra;
		t->log_attrs[i] = la;
		t->typlen[i] = TupleDescAttr(reldesc, ra - 1)->attlen;
		t->typbyval[i] = TupleDescAttr(reldesc, ra - 1)->attbyval;
		nused++;
	}
	/* every other column of the log would need its default */
	for (int i = 0; i < logdesc->natts && t->direct; i++)
	{
		if (!TupleDescAttr(logdesc, i)->attisdropped)
			nused--;
	}
	if (nused != 0)
		t->direct = false;
	t->valid = true;
}

/*
 * target_of
 *		The target of td's relation for its capture row (log,
 *		key_columns), its log open as logrel: the kept one while the row
 *		and the relations are unchanged, else built anew.
 */
static CaptureTarget *
target_of(TriggerData *td, Relation logrel, Oid log, ArrayType *key_columns)
{
	Oid			relid = RelationGetRelid(td->tg_relation);
	CaptureTarget *t;
	bool		found;

	t = hash_search(capture_targets, &relid, HASH_ENTER, &found);
	if (found && t->valid && t->log == log &&
		VARSIZE(t->key_columns) == VARSIZE(key_columns) &&
		memcmp(t->key_columns, key_columns, VARSIZE(key_columns)) == 0)
		return t;
	if (!found)
		t->cxt = NULL;
	t->valid = false;
	build_target(t, td->tg_relation, logrel, log, key_columns);
	return t;
}

/* one statement's writes into a log */
typedef struct LogWriter
{
	CaptureTarget *target;
	EState	   *estate;
	ResultRelInfo *rri;
	TupleTableSlot *slot;		/* a log row */
} LogWriter;

/* open the log's indexes and an executor state to insert with */
static void
begin_writer(LogWriter *w, CaptureTarget *t, Relation logrel)
{
	RangeTblEntry *rte = makeNode(RangeTblEntry);

	w->target = t;
	w->estate = CreateExecutorState();
	rte->rtekind = RTE_RELATION;
	rte->relid = RelationGetRelid(logrel);
	rte->relkind = logrel->rd_rel->relkind;
	rte->rellockmode = RowExclusiveLock;
	ExecInitRangeTable(w->estate, list_make1(rte));
	w->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(w->rri, logrel, 1, NULL, 0);
	w->estate->es_output_cid = GetCurrentCommandId(true);
	ExecOpenIndices(w->rri, false);
	/* the CHECK constraints planned once, not once per statement */
	if (t->nchecks > 0)
	{
		MemoryContext old = MemoryContextSwitchTo(w->estate->es_query_cxt);

		w->rri->ri_ConstraintExprs = palloc(sizeof(ExprState *) * t->nchecks);
		for (int i = 0; i < t->nchecks; i++)
			w->rri->ri_ConstraintExprs[i] = ExecInitExpr(t->checks[i], NULL);
		MemoryContextSwitchTo(old);
	}
	w->slot = table_slot_create(logrel, &w->estate->es_tupleTable);
}

static void
end_writer(LogWriter *w)
{
	ExecCloseIndices(w->rri);
	ExecResetTupleTable(w->estate->es_tupleTable, false);
	FreeExecutorState(w->estate);
}

/*
 * write_entry
 *		One log row: op and, unless from is NULL (a T entry), the key
 *		columns of transition tuple from.
 */
static void
write_entry(LogWriter *w, char op, TupleTableSlot *from)
{
	CaptureTarget *t = w->target;
	TupleTableSlot *slot = w->slot;

	ExecClearTuple(slot);
	memset(slot->tts_isnull, true, sizeof(bool) * slot->tts_tupleDescriptor->natts);
	/* as an identity default draws it: no right on the sequence checked */
	slot->tts_values[t->id_attr - 1] = Int64GetDatum(nextval_internal(t->seq, false));
	slot->tts_isnull[t->id_attr - 1] = false;
	slot->tts_values[t->op_attr - 1] = CharGetDatum(op);
	slot->tts_isnull[t->op_attr - 1] = false;
	for (int i = 0; from != NULL && i < t->nkeys; i++)
	{
		AttrNumber	la = t->log_attrs[i] - 1;

		slot->tts_values[la] = slot_getattr(from, t->rel_attrs[i], &slot->tts_isnull[la]);
	}
	ExecStoreVirtualTuple(slot);
	ExecSimpleRelationInsert(w->rri, w->estate, slot);
	ResetPerTupleExprContext(w->estate);
}

/* whether transition tuples a and b have the same key (binary equal) */
static bool
same_key(CaptureTarget *t, TupleTableSlot *a, TupleTableSlot *b)
{
	for (int i = 0; i < t->nkeys; i++)
	{
		bool		anull;
		bool		bnull;
		Datum		av = slot_getattr(a, t->rel_attrs[i], &anull);
		Datum		bv = slot_getattr(b, t->rel_attrs[i], &bnull);

		if (anull != bnull)
			return false;
		if (!anull && !datum_image_eq(av, bv, t->typbyval[i], t->typlen[i]))
			return false;
	}
	return true;
}

/* a slot reading transition table ts from its start */
static TupleTableSlot *
transition_reader(TriggerData *td, Tuplestorestate *ts, int *ptr)
{
	*ptr = tuplestore_alloc_read_pointer(ts, EXEC_FLAG_REWIND);
	/* the new pointer starts where read pointer 0 is: rewind it */
	tuplestore_select_read_pointer(ts, *ptr);
	tuplestore_rescan(ts);
	return MakeSingleTupleTableSlot(RelationGetDescr(td->tg_relation), &TTSOpsMinimalTuple);
}

/* the next tuple of ts through read pointer ptr into slot; false at the end */
static bool
transition_next(Tuplestorestate *ts, int ptr, TupleTableSlot *slot)
{
	if (ts == NULL)
		return false;
	tuplestore_select_read_pointer(ts, ptr);
	return tuplestore_gettupleslot(ts, true, false, slot);
}

/*
 * write_keys
 *		The log rows of a trigger call: T for a TRUNCATE, or for any write
 *		to a relation without a key; else op's entry per key of the
 *		transition table, and for an UPDATE the old key and the new one
 *		when it differs (a row whose key did not change is logged once).
 */
static void
write_keys(LogWriter *w, TriggerData *td, char op, Tuplestorestate *a, Tuplestorestate *b)
{
	TupleTableSlot *sa;
	TupleTableSlot *sb = NULL;
	int			pa;
	int			pb = 0;
	bool		more_a = true;
	bool		more_b = (b != NULL);

	if (a == NULL || w->target->nkeys == 0)
	{
		write_entry(w, 'T', NULL);
		return;
	}
	sa = transition_reader(td, a, &pa);
	if (b != NULL)
		sb = transition_reader(td, b, &pb);
	while (more_a || more_b)
	{
		more_a = more_a && transition_next(a, pa, sa);
		more_b = more_b && transition_next(b, pb, sb);
		if (more_a)
			write_entry(w, op, sa);
		if (more_b && !(more_a && same_key(w->target, sa, sb)))
			write_entry(w, op, sb);
	}
	ExecDropSingleTupleTableSlot(sa);
	if (sb != NULL)
		ExecDropSingleTupleTableSlot(sb);
}

/*
 * splitdb_capturelog_write
 *		Log td's keys straight into its relation's log, as the log's owner
 *		(the caller has checked that td is an AFTER ... FOR EACH STATEMENT
 *		trigger).  Returns false, having written nothing, when the log does
 *		not take the direct path: the caller then logs through SPI.  Errors
 *		when the relation has no capture row or the trigger lacks its
 *		transition tables.
 */
bool
splitdb_capturelog_write(TriggerData *td)
{
	Oid			log;
	ArrayType  *key_columns;
	Tuplestorestate *a = NULL;
	Tuplestorestate *b = NULL;
	char		op = 'T';
	Relation	logrel;
	CaptureTarget *t;
	LogWriter	w;
	Oid			save_userid;
	int			save_sec;
	AclResult	aclresult;

	read_capture_row(td, &log, &key_columns);
	if (!TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
	{
		a = splitdb_capturelog_source(td);
		op = TRIGGER_FIRED_BY_INSERT(td->tg_event) ? 'I' :
			TRIGGER_FIRED_BY_DELETE(td->tg_event) ? 'D' : 'U';
		if (op == 'U')
			b = td->tg_newtable;
		/* a statement that wrote no row logs nothing */
		if (tuplestore_tuple_count(a) == 0 && (b == NULL || tuplestore_tuple_count(b) == 0))
			return true;
	}

	/* a log gone: the SPI path reports it as it always did */
	logrel = try_relation_open(log, RowExclusiveLock);
	if (logrel == NULL)
		return false;
	t = target_of(td, logrel, log, key_columns);
	if (!t->direct)
	{
		table_close(logrel, NoLock);
		return false;
	}

	/* as the log's owner; an error on the way resets the user at abort */
	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(logrel->rd_rel->relowner,
						   save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_NOFORCE_RLS);
	aclresult = pg_class_aclcheck(log, logrel->rd_rel->relowner, ACL_INSERT);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_TABLE, RelationGetRelationName(logrel));

	begin_writer(&w, t, logrel);
	write_keys(&w, td, op, a, b);
	end_writer(&w);
	SetUserIdAndSecContext(save_userid, save_sec);

	table_close(logrel, NoLock);
	/* as SPI does after a statement: later ones see the rows */
	CommandCounterIncrement();
	return true;
}
