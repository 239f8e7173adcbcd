/*-------------------------------------------------------------------------
 *
 * access.c
 *	  Who may reach the sibling's copies of a job's tables: nobody but the
 *	  job's connection until the cutover.
 *
 * The preparing step creates the sibling's tables and sequences as the
 * role the service's user mapping connects as, and grants nothing on them
 * (ddl.c); the source's owners and privileges are given to them in the
 * cutover's last sibling transaction (splitdb_access_give), which commits
 * just before the source's, so they take effect when the shims do.  Until
 * then no role of the applications reads the copy or writes to it: a row
 * written there behind the job's back would outlive the verification, and
 * an orphan written there would escape the cross-service references, which
 * are only enforced from the cutover on.
 *
 * A job that stopped between the two commits (the two-database commit
 * window), or one that a release before this one prepared, finds the
 * copies given away: every run takes them back before its first step
 * (splitdb_access_take_back), and the verification, which a resumed cutover
 * runs again, sees any row written there meanwhile.
 *
 * Invariants:
 * - Statements name objects by quoted, schema-qualified names only; the
 *   withholding statements are made in the sibling from its own catalogs.
 * - Both functions change the sibling in one remote transaction of their
 *   own, which commits before they return.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/access.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/varlena.h"

#include "metadata/catalog.h"
#include "metadata/catalog_sql.h"
#include "migrate/access.h"
#include "migrate/ddl.h"
#include "migrate/job.h"
#include "migrate/worker_int.h"
#include "remote/remote.h"

/*
 * The statements that take the copies back, made in the sibling: $1 is the
 * text[] of the job's tables' names.  The tables and the sequences their
 * defaults call become the connecting role's (a table's owned sequences
 * follow it), without FORCE ROW LEVEL SECURITY, which the cutover sets
 * again; every other role loses its privileges on them and on the owned
 * sequences (a table's REVOKE takes its columns' privileges too, and
 * CASCADE what was granted on through a grant option).  Last, the user
 * triggers that the cutover made ENABLE ALWAYS or ENABLE REPLICA (on the
 * tables and their partitions) go back to the default, ENABLE, which the
 * rounds' replica sessions do not fire: the cutover sets their states
 * again.
 */
