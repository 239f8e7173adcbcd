/*-------------------------------------------------------------------------
 *
 * refcheck_relay.c
 *	  The relay of chains of actions between databases: the keys that one
 *	  database leaves to the database that wrote.
 *
 * Writes that a database receives from another one's enforcement or shims
 * come on sessions that proved where they come from (origin.c: a secret the
 * two databases share; the setting splitdb.origin only names the claim and
 * proves nothing).  The database where the write was issued enforces the
 * reference, so the receiving end skips: a sibling skips every reference for
 * writes that come from the source (the source has triggers on the shims),
 * and any database skips the references whose other end is the origin.
 * What such a write changes beyond a shim's own rows (an action's rows, and
 * rows that foreign keys and triggers change in turn) is handed back to the
 * database that wrote, which enforces it in its own transaction:
 * splitdb.reference_relay() for actions, splitdb.reference_relayed() after
 * a write through a shim.
 *
 * The skipped keys wait in the relay queue of their RefDef until one of
 * those functions hands them back; refcheck_xact.relaying is set while
 * splitdb.reference_relay() runs its statement.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/refcheck_relay.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "foreign/foreign.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "catalog/namespace.h"
#include "nodes/plannodes.h"
#include "parser/parser.h"
#include "parser/parsetree.h"
#include "tcop/pquery.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "metadata/catalog.h"
#include "reference/constraintsfwd.h"
#include "reference/execdepth.h"
#include "reference/origin.h"
#include "reference/refcheck_int.h"
#include "remote/remote.h"
#include "splitdb.h"

PG_FUNCTION_INFO_V1(splitdb_reference_relay);
PG_FUNCTION_INFO_V1(splitdb_reference_relayed);

static void emit_relayed(ReturnSetInfo *rsinfo);

/*
 * relay_key
 *		Queue here a key that another database skipped for us: one row of
 *		splitdb.reference_relay() (reference_id, side, kind, old, new).
 *		acting is the end whose action made the row.
 */
static void
relay_key(RefDef *acting, char **row)
{
	int64		reference_id = pg_strtoint64(row[0]);
	char		side = row[1][0];
	PendingKind kind;
	RefDef	   *def;
	char	  **old;
	char	  **new = NULL;
	int			n;

	/* the acting reference's new keys exist: its action just put them there */
	if (acting != NULL && reference_id == acting->reference_id && side == 'c')
		return;
	kind = (row[2][0] == 'c') ? PENDING_CHECK :
		(row[2][0] == 'd') ? PENDING_DELETE :
		(row[2][0] == 'm') ? PENDING_MOVED : PENDING_UPDATE;
	def = splitdb_refcheck_relayed_def(reference_id, side);
	old = splitdb_catalog_parse_text_array(row[3], &n);
	if (n != def->nkeys)
		elog(ERROR, "a relayed key of reference " INT64_FORMAT " has %d columns, not %d",
			 reference_id, n, def->nkeys);
	if (row[4] != NULL)
		new = splitdb_catalog_parse_text_array(row[4], &n);
	splitdb_refcheck_add_pending(def, kind, old, new, false, InvalidOid);
}

/*
 * splitdb_refcheck_run_relayed
 *		Run a statement in the child's database through
 *		splitdb.reference_relay() there, and queue here the keys that the
 *		statement's rows left to this database (see
 *		splitdb_reference_relay).  Returns the statement's own rows.
 *		modifies: an action, which changes rows there (and needs a session
 *		that proved its origin, so that the keys it skips come back); else
 *		a lookup that only locks.
 */
List *
splitdb_refcheck_run_relayed(RefDef *def, const char *sql, int nparams,
							 Datum *params, bool modifies)
{
	const char **texts = splitdb_refcheck_array_texts(params, nparams);
	const char *values[2];
	List	   *rows;

	values[0] = sql;
	values[1] = splitdb_catalog_text_array((char **) texts, nparams);
	if (modifies)
	{
		PGconn	   *conn;

		/* the other database hands back what it skips only for a proved session */
		splitdb_refcheck_fdw_writes(def->other_server);
		conn = splitdb_refcheck_fdw_connection(def->other_server,
											   refcheck_xact.caller_userid,
											   def->owner);
		splitdb_origin_prove_connection(conn, def->other_server);
	}
	rows = splitdb_refcheck_run_remote(def, def->other_server,
									   "SELECT r.reference_id, r.side, r.kind, r.old_key, r.new_key"
									   " FROM splitdb.reference_relay($1, $2) r",
									   2, values, false);
	return splitdb_refcheck_relay_rows(def, rows);
}

