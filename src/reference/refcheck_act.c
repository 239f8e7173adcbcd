/*-------------------------------------------------------------------------
 *
 * refcheck_act.c
 *	  Referential actions applied in another database, as the owner of the
 *	  referencing table there.
 *
 * PostgreSQL runs a foreign key's action (CASCADE, SET NULL, SET DEFAULT)
 * as the owner of the referencing table (ri_triggers.c, ri_PerformCheck):
 * that table's triggers see current_user = its owner, its row-level
 * security does not apply, and the writer needs no right on it.  When the
 * referencing table is in another database, the database that enforces the
 * referenced end asks that one to apply the action, with
 * splitdb.reference_relay_action(), which runs it as the owner of the
 * table there.  Running a statement as another role is a right, so the
 * receiving end grants it only to splitdb:
 *
 * - the request names a reference and an event (delete or update), never a
 *   statement: the receiving end makes the statement itself, from its own
 *   row of the reference's referencing end (whose table must be here, not a
 *   shim), with the action that row records;
 * - the session must have proved its origin (origin.c), and the request
 *   must carry a MAC under a key derived from the proof, over a counter
 *   that only grows: a client cannot call it, nor code that runs inside
 *   the proved session (a trigger fired there), nor can a request be made
 *   twice.
 *
 * On a connection that proved nothing (the transaction read or wrote
 * another foreign table of that server first, or the two databases share
 * no secret) the issuing end applies the action through
 * splitdb.reference_relay() instead, with the mapped role's rights, as
 * before.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/refcheck_act.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_collation.h"
#include "commands/dbcommands.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "foreign/foreign.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "metadata/catalog.h"
#include "reference/origin.h"
#include "reference/refcheck_int.h"
#include "reference/refstats.h"
#include "remote/remote.h"

PG_FUNCTION_INFO_V1(splitdb_reference_relay_action);

/*
 * action_request
 *		The text an action request's MAC covers: its counter, reference,
 *		event ('d' delete, 'u' update) and its two arrays in array_out()'s
 *		form, each after its length in bytes.
 */
static char *
action_request(int64 counter, int64 reference_id, char event,
			   const char *collations, const char *params)
{
	return psprintf("splitdb action " INT64_FORMAT " " INT64_FORMAT " %c %zu %s %zu %s",
					counter, reference_id, event, strlen(collations), collations,
					strlen(params), params);
}

/* a text[] of n C strings (NULL: a NULL element) in array_out()'s form */
static char *
array_text(char *const *items, int n)
{
	return OidOutputFunctionCall(F_ARRAY_OUT, splitdb_catalog_text_array_datum(items, n));
}

/*
 * fire_after_triggers
 *		Fire the AFTER triggers queued since AfterTriggerBeginQuery(), as
 *		the current user, with a snapshot that sees the rows they fire on.
 */
static void
fire_after_triggers(void)
{
	EState	   *estate = CreateExecutorState();

	CommandCounterIncrement();
	PushActiveSnapshot(GetTransactionSnapshot());
	AfterTriggerEndQuery(estate);
	PopActiveSnapshot();
	ExecResetTupleTable(estate->es_tupleTable, false);
	ExecCloseResultRelations(estate);
	FreeExecutorState(estate);
}

/*
 * splitdb_refcheck_act_as_owner
 *		Run an action statement (CASCADE, SET NULL, SET DEFAULT) on the
 *		referencing rows of this database, through the caller's SPI
 *		connection, as PostgreSQL's foreign keys run it (ri_triggers.c,
 *		ri_PerformCheck): as owner, the referencing table's owner, to whom
 *		the table's row-level security does not apply, forced or not
 *		(SECURITY_NOFORCE_RLS), and who cannot SET ROLE; what runs during
 *		the statement (BEFORE triggers, constraints' functions, defaults)
 *		runs as that role.  PostgreSQL queues the statement's AFTER
 *		triggers to the end of the writer's statement, where they fire with
 *		the writer's rights: here they fire once the statement is done, as
 *		after_userid with after_sec, so that what they queue is worked off
 *		(or handed back) with the action.
 *
 * types, values: the nparams parameters.  latest: run with the latest
 * snapshot (an action that another database asked for: see
 * splitdb_refcheck_relay_run), else with SPI's.  Returns the statement's
 * rows as splitdb_catalog_result_rows() makes them, their column count in
 * *natts.  The current user is after_userid on return.
 */
