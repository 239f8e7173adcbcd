/*-------------------------------------------------------------------------
 *
 * capture.c
 *	  Change capture: statement triggers that log the keys of the rows
 *	  written to a table into a key-only log table of its database, for a
 *	  replay into another database (replay.c).
 *
 * A captured relation (splitdb.capture, in the database that captures) has
 * four AFTER ... FOR EACH STATEMENT triggers, one per event, INSERT, UPDATE
 * and DELETE with transition tables, and TRUNCATE; all are ENABLE ALWAYS,
 * so that writes applied with session_replication_role = replica (actions
 * relayed from another database) are logged too.  Each trigger call logs
 * its keys: op I, U (the old and the new keys), D, or T, "everything may
 * have changed" (a TRUNCATE, or any write to a table without a key).  The
 * direct writer (capturelog.c) inserts them into the log itself; with
 * splitdb.capture_direct off, or for a log it does not take, one
 * INSERT ... SELECT from the transition tables runs through SPI here.
 *
 * A partitioned table logs into one log: the triggers sit on every
 * relation of its tree, all naming the root's log in splitdb.capture.
 * PostgreSQL fires the statement triggers of the table a statement names
 * alone, with transition tables in that table's row type: the root for a
 * write through it, a partitioned table under it for a write through that
 * one (a second level of partitions), a leaf for a write straight into it.
 * PostgreSQL 15 allows transition tables on statement triggers of each.
 * A MERGE into a partitioned table logs a T from its UPDATE trigger: its
 * transition tables lack the rows it moved to another partition
 * (capturemerge.c).
 *
 * Invariants:
 * - The trigger function writes only into the log splitdb.capture lists for
 *   the trigger's own relation, and refuses to run on any other relation,
 *   so a trigger made by hand cannot make it write elsewhere.
 * - It writes as the log's owner (SetUserIdAndSecContext, as PostgreSQL's
 *   RI triggers do): a role that may write the table needs no right on the
 *   log, and gets none.
 * - The capture of a job is installed in the sibling, and committed there,
 *   inside the cutover's source transaction, before that commits: no shim
 *   is visible, so no write to the moved tables can come before it.  Its
 *   objects are recorded in splitdb.artifact beforehand, in a transaction
 *   of their own (splitdb_capture_record).
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/capture.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "common/hashfn.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "metadata/artifact.h"
#include "metadata/catalog.h"
#include "migrate/capture.h"
#include "migrate/replay.h"
#include "migrate/capture_int.h"
#include "reference/reference.h"
#include "remote/remote.h"
#include "splitdb.h"

PG_FUNCTION_INFO_V1(splitdb_capture_changes);

/* the events on which a job's capture objects go */
#define CAPTURE_DROP_ON (SPLITDB_ON_ROLLBACK | SPLITDB_ON_FINALIZE | SPLITDB_ON_CANCEL)

/* the capture triggers, as splitdb.install_capture names them */
static const char *const capture_triggers[] = {
	"splitdb_capture_insert", "splitdb_capture_update",
	"splitdb_capture_delete", "splitdb_capture_truncate"
};

/*
 * splitdb_capture_tables
 *		The text[] literal of the job's tables that capture: every table the
 *		job moves that is not a partition moving with its partitioned table,
 *		quoted and qualified, in name order (the order that numbers the
 *		logs).  In a transaction, connected to SPI.
 */
char *
splitdb_capture_tables(int64 job_id)
{
	const char *params[1] = {psprintf(INT64_FORMAT, job_id)};

	splitdb_catalog_exec_text("SELECT coalesce(pg_catalog.array_agg(t.table_name ORDER BY t.table_name),"
							  "                '{}')::text"
							  "  FROM splitdb.job_table t"
							  " WHERE t.job_id = $1::bigint AND t.partition_root IS NULL",
							  1, params, true);
	return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
}

/*
 * splitdb_capture_record
 *		Record in splitdb.artifact what splitdb_capture_install() will make
 *		in service's sibling (reached over conn): the log schema when the
 *		sibling lacks it, a log per table, four triggers per relation.  With
 *		service and conn NULL, what online mode makes in this database
 *		(online.c), dropped on cancel only: the cutover drops it itself.
 *		In a transaction, connected to SPI.
 *
 * The caller commits the transaction before the cutover starts.  Recording
 * again (a resumed cutover) changes nothing.
 */