/*
 * splitdb_refcheck_relay_rows
 *		The rows of splitdb.reference_relay() or reference_relay_action()
 *		that def's statement made in the other database: queue here the
 *		keys handed back, and return the statement's own rows.
 */
List *
splitdb_refcheck_relay_rows(RefDef *def, List *rows)
{
	List	   *own = NIL;
	ListCell   *lc;

	foreach(lc, rows)
	{
		char	  **row = lfirst(lc);
		int			n;

		if (row[0] == NULL)
			own = lappend(own, splitdb_catalog_parse_text_array(row[3], &n));
		else
			relay_key(def, row);
	}
	return own;
}

/*
 * client_target
 *		The relation that text, the statement of a portal, names as the one
 *		it writes (INSERT, UPDATE, DELETE or MERGE), found under the
 *		session's search_path; InvalidOid for anything else, or for more
 *		than one statement.  The last text's parse is kept, since a proved
 *		session's statements repeat one text for many rows.
 */
static Oid
client_target(const char *text)
{
	static MemoryContext cxt = NULL;
	static char *kept_text = NULL;
	static RangeVar *kept_rv = NULL;

	if (kept_text == NULL || strcmp(kept_text, text) != 0)
	{
		List	   *raw;
		Node	   *stmt = NULL;
		RangeVar   *rv = NULL;
		MemoryContext old;

		if (cxt == NULL)
			cxt = AllocSetContextCreate(TopMemoryContext, "splitdb client statement",
										ALLOCSET_SMALL_SIZES);
		MemoryContextReset(cxt);
		kept_text = NULL;
		kept_rv = NULL;
		raw = raw_parser(text, RAW_PARSE_DEFAULT);
		if (list_length(raw) == 1)
			stmt = linitial_node(RawStmt, raw)->stmt;
		if (stmt != NULL && IsA(stmt, InsertStmt))
			rv = ((InsertStmt *) stmt)->relation;
		else if (stmt != NULL && IsA(stmt, UpdateStmt))
			rv = ((UpdateStmt *) stmt)->relation;
		else if (stmt != NULL && IsA(stmt, DeleteStmt))
			rv = ((DeleteStmt *) stmt)->relation;
		else if (stmt != NULL && IsA(stmt, MergeStmt))
			rv = ((MergeStmt *) stmt)->relation;
		old = MemoryContextSwitchTo(cxt);
		kept_rv = rv ? copyObject(rv) : NULL;
		kept_text = pstrdup(text);
		MemoryContextSwitchTo(old);
	}
	return kept_rv ? RangeVarGetRelid(kept_rv, NoLock, true) : InvalidOid;
}

/*
 * row_written_by_outer
 *		Whether the row an AFTER ROW trigger fires for was written by the
 *		statement of the outermost executor run (execdepth.c): the command
 *		id of its new version (INSERT, UPDATE) or of its deletion (DELETE)
 *		is that statement's.  A row that a later command of the transaction
 *		changed has a higher one: the query of a foreign key's action,
 *		which PostgreSQL runs after advancing the command counter, fires its
 *		rows' AFTER triggers on the list of the statement whose row started
 *		it (SPI_execute_snapshot() with fire_triggers false), at depth 1.
 *		A row whose version this transaction did not write (none should
 *		come here) is not the statement's: it goes back to the writer,
 *		which checks it.
 *
 * The trigger's tuple is the one in the table's page (AFTER triggers fetch
 * it by its ctid), so its header holds the ids.
 */
static bool
row_written_by_outer(TriggerData *td)
{
	CommandId	cid = splitdb_execdepth_outer_cid();
	HeapTupleHeader h;

	if (cid == InvalidCommandId)
		return false;
	if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
	{
		h = td->tg_trigtuple->t_data;
		return TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetUpdateXid(h)) &&
			HeapTupleHeaderGetCmax(h) == cid;
	}
	h = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ?
		td->tg_newtuple->t_data : td->tg_trigtuple->t_data;
	return TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetXmin(h)) &&
		HeapTupleHeaderGetCmin(h) == cid;
}

