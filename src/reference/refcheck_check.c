/*-------------------------------------------------------------------------
 *
 * refcheck_check.c
 *	  Checks and actions of cross-service references: working off the
 *	  queued keys.
 *
 * The semantics are PostgreSQL's (ri_triggers.c):
 * - child: MATCH SIMPLE skips a key with a NULL column, MATCH FULL skips an
 *   all-NULL key and refuses a mixed one; the referenced row is locked FOR
 *   KEY SHARE in its database until commit.  A key that is missing is
 *   reported only if a row still carries it here, so a row deleted or
 *   changed again before a deferred check is not reported.
 * - parent: NO ACTION and RESTRICT refuse to remove a key that is still
 *   referenced (NO ACTION not when a row with the same key exists again by
 *   the time of the check); CASCADE, SET NULL and SET DEFAULT act in the
 *   other database (SET DEFAULT then checks that the default is present).
 * - violations raise SQLSTATE 23503 with PostgreSQL's messages; the detail
 *   names the other end's table and database.
 *
 * A batch of keys of one end is worked off by splitdb_refcheck_flush_set(),
 * as the owner of the end's relation, with search_path pinned, inside an
 * SPI connection of its own.  In the other database its statements run on
 * postgres_fdw's connection (refcheck_xact.c); those that change rows there
 * go through splitdb.reference_relay() (refcheck_relay.c).  Keys that may
 * be checked on splitdb's own connection go first (refcheck_fast.c).
 * refcheck_xact.flush_depth counts the running flushes: a statement trigger
 * fired by an action's rows leaves its keys to the running flush, so chains
 * of actions do not nest.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/refcheck_check.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/rls.h"
#include "utils/syscache.h"

#include "metadata/catalog.h"
#include "reference/refcheck.h"
#include "reference/refcheck_int.h"
#include "reference/refstats.h"
#include "remote/prepared.h"
#include "remote/remote.h"

/*
 * splitdb_refcheck_table_owner
 *		The owner of a table of this database named by its qualified,
 *		quoted name (splitdb.reference_end's own_table and other_table).
 *		Raises 42P01 when there is none.
 */
Oid
splitdb_refcheck_table_owner(const char *table)
{
	RangeVar   *rv = makeRangeVarFromNameList(stringToQualifiedNameList(table));
	Oid			relid = RangeVarGetRelid(rv, AccessShareLock, false);
	Oid			owner = splitdb_catalog_relowner(relid);

	if (!OidIsValid(owner))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	return owner;
}

/*
 * run_statement
 *		Run a statement on one end of the reference and return its rows as
 *		arrays of C strings.
 *
 * server: InvalidOid runs it here through SPI (the caller is connected),
 *         as the owner of table (the relation the statement reads or
 *         changes), to whom its row-level security does not apply unless
 *         forced, as PostgreSQL's foreign keys do: as any other role, the
 *         table owner's policies would run their functions with that
 *         role's rights; otherwise through postgres_fdw's connection to
 *         that server (splitdb_refcheck_fdw_connection: the writer's
 *         mapping, else the owner's).
 * params: text[] Datums, nparams of them.
 * prepare: a small lookup run again and again: prepared once per remote
 *          session (prepared.c), so the other server does not plan it again.
 * Counts a remote statement as a round trip, with its time.
 */
static List *
run_statement(RefDef *def, Oid server, const char *table, const char *sql,
			  int nparams, Datum *params, bool prepare)
{
	const char **values;

	if (!OidIsValid(server))
	{
		Oid		   *types = palloc(sizeof(Oid) * nparams);
		Oid			save_userid;
		int			save_sec;
		List	   *rows;

		for (int i = 0; i < nparams; i++)
			types[i] = TEXTARRAYOID;
		GetUserIdAndSecContext(&save_userid, &save_sec);
		SetUserIdAndSecContext(splitdb_refcheck_table_owner(table),
							   save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_NOFORCE_RLS);
		(void) splitdb_spi_exec(sql, nparams, types, params, NULL, false, 0);
		rows = splitdb_catalog_result_rows();
		SetUserIdAndSecContext(save_userid, save_sec);
		return rows;
	}
	values = splitdb_refcheck_array_texts(params, nparams);
	return splitdb_refcheck_run_remote(def, server, sql, nparams, values,
									   prepare);
}