static const char *const sql_withhold =
"WITH me AS (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = CURRENT_USER),"
" rels AS (SELECT c.oid FROM pg_catalog.unnest($1::pg_catalog.text[]) n(name)"
"           JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass(n.name)),"
" owned_seqs AS (SELECT d.objid AS oid FROM pg_catalog.pg_depend d JOIN rels ON rels.oid = d.refobjid"
"           JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'"
"          WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass"
"            AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.deptype IN ('a', 'i')),"
" called_seqs AS (SELECT d.refobjid AS oid FROM pg_catalog.pg_depend d"
"           JOIN pg_catalog.pg_attrdef ad ON d.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass"
"            AND d.objid = ad.oid JOIN rels ON rels.oid = ad.adrelid"
"           JOIN pg_catalog.pg_class s ON s.oid = d.refobjid AND s.relkind = 'S'"
"          WHERE d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass"
"         EXCEPT SELECT oid FROM owned_seqs),"
" objs AS (SELECT oid FROM rels UNION SELECT oid FROM owned_seqs UNION SELECT oid FROM called_seqs),"
" grantees AS (SELECT o.oid, a.grantee FROM objs o JOIN pg_catalog.pg_class c ON c.oid = o.oid,"
"             pg_catalog.aclexplode(c.relacl) a"
"            WHERE a.grantee <> c.relowner AND a.grantee NOT IN (SELECT oid FROM me)"
"           UNION SELECT o.oid, a.grantee FROM rels o JOIN pg_catalog.pg_class c ON c.oid = o.oid"
"             JOIN pg_catalog.pg_attribute at ON at.attrelid = c.oid AND at.attacl IS NOT NULL,"
"             pg_catalog.aclexplode(at.attacl) a"
"            WHERE a.grantee <> c.relowner AND a.grantee NOT IN (SELECT oid FROM me))"
" SELECT 1, c.oid::pg_catalog.regclass::pg_catalog.text,"
"  pg_catalog.format('ALTER TABLE ONLY %s %s', c.oid::pg_catalog.regclass,"
"   pg_catalog.concat_ws(', ', CASE WHEN c.relowner NOT IN (SELECT oid FROM me) THEN 'OWNER TO CURRENT_USER' END,"
"                        CASE WHEN c.relforcerowsecurity THEN 'NO FORCE ROW LEVEL SECURITY' END))"
" FROM rels JOIN pg_catalog.pg_class c ON c.oid = rels.oid"
" WHERE c.relowner NOT IN (SELECT oid FROM me) OR c.relforcerowsecurity"
" UNION ALL"
" SELECT 1, c.oid::pg_catalog.regclass::pg_catalog.text,"
"  pg_catalog.format('ALTER SEQUENCE %s OWNER TO CURRENT_USER', c.oid::pg_catalog.regclass)"
" FROM called_seqs s JOIN pg_catalog.pg_class c ON c.oid = s.oid"
" WHERE c.relowner NOT IN (SELECT oid FROM me)"
" UNION ALL"
" SELECT 2, c.oid::pg_catalog.regclass::pg_catalog.text,"
"  pg_catalog.format('REVOKE ALL ON %s %s FROM %s CASCADE',"
"   CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, c.oid::pg_catalog.regclass,"
"   pg_catalog.string_agg(CASE WHEN g.grantee = 0 THEN 'PUBLIC'"
"                              ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(g.grantee)) END,"
"                         ', ' ORDER BY g.grantee))"
" FROM grantees g JOIN pg_catalog.pg_class c ON c.oid = g.oid"
" GROUP BY c.oid, c.relkind"
" UNION ALL"
" SELECT 3, t.tgrelid::pg_catalog.regclass::pg_catalog.text,"
"  pg_catalog.format('ALTER TABLE %s ENABLE TRIGGER %I', t.tgrelid::pg_catalog.regclass, t.tgname)"
" FROM (SELECT rels.oid AS relid FROM rels"
"       UNION SELECT p.relid FROM rels, pg_catalog.pg_partition_tree(rels.oid) p) p"
" JOIN pg_catalog.pg_trigger t ON t.tgrelid = p.relid"
" WHERE NOT t.tgisinternal AND t.tgenabled IN ('A', 'R') AND " SPLITDB_NOT_OWN_TRIGGER("t")
" ORDER BY 1, 2";

/* whether splitdb_access_give() committed in this process since the last withhold */
static bool copies_given = false;

/*
 * run_in_transaction
 *		Run sql[0..n-1] in the sibling in one remote transaction, committed:
 *		one DO block (autocommit), so one round trip whatever their number;
 *		the cutover runs them while it holds the application's writes.  The
 *		block's dollar quote is a tag that no statement contains.  A remote
 *		error is relayed with its SQLSTATE, and nothing of the block stays.
 */
static void
run_in_transaction(PGconn *conn, char **sql, int n, const char *service)
{
	StringInfoData body;
	char	   *tag = pstrdup("$splitdb$");

	if (n == 0)
		return;
	initStringInfo(&body);
	for (int i = 0; i < n; i++)
		appendStringInfo(&body, "%s;\n", sql[i]);
	for (int k = 1; strstr(body.data, tag) != NULL; k++)
		tag = psprintf("$splitdb_%d$", k);
	CHECK_FOR_INTERRUPTS();
	splitdb_remote_command(conn, psprintf("DO %s BEGIN\n%sEND %s", tag, body.data, tag),
						   0, NULL, service);
	pfree(body.data);
}

/*
 * splitdb_access_sibling_roles
 *		The names of the roles of the sibling's cluster, as a text[]
 *		literal palloc'd in the current context: what ddl.c's cutover
 *		statements may name.
 *
 * conn: open connection to the sibling, outside a remote transaction or in one
 */
char *
splitdb_access_sibling_roles(PGconn *conn, const char *service)
{
	char	   *roles = splitdb_remote_scalar(conn,
											  "SELECT pg_catalog.array_agg(r.rolname ORDER BY r.rolname)::pg_catalog.text"
											  " FROM pg_catalog.pg_roles r",
											  0, NULL, service);

	return roles != NULL ? roles : pstrdup("{}");
}