/*
 * splitdb_refcheck_statement_writes
 *		The command of the statement the client sent, when it writes relid
 *		(or a table relid is a partition of): a shim's own rows, changed by
 *		the INSERT, UPDATE or DELETE sent through it.  CMD_UNKNOWN when it
 *		does not: rows of other tables were changed in turn, by foreign
 *		keys (which queue their rows' triggers in the same statement) or by
 *		triggers and rules.
 *
 * ActivePortal is not the client's statement alone: its statements include
 * the actions of the rules on the table it writes (a DO ALSO or DO INSTEAD
 * rule's INSERT into another table), and while a function's cursor runs
 * (a PL/pgSQL FOR loop over an INSERT ... RETURNING, in a trigger) it is
 * that cursor's portal.  So the row must be of the relation that the
 * portal's text names, written by the statement that runs now (the
 * outermost executor run, execdepth.c), which must be the portal's
 * statement that sets the command's tag: a DO ALSO rule's action runs
 * before or after it, at the same depth, and may write the same table (an
 * INSERT's rule that UPDATEs it), and its trigger must not be nested in another
 * trigger (the client's rows fire theirs at depth 1; those of a statement
 * that a trigger runs, at 2 or more), nor fired by a statement that a
 * function runs inside the client's (a CHECK constraint's, a domain's, a
 * DEFAULT's), which has neither a portal nor a trigger of its own: the
 * client's rows fire their AFTER triggers at executor depth 1
 * (execdepth.c), those of such a statement deeper.  Last, the row must have
 * been written by that statement itself (row_written_by_outer()): the
 * action of a foreign key of the table on itself (ON DELETE CASCADE to the
 * rows below a deleted one) changes rows of the same table whose triggers
 * fire at depth 1 too, on the list of the client's statement.
 */
CmdType
splitdb_refcheck_statement_writes(TriggerData *td)
{
	Oid			relid = RelationGetRelid(td->tg_relation);
	PlannedStmt *ps;
	ListCell   *rc;
	Oid			target;

	if (ActivePortal == NULL || ActivePortal->sourceText == NULL ||
		splitdb_execdepth() != 1 ||
		DatumGetInt32(DirectFunctionCall1(pg_trigger_depth, (Datum) 0)) > 1)
		return CMD_UNKNOWN;
	target = client_target(ActivePortal->sourceText);
	if (!OidIsValid(target) || !splitdb_refcheck_relation_is_or_under(relid, target))
		return CMD_UNKNOWN;
	/* the statement that runs now, if it is the portal's that sets the tag */
	ps = splitdb_execdepth_outer_stmt();
	if (ps == NULL || !list_member_ptr(ActivePortal->stmts, ps) || !ps->canSetTag ||
		ps->commandType == CMD_SELECT || ps->commandType == CMD_UTILITY)
		return CMD_UNKNOWN;
	foreach(rc, ps->resultRelations)
	{
		RangeTblEntry *rte = rt_fetch(lfirst_int(rc), ps->rtable);

		if (splitdb_refcheck_relation_is_or_under(relid, rte->relid))
			return row_written_by_outer(td) ? ps->commandType : CMD_UNKNOWN;
	}
	return CMD_UNKNOWN;
}

/*
 * server_holds_end
 *		Whether the database behind the server holds an end of a
 *		cross-service reference (as of now, as the shim's triggers were
 *		found: see splitdb_spi_exec_latest()).  Nothing is handed back
 *		from a database that holds none.
 */
static bool
server_holds_end(ForeignServer *server)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(server->servername)};
	const char *sql = "SELECT FROM splitdb.reference_end WHERE own_server = $1::pg_catalog.name"
		" OR other_server = $1::pg_catalog.name LIMIT 1";
	bool		any;
	int			nest;
	int			rc;

	nest = splitdb_refcheck_pin_search_path();
	splitdb_spi_connect();
	rc = splitdb_spi_exec_latest(sql, 1, types, values, NULL, 1);
	if (rc != SPI_OK_SELECT)
		splitdb_spi_failed(sql, rc);
	any = (SPI_processed > 0);
	SPI_finish();
	AtEOXact_GUC(true, nest);
	return any;
}

/*
 * set_flag
 *		Set one of the settings that this session reports to the database
 *		whose writes it receives (splitdb.relay_waiting,
 *		splitdb.deferred_waiting; value is its variable) when it is not so
 *		already, in the current (sub)transaction.  They are PGC_INTERNAL:
 *		only this sets them.
 */
