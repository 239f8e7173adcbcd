/*-------------------------------------------------------------------------
 *
 * replay.c
 *	  Replaying a capture log: the rows whose keys another database logged
 *	  (capture.c) are copied from there into a table here.
 *
 * A replay of one table reads, in ONE snapshot of the captured database
 * (the caller's REPEATABLE READ transaction there):
 *
 *	1. the ids of the log entries it sees;
 *	2. the distinct keys logged, and deletes them here;
 *	3. the current rows of those keys, and copies them here;
 *
 * the first two through a cursor, SPLITDB_REPLAY_BATCH rows a batch, one
 * remote FETCH and one local statement per batch (never one round trip per
 * row), keys as jsonb, matched by name; the rows as one COPY ... TO STDOUT
 * there feeding one COPY FROM here (copy_in), columns by name, binary
 * where every column's type crosses in binary (copy.c), text otherwise, so
 * that types whose OIDs differ between the databases travel by their text
 * form.  A T entry (TRUNCATE, or a write to a table without a key)
 * replaces everything: every row here is deleted and every row there
 * copied.  Each table is read and written alone (ONLY), its inheritance
 * children by their own replays, but for a partitioned table, whose rows
 * are its partitions'.  Deleting every logged key before inserting any row keeps unique
 * keys other than the logged one from colliding halfway.
 *
 * Once the caller has committed the local transaction, splitdb_replay_forget
 * deletes exactly the ids read (never an id range: an entry with a lower id
 * may commit after the snapshot).  A crash between the two commits leaves
 * the entries, and the next replay applies the same rows again: deleting
 * and inserting the current rows is idempotent.
 *
 * Invariants:
 * - After a replay, the rows here equal the captured table's rows as of the
 *   snapshot: a key's row changes and its log entry commit together, so the
 *   snapshot holds either both or neither.
 * - The local statements run in the caller's transaction, which sets
 *   session_replication_role = replica: no foreign key check and no user
 *   trigger in the default state fires on the rows replayed.  The user
 *   triggers that would fire there (ENABLE ALWAYS, ENABLE REPLICA: the
 *   application's code, run with the rights of splitdb's worker) are
 *   disabled for the replay, in its transaction, and given their states
 *   back after it (quiet_triggers).
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/replay.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/copy.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "nodes/makefuncs.h"
#include "parser/parse_relation.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "metadata/catalog.h"
#include "metadata/catalog_sql.h"
#include "migrate/copy.h"
#include "migrate/replay.h"
#include "remote/remote.h"

/* the name of the replay's cursors in the captured database */
#define REPLAY_CURSOR "splitdb_replay"

/*
 * splitdb_replay_table
 *		The replay of table (quoted, qualified, captured in the database of
 *		conn) into target, as that database's splitdb.capture describes it;
 *		NULL when the table has no capture there.  Allocated in the current
 *		memory context, which must outlive the replays.
 */
SplitdbReplayTable *
splitdb_replay_table(PGconn *conn, const char *service, const char *table, Oid target)
{
	const char *params[1] = {table};
	PGresult   *res;
	List	   *rows;
	char	  **row;
	SplitdbReplayTable *t;
	int			n;
	char	  **keys;

	res = splitdb_remote_exec(conn,
							  "SELECT c.log::pg_catalog.text, c.key_columns::pg_catalog.text[]::pg_catalog.text"
							  "  FROM splitdb.capture c"
							  " WHERE c.relid = pg_catalog.to_regclass($1)",
							  1, params, service);
	rows = splitdb_remote_result_rows(res);
	splitdb_remote_clear(res);
	if (rows == NIL)
		return NULL;
	row = (char **) linitial(rows);
	t = palloc0(sizeof(SplitdbReplayTable));
	t->table = pstrdup(table);
	t->log = row[0];
	t->target = target;
	t->cxt = CurrentMemoryContext;
	keys = splitdb_catalog_parse_text_array(row[1], &n);
	for (int i = 0; i < n; i++)
		t->keys = lappend(t->keys, (char *) quote_identifier(keys[i]));
	return t;
}