void
splitdb_capture_record(int64 job_id, const char *service, PGconn *conn)
{
	const char *params[1] = {psprintf(INT64_FORMAT, job_id)};
	char	   *missing;
	List	   *rows;
	ListCell   *lc;
	int			drop_on = conn == NULL ? SPLITDB_ON_CANCEL : CAPTURE_DROP_ON;

	/*
	 * The source's log schema is shared by the online jobs of every service
	 * and goes with the last log in it (splitdb.drop_capture): not
	 * recorded.
	 */
	if (conn == NULL)
		missing = "f";
	else
		missing = splitdb_remote_scalar(conn,
										"SELECT pg_catalog.to_regnamespace('" SPLITDB_CAPTURE_SCHEMA "') IS NULL",
										0, NULL, service);
	if (strcmp(missing, "t") == 0)
		splitdb_artifact_record(job_id, service, "schema", SPLITDB_CAPTURE_SCHEMA, NULL, drop_on);

	/* each table that captures, its log's number, and its relations */
	splitdb_catalog_exec_text("WITH root AS ("
							  "  SELECT t.relid, t.table_name,"
							  "         pg_catalog.row_number() OVER (ORDER BY t.table_name) AS n"
							  "    FROM splitdb.job_table t"
							  "   WHERE t.job_id = $1::bigint AND t.partition_root IS NULL)"
							  " SELECT r.n, r.table_name, r.table_name FROM root r"
							  " UNION ALL"
							  " SELECT r.n, r.table_name, p.table_name"
							  "   FROM root r JOIN splitdb.job_table p"
							  "     ON p.job_id = $1::bigint AND p.partition_root = r.relid"
							  "    AND p.relkind IN ('r', 'p')"
							  " ORDER BY 1, 3",
							  1, params, true);
	rows = splitdb_catalog_result_rows();
	foreach(lc, rows)
	{
		char	  **row = (char **) lfirst(lc);
		char	   *log = psprintf("%s.%s", SPLITDB_CAPTURE_SCHEMA,
								   quote_identifier(psprintf("log_" INT64_FORMAT "_%s",
															 job_id, row[0])));

		if (strcmp(row[1], row[2]) == 0)
			splitdb_artifact_record(job_id, service, "capture log", log, NULL, drop_on);
		for (int i = 0; i < (int) lengthof(capture_triggers); i++)
			splitdb_artifact_record(job_id, service, "trigger",
									quote_identifier(capture_triggers[i]), row[2], drop_on);
	}
}

/*
 * splitdb_capture_prepare_sibling
 *		Install splitdb in service's sibling (in the schema it has here, with
 *		postgres_fdw), in a remote transaction of its own, unless it is there.
 *		Called before the cutover takes its locks: creating the extension
 *		takes tens of milliseconds, which would otherwise be spent while the
 *		application's writes wait.  splitdb_record_before_cutover() has
 *		recorded what this makes, in a transaction committed before.  The
 *		caller is connected to SPI.
 */
void
splitdb_capture_prepare_sibling(const char *service, PGconn *conn)
{
	splitdb_remote_command(conn, "BEGIN", 0, NULL, service);
	splitdb_install_in_sibling(conn, service);
	splitdb_remote_command(conn, "COMMIT", 0, NULL, service);
}

/*
 * splitdb_capture_install
 *		Capture the writes to the job's tables in service's sibling, in a
 *		remote transaction of its own that commits before this returns.
 *
 * Makes sure splitdb is installed there (in the schema it has here), as
 * the reference ends do (splitdb_capture_prepare_sibling() has done it before
 * the cutover's locks; a no-op then).  Idempotent.  The caller is connected to SPI.
 */
void
splitdb_capture_install(int64 job_id, const char *service, PGconn *conn)
{
	const char *params[2];

	params[0] = psprintf(INT64_FORMAT, job_id);
	params[1] = splitdb_capture_tables(job_id);

	splitdb_remote_command(conn, "BEGIN", 0, NULL, service);
	splitdb_install_in_sibling(conn, service);
	splitdb_remote_command(conn, "SELECT splitdb.install_capture($1::bigint, $2::text[])",
						   2, params, service);
	splitdb_remote_command(conn, "COMMIT", 0, NULL, service);
}

/*
 * splitdb_capture_closed
 *		Whether a splitdb_rollback() of the job has switched the sibling that
 *		conn reaches: it closed the job's splitdb.capture rows there, in the
 *		sibling's commit of the switch, after which the service's tables
 *		there refuse every write.  False when the sibling has no splitdb (a
 *		finalize or a rollback's cleanup dropped it).  Reads only.
 */