/*
 * splitdb_access_give
 *		Give the sibling's copies the source's owners and privileges: run
 *		the cutover's statements (splitdb_ddl_build(SPLITDB_DDL_CUTOVER))
 *		in one remote transaction, and commit it.
 *
 * conn:  the job's connection to the sibling, outside a remote transaction
 * items: SplitdbDdl statements, none with a guard
 *
 * The cutover calls it after all else it does on the job's connection and
 * before the materialized views are filled through postgres_fdw, whose
 * remote transaction would hold a lock that ALTER ... OWNER waits for.
 * What can then fail before the source commits is filling those, recording
 * the cutover and the commit itself; an online attempt retried after such
 * a failure refuses (splitdb_access_check_withheld).
 */
void
splitdb_access_give(PGconn *conn, List *items, const char *service)
{
	char	  **sql = palloc(sizeof(char *) * (list_length(items) + 1));
	int			n = 0;
	ListCell   *lc;

	foreach(lc, items)
		sql[n++] = ((SplitdbDdl *) lfirst(lc))->sql;
	run_in_transaction(conn, sql, n, service);
	copies_given = true;
	pfree(sql);
}

/*
 * splitdb_access_check_withheld
 *		Refuse to go on when this process gave the copies away and the
 *		cutover that did so did not commit (an online cutover's attempt
 *		about to be retried): a role may have written to them since, and
 *		only a run that takes them back and verifies them again may cut
 *		over.  The error (55000) is not one that the attempts retry.
 */
void
splitdb_access_check_withheld(const char *service)
{
	if (copies_given)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the sibling's copies of service \"%s\" were given their owners and privileges by a cutover that did not commit",
						service),
				 errdetail("A role may have written to them since."),
				 errhint("Call splitdb_migrate('%s') again: the job takes the copies back and verifies them again.",
						 service)));
}

/*
 * withhold
 *		Take the sibling's copies of the tables named back from every role
 *		but the connecting one (sql_withhold), in one remote transaction
 *		that commits before this returns.
 *
 * conn:  the job's connection to the sibling, outside a remote transaction
 * names: the tables' quoted, schema-qualified names (char *), which are
 *        also their names in the sibling; tables not there are skipped
 *
 * Returns how many statements it ran: 0 when nothing of the copies had
 * been given away.
 */
static int
withhold(PGconn *conn, List *names, const char *service)
{
	const char *params[1];
	char	  **items = palloc(sizeof(char *) * (list_length(names) + 1));
	char	  **sql;
	PGresult   *res;
	ListCell   *lc;
	int			n = 0;

	foreach(lc, names)
		items[n++] = (char *) lfirst(lc);
	params[0] = splitdb_catalog_text_array(items, n);
	pfree(items);
	res = splitdb_remote_exec(conn, sql_withhold, 1, params, service);
	n = splitdb_remote_ntuples(res);
	sql = palloc(sizeof(char *) * (n + 1));
	for (int i = 0; i < n; i++)
		sql[i] = pstrdup(splitdb_remote_value(res, i, 2));
	splitdb_remote_clear(res);
	if (n > 0)
		run_in_transaction(conn, sql, n, service);
	copies_given = false;
	for (int i = 0; i < n; i++)
		pfree(sql[i]);
	pfree(sql);
	return n;
}

/*
 * splitdb_access_withhold_created
 *		At preparing, in the remote transaction that created the sibling's
 *		tables (before its COMMIT): take from every other role what the
 *		connecting role's default privileges there (ALTER DEFAULT
 *		PRIVILEGES) granted on them as they were made, so that no role
 *		reaches the copies from the first row on.  Outside a transaction
 *		of the worker.
 */
void
splitdb_access_withhold_created(SplitdbJob *job)
{
	List	   *names = NIL;
	ListCell   *lc;

	foreach(lc, job->tables)
		names = lappend(names, ((SplitdbJobTable *) lfirst(lc))->name);
	splitdb_worker_begin("withholding the sibling's new copies");
	(void) withhold(job->conn, names, job->service);
	splitdb_worker_commit();
	list_free(names);
}

