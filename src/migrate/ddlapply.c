/*-------------------------------------------------------------------------
 *
 * ddlapply.c
 *	  Running the statements of ddl.c in a service's sibling database.
 *
 * Statements run one at a time on the job's connection
 * (splitdb_ddl_apply), or side by side over several connections, each in
 * autocommit (splitdb_ddl_apply_side_by_side, for index builds).  Which
 * remote transaction surrounds them is the caller's choice, and the caller
 * says why where it calls (worker steps): before the data, all of them in
 * one transaction; after it, each its own, so that a resumed job keeps
 * what is built.
 *
 * Invariants:
 * - A statement whose guard says its object is already in the sibling is
 *   skipped, so running a list again after a crash is safe.
 * - A remote error is relayed with its SQLSTATE and the statement.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/ddlapply.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "miscadmin.h"

#include "migrate/ddl.h"
#include "remote/remote.h"

/*
 * Remote guards: each returns one boolean row, true when the statement must
 * be skipped because what it makes is already there.
 */
static const char *
guard_sql(const char *guard)
{
	if (strcmp(guard, "regclass") == 0)
		return "SELECT pg_catalog.to_regclass($1) IS NOT NULL";
	if (strcmp(guard, "regtype") == 0)
		return "SELECT pg_catalog.to_regtype($1) IS NOT NULL";
	if (strcmp(guard, "regcollation") == 0)
		return "SELECT pg_catalog.to_regcollation($1) IS NOT NULL";
	if (strcmp(guard, "norole") == 0)
		return "SELECT $1 <> 'public' AND pg_catalog.to_regrole(pg_catalog.quote_ident($1)) IS NULL";
	if (strcmp(guard, "partition") == 0)
		return "SELECT coalesce((SELECT c.relispartition FROM pg_catalog.pg_class c"
			" WHERE c.oid = pg_catalog.to_regclass($1)), false)";
	if (strcmp(guard, "attached") == 0)
		return "SELECT EXISTS (SELECT FROM pg_catalog.pg_inherits i"
			" WHERE i.inhrelid = pg_catalog.to_regclass($1))";
	if (strcmp(guard, "constraint") == 0)
		return "SELECT EXISTS (SELECT FROM pg_catalog.pg_constraint k"
			" WHERE k.conrelid = pg_catalog.to_regclass($1) AND k.conname = $2)";
	if (strcmp(guard, "domain constraint") == 0)
		return "SELECT EXISTS (SELECT FROM pg_catalog.pg_constraint k"
			" WHERE k.contypid = pg_catalog.to_regtype($1) AND k.conname = $2)";
	if (strcmp(guard, "trigger") == 0)
		return "SELECT EXISTS (SELECT FROM pg_catalog.pg_trigger t"
			" WHERE t.tgrelid = pg_catalog.to_regclass($1) AND t.tgname = $2)";
	if (strcmp(guard, "statistics") == 0)
		return "SELECT EXISTS (SELECT FROM pg_catalog.pg_statistic_ext s"
			" WHERE s.stxnamespace = pg_catalog.to_regnamespace($1) AND s.stxname = $2)";
	if (strcmp(guard, "tsdict") == 0)
		return "SELECT EXISTS (SELECT FROM pg_catalog.pg_ts_dict d"
			" WHERE d.dictnamespace = pg_catalog.to_regnamespace($1) AND d.dictname = $2)";
	if (strcmp(guard, "tsconfig") == 0)
		return "SELECT EXISTS (SELECT FROM pg_catalog.pg_ts_config c"
			" WHERE c.cfgnamespace = pg_catalog.to_regnamespace($1) AND c.cfgname = $2)";
	if (strcmp(guard, "tsmapping") == 0)
		return "SELECT EXISTS (SELECT FROM pg_catalog.pg_ts_config_map m"
			" JOIN pg_catalog.pg_ts_config c ON c.oid = m.mapcfg,"
			" pg_catalog.ts_token_type(c.cfgparser) t"
			" WHERE c.oid = $1::pg_catalog.regconfig AND t.tokid = m.maptokentype AND t.alias = $2)";
	if (strcmp(guard, "policy") == 0)
		return "SELECT EXISTS (SELECT FROM pg_catalog.pg_policy p"
			" WHERE p.polrelid = pg_catalog.to_regclass($1) AND p.polname = $2)";
	elog(ERROR, "unknown DDL guard \"%s\"", guard);
	return NULL;				/* keep compiler quiet */
}

/*
 * already_done
 *		Whether d's guard says the sibling has what d makes (a statement
 *		without a guard is never done).
 */
static bool
already_done(PGconn *conn, const SplitdbDdl *d, const char *service)
{
	const char *params[2] = {d->arg1, d->arg2};
	char	   *value;
	bool		done;

	if (d->guard == NULL)
		return false;
	value = splitdb_remote_scalar(conn, guard_sql(d->guard), d->arg2 ? 2 : 1, params,
								  service);
	done = value != NULL && strcmp(value, "t") == 0;
	if (done)
		elog(DEBUG1, "%s %s is already in the sibling of service \"%s\"",
			 d->kind, d->name, service);
	return done;
}

/*
 * run_statement
 *		Run d's statement in the sibling: a "sequence value" with its
 *		sequence and value as parameters ($1, $2), so that no value is
 *		statement text; the others as they are.
 */