bool
splitdb_capture_closed(PGconn *conn, const char *service, int64 job_id)
{
	const char *params[1] = {psprintf(INT64_FORMAT, job_id)};
	char	   *v;

	v = splitdb_remote_scalar(conn, "SELECT pg_catalog.to_regclass('splitdb.capture') IS NOT NULL",
							  0, NULL, service);
	if (v == NULL || strcmp(v, "t") != 0)
		return false;
	v = splitdb_remote_scalar(conn,
							  "SELECT pg_catalog.count(*) FROM splitdb.capture c"
							  " WHERE c.job_id OPERATOR(pg_catalog.=) $1::pg_catalog.int8"
							  "   AND c.closed_at IS NOT NULL",
							  1, params, service);
	return v != NULL && strcmp(v, "0") != 0;
}

/*
 * splitdb_capture_problem
 *		What is wrong with the job's capture in service's sibling, or NULL
 *		when it captures every write of every table (its rows, logs and
 *		triggers as splitdb.install_capture made them).  In a transaction,
 *		connected to SPI.
 */
char *
splitdb_capture_problem(int64 job_id, const char *service, PGconn *conn)
{
	const char *params[2];
	char	   *installed;

	installed = splitdb_remote_scalar(conn,
									  "SELECT pg_catalog.to_regprocedure('splitdb.capture_problem(bigint,text[])')"
									  "       IS NOT NULL",
									  0, NULL, service);
	if (strcmp(installed, "t") != 0)
		return pstrdup("splitdb is not installed in the sibling");
	params[0] = psprintf(INT64_FORMAT, job_id);
	params[1] = splitdb_capture_tables(job_id);
	return splitdb_remote_scalar(conn, "SELECT splitdb.capture_problem($1::bigint, $2::text[])",
								 2, params, service);
}

/* the capture row of a relation: its log, its owner, its key columns */
typedef struct CaptureRow
{
	Oid			log_oid;
	char	   *log;			/* quoted, qualified */
	Oid			owner;
	char	   *key_text;		/* key_columns as text, to tell rows apart */
	List	   *keys;			/* quoted column names */
	List	   *names;			/* the same, unquoted */
} CaptureRow;

/*
 * The statements of the capture triggers, prepared once per backend for
 * each relation, event and capture row (the log and its key columns): a
 * trigger call then costs two executions of saved plans, no planning.  A
 * changed capture row makes a new key, and DDL on the log replans through
 * the plan cache.
 */
typedef struct CaptureKey
{
	Oid			relid;
	Oid			log;
	uint32		keys_hash;
	int			event;			/* TRIGGER_EVENT_OPMASK bits */
} CaptureKey;

typedef struct CaptureEntry
{
	CaptureKey	key;
	SPIPlanPtr	plan;
} CaptureEntry;

static HTAB *capture_plans = NULL;
static SPIPlanPtr capture_lookup = NULL;

/*
 * lookup_capture_row
 *		Fill *row from relid's capture row and return true, or return false
 *		when it has none.  Through a plan saved once per backend.
 */
static bool
lookup_capture_row(Oid relid, CaptureRow *out)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(relid)};
	CaptureRow	row;
	bool		isnull;
	int			nkeys;
	char	  **keys;
	int			rc;

	if (capture_lookup == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare("SELECT c.log::pg_catalog.oid, l.relowner,"
									   "       c.key_columns::pg_catalog.text[]"
									   "  FROM splitdb.capture c JOIN pg_catalog.pg_class l ON l.oid = c.log"
									   " WHERE c.relid = $1::pg_catalog.oid::pg_catalog.regclass",
									   1, types);

		if (plan == NULL)
			splitdb_spi_failed("capture lookup", SPI_result);
		SPI_keepplan(plan);
		capture_lookup = plan;
	}
	/* under the newest snapshot, as the trigger was found: see splitdb_spi_exec_latest() */
	rc = SPI_execute_snapshot(capture_lookup, values, NULL, GetLatestSnapshot(),
							  InvalidSnapshot, true, false, 1);
	if (rc != SPI_OK_SELECT)
		splitdb_spi_failed("capture lookup", rc);
	if (SPI_processed != 1)
		return false;
	row.log_oid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	row.owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	row.key_text = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
	keys = splitdb_catalog_array_elems(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &nkeys);
	row.log = quote_qualified_identifier(get_namespace_name(get_rel_namespace(row.log_oid)),
										 get_rel_name(row.log_oid));
	row.keys = NIL;
	row.names = NIL;
	for (int i = 0; i < nkeys; i++)
	{
		row.keys = lappend(row.keys, (char *) quote_identifier(keys[i]));
		row.names = lappend(row.names, keys[i]);
	}
	*out = row;
	return true;
}

/*
 * read_capture_row
 *		The capture row of the trigger's relation, or an error when there is
 *		none: a capture trigger that splitdb did not install refuses to run.
 */