/*
 * splitdb_refcheck_run_remote
 *		Run a statement with text parameters in another database, in the
 *		writer's remote transaction when it has one (see
 *		splitdb_refcheck_fdw_connection), with row_security off for it
 *		alone: a table whose policies apply to the mapped role fails the
 *		statement (42501) instead of running the functions of another
 *		role's policies with the mapped role's rights, as PostgreSQL's
 *		foreign keys, which read the table as its owner, never do.  The
 *		setting is the session's again afterwards (postgres_fdw sets none),
 *		so the writer's own reads through foreign tables keep their policies.
 *		The setting, the statement and the reset go out together, in one
 *		round trip (between.c), after the PREPARE of a statement's first
 *		use on the connection.  Counts a round trip, with its time.  Returns
 *		the rows as arrays of C strings.
 */
List *
splitdb_refcheck_run_remote(RefDef *def, Oid server, const char *sql,
							int nparams, const char **values, bool prepare)
{
	PGconn	   *conn;
	PGresult   *res;
	List	   *rows;
	instr_time	start,
				duration;

	splitdb_refcheck_fdw_uses(server);
	conn = splitdb_refcheck_fdw_connection(server, refcheck_xact.caller_userid,
										   def->owner);
	INSTR_TIME_SET_CURRENT(start);
	res = splitdb_remote_exec_between(conn, "SET LOCAL row_security = off",
									  "SET LOCAL row_security TO DEFAULT",
									  prepare ? splitdb_prepared_ensure(conn, sql, nparams, NULL) : NULL,
									  sql, nparams, values, NULL);
	INSTR_TIME_SET_CURRENT(duration);
	INSTR_TIME_SUBTRACT(duration, start);
	splitdb_refstats_add(def->counter, 0, 0, 1, INSTR_TIME_GET_MICROSEC(duration));
	rows = splitdb_remote_result_rows(res);
	splitdb_remote_clear(res);
	return rows;
}

/*
 * splitdb_refcheck_positions
 *		The positions (1-based, as k.i numbers them) of the keys that have a
 *		matching row in a table, optionally locking those rows FOR KEY SHARE.
 *		Returns a bool array of list_length(keys) + 1 entries.
 */
bool *
splitdb_refcheck_positions(RefDef *def, List *keys, bool other, bool lock,
						   bool first_only)
{
	int			n = list_length(keys);
	bool	   *hit = palloc0(sizeof(bool) * (n + 1));
	Oid			server = other ? def->other_server : def->own_server;
	const char *table = other ? def->other_table : def->own_table;
	char	  **cols = other ? def->other_cols : def->own_cols;
	char	  **types = other ? def->other_types : def->own_types;
	/* the other end's columns compare with this end's key types */
	char	  **valtypes = other ? def->own_types : NULL;
	char	   *sql;
	List	   *rows;
	List	   *again = NIL;
	bool		small;
	int		   *map;
	int			nhit = 0;
	ListCell   *lc;

	/* in another database: as the owner of the table there, when it can */
	if (OidIsValid(server))
	{
		bool		done;

		rows = splitdb_refcheck_lookup_remote(def, server,
											  other ? (def->side == 'c' ? 'p' : 'c') : def->side,
											  (lock ? SPLITDB_LOOKUP_LOCK : 0) |
											  (first_only ? SPLITDB_LOOKUP_FIRST : 0) |
											  (other ? 0 : SPLITDB_LOOKUP_SAME_TYPES),
											  keys, &done);
		if (done)
		{
			splitdb_refcheck_mark_hits(rows, n, hit);
			return hit;
		}
	}

	sql = splitdb_refcheck_small_batch_sql(def, n, table, cols, types, valtypes,
										   lock, first_only);
	small = (sql != NULL);
	if (!small)
		sql = splitdb_refcheck_key_batch_sql(def, table, cols, types, valtypes,
											 lock, first_only);
	rows = run_statement(def, server, table, sql, def->nkeys,
						 splitdb_refcheck_key_arrays(def, keys, false), small);
	nhit = splitdb_refcheck_mark_hits(rows, n, hit);
	if (n <= 1 || def->nkeys > 1 || nhit == n || (first_only && nhit > 0) ||
		n > SPLITDB_REFCHECK_SMALL_BATCH)
		return hit;

	/* keys that array_position() did not number: look them up again */
	map = palloc(sizeof(int) * (n - nhit + 1));
	foreach(lc, keys)
	{
		int			pos = foreach_current_index(lc) + 1;

		if (!hit[pos])
		{
			again = lappend(again, lfirst(lc));
			map[list_length(again)] = pos;
		}
	}
	rows = run_statement(def, server, table,
						 splitdb_refcheck_key_batch_sql(def, table, cols, types, valtypes,
														lock, first_only),
						 def->nkeys, splitdb_refcheck_key_arrays(def, again, false), false);
	foreach(lc, rows)
	{
		int64		i = pg_strtoint64(((char **) lfirst(lc))[0]);

		if (i >= 1 && i <= list_length(again))
			hit[map[i]] = true;
	}
	return hit;
}

