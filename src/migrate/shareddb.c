/*-------------------------------------------------------------------------
 *
 * shareddb.c
 *	  Whether a service's sibling is the very database of another service
 *	  that a cross-service reference joins it to.
 *
 * Two services may name one sibling database, each through a server of its
 * own.  Where a reference joins their tables, both of its ends would be in
 * that database, and splitdb installs each end in a session of its own: the
 * cutover's two sessions there waited for each other's locks, and the job
 * failed with 55P03 after copying every row.  splitdb_migrate() and every
 * run of a job's worker refuse such a job before it starts
 * (splitdb_shareddb_check()).
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/shareddb.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/defrem.h"
#include "foreign/foreign.h"
#include "utils/builtins.h"

#include "metadata/catalog.h"
#include "migrate/shareddb.h"
#include "remote/remote.h"

/*
 * database_identity
 *		Which database conn reaches, as one string: its name and the
 *		instant its server started (SPLITDB_DATABASE_IDENTITY_SQL); *dbname,
 *		when not NULL, is set to the name.
 */
static char *
database_identity(PGconn *conn, const char *service, char **dbname)
{
	PGresult   *res = splitdb_remote_exec(conn, SPLITDB_DATABASE_IDENTITY_SQL,
										  0, NULL, service);
	char	   *identity = psprintf("%s %s", splitdb_remote_value(res, 0, 0),
									splitdb_remote_value(res, 0, 1));

	if (dbname != NULL)
		*dbname = pstrdup(splitdb_remote_value(res, 0, 0));
	splitdb_remote_clear(res);
	return identity;
}

/*
 * The services that a reference joins to service $1 (SPLITDB_JOINED_SERVICES_CTE)
 * and that have a job which may move their tables (any but a cancelled or
 * rolled back one), claimed before job $2 (NULL: any, for a job not made
 * yet).  A new job's worker stamps started_at and commits its claim under
 * one lock (SPLITDB_CLAIM_LOCK_KEY, worker.c), so a job sees every job
 * whose started_at is earlier than its own; job ids, drawn by the callers
 * of splitdb_migrate(), come in another order.
 */
#define JOINED_SERVICES_SQL \
	"WITH owner AS (SELECT o.relid, o.service FROM (" SPLITDB_OWNED_RELATION_SQL ") o)," \
	" " SPLITDB_JOINED_SERVICES_CTE \
	" SELECT DISTINCT j.service::text FROM joined j" \
	"  WHERE j.service IS NOT NULL AND j.service <> $1::name" \
	"    AND EXISTS (SELECT FROM splitdb.job b WHERE b.service = j.service" \
	"                   AND b.state NOT IN ('cancelled', 'rolled_back')" \
	"                   AND ($2::pg_catalog.int8 IS NULL" \
	"                        OR (b.started_at, b.job_id) <" \
	"                           (SELECT m.started_at, m.job_id FROM splitdb.job m" \
	"                             WHERE m.job_id = $2::pg_catalog.int8)))" \
	"  ORDER BY 1"

/*
 * server_dbname
 *		The dbname option of a foreign server now, or NULL when it has none
 *		(libpq's default then picks the database) or the server is gone.
 */
static const char *
server_dbname(const char *server)
{
	ForeignServer *fs = GetForeignServerByName(server, true);
	ListCell   *lc;

	if (fs == NULL)
		return NULL;
	foreach(lc, fs->options)
	{
		DefElem    *opt = (DefElem *) lfirst(lc);

		if (strcmp(opt->defname, "dbname") == 0)
			return defGetString(opt);
	}
	return NULL;
}

/*
 * splitdb_shareddb_check
 *		Refuse a job of service whose sibling (conn) is the very database
 *		of a peer: another service that a reference joins to service's
 *		tables and that has a job which moves, or moved, its tables there
 *		(JOINED_SERVICES_SQL).  splitdb keeps the two ends of a
 *		cross-service reference in two databases, each end installed by a
 *		session of its own; in one database the cutover's two sessions wait
 *		for each other's locks, and the job failed there after copying every
 *		row.  Whichever of the two jobs is claimed second is refused:
 *		job_id, the job that would go on (0 for one not made yet), is
 *		checked only against peers' jobs claimed before it (started_at,
 *		JOINED_SERVICES_SQL), so that of two jobs made at the same time by
 *		two sessions, whose splitdb_migrate() did not see each other's, the
 *		one whose worker claimed it first goes on, and the other is refused
 *		by its worker.  Only a peer whose server names the database that
 *		conn reaches (for a server without a dbname option, the name the
 *		peer recorded) is asked which database it is, through its server
 *		and the current user's mapping there; one that does not answer
 *		raises its connection error.
 *
 * Called connected to SPI: by splitdb_migrate() before it makes or resumes
 * a job, and by every run of the job's worker before its first step.
 */
void
splitdb_shareddb_check(PGconn *conn, const char *service, int64 job_id)
{
	const char *params[2] = {service, job_id > 0 ? psprintf(INT64_FORMAT, job_id) : NULL};
	List	   *peers = NIL;
	ListCell   *lc;
	char	   *ours;
	char	   *dbname;

	splitdb_catalog_exec_text(JOINED_SERVICES_SQL, 2, params, false);
	foreach(lc, splitdb_catalog_result_rows())
		peers = lappend(peers, ((char **) lfirst(lc))[0]);
	if (peers == NIL)
		return;

	ours = database_identity(conn, service, &dbname);
	foreach(lc, peers)
	{
		const char *peer = (const char *) lfirst(lc);
		SplitdbService *svc = splitdb_catalog_get_service(peer, SPLITDB_LOCK_NONE, false);
		PGconn	   *volatile peer_conn = NULL;
		char	   *theirs = NULL;
		const char *peer_dbname = server_dbname(svc->server);

		if (peer_dbname == NULL)
			peer_dbname = svc->dbname;

		/*
		 * Another name is another database: no connection, no mapping
		 * needed.  The name is the server's option now, not the one the
		 * peer recorded when it was added (an ALTER SERVER since then
		 * points it elsewhere); for a server without one, or one that is
		 * gone, the recorded name, as the plan's warning reads it.
		 */
		if (strcmp(peer_dbname, dbname) != 0)
			continue;

		PG_TRY();
		{
			peer_conn = splitdb_remote_connect_server(svc->server, peer);
			theirs = database_identity(peer_conn, peer, NULL);
		}
		PG_FINALLY();
		{
			splitdb_remote_disconnect(peer_conn);
		}
		PG_END_TRY();

		if (strcmp(ours, theirs) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("the sibling of service \"%s\" is database \"%s\", the sibling of service \"%s\"",
							service, dbname, peer),
					 errdetail("A reference joins the tables of the two services; splitdb keeps the ends of such a reference in two databases."),
					 errhint("Give service \"%s\" a database of its own, or assign the tables of both services to one service; a job of it that has started ends with splitdb_cancel('%s').",
							 service, service)));
	}
}