static CaptureRow
read_capture_row(Relation rel, const char *tgname)
{
	CaptureRow	row;

	if (!lookup_capture_row(RelationGetRelid(rel), &row))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("trigger \"%s\" on \"%s\" is not a splitdb capture trigger",
						tgname, RelationGetRelationName(rel)),
				 errdetail("splitdb.capture has no row for the relation."),
				 errhint("Drop the trigger: splitdb installs its capture triggers itself.")));
	return row;
}

/*
 * capture_statement
 *		The one statement that logs a trigger call's keys.
 */
static char *
capture_statement(TriggerData *td, const CaptureRow *row)
{
	Trigger    *tg = td->tg_trigger;
	const char *oldt = tg->tgoldtable ? quote_identifier(tg->tgoldtable) : NULL;
	const char *newt = tg->tgnewtable ? quote_identifier(tg->tgnewtable) : NULL;
	const char *keys = splitdb_replay_key_list(row->keys);
	const char *op;
	const char *from;

	if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
		return psprintf("INSERT INTO %s (splitdb_op) VALUES ('T')", row->log);
	(void) splitdb_capturelog_source(td);
	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
	{
		op = "I";
		from = newt;
	}
	else if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
	{
		op = "D";
		from = oldt;
	}
	else
	{
		op = "U";
		from = oldt;
	}

	/* no key: whatever changed, the replay replaces the whole table */
	if (row->keys == NIL)
		return psprintf("INSERT INTO %s (splitdb_op) SELECT 'T' WHERE EXISTS (SELECT FROM %s)",
						row->log, from);
	if (op[0] == 'U')
		return psprintf("INSERT INTO %s (splitdb_op, %s) SELECT 'U', %s FROM %s UNION SELECT 'U', %s FROM %s",
						row->log, keys, keys, oldt, keys, newt);
	return psprintf("INSERT INTO %s (splitdb_op, %s) SELECT '%s', %s FROM %s",
					row->log, keys, op, keys, from);
}

/*
 * capture_plan
 *		The saved plan of the trigger call's statement, prepared on first
 *		use.  The transition tables' names are the trigger's, which splitdb
 *		creates alike on every relation (splitdb.install_capture), and are
 *		part of the trigger's identity, so they are not in the key.
 */
static SPIPlanPtr
capture_plan(TriggerData *td, const CaptureRow *row)
{
	CaptureKey	key;
	CaptureEntry *entry;
	bool		found;

	if (capture_plans == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(CaptureKey);
		ctl.entrysize = sizeof(CaptureEntry);
		capture_plans = hash_create("splitdb capture plans", 16, &ctl, HASH_ELEM | HASH_BLOBS);
	}
	memset(&key, 0, sizeof(key));
	key.relid = RelationGetRelid(td->tg_relation);
	key.log = row->log_oid;
	key.keys_hash = hash_bytes((const unsigned char *) row->key_text, strlen(row->key_text));
	key.event = td->tg_event & TRIGGER_EVENT_OPMASK;
	entry = hash_search(capture_plans, &key, HASH_ENTER, &found);
	if (!found)
		entry->plan = NULL;
	if (entry->plan == NULL)
	{
		const char *sql = capture_statement(td, row);
		SPIPlanPtr	plan = SPI_prepare(sql, 0, NULL);

		if (plan == NULL)
			splitdb_spi_failed(sql, SPI_result);
		SPI_keepplan(plan);
		entry->plan = plan;
	}
	return entry->plan;
}

/*
 * log_into
 *		Run the trigger call's statement into row's log, as the log's owner.
 *		Connected to SPI, with the trigger's data registered.
 */
static void
log_into(TriggerData *td, const CaptureRow *row)
{
	Oid			save_userid;
	int			save_sec;
	SPIPlanPtr	plan;
	int			rc;

	GetUserIdAndSecContext(&save_userid, &save_sec);
	/* as the log's owner; an error on the way resets the user at abort */
	SetUserIdAndSecContext(row->owner, save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_NOFORCE_RLS);
	plan = capture_plan(td, row);
	rc = SPI_execute_plan(plan, NULL, NULL, false, 0);
	if (rc != SPI_OK_INSERT)
		splitdb_spi_failed("capture", rc);
	SetUserIdAndSecContext(save_userid, save_sec);
}

/*
 * log_everything
 *		Log a T ("everything may have changed") into row's log, as the log's
 *		owner: for a MERGE into a partitioned table, whose transition tables
 *		lack the rows its UPDATE action moved to another partition
 *		(capturemerge.c); the replay then replaces the whole table.
 *		Connected to SPI.
 */
