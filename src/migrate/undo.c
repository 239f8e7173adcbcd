/*-------------------------------------------------------------------------
 *
 * undo.c
 *	  Dropping what the artifact registry lists: the sibling's objects in
 *	  one remote transaction, the source's in the caller's transaction.
 *	  Used by splitdb_cancel(), splitdb_finalize() and splitdb_doctor().
 *
 * Invariants:
 * - Only registry rows are dropped, newest first (an object is recorded
 *   after what it depends on), each with IF EXISTS: a row may stand for an
 *   object a crash kept from being made, or one dropped already.
 * - A sibling's drops commit in the sibling before the rows are marked
 *   dropped in the source; when the source transaction fails afterwards,
 *   the rows stay and the next call drops nothing twice (IF EXISTS).
 * - The source's tables of one call go in one DROP TABLE, so that foreign
 *   keys among archived originals and partitions with their parents do not
 *   depend on the order.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/undo.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "metadata/artifact.h"
#include "metadata/catalog.h"
#include "migrate/ddlguard.h"
#include "migrate/undo.h"
#include "remote/remote.h"

/* whether artifact a lives in the sibling of service (NULL: the source) */
static bool
lives_in(const SplitdbArtifact *a, const char *service)
{
	if (service == NULL)
		return a->service == NULL;
	return a->service != NULL && strcmp(a->service, service) == 0;
}

/*
 * splitdb_undo_keeps
 *		Whether artifact a, in the sibling of service, stays there, with a
 *		WARNING, rather than failing the cancel or rollback that drops it,
 *		or taking with it what it does not own (splitdb_artifact_kept_sql):
 *		a schema that holds objects the job did not make, a server with a
 *		user mapping that holds a password, an extension whose
 *		foreign-data wrapper a remaining server uses, a type, domain,
 *		collation, function or sequence that such an object depends on.  It is forgotten all
 *		the same once the caller marks it dropped.
 *
 * conn: open connection to the sibling
 */
bool
splitdb_undo_keeps(PGconn *conn, const SplitdbArtifact *a, const char *service)
{
	char	   *sql = splitdb_artifact_kept_sql(a);
	char	   *kept;
	const char *detail;
	const char *hint;

	if (sql == NULL)
		return false;
	kept = splitdb_remote_scalar(conn, sql, 0, NULL, service);
	if (kept == NULL || strcmp(kept, "t") != 0)
		return false;
	if (strcmp(a->kind, "server") == 0)
	{
		detail = psprintf("Job " INT64_FORMAT " made the server, and a user mapping on it holds a password, which splitdb never makes.", a->job_id);
		hint = "The next migration of the service uses the server as it is; drop it there yourself (DROP SERVER ... CASCADE) once it is not needed.";
	}
	else if (strcmp(a->kind, "extension") == 0)
	{
		detail = psprintf("Job " INT64_FORMAT " installed the extension, and a foreign server that stays uses its foreign-data wrapper.", a->job_id);
		hint = "Drop the extension there yourself once no server needs it.";
	}
	else if (strcmp(a->kind, "schema") == 0)
	{
		detail = psprintf("Job " INT64_FORMAT " made the schema, and it holds objects that the job did not make.", a->job_id);
		hint = "Drop the schema there yourself once nothing in it is needed.";
	}
	else
	{
		detail = psprintf("Job " INT64_FORMAT " made the %s, and objects that the job did not make depend on it.",
						  a->job_id, a->kind);
		hint = psprintf("Drop the %s there yourself once nothing depends on it.", a->kind);
	}
	ereport(WARNING,
			(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
			 errmsg("%s %s in the database of service \"%s\" is kept", a->kind, a->identity, service),
			 errdetail("%s", detail),
			 errhint("%s", hint)));
	return true;
}

/*
 * splitdb_undo_sibling
 *		Drop, in one transaction of the sibling of service, every artifact
 *		of the list that lives there, newest first, and commit it there.
 *		Returns how many it dropped; the caller marks them with
 *		splitdb_undo_mark() once this returned.
 *
 * conn: open connection to the sibling, outside a remote transaction
 */