/*
 * referencing_positions
 *		For NO ACTION and RESTRICT: whether rows of the referencing table
 *		still carry the keys, the first it finds locked FOR KEY SHARE, as
 *		splitdb_refcheck_positions(first_only) returns.
 *
 * In another database the lookup runs inside splitdb.reference_relay(),
 * which reads with the latest snapshot there: postgres_fdw's remote
 * transaction is REPEATABLE READ, and its snapshot may be older than a
 * referencing row whose transaction committed while this one waited for
 * the lock on the referenced row, which PostgreSQL's own check would see.
 */
static bool *
referencing_positions(RefDef *def, List *keys)
{
	int			n = list_length(keys);
	bool	   *hit;
	char	   *sql;
	List	   *rows;
	bool		done;

	if (!OidIsValid(def->other_server))
		return splitdb_refcheck_positions(def, keys, true, true, true);
	hit = palloc0(sizeof(bool) * (n + 1));
	rows = splitdb_refcheck_lookup_remote(def, def->other_server, 'c',
										  SPLITDB_LOOKUP_LOCK | SPLITDB_LOOKUP_FIRST |
										  SPLITDB_LOOKUP_LATEST, keys, &done);
	if (done)
	{
		splitdb_refcheck_mark_hits(rows, n, hit);
		return hit;
	}
	sql = splitdb_refcheck_key_batch_sql(def, def->other_table, def->other_cols,
										 def->other_types, def->own_types, true, true);
	rows = splitdb_refcheck_run_relayed(def, sql, def->nkeys,
										splitdb_refcheck_key_arrays(def, keys, false),
										false);
	splitdb_refcheck_mark_hits(rows, n, hit);
	return hit;
}

/*
 * the name of a queued end for messages: the relation's name, like
 * PostgreSQL; for an end in another database (the source's end on a shim),
 * the table there, which is the partition that declares the key when the
 * key is a partition's
 */
const char *
splitdb_refcheck_own_name(RefDef *def)
{
	char	   *name;

	if (OidIsValid(def->own_server))
		return splitdb_refcheck_table_name(def->own_table);
	name = get_rel_name(def->relid);

	return name ? name : def->own_table;
}

/*
 * splitdb_refcheck_shows_key
 *		Whether a violation's DETAIL may show the key of def's own row to the
 *		current role, decided as PostgreSQL's foreign keys decide it
 *		(ri_ReportViolation): not when row-level security applies to the role
 *		on that relation; else when the role may read the relation, or each
 *		of the key's columns.  A role that may write or delete rows it may
 *		not read learns nothing of them from the error.
 *
 * The relation is the one the trigger fired on (a partition that fired, a
 * shim); for an end turned around from another database's key, the shim
 * of that table here, found by its name.  Without one, or a key column of
 * its name, the key is not shown.  The caller is in a transaction.
 */
