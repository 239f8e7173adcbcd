/*-------------------------------------------------------------------------
 *
 * peer.c
 *	  What a failed cutover leaves in the other siblings, undone by
 *	  splitdb_cancel().
 *
 * A cutover installs the ends of every reference with an end in its service
 * in each database that holds one (reference.c), each sibling in a remote
 * transaction of its own that commits before the cutover's.  Where the other
 * end is a table of another service that is migrated, that service's
 * sibling (a peer) held its end before, reaching the source; the cutover
 * installs it again to reach this service's sibling, through a server
 * splitdb_<service> it makes there (record.c records it), and the two
 * siblings share a secret (origin.c).  A cutover that fails afterwards rolls
 * back in the source, not in the peer: its ends would check against a
 * sibling whose tables the cancel drops.
 *
 * splitdb_peer_cancel(), once the job is cancelled in the cancel's
 * transaction (so that splitdb.reference_placement puts the service's ends
 * in the source again):
 *
 *	1. installs the ends of those references again where the placement now
 *	   puts them, the peers' first (each committed there), the source's in
 *	   the caller's transaction: the peers' ends reach the source again, as
 *	   before the job; each try bounded (install_peers);
 *	2. in each peer, in one remote transaction committed there, forgets the
 *	   secret shared with the service's sibling when no end there reaches it
 *	   any more, and drops the job's registry objects there (the server),
 *	   newest first; then marks their rows dropped.
 *
 * Invariants:
 * - Idempotent: installing the same ends again, a secret already gone and
 *   drops that say IF EXISTS change nothing, so a cancel that fails or is
 *   killed after a peer committed is called again and finishes.
 * - Only what the registry lists is dropped; the peers' ends are installed,
 *   never dropped: they were there before the job.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/peer.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "utils/builtins.h"

#include "metadata/artifact.h"
#include "metadata/catalog.h"
#include "migrate/cutover.h"
#include "migrate/job.h"
#include "migrate/peer.h"
#include "migrate/undo.h"
#include "reference/reference.h"
#include "remote/remote.h"

/*
 * The references between service and another service's tables whose other
 * end is in that service's sibling, as splitdb.reference_placement places
 * them now; $1: the service.
 */
#define PEER_REFERENCES_SQL \
	"SELECT p.reference_id::text," \
	"       CASE WHEN p.child_service = $1::name THEN p.parent_service" \
	"            ELSE p.child_service END::text" \
	"  FROM splitdb.reference_placement p" \
	" WHERE $1::name IN (p.child_service, p.parent_service)" \
	"   AND p.child_service IS DISTINCT FROM p.parent_service" \
	"   AND p.dropped_at IS NOT NULL" \
	"   AND CASE WHEN p.child_service = $1::name THEN p.parent_location" \
	"            ELSE p.child_location END <> 'source'" \
	" ORDER BY 1"

/* append name to a List of names when it is not there yet */
static List *
add_name(List *names, const char *name)
{
	ListCell   *lc;

	foreach(lc, names)
		if (strcmp((const char *) lfirst(lc), name) == 0)
			return names;
	return lappend(names, pstrdup(name));
}

/*
 * install_peers
 *		Step 1: the ends of references ids installed again in the peers,
 *		each try waiting at most the job's splitdb.cutover_lock_timeout for
 *		a lock there, none committing there unless all are in
 *		(reference.c), up to the job's splitdb.cutover_attempts tries (as
 *		the cancel's drops in the source): otherwise the application's
 *		statements on those tables would queue behind the cancel.  Then
 *		raises 55P03: the cancel rolls back, the job stays failed, and a
 *		second cancel finishes it.
 */