/*
 * "ONLY " for a table that is no partitioned table, else "": the rows of
 * the table itself, without those of its inheritance children, which have
 * logs and replays of their own (a partitioned table's rows are its
 * partitions', reached through it).  The target and the captured table
 * have the same kind.
 */
static const char *
only(const SplitdbReplayTable *t)
{
	return get_rel_relkind(t->target) == RELKIND_PARTITIONED_TABLE ? "" : "ONLY ";
}

/* the target, quoted and qualified, after only() */
static char *
target_name(const SplitdbReplayTable *t)
{
	return psprintf("%s%s", only(t),
					quote_qualified_identifier(get_namespace_name(get_rel_namespace(t->target)),
											   get_rel_name(t->target)));
}

/*
 * splitdb_replay_key_join
 *		"a.k1 = b.k1 AND ..." over quoted key columns: the join of a
 *		replay's (or a capture's) keys.
 */
char *
splitdb_replay_key_join(List *keys, const char *a, const char *b)
{
	StringInfoData s;
	ListCell   *lc;

	initStringInfo(&s);
	foreach(lc, keys)
		appendStringInfo(&s, "%s%s.%s = %s.%s", foreach_current_index(lc) > 0 ? " AND " : "",
						 a, (char *) lfirst(lc), b, (char *) lfirst(lc));
	return s.data;
}

/*
 * splitdb_replay_key_rows
 *		"pg_catalog.jsonb_to_recordset($1::pg_catalog.jsonb) AS alias(k1
 *		type1, ...)": a batch of keys, a jsonb array of objects as to_jsonb()
 *		writes them, read as rows of the key columns alone, typed as relid's
 *		(relid has every column of keys, quoted key columns; type names are
 *		qualified where the current search_path does not show them, so the
 *		text names the same types in a database made from this one).
 *
 * Not jsonb_populate_recordset() over the table's row type: that runs
 * every column the keys lack through its type's input as NULL, which a
 * NOT NULL domain, or a domain whose CHECK fails on NULL, refuses.
 */
char *
splitdb_replay_key_rows(Oid relid, List *keys, const char *alias)
{
	StringInfoData s;
	ListCell   *lc;

	initStringInfo(&s);
	appendStringInfo(&s, "pg_catalog.jsonb_to_recordset($1::pg_catalog.jsonb) AS %s(", alias);
	foreach(lc, keys)
	{
		const char *key = (const char *) lfirst(lc);
		AttrNumber	attnum;
		char	   *name;
		Oid			typid;
		int32		typmod;
		Oid			collid;

		/* attribute numbers run from 1 without a gap, dropped ones included */
		for (attnum = 1; (name = get_attname(relid, attnum, true)) != NULL; attnum++)
			if (strcmp(quote_identifier(name), key) == 0)
				break;
		if (name == NULL)
			elog(ERROR, "key column %s of relation %u does not exist", key, relid);
		get_atttypetypmodcoll(relid, attnum, &typid, &typmod, &collid);
		appendStringInfo(&s, "%s%s %s", foreach_current_index(lc) > 0 ? ", " : "", key,
						 format_type_with_typemod(typid, typmod));
	}
	appendStringInfoChar(&s, ')');
	return s.data;
}

/*
 * splitdb_replay_key_list
 *		"k1, k2" over quoted key columns.
 */
char *
splitdb_replay_key_list(List *keys)
{
	StringInfoData s;
	ListCell   *lc;

	initStringInfo(&s);
	foreach(lc, keys)
		appendStringInfo(&s, "%s%s", foreach_current_index(lc) > 0 ? ", " : "",
						 (char *) lfirst(lc));
	return s.data;
}

/* the target's columns that take values (not generated), for a COPY */
typedef struct CopyColumns
{
	char	   *list;			/* quoted, comma-separated, attribute order */
	List	   *names;			/* the same as String nodes, for BeginCopyFrom */
	bool		binary;			/* every type crosses in binary (copy.c) */
} CopyColumns;