bool
splitdb_refcheck_shows_key(RefDef *def)
{
	Oid			relid = def->relid;
	Oid			role = GetUserId();

	if (!OidIsValid(relid))
		relid = RangeVarGetRelid(makeRangeVarFromNameList(stringToQualifiedNameList(def->own_table)),
								 NoLock, true);
	if (!OidIsValid(relid))
		return false;
	if (check_enable_rls(relid, InvalidOid, true) == RLS_ENABLED)
		return false;
	if (pg_class_aclcheck(relid, role, ACL_SELECT) == ACLCHECK_OK)
		return true;
	for (int i = 0; i < def->nkeys; i++)
	{
		AttrNumber	attnum = get_attnum(relid, def->own_cols[i]);

		if (attnum == InvalidAttrNumber ||
			pg_attribute_aclcheck(relid, attnum, role, ACL_SELECT) != ACLCHECK_OK)
			return false;
	}
	return true;
}

/*
 * splitdb_refcheck_errtable
 *		Within ereport(): the schema and name of the referencing table and
 *		the constraint's name, the fields PostgreSQL's foreign keys set
 *		(errtableconstraint() on the referencing relation), which drivers
 *		and ORMs read to tell which key was violated.  own: the referencing
 *		table is def's own end (def is the child's end), else the other end.
 *		The table is the one the message names: a partition that fired, or
 *		the table in the other database.  Returns 0, as errcode() does.
 */
int
splitdb_refcheck_errtable(RefDef *def, bool own)
{
	const char *schema = NULL;
	const char *table = NULL;

	if (own && !OidIsValid(def->own_server))
	{
		schema = get_namespace_name(get_rel_namespace(def->relid));
		table = get_rel_name(def->relid);
	}
	if (table == NULL)
	{
		List	   *names = stringToQualifiedNameList(own ? def->own_table : def->other_table);

		if (list_length(names) > 1)
			schema = strVal(list_nth(names, list_length(names) - 2));
		table = strVal(llast(names));
	}
	if (schema != NULL)
		err_generic_string(PG_DIAG_SCHEMA_NAME, schema);
	err_generic_string(PG_DIAG_TABLE_NAME, table);
	return err_generic_string(PG_DIAG_CONSTRAINT_NAME, def->conname);
}

/*
 * The violation sink.  While splitdb_refcheck_flush_all() works off the
 * queues of several ends, a violation is not raised at once but kept when
 * its key was queued before the one kept so far, and raised when every queue
 * was worked off: PostgreSQL fires its checks in the order their events
 * were queued, row by row, and reports the first that fails, whichever
 * reference it belongs to.  What runs after the first violation is undone
 * with the error.
 */
typedef struct ViolationSink
{
	bool		active;
	RefDef	   *def;			/* NULL: none kept */
	PendingKey *pk;
	bool		missing;		/* a key not present; else still referenced */
} ViolationSink;

static ViolationSink sink = {false, NULL, NULL, false};

/*
 * sink_violation
 *		Keep a violation in the sink when one is active (and the key was
 *		queued before the one kept); false when none is, and the caller
 *		raises it.
 */
static bool
sink_violation(RefDef *def, PendingKey *pk, bool missing)
{
	if (!sink.active)
		return false;
	if (sink.def == NULL || pk->seq < sink.pk->seq)
	{
		sink.def = def;
		sink.pk = pk;
		sink.missing = missing;
	}
	return true;
}

static void raise_not_present(RefDef *def, PendingKey *pk);
static void raise_still_referenced(RefDef *def, PendingKey *pk);
static bool flush_all_queues(bool at_commit);
static void flush_writer_set(RefDef *def, List *keys, Oid writer);

/*
 * check_child_keys
 *		The referenced rows must exist in the parent's database; lock them
 *		there until commit.
 */
static void
check_child_keys(RefDef *def, List *keys)
{
	int			n = list_length(keys);
	bool	   *found = splitdb_refcheck_positions(def, keys, true, true,
												   false);
	List	   *missing = NIL;
	bool	   *still;
	int			i = 0;
	ListCell   *lc;

	foreach(lc, keys)
	{
		if (!found[++i])
			missing = lappend(missing, lfirst(lc));
	}
	if (OidIsValid(def->other_server))
		splitdb_refcheck_remember_fdw_checked(def, keys, found);
	if (missing == NIL)
	{
		splitdb_refstats_add(def->counter, n, 0, 0, 0);
		return;
	}

	/* report only keys that a row here still carries */
	still = splitdb_refcheck_positions(def, missing, false, false, true);
	i = 0;
	foreach(lc, missing)
	{
		PendingKey *pk = lfirst(lc);

		if (!still[++i])
			continue;
		splitdb_refstats_add(def->counter, n, 1, 0, 0);
		if (sink_violation(def, pk, true))
			return;
		raise_not_present(def, pk);
	}
	splitdb_refstats_add(def->counter, n, 0, 0, 0);
}