static void
run_statement(PGconn *conn, const SplitdbDdl *d, const char *service)
{
	const char *params[2] = {d->arg1, d->arg2};

	if (strcmp(d->kind, "sequence value") == 0)
		splitdb_remote_command(conn, d->sql, 2, params, service);
	else
		splitdb_remote_command(conn, d->sql, 0, NULL, service);
}

/*
 * splitdb_ddl_present
 *		Whether the sibling has what d makes, as its guard says; false for a
 *		statement without a guard.  The job's records (record.c) ask it
 *		before the statements run.
 */
bool
splitdb_ddl_present(PGconn *conn, const SplitdbDdl *d, const char *service)
{
	return already_done(conn, d, service);
}

/*
 * splitdb_ddl_apply
 *		Run statements in the sibling, skipping those whose guard says the
 *		object is there already.
 *
 * conn:    open connection to the sibling; the caller decides the remote
 *          transaction around the calls
 * items:   from splitdb_ddl_build()
 * service: names the service in error contexts
 *
 * A remote error is relayed with its SQLSTATE and the statement.  The
 * session's check_function_bodies is off from the first function on.
 */
void
splitdb_ddl_apply(PGconn *conn, List *items, const char *service)
{
	bool		bodies_unchecked = false;
	ListCell   *lc;

	foreach(lc, items)
	{
		SplitdbDdl *d = (SplitdbDdl *) lfirst(lc);

		CHECK_FOR_INTERRUPTS();

		/*
		 * As pg_dump's scripts do: a function's body may name a function
		 * created after it, or a table that stays in the source.
		 */
		if (!bodies_unchecked && strcmp(d->kind, "function") == 0)
		{
			splitdb_remote_command(conn, "SET check_function_bodies = off",
								   0, NULL, service);
			bodies_unchecked = true;
		}
		if (!already_done(conn, d, service))
			run_statement(conn, d, service);
	}
}

/*
 * splitdb_ddl_side_by_side
 *		Whether an after-data statement may run at the same time as the
 *		others of its kind: the builds of the indexes of tables that hold
 *		rows (CREATE INDEX takes a SHARE lock, which does not keep out
 *		another CREATE INDEX on the same table).
 */
bool
splitdb_ddl_side_by_side(const SplitdbDdl *d)
{
	return strcmp(d->kind, "index") == 0 || strcmp(d->kind, "key index") == 0;
}

/*
 * splitdb_ddl_apply_side_by_side
 *		Run statements in the sibling, each in autocommit, as many at a time
 *		as there are connections.
 *
 * conns:   nconns open connections to the sibling, idle
 * items:   statements for which splitdb_ddl_side_by_side() is true
 * started: called, if not NULL, with the names of the statements under way
 *          ("kind name", comma-separated) each time one starts
 * deferred: NULL, or where a statement that failed with unique_violation
 *          (23505) is appended, in the current memory context, instead of
 *          being raised: a unique index built before the rows are final
 *          (online mode, step.c) is built again once they are
 *
 * Skips what the guards say is done.  Returns when all have ended; the
 * first remote error is relayed (the caller's error path closes the
 * connections, and statements still running there end on their own).  A
 * CREATE INDEX that fails leaves nothing behind: it runs in autocommit.
 */
void
splitdb_ddl_apply_side_by_side(PGconn *const *conns, int nconns, List *items,
							   const char *service,
							   void (*started) (const char *running, void *arg),
							   void *arg, List **deferred)
{
	SplitdbDdl **running = palloc0(sizeof(SplitdbDdl *) * nconns);
	bool	   *busy = palloc0(sizeof(bool) * nconns);
	ListCell   *next = list_head(items);
	int			nbusy = 0;

	for (;;)
	{
		bool		launched = false;

		/* every idle connection takes the next statement that is not done */
		for (int i = 0; i < nconns && next != NULL; i++)
		{
			SplitdbDdl *d;

			if (busy[i])
				continue;
			d = (SplitdbDdl *) lfirst(next);
			next = lnext(items, next);
			CHECK_FOR_INTERRUPTS();
			if (already_done(conns[i], d, service))
			{
				i--;			/* this connection is still idle */
				continue;
			}
			splitdb_remote_send(conns[i], d->sql, 0, NULL, service);
			running[i] = d;
			busy[i] = true;
			nbusy++;
			launched = true;
		}
		if (launched && started != NULL)
		{
			StringInfoData names;

			initStringInfo(&names);
			for (int i = 0; i < nconns; i++)
				if (busy[i])
					appendStringInfo(&names, "%s%s %s", names.len > 0 ? ", " : "",
									 running[i]->kind, running[i]->name);
			started(names.data, arg);
		}
		if (nbusy == 0)
			break;

		/* one ends */
		{
			int			i = splitdb_remote_wait_ready(conns, busy, nconns, service);
			PGresult   *res;

			res = splitdb_remote_finish_unless(conns[i], running[i]->sql, service,
											   deferred ? ERRCODE_UNIQUE_VIOLATION : 0);
			if (res != NULL)
				splitdb_remote_clear(res);
			else
			{
				elog(LOG, "%s %s of service \"%s\" found duplicate keys in the sibling and is built again later",
					 running[i]->kind, running[i]->name, service);
				*deferred = lappend(*deferred, running[i]);
			}
			busy[i] = false;
			nbusy--;
		}
	}
}