static void
set_flag(const char *name, bool value, bool on)
{
	if (value == on)
		return;
	(void) set_config_option(name, on ? "on" : "off",
							 PGC_INTERNAL, PGC_S_OVERRIDE, GUC_ACTION_SET,
							 true, 0, false);
}

/*
 * reports_off
 *		Whether the session behind conn reported the setting name (one of
 *		those set_flag() sets there) as off, which libpq keeps from the
 *		server's ParameterStatus messages: nothing is asked.  A session
 *		that reported nothing (a splitdb without the setting) is not off.
 */
static bool
reports_off(PGconn *conn, const char *name)
{
	const char *value = splitdb_remote_parameter(conn, name);

	return value != NULL && strcmp(value, "off") == 0;
}

/*
 * take_relayed_on
 *		Queue here the keys that the session behind conn left to this
 *		database (splitdb.reference_relayed() there).  The session reports
 *		splitdb.relay_waiting with every change; off means it left none,
 *		and nothing is asked.  A session that reports nothing (a sibling
 *		whose splitdb does not have the setting) is asked.
 */
static void
take_relayed_on(PGconn *conn)
{
	PGresult   *res;
	ListCell   *lc;

	if (reports_off(conn, "splitdb.relay_waiting"))
		return;
	res = splitdb_remote_exec(conn,
							  "SELECT r.reference_id, r.side, r.kind, r.old_key, r.new_key"
							  " FROM splitdb.reference_relayed() r",
							  0, NULL, NULL);
	foreach(lc, splitdb_remote_result_rows(res))
		relay_key(NULL, lfirst(lc));
	splitdb_remote_clear(res);
}

/*
 * splitdb_refcheck_take_relayed
 *		After an INSERT, UPDATE or DELETE through a shim: queue here the
 *		keys that the other database left to this one for the rows that its
 *		foreign keys and triggers changed in turn (the shim's own rows come
 *		through the shim's triggers).  An INSERT fires no foreign key's
 *		action, but it fires the other table's triggers and rules, whose
 *		writes to a third table that the other database skipped (the write
 *		came from here) would otherwise go unchecked.
 */
void
splitdb_refcheck_take_relayed(Relation shim)
{
	ForeignServer *server = GetForeignServer(GetForeignTable(RelationGetRelid(shim))->serverid);

	if (!server_holds_end(server))
		return;
	take_relayed_on(splitdb_refcheck_fdw_connection(server->serverid, GetUserId(),
													shim->rd_rel->relowner));
}

/*
 * splitdb_refcheck_note_deferrable
 *		A statement writes table relid (fdwwatch.c, at any depth): in a
 *		session that proved it comes from another database, set
 *		splitdb.deferred_waiting on when the table has a deferrable trigger
 *		(a constraint trigger, a deferrable foreign key's, splitdb's for a
 *		deferrable reference), whose events may wait for the commit, or
 *		when it has partitions or children, whose triggers are not looked
 *		at.  The writer reads the setting, reported with every change, and
 *		fires the session's deferred triggers before it commits only when
 *		it is on (splitdb_refcheck_fire_deferred).  Set in the
 *		(sub)transaction of the write, so an abort that takes it back takes
 *		the trigger events back too.
 */
void
splitdb_refcheck_note_deferrable(Oid relid)
{
	Relation	rel;
	bool		deferrable = false;

	if (splitdb_deferred_waiting || splitdb_origin_proven() == NULL)
		return;
	rel = RelationIdGetRelation(relid);
	if (!RelationIsValid(rel))
		return;
	if (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE || rel->rd_rel->relhassubclass)
		deferrable = true;
	else if (rel->trigdesc != NULL)
	{
		for (int i = 0; i < rel->trigdesc->numtriggers && !deferrable; i++)
			deferrable = rel->trigdesc->triggers[i].tgdeferrable;
	}
	RelationClose(rel);
	if (deferrable)
		set_flag("splitdb.deferred_waiting", splitdb_deferred_waiting, true);
}

/*
 * splitdb_refcheck_deferred_fired
 *		PostgreSQL ran SET CONSTRAINTS stmt here: ALL IMMEDIATE fired every
 *		deferred trigger event, so none waits (splitdb.deferred_waiting
 *		off).
 */
void
splitdb_refcheck_deferred_fired(ConstraintsSetStmt *stmt)
{
	if (stmt->constraints == NIL && !stmt->deferred)
		set_flag("splitdb.deferred_waiting", splitdb_deferred_waiting, false);
}