/*
 * raise_not_present
 *		The violation of a referencing row whose key is missing.
 */
static void
raise_not_present(RefDef *def, PendingKey *pk)
{
	bool		shows_key = splitdb_refcheck_shows_key(def);

	ereport(ERROR,
			(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
			 errmsg("insert or update on table \"%s\" violates foreign key constraint \"%s\"",
					splitdb_refcheck_own_name(def), def->conname),
			 shows_key ?
			 errdetail("Key %s=%s is not present in table \"%s\" of database \"%s\".",
					   splitdb_refcheck_key_columns_text(def->own_cols, def->nkeys),
					   splitdb_refcheck_key_values_text(pk->old, def->nkeys),
					   splitdb_refcheck_table_name(def->other_table),
					   def->other_database) :
			 errdetail("Key is not present in table \"%s\" of database \"%s\".",
					   splitdb_refcheck_table_name(def->other_table),
					   def->other_database),
			 errhint("The referenced table is in another database since the split; insert the referenced row there first."),
			 splitdb_refcheck_errtable(def, true)));
}

/*
 * report_still_referenced
 *		The violation of NO ACTION and RESTRICT.
 */
static void
report_still_referenced(RefDef *def, PendingKey *pk)
{
	splitdb_refstats_add(def->counter, 0, 1, 0, 0);
	if (!sink_violation(def, pk, false))
		raise_still_referenced(def, pk);
}

/* report_still_referenced()'s error, raised at once */
static void
raise_still_referenced(RefDef *def, PendingKey *pk)
{
	bool		shows_key = splitdb_refcheck_shows_key(def);

	ereport(ERROR,
			(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
			 errmsg("update or delete on table \"%s\" violates foreign key constraint \"%s\" on table \"%s\"",
					splitdb_refcheck_own_name(def), def->conname,
					splitdb_refcheck_table_name(def->other_table)),
			 shows_key ?
			 errdetail("Key %s=%s is still referenced from table \"%s\" of database \"%s\".",
					   splitdb_refcheck_key_columns_text(def->own_cols, def->nkeys),
					   splitdb_refcheck_key_values_text(pk->old, def->nkeys),
					   splitdb_refcheck_table_name(def->other_table),
					   def->other_database) :
			 errdetail("Key is still referenced from table \"%s\" of database \"%s\".",
					   splitdb_refcheck_table_name(def->other_table),
					   def->other_database),
			 errhint("Delete or change the referencing rows in database \"%s\" first.",
					 def->other_database),
			 splitdb_refcheck_errtable(def, false)));
}

/*
 * same_old_key
 *		The key of acted that a referencing row's key (text values, none
 *		NULL) is, or NULL.
 */
static PendingKey *
same_old_key(RefDef *def, List *acted, char **row)
{
	ListCell   *lc;

	foreach(lc, acted)
	{
		PendingKey *pk = lfirst(lc);
		int			c;

		for (c = 0; c < def->nkeys; c++)
			if (row[c] == NULL || strcmp(row[c], pk->old[c]) != 0)
				break;
		if (c == def->nkeys)
			return pk;
	}
	return NULL;
}

/* qsort and bsearch comparator of C strings */
static int
compare_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/*
 * new_key_idents
 *		The idents of the new keys of acted (an ON UPDATE CASCADE's changed
 *		keys), sorted, in *n: a referencing row that now carries one of them
 *		exactly refers to the row whose update made it, which is there.
 */
static char **
new_key_idents(RefDef *def, List *acted, int *n)
{
	char	  **idents = palloc(sizeof(char *) * (list_length(acted) + 1));
	ListCell   *lc;

	*n = 0;
	foreach(lc, acted)
	{
		PendingKey *pk = lfirst(lc);
		int			c;

		if (pk->new == NULL)
			continue;
		for (c = 0; c < def->nkeys && pk->new[c] != NULL; c++)
			;
		if (c == def->nkeys)
			idents[(*n)++] = splitdb_refcheck_key_ident(PENDING_UPDATE, pk->new, def->nkeys);
	}
	qsort(idents, *n, sizeof(char *), compare_strings);
	return idents;
}