static void
target_columns(const SplitdbReplayTable *t, CopyColumns *c)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(t->target)};
	StringInfoData list;

	splitdb_spi_exec("SELECT pg_catalog.quote_ident(a.attname), a.attname::pg_catalog.text, a.atttypid"
					 "  FROM pg_catalog.pg_attribute a"
					 " WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped"
					 "   AND a.attgenerated = ''"
					 " ORDER BY a.attnum",
					 1, types, values, NULL, true, 0);
	initStringInfo(&list);
	c->names = NIL;
	c->binary = true;
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	row = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;

		appendStringInfo(&list, "%s%s", i > 0 ? ", " : "", SPI_getvalue(row, desc, 1));
		c->names = lappend(c->names, makeString(SPI_getvalue(row, desc, 2)));
		if (!splitdb_copy_crosses_in_binary(DatumGetObjectId(SPI_getbinval(row, desc, 3, &isnull))))
			c->binary = false;
	}
	c->list = list.data;
}

/*
 * The remote COPY that feeds the local one: BeginCopyFrom()'s data source
 * callback takes no argument, so its state is here.
 */
static struct
{
	PGconn	   *conn;
	const char *sql;
	const char *service;
	StringInfoData row;			/* the row being handed over */
	int			off;			/* its bytes handed over so far */
	bool		done;			/* the remote COPY has ended */
}			feed;

/* BeginCopyFrom()'s data source: at least minread bytes, 0 at the end */
static int
read_feed(void *outbuf, int minread, int maxread)
{
	int			got = 0;

	while (got < minread && !feed.done)
	{
		int			n;

		if (feed.off >= feed.row.len)
		{
			resetStringInfo(&feed.row);
			feed.off = 0;
			if (splitdb_remote_copy_out_row(feed.conn, &feed.row, feed.sql, feed.service) < 0)
				feed.done = true;
			continue;
		}
		n = Min(maxread - got, feed.row.len - feed.off);
		memcpy((char *) outbuf + got, feed.row.data + feed.off, n);
		got += n;
		feed.off += n;
	}
	return got;
}

/*
 * copy_in
 *		Copy the rows that "SELECT <columns> FROM <from>" returns in the
 *		captured database (in conn's open transaction) into the target, in
 *		the current local transaction: one COPY ... TO STDOUT there feeding
 *		one COPY FROM here, binary where every column's type crosses in
 *		binary, text otherwise.  Returns the rows copied.
 *
 * The rows stream: one is held at a time, and no round trip is made per
 * batch.  An error leaves conn in its COPY; the caller closes it.
 */
static uint64
copy_in(PGconn *conn, const char *service, const SplitdbReplayTable *t, const char *from)
{
	CopyColumns c;
	Relation	rel;
	ParseState *pstate;
	CopyFromState cstate;
	uint64		rows;

	target_columns(t, &c);
	feed.conn = conn;
	feed.sql = psprintf("COPY (SELECT %s FROM %s) TO STDOUT%s", c.list, from,
						c.binary ? " (FORMAT binary)" : "");
	feed.service = service;
	initStringInfo(&feed.row);
	feed.off = 0;
	feed.done = false;
	splitdb_remote_copy_out_begin(conn, feed.sql, service);

	/* the rows deleted before are gone for the COPY's unique checks */
	CommandCounterIncrement();
	rel = table_open(t->target, RowExclusiveLock);
	pstate = make_parsestate(NULL);
	(void) addRangeTableEntryForRelation(pstate, rel, RowExclusiveLock, NULL, false, false);
	cstate = BeginCopyFrom(pstate, rel, NULL, NULL, false, read_feed, c.names,
						   c.binary ? list_make1(makeDefElem("format", (Node *) makeString("binary"), -1)) : NIL);
	rows = CopyFrom(cstate);
	EndCopyFrom(cstate);
	table_close(rel, NoLock);

	/* the remote COPY's end, should the local one have stopped before it */
	while (!feed.done)
	{
		resetStringInfo(&feed.row);
		if (splitdb_remote_copy_out_row(conn, &feed.row, feed.sql, service) < 0)
			feed.done = true;
	}
	pfree(feed.row.data);
	CommandCounterIncrement();
	return rows;
}