/* error context of fire_deferred_on(): arg is the server's name */
static void
fire_deferred_context(void *arg)
{
	errcontext("at commit, firing the deferred triggers and constraints of the transaction written through server \"%s\"",
			   (const char *) arg);
}

/*
 * fire_deferred_on
 *		For splitdb_refcheck_fire_deferred(): in the remote transaction of
 *		one user mapping that wrote through shims, fire the deferred
 *		triggers now, and take back the keys of the rows they wrote.
 */
static void
fire_deferred_on(Oid serverid, Oid userid)
{
	ForeignServer *server = GetForeignServer(serverid);
	ErrorContextCallback errcb;
	PGconn	   *conn;

	if (!server_holds_end(server))
		return;
	errcb.callback = fire_deferred_context;
	errcb.arg = server->servername;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	conn = splitdb_remote_fdw_connection(GetUserMapping(userid, serverid));

	/*
	 * The session reports splitdb.deferred_waiting with every change: off,
	 * no statement of it wrote a table with a deferrable trigger since the
	 * last SET CONSTRAINTS ALL IMMEDIATE.  Not reported, it is asked.
	 */
	if (!reports_off(conn, "splitdb.deferred_waiting"))
		splitdb_remote_command(conn, "SET CONSTRAINTS ALL IMMEDIATE", 0, NULL, NULL);
	take_relayed_on(conn);
	error_context_stack = errcb.previous;
}

/*
 * splitdb_refcheck_fire_deferred
 *		At commit, before postgres_fdw commits its remote transactions: in
 *		each one that this transaction wrote through shims, where the
 *		sibling holds an end, fire the sibling's deferred triggers (SET
 *		CONSTRAINTS ALL IMMEDIATE, which PostgreSQL would do at the
 *		sibling's commit anyway) and take back the keys of the rows that
 *		they wrote, so that this transaction checks them and acts on them
 *		with what it wrote itself, as the shim's statement trigger does for
 *		the rows that a statement's triggers write.  A constraint trigger
 *		INITIALLY DEFERRED in the sibling (a history row, a counter, a
 *		clean-up) fires only at its commit, when every statement through
 *		the shim is over.
 */
void
splitdb_refcheck_fire_deferred(void)
{
	bool		pushed = false;

	if (!ActiveSnapshotSet())
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		pushed = true;
	}
	splitdb_constraintsfwd_foreach_shim(fire_deferred_on);
	if (pushed)
		PopActiveSnapshot();
}

/*
 * splitdb_refcheck_enforce_unrelayed
 *		At commit: enforce here, as for a write made here directly, the keys
 *		still waiting to be handed back, which no database would check any
 *		more.  The writer fires this database's deferred triggers and takes
 *		their rows' keys before it commits (splitdb_refcheck_fire_deferred),
 *		so only a writer that did not (a deferred trigger that a check or an
 *		action of the writer's commit fired here in turn) leaves any.  The
 *		checks and actions run through this database's own connection,
 *		which does not see what the writer's transaction has not committed.
 */
void
splitdb_refcheck_enforce_unrelayed(void)
{
	for (RefDef *def = splitdb_refcheck_defs(); def != NULL; def = def->next)
	{
		List	   *keys = def->relay.keys;
		ListCell   *lc;

		if (keys == NIL)
			continue;
		memset(&def->relay, 0, sizeof(PendingSet));
		foreach(lc, keys)
		{
			PendingKey *pk = lfirst(lc);

			splitdb_refcheck_add_pending(def, pk->kind, pk->old, pk->new, false,
										 pk->writer);
		}
	}
	splitdb_refcheck_relay_waiting(false);
}

/*
 * require_own_statement
 *		Refuse a call of fname() that is not a client's statement of its
 *		own: a SELECT that is the only statement of its portal, at executor
 *		depth 1, with no trigger under way.  The database that wrote
 *		through a shim calls splitdb.reference_relay() and
 *		splitdb.reference_relayed() so, on its connection; called from a
 *		trigger, a function, a constraint or a rule's action that its write
 *		set off here, they would hand the keys that this database's
 *		references left to it (and forget them) to that code instead, and
 *		the checks of those keys would never run.
 */