/*
 * check_new_keys_present
 *		After SET DEFAULT, SET NULL or ON UPDATE CASCADE (action, is_update)
 *		in the referencing rows: the keys they now carry must exist here, as
 *		PostgreSQL checks them.  rows are the keys the action's statement
 *		returned, as the referencing columns' types (a numeric of another
 *		scale rounds) and the rows' triggers left them; a cascade's row
 *		that carries the new key it was given is not looked up.  A row whose
 *		default is the very key that was removed (acted: the keys of the
 *		action) kept its key, so PostgreSQL's check of the referencing row
 *		does not run and its NO ACTION recheck reports the key as still
 *		referenced: the same error here.
 */
static void
check_new_keys_present(RefDef *def, List *rows, List *acted, char action,
					   bool is_update)
{
	List	   *keys = NIL;
	bool	   *found;
	int			i = 0;
	ListCell   *lc;
	char	  **given = NULL;
	int			ngiven = 0;

	if (action == 'c' && is_update)
		given = new_key_idents(def, acted, &ngiven);
	foreach(lc, rows)
	{
		char	  **row = lfirst(lc);
		int			nnull = 0;
		PendingKey *pk;

		for (int c = 0; c < def->nkeys; c++)
			nnull += (row[c] == NULL);
		if (nnull == def->nkeys)
			continue;
		if (nnull > 0 && !def->match_full)
			continue;
		if (ngiven > 0 && nnull == 0)
		{
			char	   *ident = splitdb_refcheck_key_ident(PENDING_UPDATE, row, def->nkeys);
			bool		same = bsearch(&ident, given, ngiven, sizeof(char *),
									   compare_strings) != NULL;

			pfree(ident);
			if (same)
				continue;
		}
		pk = palloc0(sizeof(PendingKey));
		pk->old = row;
		keys = lappend(keys, pk);
	}
	if (keys == NIL)
		return;
	found = splitdb_refcheck_positions(def, keys, false, true, false);
	foreach(lc, keys)
	{
		PendingKey *pk = lfirst(lc);
		PendingKey *removed;

		if (found[++i])
			continue;
		removed = same_old_key(def, acted, pk->old);
		if (removed != NULL)
		{
			splitdb_refstats_add(def->counter, 0, 1, 0, 0);
			raise_still_referenced(def, removed);
		}
		splitdb_refstats_add(def->counter, 0, 1, 0, 0);
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg("insert or update on table \"%s\" violates foreign key constraint \"%s\"",
						splitdb_refcheck_table_name(def->other_table), def->conname),
				 errdetail("Key %s=%s is not present in table \"%s\".",
						   splitdb_refcheck_key_columns_text(def->other_cols, def->nkeys),
						   splitdb_refcheck_key_values_text(pk->old, def->nkeys),
						   splitdb_refcheck_own_name(def)),
				 action == 'd' ?
				 errhint("ON DELETE/UPDATE SET DEFAULT needs the default key to exist in table \"%s\".",
						 splitdb_refcheck_own_name(def)) :
				 errhint("The key the action left in the referencing row, after its column's type and its triggers, must exist in table \"%s\".",
						 splitdb_refcheck_own_name(def)),
				 splitdb_refcheck_errtable(def, false)));
	}
}

/*
 * act_here
 *		Run an action statement on the referencing table, here: as its
 *		owner, with its AFTER triggers fired as the writer, as PostgreSQL's
 *		foreign keys do (splitdb_refcheck_act_as_owner).  The caller is
 *		connected to SPI, as the owner of def's relation; it still is on
 *		return.  params: text[] Datums.  Returns the statement's rows.
 */
static List *
act_here(RefDef *def, const char *sql, int nparams, Datum *params)
{
	Oid		   *types = palloc(sizeof(Oid) * Max(nparams, 1));
	Oid			save_userid;
	int			save_sec;
	List	   *rows;
	int			natts;

	for (int i = 0; i < nparams; i++)
		types[i] = TEXTARRAYOID;
	GetUserIdAndSecContext(&save_userid, &save_sec);
	rows = splitdb_refcheck_act_as_owner(sql, nparams, types, params, false,
										 splitdb_refcheck_table_owner(def->other_table),
										 refcheck_xact.caller_userid,
										 refcheck_xact.caller_sec, &natts);
	SetUserIdAndSecContext(save_userid, save_sec);
	return rows;
}