List *
splitdb_refcheck_act_as_owner(const char *sql, int nparams, Oid *types,
							  Datum *values, bool latest, Oid owner,
							  Oid after_userid, int after_sec, int *natts)
{
	Oid			save_userid;
	int			save_sec;
	SPIPlanPtr	plan;
	List	   *rows;
	int			rc;
	int			nest;

	GetUserIdAndSecContext(&save_userid, &save_sec);
	AfterTriggerBeginQuery();
	SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_NOFORCE_RLS);
	plan = SPI_prepare(sql, nparams, types);
	if (plan == NULL)
		splitdb_spi_failed(sql, SPI_result);
	if (latest)
		CommandCounterIncrement();
	rc = SPI_execute_snapshot(plan, values, NULL,
							  latest ? GetLatestSnapshot() : InvalidSnapshot,
							  InvalidSnapshot, false, false, 0);
	if (rc < 0)
		splitdb_spi_failed(sql, rc);
	*natts = SPI_tuptable ? SPI_tuptable->tupdesc->natts : 0;
	/* keys as every database reads them back, as the queued ones are */
	nest = splitdb_refcheck_pin_output();
	rows = splitdb_catalog_result_rows();
	AtEOXact_GUC(true, nest);
	SetUserIdAndSecContext(after_userid, after_sec);
	fire_after_triggers();
	return rows;
}

/*
 * refuse_borrowed_unproved
 *		Refuse def's action in the other database on a session that proved
 *		no origin there and logged in through another role's user mapping
 *		than the writer's: splitdb.reference_relay() would run the action,
 *		and the referencing table's triggers, with the rights of the role
 *		that mapping logs in as (the referenced table's owner's, say), not as
 *		the referencing table's owner.
 */
static void
refuse_borrowed_unproved(RefDef *def)
{
	ForeignServer *server = GetForeignServer(def->other_server);

	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("cannot apply the action of cross-service reference \"%s\" through another role's user mapping",
					def->conname),
			 errdetail("Role %s has no user mapping for server \"%s\", and the session there proved no origin, so the action would run with the rights of the role that the borrowed mapping logs in as.",
					   GetUserNameFromId(refcheck_xact.caller_userid, false), server->servername),
			 errhint("Create a user mapping for role %s on server \"%s\", or keep this transaction's reads and writes of that server's other foreign tables apart from the write that sets off the action.",
					 GetUserNameFromId(refcheck_xact.caller_userid, false), server->servername)));
}

/*
 * splitdb_refcheck_run_action
 *		Apply def's action, whose statement here would be sql, to the
 *		referencing rows in the other database: as the owner of the table
 *		there, through splitdb.reference_relay_action() on a proved
 *		connection, else through splitdb.reference_relay() with the mapped
 *		role's rights.  params: the statement's text[] Datums.  Queues the
 *		keys handed back and returns the statement's own rows.  Counts a
 *		round trip, with its time.
 */