/* a local statement with one text parameter */
static uint64
run_local(const char *sql, const char *param)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];

	if (param == NULL)
	{
		splitdb_spi_exec(sql, 0, NULL, NULL, NULL, false, 0);
		return SPI_processed;
	}
	values[0] = CStringGetTextDatum(param);
	splitdb_spi_exec(sql, 1, types, values, NULL, false, 0);
	return SPI_processed;
}

/*
 * each_batch
 *		Run query through a cursor in the captured database, and for each
 *		batch of rows call apply with them joined: as a jsonb array when
 *		json, else as a bigint[] literal (the query returns one column).
 *		Returns the rows read.
 */
static int64
each_batch(PGconn *conn, const char *service, const char *query, bool json, int batch,
		   void (*apply) (const char *items, void *arg), void *arg)
{
	int64		total = 0;
	const char *fetch = psprintf("FETCH FORWARD %d FROM " REPLAY_CURSOR, batch);

	splitdb_remote_command(conn, psprintf("DECLARE " REPLAY_CURSOR " NO SCROLL CURSOR FOR %s", query),
						   0, NULL, service);
	for (;;)
	{
		PGresult   *res = splitdb_remote_exec(conn, fetch, 0, NULL, service);
		int			n = splitdb_remote_ntuples(res);
		StringInfoData items;

		if (n == 0)
		{
			splitdb_remote_clear(res);
			break;
		}
		initStringInfo(&items);
		appendStringInfoChar(&items, json ? '[' : '{');
		for (int i = 0; i < n; i++)
		{
			if (i > 0)
				appendStringInfoChar(&items, ',');
			appendStringInfoString(&items, splitdb_remote_value(res, i, 0));
		}
		appendStringInfoChar(&items, json ? ']' : '}');
		splitdb_remote_clear(res);
		apply(items.data, arg);
		total += n;
		pfree(items.data);
		if (n < batch)
			break;
	}
	splitdb_remote_command(conn, "CLOSE " REPLAY_CURSOR, 0, NULL, service);
	return total;
}

/* what the batches of one replay apply */
typedef struct ReplayApply
{
	SplitdbReplayTable *t;
	char	   *sql;			/* the local statement, $1 the batch */
	MemoryContext keep;			/* where the ids live */
} ReplayApply;

static void
apply_statement(const char *items, void *arg)
{
	ReplayApply *a = (ReplayApply *) arg;

	run_local(a->sql, items);
}

static void
keep_ids(const char *items, void *arg)
{
	ReplayApply *a = (ReplayApply *) arg;
	MemoryContext old = MemoryContextSwitchTo(a->keep);

	a->t->ids = lappend(a->t->ids, pstrdup(items));
	MemoryContextSwitchTo(old);
}

/*
 * The user triggers of a replay's target ($1, and of its partitions) that
 * fire with session_replication_role = replica: for each, the statement
 * that disables it and the one that gives it its state back, on that table
 * only (ONLY: a partitioned table's would recurse).
 */
static const char *const sql_firing_triggers =
"SELECT pg_catalog.format('ALTER TABLE ONLY %s DISABLE TRIGGER %I', t.tgrelid::pg_catalog.regclass, t.tgname),"
"       pg_catalog.format('ALTER TABLE ONLY %s ENABLE %s TRIGGER %I', t.tgrelid::pg_catalog.regclass,"
"                         CASE t.tgenabled WHEN 'A' THEN 'ALWAYS' ELSE 'REPLICA' END, t.tgname)"
"  FROM (SELECT $1::pg_catalog.oid AS relid UNION SELECT p.relid FROM pg_catalog.pg_partition_tree($1) p) p"
"  JOIN pg_catalog.pg_trigger t ON t.tgrelid = p.relid"
" WHERE NOT t.tgisinternal AND t.tgenabled IN ('A', 'R') AND " SPLITDB_NOT_OWN_TRIGGER("t")
" ORDER BY t.tgrelid, t.tgname";