static void
install_peers(const char *service, int64 job_id, List *ids)
{
	SplitdbCutoverSettings settings;
	ErrorData  *why;

	splitdb_job_cutover_settings(job_id, &settings);
	why = splitdb_cutover_install_tries(service, ids, NULL, settings.lock_timeout,
										settings.attempts, NOTICE);
	if (why != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("could not install again in the other siblings the cross-service references of service \"%s\" in %d attempt%s: %s",
						service, settings.attempts, settings.attempts == 1 ? "" : "s", why->message),
				 errdetail("Each attempt waited at most %d ms for a table of another database that holds an end; nothing was installed there: job " INT64_FORMAT " stays failed, and its objects in its sibling are dropped already.",
						   settings.lock_timeout, job_id),
				 errhint("Find the sessions that hold locks on that table in its database (pg_locks, pg_stat_activity) and end them, or raise splitdb.cutover_lock_timeout or splitdb.cutover_attempts, then call splitdb_cancel('%s') again to finish.",
						 service)));
}

/*
 * clean_peer
 *		Step 2 in one peer: forget the secret shared with service's sibling
 *		unless an end there still reaches it, drop the job's objects there,
 *		commit there, and mark their rows dropped.  Returns how many objects
 *		it dropped.
 */
static int
clean_peer(const char *peer, const char *service, List *artifacts)
{
	const char *params[1] = {service};
	PGconn	   *volatile conn = NULL;
	int			n = 0;

	PG_TRY();
	{
		char	   *has;

		conn = splitdb_remote_connect_server(splitdb_catalog_get_service(peer, SPLITDB_LOCK_NONE,
																		 false)->server,
											 peer);
		has = splitdb_remote_scalar(conn,
									"SELECT pg_catalog.to_regclass('splitdb.origin_key') IS NOT NULL"
									"   AND pg_catalog.to_regclass('splitdb.reference_end') IS NOT NULL",
									0, NULL, peer);
		splitdb_remote_command(conn, "BEGIN", 0, NULL, peer);
		if (has != NULL && strcmp(has, "t") == 0)
			splitdb_remote_command(conn,
								   "DELETE FROM splitdb.origin_key k WHERE k.location = $1"
								   "   AND NOT EXISTS (SELECT FROM splitdb.reference_end e"
								   "                    WHERE e.other_location = $1)",
								   1, params, peer);
		splitdb_remote_command(conn, "COMMIT", 0, NULL, peer);
		n = splitdb_undo_sibling(conn, peer, artifacts);
	}
	PG_FINALLY();
	{
		splitdb_remote_disconnect(conn);
	}
	PG_END_TRY();
	splitdb_undo_mark(artifacts, peer);
	return n;
}

/*
 * splitdb_peer_cancel
 *		Undo in the other siblings what the job's cutover changed there (see
 *		the file's header): the ends of the references with service installed
 *		again, the job's objects there (artifacts: the job's registry rows
 *		that go on cancel) dropped.  Returns how many objects it dropped.
 *
 * job_id: the job, whose cutover settings bound the waits in the peers
 * cut: whether the job reached its cutover, which alone installs ends in
 *      the peers; without it only the registry's objects there are dropped.
 *
 * In the cancel's transaction, connected to SPI, after the job was set
 * cancelled in it.
 */
int
splitdb_peer_cancel(const char *service, int64 job_id, List *artifacts, bool cut)
{
	const char *params[1] = {service};
	List	   *ids = NIL;
	List	   *peers = NIL;
	ListCell   *lc;
	int			n = 0;

	if (cut)
	{
		splitdb_catalog_exec_text(PEER_REFERENCES_SQL, 1, params, false);
		foreach(lc, splitdb_catalog_result_rows())
		{
			char	  **row = (char **) lfirst(lc);
			int64	   *id = palloc(sizeof(int64));

			*id = pg_strtoint64(row[0]);
			ids = lappend(ids, id);
			peers = add_name(peers, row[1]);
		}
	}
	foreach(lc, artifacts)
	{
		SplitdbArtifact *a = (SplitdbArtifact *) lfirst(lc);

		if (a->service != NULL && strcmp(a->service, service) != 0)
			peers = add_name(peers, a->service);
	}

	if (ids != NIL)
		install_peers(service, job_id, ids);
	foreach(lc, peers)
		n += clean_peer((const char *) lfirst(lc), service, artifacts);
	return n;
}