List *
splitdb_refcheck_run_action(RefDef *def, bool is_update, const char *sql,
							int nparams, Datum *params)
{
	const char **texts = splitdb_refcheck_array_texts(params, nparams);
	char	  **colls = palloc0(sizeof(char *) * def->nkeys);
	const char *values[6];
	PGconn	   *conn;
	PGresult   *res;
	List	   *rows;
	int64		counter;
	bool		borrowed;
	instr_time	start,
				duration;

	splitdb_refcheck_fdw_writes(def->other_server);
	conn = splitdb_refcheck_fdw_connection(def->other_server,
										   refcheck_xact.caller_userid, def->owner);
	splitdb_origin_prove_connection(conn, def->other_server);
	counter = splitdb_origin_next_action(conn);
	borrowed = splitdb_refcheck_mapping(def->other_server, refcheck_xact.caller_userid,
										def->owner)->userid != refcheck_xact.caller_userid;
	if (counter == 0 && borrowed)
		refuse_borrowed_unproved(def);
	if (counter == 0)
		return splitdb_refcheck_run_relayed(def, sql, nparams, params, true);

	/* the referenced key's nondeterministic collations, by name */
	for (int i = 0; i < def->nkeys; i++)
		if (def->fk_collates != NULL && def->fk_collates[i] != NULL)
			colls[i] = def->fk_collates[i] + strlen(" COLLATE ");
	values[0] = psprintf(INT64_FORMAT, def->reference_id);
	/* upper case: the session there logged in through another role's mapping */
	if (borrowed)
		values[1] = is_update ? "U" : "D";
	else
		values[1] = is_update ? "u" : "d";
	values[2] = array_text(colls, def->nkeys);
	values[3] = array_text((char **) texts, nparams);
	values[4] = psprintf(INT64_FORMAT, counter);
	values[5] = splitdb_origin_sign(conn, action_request(counter, def->reference_id,
														 values[1][0], values[2],
														 values[3]));
	INSTR_TIME_SET_CURRENT(start);
	res = splitdb_remote_exec(conn,
							  "SELECT r.reference_id, r.side, r.kind, r.old_key, r.new_key"
							  " FROM splitdb.reference_relay_action($1::pg_catalog.int8,"
							  " $2::pg_catalog.\"char\", $3::pg_catalog.text[],"
							  " $4::pg_catalog.text[], $5::pg_catalog.int8, $6::pg_catalog.text) r",
							  6, values, NULL);
	INSTR_TIME_SET_CURRENT(duration);
	INSTR_TIME_SUBTRACT(duration, start);
	splitdb_refstats_add(def->counter, 0, 0, 1, INSTR_TIME_GET_MICROSEC(duration));
	rows = splitdb_remote_result_rows(res);
	splitdb_remote_clear(res);
	return splitdb_refcheck_relay_rows(def, rows);
}

/*
 * splitdb_refcheck_collate_clauses
 *		RefDef.fk_collates from the collation names of a request (NULL
 *		elements: none), each resolved here and named again from the
 *		catalog; NULL when there is none.  Raises 42704 for a collation that
 *		does not exist here.
 */
char **
splitdb_refcheck_collate_clauses(char **names, int n)
{
	char	  **clauses = NULL;

	for (int i = 0; i < n; i++)
	{
		Oid			coll;
		HeapTuple	tup;
		Form_pg_collation form;

		if (names[i] == NULL)
			continue;
		coll = get_collation_oid(stringToQualifiedNameList(names[i]), false);
		tup = SearchSysCache1(COLLOID, ObjectIdGetDatum(coll));
		if (!HeapTupleIsValid(tup))
			elog(ERROR, "cache lookup failed for collation %u", coll);
		form = (Form_pg_collation) GETSTRUCT(tup);
		if (clauses == NULL)
			clauses = palloc0(sizeof(char *) * n);
		clauses[i] = psprintf(" COLLATE %s.%s",
							  quote_identifier(get_namespace_name(form->collnamespace)),
							  quote_identifier(NameStr(form->collname)));
		ReleaseSysCache(tup);
	}
	return clauses;
}