static void
require_own_statement(const char *fname)
{
	PlannedStmt *outer = splitdb_execdepth_outer_stmt();

	if (splitdb_execdepth() == 1 && outer != NULL && outer->commandType == CMD_SELECT &&
		ActivePortal != NULL && list_length(ActivePortal->stmts) == 1 &&
		linitial(ActivePortal->stmts) == outer &&
		DatumGetInt32(DirectFunctionCall1(pg_trigger_depth, (Datum) 0)) == 0)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("%s() must be called as a statement of its own", fname),
			 errdetail("It hands the keys that the cross-service references of this database left to the database that wrote through a shim, which calls it as a statement of its own; called from a trigger, a function, a constraint or a rule, it would take them from that database's checks."),
			 errhint("Do not call it from code in the database; splitdb's enforcement in another database calls it.")));
}

/*
 * splitdb_reference_relay
 *		splitdb.reference_relay(statement, params): run an action statement
 *		that another database's enforcement applies here, and hand back the
 *		keys that this database's triggers skipped because the write came
 *		from that database.
 *
 * A write that comes from another database's enforcement carries its
 * splitdb.origin, and the ends here whose other end is that database (or
 * every end, for the source) skip it: that database enforces them, in the
 * transaction that sees its own writes.  For a shim write it does so with
 * its shim's triggers.  An action statement (CASCADE, SET NULL, SET
 * DEFAULT) passes no shim, so the rows it changes here, and those that
 * foreign keys here change in turn, come back as rows of this function:
 * the caller queues them on its own ends, and the chain of actions goes on
 * there.
 *
 * params holds the statement's text[] parameters in text form.  Returns
 * first the statement's own rows (reference_id NULL, the columns in
 * old_key), then one row per skipped key: reference_id, side, kind ('c'
 * check, 'd' delete, 'u' update, 'm' moved to another partition), old_key
 * and new_key.  The statement runs
 * with the caller's rights.
 */
Datum
splitdb_reference_relay(PG_FUNCTION_ARGS)
{
	char	   *sql = text_to_cstring(PG_GETARG_TEXT_PP(0));
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	  **texts;
	int			nparams;

	require_own_statement("splitdb.reference_relay");
	InitMaterializedSRF(fcinfo, 0);
	splitdb_refcheck_register_callbacks();
	texts = splitdb_catalog_text_items(PG_GETARG_ARRAYTYPE_P(1), &nparams);
	splitdb_refcheck_relay_run(sql, texts, nparams, InvalidOid, false, rsinfo);
	return (Datum) 0;
}

/*
 * splitdb_refcheck_relay_run
 *		Run the statement of splitdb.reference_relay() or
 *		splitdb.reference_relay_action() (the caller set up rsinfo's
 *		tuplestore), with texts, the text forms of its nparams text[]
 *		parameters, and put its rows and then the keys left to the caller
 *		into rsinfo.
 *
 * owner: InvalidOid runs it with the caller's rights; else as that role,
 * the owner of the referencing table, with its AFTER triggers fired after
 * it (splitdb_refcheck_act_as_owner), before this function returns, so
 * that the keys they leave to the caller are among its rows: with the
 * caller's rights, or, with owner_fires, as owner in a security-restricted
 * operation (the caller's login is another role's than the writer's).
 * With the latest snapshot either way.
 */