int
splitdb_undo_sibling(PGconn *conn, const char *service, List *artifacts)
{
	ListCell   *lc;
	int			n = 0;

	splitdb_remote_command(conn, "BEGIN", 0, NULL, service);
	foreach(lc, artifacts)
	{
		SplitdbArtifact *a = (SplitdbArtifact *) lfirst(lc);

		if (!lives_in(a, service))
			continue;
		CHECK_FOR_INTERRUPTS();
		if (splitdb_undo_keeps(conn, a, service))
			continue;
		splitdb_remote_command(conn, splitdb_artifact_drop_sql(a), 0, NULL, service);
		n++;
	}
	splitdb_remote_command(conn, "COMMIT", 0, NULL, service);
	return n;
}

/*
 * splitdb_undo_mark
 *		Mark every artifact of the list that lives in the sibling of service
 *		(NULL: the source) dropped, in the caller's transaction.
 */
void
splitdb_undo_mark(List *artifacts, const char *service)
{
	ListCell   *lc;

	foreach(lc, artifacts)
	{
		SplitdbArtifact *a = (SplitdbArtifact *) lfirst(lc);

		if (lives_in(a, service))
			splitdb_artifact_dropped(a->artifact_id);
	}
}

/*
 * forget_capture
 *		Delete the rows of splitdb.capture whose log is the relation named
 *		log (quoted, qualified), before it is dropped; none when it is gone
 *		already.  Connected to SPI.
 */
static void
forget_capture(const char *log)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(log)};

	splitdb_spi_exec("DELETE FROM splitdb.capture WHERE log = pg_catalog.to_regclass($1)",
					 1, types, values, NULL, false, 0);
}

/*
 * splitdb_undo_source
 *		Drop every artifact of the list that lives in this database, in the
 *		caller's transaction (connected to SPI), and mark it dropped.  The
 *		tables go together in one statement, after everything else of the
 *		list (materialized views over them, triggers on them).  A capture
 *		log takes its rows of splitdb.capture with it, which would name a
 *		relation that is gone.  Returns how many it dropped.
 */
int
splitdb_undo_source(List *artifacts)
{
	StringInfoData tables;
	ListCell   *lc;
	int			n = 0;
	int			nest;

	/*
	 * The archived originals refuse DDL until their job is over; dropping
	 * them here is what finalize (or a repair of a job that is over) is for.
	 */
	splitdb_ddl_guard_off_for_xact();

	/*
	 * The drops name what a job that stopped early may never have made (IF
	 * EXISTS): PostgreSQL's "does not exist, skipping" for each is no news
	 * to the caller of splitdb_cancel() or splitdb_finalize().
	 */
	nest = NewGUCNestLevel();
	if (client_min_messages < WARNING)
		(void) set_config_option("client_min_messages", "warning", PGC_USERSET,
								 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);

	initStringInfo(&tables);
	foreach(lc, artifacts)
	{
		SplitdbArtifact *a = (SplitdbArtifact *) lfirst(lc);

		if (!lives_in(a, NULL))
			continue;
		if (strcmp(a->kind, "table") == 0)
			appendStringInfo(&tables, "%s%s", tables.len > 0 ? ", " : "", a->identity);
		else
		{
			if (strcmp(a->kind, "capture log") == 0)
				forget_capture(a->identity);
			splitdb_spi_exec(splitdb_artifact_drop_sql(a), 0, NULL, NULL, NULL, false, 0);
		}
		n++;
	}
	if (tables.len > 0)
		splitdb_spi_exec(psprintf("DROP TABLE IF EXISTS %s", tables.data),
						 0, NULL, NULL, NULL, false, 0);
	AtEOXact_GUC(true, nest);
	splitdb_undo_mark(artifacts, NULL);
	return n;
}