/*
 * splitdb_reference_relay_action
 *		splitdb.reference_relay_action(reference_id, event, collations,
 *		params, counter, mac): apply here, as the owner of the referencing
 *		table, the action of reference reference_id for the keys that
 *		another database deleted (event 'd') or changed ('u'), and hand back
 *		what this database's triggers left to that one, as
 *		splitdb.reference_relay() does.  The statement's AFTER triggers
 *		fire with this session's rights, which are the writer's there; for
 *		'D' and 'U' (the writer's own user mapping was not the one this
 *		session logged in through: it borrowed the referenced table's
 *		owner's, or that of a view's owner it wrote through), as the
 *		referencing table's owner in a security-restricted operation
 *		instead, so that code there runs with no role's rights but its
 *		owner's.
 *
 * collations: per key column, the referenced key's nondeterministic
 * collation (qualified name) or NULL; params: the text forms of the
 * statement's text[] parameters (the old keys per column, then for ON
 * UPDATE CASCADE the new ones); counter and mac: see origin.c.  Raises
 * 42501 unless the session proved its origin and mac matches; 42704 when
 * this database holds no referencing end of the reference whose table is
 * here; 22023 for a request that does not fit that end.  Nothing is done,
 * and nothing returned, when that table was dropped here
 * (splitdb_refcheck_end_dropped).
 */
Datum
splitdb_reference_relay_action(PG_FUNCTION_ARGS)
{
	int64		reference_id = PG_GETARG_INT64(0);
	char		event = PG_GETARG_CHAR(1);
	ArrayType  *collations = PG_GETARG_ARRAYTYPE_P(2);
	ArrayType  *params = PG_GETARG_ARRAYTYPE_P(3);
	int64		counter = PG_GETARG_INT64(4);
	char	   *mac = text_to_cstring(PG_GETARG_TEXT_PP(5));
	RefDef	   *def;
	char	  **texts;
	char	  **colls;
	int			nparams;
	int			ncolls;
	char		action;
	bool		is_update = (event == 'u' || event == 'U');
	bool		borrowed = (event == 'D' || event == 'U');

	InitMaterializedSRF(fcinfo, 0);
	splitdb_refcheck_register_callbacks();
	splitdb_origin_check_action(counter, mac,
								action_request(counter, reference_id, event,
											   OidOutputFunctionCall(F_ARRAY_OUT, PointerGetDatum(collations)),
											   OidOutputFunctionCall(F_ARRAY_OUT, PointerGetDatum(params))));

	def = splitdb_refcheck_acting_def(reference_id);
	/* the referencing table was dropped here: no row to act on */
	if (def == NULL && splitdb_refcheck_end_dropped(reference_id, 'c'))
		return (Datum) 0;
	if (def == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("cross-service reference " INT64_FORMAT " has no referencing table in database \"%s\"",
						reference_id, get_database_name(MyDatabaseId)),
				 errhint("The databases disagree about where the reference's ends are; compare splitdb.reference_end in both.")));
	action = is_update ? def->on_update : def->on_delete;
	texts = splitdb_catalog_text_items(params, &nparams);
	colls = splitdb_catalog_text_items(collations, &ncolls);
	if ((event != 'd' && event != 'u' && event != 'D' && event != 'U') ||
		(action != 'c' && action != 'n' && action != 'd') ||
		nparams != ((is_update && action == 'c') ? 2 : 1) * def->nkeys ||
		ncolls != def->nkeys)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid request for the action of cross-service reference \"%s\"",
						def->conname),
				 errdetail("Event \"%c\" with %d parameters and %d collations; the reference has %d key columns and ON DELETE \"%c\", ON UPDATE \"%c\" here.",
						   event, nparams, ncolls, def->nkeys, def->on_delete, def->on_update),
				 errhint("The databases disagree about the reference; compare splitdb.reference_end in both.")));
	def->fk_collates = splitdb_refcheck_collate_clauses(colls, ncolls);

	splitdb_refcheck_relay_run(splitdb_refcheck_action_sql(def, action, is_update),
							   texts, nparams,
							   splitdb_refcheck_table_owner(def->other_table), borrowed,
							   (ReturnSetInfo *) fcinfo->resultinfo);
	return (Datum) 0;
}