/*
 * refuse_window_writes
 *		A cutover that stopped between its sibling's commit and its source's
 *		left the copies given away, and its capture there logging: a row
 *		that an application wrote in the sibling meanwhile is in a log of
 *		the job (splitdb_capture.log_<job>_<n>).  Resumed, the job would
 *		replay the source's writes over it, and a key both databases handed
 *		out (their sequences both stand past the same value) would keep the
 *		source's row and lose the sibling's, which the verification would
 *		not see.  Raise 55000 naming the first such log; nothing when the
 *		logs are empty or were never made.  Outside a transaction of the
 *		worker.
 */
static void
refuse_window_writes(SplitdbJob *job)
{
	const char *params[1] = {psprintf(INT64_FORMAT, job->job_id)};
	char	   *logs;
	List	   *names;
	ListCell   *lc;

	logs = splitdb_remote_scalar(job->conn,
								 "SELECT pg_catalog.string_agg(c.relname::pg_catalog.text, ',' ORDER BY c.relname)"
								 "  FROM pg_catalog.pg_class c"
								 " WHERE c.relnamespace OPERATOR(pg_catalog.=)"
								 "       pg_catalog.to_regnamespace('splitdb_capture')"
								 "   AND c.relkind OPERATOR(pg_catalog.=) 'r'"
								 "   AND c.relname OPERATOR(pg_catalog.~) ('^log_' OPERATOR(pg_catalog.||) $1"
								 "                     OPERATOR(pg_catalog.||) '_[0-9]+$')",
								 1, params, job->service);
	if (logs == NULL)
		return;
	/* splitdb makes the logs' names of lower-case letters, digits and _ */
	if (!SplitIdentifierString(logs, ',', &names))
		elog(ERROR, "unexpected capture log names \"%s\"", logs);
	foreach(lc, names)
	{
		char	   *log = psprintf("splitdb_capture.%s", (char *) lfirst(lc));
		char	   *any = splitdb_remote_scalar(job->conn,
												psprintf("SELECT pg_catalog.count(*)::pg_catalog.text"
														 "  FROM (SELECT FROM %s LIMIT 1000000) l", log),
												0, NULL, job->service);

		if (any == NULL || strcmp(any, "0") == 0)
			continue;
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the sibling of service \"%s\" took writes while the cutover of job " INT64_FORMAT " was committing",
						job->service, job->job_id),
				 errdetail("The cutover stopped after the sibling's commit and before the source's; %s row%s written in the sibling since %s logged in %s, and a resumed job would replay the source's writes over them.",
						   any, strcmp(any, "1") == 0 ? "" : "s",
						   strcmp(any, "1") == 0 ? "is" : "are", log),
				 errhint("Carry what must stay from the sibling's tables into the source's, then, as a superuser in the sibling, empty the job's logs (DELETE FROM %s) and call splitdb_migrate('%s') again; or give the migration up with splitdb_cancel('%s'), which drops the sibling's tables.",
						 log, job->service, job->service)));
	}
}

/*
 * splitdb_access_take_back
 *		Before any step of a run works on the sibling's copies: take them
 *		back from the roles that a cutover that did not commit in the
 *		source (or a release that gave them away at preparing) left them to
 *		(withhold), and log it when it did.  Only once preparing is over
 *		are the sibling's tables of these names the job's own, and only
 *		until the cutover committed.  Outside a transaction of the worker.
 */
void
splitdb_access_take_back(SplitdbJob *job)
{
	List	   *names = NIL;
	ListCell   *lc;
	int			n;

	if (job->phase <= SPLITDB_PHASE_PREPARING || job->phase >= SPLITDB_PHASE_DONE)
		return;
	foreach(lc, job->tables)
		names = lappend(names, ((SplitdbJobTable *) lfirst(lc))->name);
	splitdb_worker_begin("taking the sibling's copies back");
	n = withhold(job->conn, names, job->service);
	splitdb_worker_commit();
	if (n > 0)
		ereport(LOG,
				(errmsg("job " INT64_FORMAT " of service \"%s\" took its copies in the sibling back from other roles (%d statement%s)",
						job->job_id, job->service, n, n == 1 ? "" : "s")));
	if (job->phase == SPLITDB_PHASE_CUTTING_OVER)
		refuse_window_writes(job);
	list_free(names);
}