/*
 * apply_parent_action
 *		Apply one referential action to the referencing rows of the given old
 *		keys, in the child's database, with one statement.  Here, it runs
 *		with session_path (the writer's search_path) behind pg_catalog, for
 *		the triggers it fires; another database applies it with the path its
 *		sessions of the acting role start with (splitdb.reference_relay).
 */
static void
apply_parent_action(RefDef *def, List *keys, char action, bool is_update,
					const char *session_path)
{
	int			n = list_length(keys);
	char	   *sql;
	Datum	   *params;
	int			nparams = def->nkeys;

	if (action == 'a' || action == 'r')
	{
		List	   *gone = keys;
		bool	   *hit;
		int			i = 0;
		ListCell   *lc;

		/* NO ACTION: a key that exists again here is no longer removed */
		if (action == 'a')
		{
			bool	   *again = splitdb_refcheck_positions(def, keys, false, false,
														   false);

			gone = NIL;
			foreach(lc, keys)
			{
				if (!again[++i])
					gone = lappend(gone, lfirst(lc));
			}
			if (gone == NIL)
			{
				splitdb_refstats_add(def->counter, n, 0, 0, 0);
				return;
			}
		}
		hit = referencing_positions(def, gone);
		/* the keys count as checked whether or not one is refused */
		splitdb_refstats_add(def->counter, n, 0, 0, 0);
		i = 0;
		foreach(lc, gone)
		{
			/* the first in queue order; the sink may keep it for later */
			if (hit[++i])
			{
				report_still_referenced(def, lfirst(lc));
				break;
			}
		}
		return;
	}

	sql = splitdb_refcheck_action_sql(def, action, is_update);
	params = splitdb_refcheck_key_arrays(def, keys, false);
	if (is_update && action == 'c')
	{
		Datum	   *news = splitdb_refcheck_key_arrays(def, keys, true);
		Datum	   *all = palloc(sizeof(Datum) * 2 * def->nkeys);

		memcpy(all, params, sizeof(Datum) * def->nkeys);
		memcpy(all + def->nkeys, news, sizeof(Datum) * def->nkeys);
		params = all;
		nparams = 2 * def->nkeys;
	}
	{
		List	   *rows;

		/* another database relays what its triggers leave to this one */
		if (OidIsValid(def->other_server))
			rows = splitdb_refcheck_run_action(def, is_update, sql, nparams, params);
		else
		{
			int			nest = splitdb_refcheck_action_search_path(session_path);

			rows = act_here(def, sql, nparams, params);
			AtEOXact_GUC(true, nest);
		}
		splitdb_refstats_add(def->counter, n, 0, 0, 0);
		/* the keys the UPDATE forms left (a DELETE returns none) */
		check_new_keys_present(def, rows, keys, action, is_update);
	}
}

/*
 * splitdb_refcheck_flush_set
 *		Check or act on a batch of queued keys of one reference end, as the
 *		owner of its relation: the keys of each writer together (in the
 *		order of their first keys), in the other database through that
 *		writer's user mapping (flush_writer_set).
 */
void
splitdb_refcheck_flush_set(RefDef *def, List *keys)
{
	while (keys != NIL)
	{
		Oid			writer = splitdb_refcheck_key_writer(linitial(keys));
		List	   *mine = NIL;
		List	   *rest = NIL;
		ListCell   *lc;

		if (splitdb_refcheck_one_writer(keys))
		{
			flush_writer_set(def, keys, writer);
			return;
		}
		foreach(lc, keys)
		{
			PendingKey *pk = lfirst(lc);

			if (splitdb_refcheck_key_writer(pk) == writer)
				mine = lappend(mine, pk);
			else
				rest = lappend(rest, pk);
		}
		flush_writer_set(def, mine, writer);
		keys = rest;
	}
}