static void
log_everything(const CaptureRow *row)
{
	char	   *sql = psprintf("INSERT INTO %s (splitdb_op) VALUES ('T')", row->log);
	Oid			save_userid;
	int			save_sec;
	int			rc;

	GetUserIdAndSecContext(&save_userid, &save_sec);
	/* as the log's owner; an error on the way resets the user at abort */
	SetUserIdAndSecContext(row->owner, save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_NOFORCE_RLS);
	rc = SPI_execute(sql, false, 0);
	if (rc != SPI_OK_INSERT)
		splitdb_spi_failed(sql, rc);
	SetUserIdAndSecContext(save_userid, save_sec);
}

/* whether rel is a table with inheritance children (a partitioned table's are its partitions) */
static bool
has_children(Relation rel)
{
	return rel->rd_rel->relkind == RELKIND_RELATION && rel->rd_rel->relhassubclass;
}

/*
 * log_into_children
 *		A statement on a table with inheritance children writes their rows
 *		too, and PostgreSQL fires the statement triggers of the table it
 *		names alone, with the children's rows in its transition tables; so
 *		the keys it logged go into the log of each descendant that captures
 *		as well.  A descendant's replay then reads the rows of those keys in
 *		the descendant itself (ONLY), which a key of the parent's own rows
 *		leaves as they are.  A descendant whose key has a column the parent
 *		lacks gets a T ("everything may have changed").  A descendant
 *		without a capture row is not the job's: splitdb.capture_problem
 *		reports it.  Connected to SPI, with the trigger's data registered.
 */
static void
log_into_children(TriggerData *td)
{
	Relation	rel = td->tg_relation;
	List	   *kids;
	ListCell   *lc;

	if (!has_children(rel))
		return;
	/* the statement has locked them */
	kids = find_all_inheritors(RelationGetRelid(rel), NoLock, NULL);
	foreach(lc, kids)
	{
		Oid			kid = lfirst_oid(lc);
		CaptureRow	row;
		ListCell   *kc;

		if (kid == RelationGetRelid(rel) || !lookup_capture_row(kid, &row))
			continue;
		foreach(kc, row.names)
		{
			if (get_attnum(RelationGetRelid(rel), (char *) lfirst(kc)) == InvalidAttrNumber)
			{
				row.keys = NIL;
				row.key_text = "";
				break;
			}
		}
		log_into(td, &row);
	}
}

/*
 * splitdb_capture_changes
 *		Trigger function of the capture triggers (AFTER, FOR EACH
 *		STATEMENT): logs the keys the statement wrote into the relation's
 *		log, as the log's owner: directly (capturelog.c), or else in one
 *		statement through SPI.
 */
Datum
splitdb_capture_changes(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	bool		logged;
	bool		everything;
	int			nest;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("splitdb.capture_changes() was not called by a trigger"),
				 errhint("splitdb installs its capture triggers itself.")));
	if (!TRIGGER_FIRED_AFTER(td->tg_event) || !TRIGGER_FIRED_FOR_STATEMENT(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("trigger \"%s\" on \"%s\" is not a splitdb capture trigger",
						td->tg_trigger->tgname, RelationGetRelationName(td->tg_relation)),
				 errdetail("A capture trigger fires AFTER, FOR EACH STATEMENT."),
				 errhint("Drop the trigger: splitdb installs its capture triggers itself.")));

	/*
	 * A MERGE into a partitioned table: PostgreSQL 15 leaves the rows its
	 * UPDATE action moved between partitions out of the transition tables,
	 * so its keys cannot be logged; a T is, through SPI
	 */
	everything = TRIGGER_FIRED_BY_UPDATE(td->tg_event) &&
		splitdb_capturemerge_running(RelationGetRelid(td->tg_relation));

	logged = !everything && splitdb_capture_direct && splitdb_capturelog_write(td);
	if (logged && !has_children(td->tg_relation))
		return PointerGetDatum(NULL);

	/*
	 * Through SPI: the function pins no search_path in its definition (the
	 * direct writer resolves no name), so the statements pin it here
	 */
	nest = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	splitdb_spi_connect();
	if (SPI_register_trigger_data(td) != SPI_OK_TD_REGISTER)
		elog(ERROR, "could not register the transition tables of trigger \"%s\"",
			 td->tg_trigger->tgname);

	if (!logged)
	{
		CaptureRow	row = read_capture_row(td->tg_relation, td->tg_trigger->tgname);

		if (everything)
			log_everything(&row);
		else
			log_into(td, &row);
	}
	log_into_children(td);

	SPI_finish();
	AtEOXact_GUC(true, nest);
	return PointerGetDatum(NULL);
}