void
splitdb_refcheck_relay_run(const char *sql, char **texts, int nparams, Oid owner,
						   bool owner_fires, ReturnSetInfo *rsinfo)
{
	Oid		   *types;
	Datum	   *values;
	bool		was_relaying = refcheck_xact.relaying;
	Oid			save_userid;
	int			save_sec;
	int			rc = 0;
	int			nest;
	int			natts = 0;
	List	   *rows = NIL;
	ListCell   *lc;

	types = palloc(sizeof(Oid) * Max(nparams, 1));
	values = palloc(sizeof(Datum) * Max(nparams, 1));
	for (int i = 0; i < nparams; i++)
	{
		if (texts[i] == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("parameter %d of splitdb.reference_relay() is null", i + 1),
					 errhint("splitdb's enforcement in another database calls this function; pass each parameter of the statement as a text[] in text form.")));
		types[i] = TEXTARRAYOID;
		values[i] = OidInputFunctionCall(F_ARRAY_IN, texts[i], TEXTOID, -1);
	}

	/*
	 * The function's SET clause pins search_path to pg_catalog, pg_temp.  An
	 * action's triggers find their names as in a session of the acting role
	 * here: with the path such sessions start with, behind pg_catalog.
	 */
	nest = splitdb_refcheck_action_search_path(GetConfigOptionResetString("search_path"));
	splitdb_spi_connect();
	GetUserIdAndSecContext(&save_userid, &save_sec);
	refcheck_xact.relaying = true;

	/*
	 * With the latest snapshot, as PostgreSQL's foreign keys act: the
	 * caller's remote transaction is REPEATABLE READ, and a referencing row
	 * committed after its snapshot (while the caller waited for the lock on
	 * the referenced row) must be seen and acted on.
	 */
	PG_TRY();
	{
		if (OidIsValid(owner))
			rows = splitdb_refcheck_act_as_owner(sql, nparams, types, values, true, owner,
												 owner_fires ? owner : save_userid,
												 owner_fires ?
												 save_sec | SECURITY_LOCAL_USERID_CHANGE |
												 SECURITY_RESTRICTED_OPERATION : save_sec,
												 &natts);
		else
		{
			SPIPlanPtr	plan = SPI_prepare(sql, nparams, types);

			if (plan == NULL)
				splitdb_spi_failed(sql, SPI_result);
			CommandCounterIncrement();
			rc = SPI_execute_snapshot(plan, values, NULL, GetLatestSnapshot(),
									  InvalidSnapshot, false, true, 0);
			if (rc < 0)
				splitdb_spi_failed(sql, rc);
			natts = SPI_tuptable ? SPI_tuptable->tupdesc->natts : 0;
			rows = splitdb_catalog_result_rows();
		}
	}
	PG_FINALLY();
	{
		refcheck_xact.relaying = was_relaying;
		SetUserIdAndSecContext(save_userid, save_sec);
	}
	PG_END_TRY();

	/* the statement's own rows */
	foreach(lc, rows)
	{
		Datum		out[5] = {0};
		bool		nulls[5] = {true, true, true, false, true};

		out[3] = splitdb_catalog_text_array_datum(lfirst(lc), natts);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, nulls);
	}
	SPI_finish();
	AtEOXact_GUC(true, nest);

	emit_relayed(rsinfo);
}

/*
 * emit_relayed
 *		Return the keys left to the caller as rows of rsinfo's tuplestore,
 *		and forget them here.
 */
static void
emit_relayed(ReturnSetInfo *rsinfo)
{
	for (RefDef *def = splitdb_refcheck_defs(); def != NULL; def = def->next)
	{
		ListCell   *lc;

		foreach(lc, def->relay.keys)
		{
			PendingKey *pk = lfirst(lc);
			Datum		out[5];
			bool		nulls[5] = {false, false, false, false, pk->new == NULL};

			out[0] = Int64GetDatum(def->reference_id);
			out[1] = CharGetDatum(def->side);
			out[2] = CharGetDatum("cdum"[pk->kind]);
			out[3] = splitdb_catalog_text_array_datum(pk->old, def->nkeys);
			if (pk->new != NULL)
				out[4] = splitdb_catalog_text_array_datum(pk->new, def->nkeys);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, nulls);
		}
		memset(&def->relay, 0, sizeof(PendingSet));
	}
	splitdb_refcheck_relay_waiting(false);
}

/*
 * splitdb_refcheck_relay_waiting
 *		Set splitdb.relay_waiting to on (a key was queued for the relay) or
 *		off (the relay queues were handed back), when it is not so already.
 *		The setting is reported to the client with its next ReadyForQuery
 *		(GUC_REPORT), so the source can read it on postgres_fdw's
 *		connection without asking (splitdb_refcheck_take_relayed).  It is
 *		set in the (sub)transaction that queues the key, so an abort that
 *		takes the setting back takes the key's row back too; the reverse (on,
 *		no key waiting) costs only a request that hands back nothing.
 */
void
splitdb_refcheck_relay_waiting(bool on)
{
	set_flag("splitdb.relay_waiting", splitdb_relay_waiting, on);
}

/*
 * splitdb_reference_relayed
 *		splitdb.reference_relayed(): the keys that the references here
 *		skipped, since the last call, for rows that the foreign keys and
 *		triggers of this database changed in turn while applying a write
 *		that came through a shim: rows as splitdb.reference_relay()
 *		returns them after the statement's own.
 */
Datum
splitdb_reference_relayed(PG_FUNCTION_ARGS)
{
	require_own_statement("splitdb.reference_relayed");
	InitMaterializedSRF(fcinfo, 0);
	splitdb_refcheck_register_callbacks();
	emit_relayed((ReturnSetInfo *) fcinfo->resultinfo);
	return (Datum) 0;
}