/*
 * quiet_triggers
 *		Disable, in the current local transaction, the user triggers of t's
 *		target that would fire on a replay's rows (sql_firing_triggers), and
 *		return the statements that give them their states back, for the
 *		caller to run once the replay's writes are done in the same
 *		transaction.  An error between the two rolls both back.
 */
static List *
quiet_triggers(const SplitdbReplayTable *t)
{
	Oid			types[1] = {REGCLASSOID};
	Datum		values[1] = {ObjectIdGetDatum(t->target)};
	List	   *disable = NIL;
	List	   *restore = NIL;
	ListCell   *lc;

	splitdb_spi_exec(sql_firing_triggers, 1, types, values, NULL, true, 0);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		disable = lappend(disable, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
		restore = lappend(restore, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2));
	}
	foreach(lc, disable)
		run_local((const char *) lfirst(lc), NULL);
	list_free_deep(disable);
	return restore;
}

/* run the statements quiet_triggers() returned */
static void
restore_triggers(List *restore)
{
	ListCell   *lc;

	foreach(lc, restore)
		run_local((const char *) lfirst(lc), NULL);
	list_free_deep(restore);
}

/*
 * splitdb_replay_run
 *		Replay t's log, as the snapshot of conn's open REPEATABLE READ
 *		transaction shows it, into t->target in the current local
 *		transaction (connected to SPI).  Appends the ids read to t->ids,
 *		allocated in t->cxt, and returns
 *		how many entries were read.
 */
int64
splitdb_replay_run(PGconn *conn, const char *service, SplitdbReplayTable *t)
{
	ReplayApply a;
	int64		nids;
	char	   *everything;
	List	   *restore;
	char	   *keys = splitdb_replay_key_list(t->keys);

	a.t = t;
	a.keep = t->cxt;

	nids = each_batch(conn, service, psprintf("SELECT splitdb_id FROM %s ORDER BY splitdb_id", t->log),
					  false, SPLITDB_REPLAY_ID_BATCH, keep_ids, &a);
	t->nids += nids;
	if (nids == 0)
		return 0;

	everything = splitdb_remote_scalar(conn,
									   psprintf("SELECT EXISTS (SELECT FROM %s WHERE splitdb_op = 'T')", t->log),
									   0, NULL, service);
	restore = quiet_triggers(t);
	if (t->keys == NIL || strcmp(everything, "t") == 0)
	{
		/* every row: the table's contents replace those here */
		run_local(psprintf("DELETE FROM %s", target_name(t)), NULL);
		copy_in(conn, service, t, psprintf("%s%s t", only(t), t->table));
		restore_triggers(restore);
		return nids;
	}

	/* the keys logged go first, then their rows as they are now */
	a.sql = psprintf("DELETE FROM %s a USING %s WHERE %s",
					 target_name(t), splitdb_replay_key_rows(t->target, t->keys, "k"),
					 splitdb_replay_key_join(t->keys, "a", "k"));
	each_batch(conn, service,
			   psprintf("SELECT pg_catalog.to_jsonb(k.*) FROM (SELECT DISTINCT %s FROM %s) k", keys, t->log),
			   true, SPLITDB_REPLAY_BATCH, apply_statement, &a);
	copy_in(conn, service, t,
			psprintf("%s%s t WHERE EXISTS (SELECT FROM %s l WHERE %s)",
					 only(t), t->table, t->log, splitdb_replay_key_join(t->keys, "l", "t")));
	restore_triggers(restore);
	return nids;
}

/*
 * splitdb_replay_forget
 *		Delete from t's log exactly the ids the replays read, once the
 *		local transaction that applied them has committed; outside any
 *		remote transaction (each batch commits by itself).
 */
void
splitdb_replay_forget(PGconn *conn, const char *service, SplitdbReplayTable *t)
{
	ListCell   *lc;
	char	   *sql = psprintf("DELETE FROM %s WHERE splitdb_id = ANY ($1::bigint[])", t->log);

	foreach(lc, t->ids)
	{
		const char *params[1] = {(char *) lfirst(lc)};

		splitdb_remote_command(conn, sql, 1, params, service);
	}
	list_free_deep(t->ids);
	t->ids = NIL;
	t->nids = 0;
}