/*
 * flush_writer_set
 *		splitdb_refcheck_flush_set() for the keys of one writer: the role
 *		whose statement wrote their rows, whose user mapping reaches the
 *		remote transaction that holds what it wrote through shims (the
 *		role current now may be another one, after SET ROLE, or outside the
 *		SECURITY DEFINER function that wrote).
 */
static void
flush_writer_set(RefDef *def, List *keys, Oid writer)
{
	Oid			save_userid;
	int			save_sec;
	List	   *deletes = NIL;
	List	   *updates = NIL;
	List	   *moves = NIL;
	ListCell   *lc;
	int			nest;
	Oid			prev_caller;
	int			prev_caller_sec;
	char	   *session_path;

	if (keys == NIL)
		return;

	/* the writer's search_path, for the triggers an action fires */
	session_path = pstrdup(GetConfigOption("search_path", false, false));
	GetUserIdAndSecContext(&save_userid, &save_sec);
	prev_caller = refcheck_xact.caller_userid;
	prev_caller_sec = refcheck_xact.caller_sec;
	refcheck_xact.caller_userid = writer;
	refcheck_xact.caller_sec = save_sec;
	SetUserIdAndSecContext(def->owner,
						   save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_NOFORCE_RLS);
	nest = splitdb_refcheck_pin_search_path();
	splitdb_spi_connect();

	refcheck_xact.flush_depth++;
	PG_TRY();
	{
		if (def->side == 'c')
			check_child_keys(def, keys);
		else
		{
			foreach(lc, keys)
			{
				PendingKey *pk = lfirst(lc);

				if (pk->kind == PENDING_DELETE)
					deletes = lappend(deletes, pk);
				else if (pk->kind == PENDING_MOVED)
					moves = lappend(moves, pk);
				else
					updates = lappend(updates, pk);
			}
			/* moved to another partition: the new key is not known here */
			if (moves != NIL)
				apply_parent_action(def, moves, def->on_update == 'r' ? 'r' : 'a',
									true, session_path);
			if (deletes != NIL)
				apply_parent_action(def, deletes, def->on_delete, false,
									session_path);
			if (updates != NIL)
				apply_parent_action(def, updates, def->on_update, true,
									session_path);
		}
	}
	PG_FINALLY();
	{
		refcheck_xact.flush_depth--;
	}
	PG_END_TRY();

	SPI_finish();
	AtEOXact_GUC(true, nest);
	SetUserIdAndSecContext(save_userid, save_sec);
	refcheck_xact.caller_userid = prev_caller;
	refcheck_xact.caller_sec = prev_caller_sec;
}

/*
 * splitdb_refcheck_flush_all
 *		Work off every queue of statement-time keys (and, at commit, the
 *		commit-time ones).  Returns true when anything was worked off: the
 *		actions may have queued more.
 */
bool
splitdb_refcheck_flush_all(bool at_commit)
{
	ViolationSink outer = sink;
	ViolationSink mine;
	bool		any;

	/* a flush nested in an action keeps its own sink */
	sink.active = true;
	sink.def = NULL;
	PG_TRY();
	{
		any = flush_all_queues(at_commit);
	}
	PG_FINALLY();
	{
		mine = sink;
		sink = outer;
	}
	PG_END_TRY();
	if (mine.def != NULL && mine.missing)
		raise_not_present(mine.def, mine.pk);
	if (mine.def != NULL)
		raise_still_referenced(mine.def, mine.pk);
	return any;
}

/* splitdb_refcheck_flush_all()'s work, with the sink active */
static bool
flush_all_queues(bool at_commit)
{
	bool		any = splitdb_refcheck_fast_pass(at_commit);
	ListCell   *lc;

	foreach(lc, splitdb_refcheck_defs_in_queue_order(at_commit))
	{
		RefDef	   *def = lfirst(lc);
		List	   *keys = def->now.keys;

		if (keys != NIL)
		{
			memset(&def->now, 0, sizeof(PendingSet));
			splitdb_refcheck_flush_set(def, keys);
			any = true;
		}
		if (at_commit && def->at_commit.keys != NIL)
		{
			keys = def->at_commit.keys;
			memset(&def->at_commit, 0, sizeof(PendingSet));
			splitdb_refcheck_flush_set(def, keys);
			any = true;
		}
	}
	return any;
}
