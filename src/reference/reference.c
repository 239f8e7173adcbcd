/*-------------------------------------------------------------------------
 *
 * reference.c
 *	  Where the ends of cross-service references live, and the triggers
 *	  that enforce them in every database.
 *
 * A reference recorded in splitdb.reference has two ends, each in the source
 * (a table that stays) or in a service's sibling (once that service's job
 * is done).  It is enforced:
 *
 * - in the source, on both ends: the table that stays, and the shim of the
 *   moved table (writes through the shim are checked where they are
 *   issued, in the transaction that made them);
 * - a key declared on one partition of a moved table has no shim of its
 *   own, so its sibling checks even the writes that come through the
 *   shim ("always"), but for the references whose other end is in the
 *   source, which only the source can check in the writer's transaction:
 *   for those the source checks the rows inserted through the shim of the
 *   partitioned table, with an INSERT trigger whose WHEN clause is the
 *   partition's constraint (route.c).  UPDATE and DELETE get no row
 *   triggers there: with them postgres_fdw would update the remote
 *   partitioned table by ctid, which is not unique across its partitions;
 *   the sibling hands the rows they write in the partition back instead
 *   (refcheck.c, handed_back; for a deferrable key with a trigger of its
 *   own, _handback, since the key's constraint trigger fires at commit),
 *   and the source checks them;
 * - in each sibling that holds an end, on the moved table, reaching the
 *   other end through a postgres_fdw server splitdb creates there
 *   (splitdb_source, or splitdb_<service> for another sibling), through the
 *   user mapping of the table's owner there.
 *
 * User mappings: the ends' owners need theirs on the servers the ends use,
 * in every database; splitdb creates those it may (mapping.c decides) and
 * reports the others before anything is installed.
 *
 * Every database gets its rows in splitdb.reference_end and its triggers
 * from the same function, splitdb.install_reference_ends(), which this file
 * calls locally through SPI and remotely with one parameter.  Installing is
 * idempotent: a resumed cutover, a second service that moves the other end,
 * or a change of mode installs the same references again.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/reference.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/reloptions.h"
#include "catalog/pg_type.h"
#include "catalog/pg_user_mapping.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "metadata/catalog.h"
#include "compat.h"
#include "reference/origin.h"
#include "reference/reference.h"
#include "remote/remote.h"
#include "splitdb.h"

PG_FUNCTION_INFO_V1(splitdb_reference_mode);

/*
 * Whether an end's relation is a partition: its own catalog row, else (the
 * archive dropped by splitdb_finalize()) whether its job moved it as one
 */
#define OWN_PARTITION(relid) \
	"coalesce((SELECT c.relispartition FROM pg_class c WHERE c.oid = " relid ")," \
	" EXISTS (SELECT FROM splitdb.job_table t WHERE t.relid = " relid \
	" AND t.partition_root IS NOT NULL))"

/*
 * The ends of the selected references, one row per database that holds
 * triggers: location, its server in the source, the ends as jsonb, the
 * owner/server pairs that need user mappings there, the other locations it
 * reaches.  $1: a service; $2: the references, or NULL for every reference
 * with an end in service $1.
 */
static const char *const sql_ends =
"WITH r AS ("
"  SELECT r.*, r.child_location AS cloc, r.parent_location AS ploc,"
"    r.child_database AS cdb, r.parent_database AS pdb,"
"    r.child_server AS cserver, r.parent_server AS pserver,"
"    r.child_types AS ctypes, r.parent_types AS ptypes,"
"    CASE r.on_delete WHEN 'NO ACTION' THEN 'a' WHEN 'RESTRICT' THEN 'r' WHEN 'CASCADE' THEN 'c'"
"         WHEN 'SET NULL' THEN 'n' ELSE 'd' END AS del,"
"    CASE r.on_update WHEN 'NO ACTION' THEN 'a' WHEN 'RESTRICT' THEN 'r' WHEN 'CASCADE' THEN 'c'"
"         WHEN 'SET NULL' THEN 'n' ELSE 'd' END AS upd"
"    FROM splitdb.reference_placement r"
"   WHERE r.dropped_at IS NOT NULL"
"     AND CASE WHEN $2::bigint[] IS NULL THEN $1 IN (r.child_service, r.parent_service)"
"              ELSE r.reference_id = ANY ($2::bigint[]) END),"
" e AS ("
"  SELECT r.reference_id, 'c' AS side, r.child_table AS own_table, r.cloc AS own_loc, r.cserver AS own_srv,"
"         r.child_columns AS own_columns, r.ctypes AS own_types,"
"         r.ploc AS other_loc, r.pserver AS other_srv, r.parent_table AS other_table,"
"         r.parent_columns AS other_columns, r.ptypes AS other_types, r.pdb AS other_db,"
"         (SELECT c.relowner FROM pg_class c"
"           WHERE c.oid = splitdb.reference_end_relid(r.child_relid, r.child_table)) AS owner,"
"         " OWN_PARTITION("r.child_relid") " AS own_partition,"
"         r.child_relid AS own_relid,"
"         r.constraint_name, r.match_type, r.del, r.upd, r.delete_set_columns,"
"         r.is_deferrable, r.initially_deferred, r.mode"
"    FROM r"
"  UNION ALL"
"  SELECT r.reference_id, 'p', r.parent_table, r.ploc, r.pserver,"
"         r.parent_columns, r.ptypes,"
"         r.cloc, r.cserver, r.child_table,"
"         r.child_columns, r.ctypes, r.cdb,"
"         (SELECT c.relowner FROM pg_class c"
"           WHERE c.oid = splitdb.reference_end_relid(r.parent_relid, r.parent_table)),"
"         " OWN_PARTITION("r.parent_relid") ","
"         r.parent_relid,"
"         r.constraint_name, r.match_type, r.del, r.upd, r.delete_set_columns,"
"         r.is_deferrable, r.initially_deferred, r.mode"
"    FROM r),"
/*
 * a moved partition has no shim of its own, and its sibling skips the writes
 * that come from the source when the other end is there: the source holds
 * such a referencing end on the shim of the partitioned table it moved
 * with, for the rows inserted into that partition
 */
" s AS ("
"  SELECT e.*,"
"    CASE WHEN e.own_loc <> 'source' AND e.own_partition AND e.side = 'c' AND e.other_loc = 'source' THEN"
"      (SELECT rt.table_name FROM splitdb.job_table pt"
"         JOIN splitdb.job_table rt ON rt.job_id = pt.job_id AND rt.relid = pt.partition_root"
"        WHERE pt.relid = e.own_relid ORDER BY pt.job_id DESC LIMIT 1) END AS shim"
"    FROM e),"
" placed AS ("
"  SELECT 'source' AS location, e.*,"
"         CASE WHEN e.own_loc <> 'source' THEN e.own_srv END AS here_own_server,"
"         CASE WHEN e.other_loc <> 'source' THEN e.other_srv END AS here_other_server,"
"         false AS always,"
"         CASE WHEN e.shim IS NOT NULL THEN"
"           splitdb.partition_route(e.own_relid, 'new') END AS route"
"    FROM s e WHERE e.own_loc = 'source' OR NOT e.own_partition OR e.shim IS NOT NULL"
"  UNION ALL"
"  SELECT e.own_loc, e.*, NULL,"
"         CASE WHEN e.other_loc = 'source' THEN '" SPLITDB_SOURCE_SERVER "'"
"              ELSE '" SPLITDB_SERVER_PREFIX "' || e.other_loc END,"
"         e.own_partition, NULL"
"    FROM s e WHERE e.own_loc <> 'source')"
" SELECT p.location,"
"   (SELECT s.server FROM splitdb.service s WHERE s.service = p.location),"
"   jsonb_agg(jsonb_build_object("
"     'reference_id', p.reference_id, 'side', p.side, 'constraint_name', p.constraint_name,"
"     'here', p.location, 'own_table', p.own_table, 'own_server', p.here_own_server,"
"     'own_columns', p.own_columns, 'own_types', p.own_types,"
"     'other_location', p.other_loc, 'other_server', p.here_other_server,"
"     'other_table', p.other_table, 'other_columns', p.other_columns,"
"     'other_types', p.other_types, 'other_database', p.other_db,"
"     'match_full', p.match_type = 'FULL', 'on_delete', p.del, 'on_update', p.upd,"
"     'set_columns', p.delete_set_columns, 'is_deferrable', p.is_deferrable,"
"     'initially_deferred', p.initially_deferred, 'always', p.always, 'mode', p.mode,"
"     'on_table', CASE WHEN p.location = 'source' THEN p.shim END, 'route', p.route)"
"     ORDER BY p.reference_id, p.side)::text,"
/* what the database needs: the owners' user mappings on the servers it uses */
"   array_agg(DISTINCT p.owner::text || '/' || coalesce(CASE WHEN p.location = 'source'"
"       THEN coalesce(p.here_other_server, p.here_own_server) ELSE p.here_other_server END, '')),"
/* and the other locations it reaches (siblings only) */
"   array_agg(DISTINCT p.other_loc) FILTER (WHERE p.location <> 'source')"
" FROM placed p"
" GROUP BY p.location"
" ORDER BY p.location = 'source', p.location";

/*
 * server_options
 *		The libpq options of a foreign server of the source, as "name=value"
 *		strings, without the ones splitdb sets itself.
 */
static List *
server_options(const char *servername)
{
	ForeignServer *server = GetForeignServerByName(servername, false);
	List	   *result = NIL;
	ListCell   *lc;

	foreach(lc, server->options)
	{
		DefElem    *d = lfirst(lc);

		if (strcmp(d->defname, "options") == 0 ||
			strcmp(d->defname, "updatable") == 0 ||
			strcmp(d->defname, "truncatable") == 0 ||
			strcmp(d->defname, "fetch_size") == 0 ||
			strcmp(d->defname, "batch_size") == 0 ||
			strcmp(d->defname, "async_capable") == 0 ||
			strcmp(d->defname, "use_remote_estimate") == 0 ||
			strcmp(d->defname, "fdw_startup_cost") == 0 ||
			strcmp(d->defname, "fdw_tuple_cost") == 0 ||
			strcmp(d->defname, "extensions") == 0 ||
			strcmp(d->defname, "keep_connections") == 0 ||
			strcmp(d->defname, "parallel_commit") == 0 ||
			splitdb_mapping_is_secret(d->defname))
			continue;
		result = lappend(result, psprintf("%s=%s", d->defname, defGetString(d)));
	}
	return result;
}

/* the source's server of a service */
static char *
service_server(const char *service)
{
	return splitdb_catalog_get_service(service, SPLITDB_LOCK_NONE, false)->server;
}

/* a List of C strings as a text[] literal, for a parameter */
static char *
text_array_literal(List *items)
{
	char	  **strings = palloc(sizeof(char *) * Max(list_length(items), 1));
	int			i = 0;
	ListCell   *lc;

	foreach(lc, items)
		strings[i++] = lfirst(lc);
	return splitdb_catalog_text_array(strings, i);
}

/*
 * source_location_options
 *		How a sibling reaches the source: this server's first socket
 *		directory (or localhost) and port, and this database.
 */
static List *
source_location_options(void)
{
	return list_make3(psprintf("host=%s", splitdb_remote_local_host()),
					  psprintf("port=%d", PostPortNumber),
					  psprintf("dbname=%s", get_database_name(MyDatabaseId)));
}

/* a user mapping that an end needs and that does not exist */
typedef struct MissingMapping
{
	char	   *role;
	char	   *server;
	char	   *database;
} MissingMapping;

/*
 * ensure_mappings
 *		Parse "owner-oid/server" items and make sure each owner has a user
 *		mapping (its own or PUBLIC's) on that server in this database or,
 *		with conn, in the sibling of service location; create the missing
 *		ones that splitdb_mapping_offer() allows, and append the others to
 *		*missing.
 *
 * forward_server_for_source: the source's server of location, through which
 * the source reaches the place splitdb_source reaches back from there.
 */
static void
ensure_mappings(PGconn *conn, const char *location, const char *database,
				ArrayType *owners, const char *forward_server_for_source,
				List **missing)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	deconstruct_array(owners, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		char	   *item;
		char	   *slash;
		Oid			owner;
		const char *server;
		const char *forward;
		const char *params[3];
		List	   *options;
		bool		exists;

		if (nulls[i])
			continue;			/* an end whose relation is gone: no owner */
		item = TextDatumGetCString(elems[i]);
		slash = strchr(item, '/');
		if (slash == NULL || slash[1] == '\0')
			continue;			/* an end with no other database to reach */
		*slash = '\0';
		owner = (Oid) strtoul(item, NULL, 10);
		server = slash + 1;

		/* in the source the mapping is on the service's own server */
		if (conn == NULL)
			forward = server;
		else if (strcmp(server, SPLITDB_SOURCE_SERVER) == 0)
			forward = forward_server_for_source;
		else
		{
			/* splitdb_<service> in a sibling mirrors the source's server of <service> */
			forward = service_server(server + strlen(SPLITDB_SERVER_PREFIX));
		}

		params[0] = GetUserNameFromId(owner, false);
		params[1] = server;
		params[2] = splitdb_mapping_offer(owner, forward, &options) ?
			text_array_literal(options) : NULL;
		if (conn == NULL)
		{
			splitdb_catalog_exec_text("SELECT splitdb.ensure_user_mapping($1::name, $2::name, $3::text[])",
									  3, params, false);
			exists = SPI_processed == 1 &&
				strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1), "t") == 0;
		}
		else
		{
			char	   *v = splitdb_remote_scalar(conn,
													  "SELECT splitdb.ensure_user_mapping($1::pg_catalog.name,"
													  " $2::pg_catalog.name, $3::pg_catalog.text[])",
													  3, params, location);

			exists = v != NULL && strcmp(v, "t") == 0;
		}
		if (!exists)
		{
			MissingMapping *m = palloc(sizeof(MissingMapping));

			m->role = pstrdup(params[0]);
			m->server = pstrdup(server);
			m->database = pstrdup(database);
			*missing = lappend(*missing, m);
		}
	}
}

/*
 * check_end_types
 *		Refuse ends (their jsonb text) of which a key type is unknown: once
 *		splitdb_finalize() dropped the archive, a moved table leaves nothing
 *		in the source to read the types from when its shim is gone too
 *		(drop_shim) or it moved as a partition, which has no shim of its own.
 */
static void
check_end_types(const char *ends)
{
	if (ends != NULL && (strstr(ends, "\"own_types\": null") != NULL ||
						 strstr(ends, "\"other_types\": null") != NULL))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot install the ends of a cross-service reference whose moved table has left nothing in the source"),
				 errdetail("The job that moved it is finalized, and no shim of the table's name is left in the source to read the key columns' types from (finalized with drop_shim => true, or a partition, which has no shim of its own)."),
				 errhint("The triggers installed at the cutover keep enforcing the reference in its mode.")));
}

/*
 * report_missing
 *		Raise the error for the user mappings that the ends need and that
 *		splitdb may not create, naming the first in the message and all of
 *		them in the detail.
 */
static void
report_missing(List *missing)
{
	MissingMapping *first = linitial(missing);
	StringInfoData others;
	ListCell   *lc;

	initStringInfo(&others);
	for_each_from(lc, missing, 1)
	{
		MissingMapping *m = lfirst(lc);

		appendStringInfo(&others, "%s role %s on server %s in database %s%s",
						 others.len > 0 ? ";" : "",
						 quote_identifier(m->role), quote_identifier(m->server),
						 quote_identifier(m->database), lnext(missing, lc) ? "" : ".");
	}
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("user mapping for role \"%s\" on server \"%s\" in database \"%s\" is missing",
					first->role, first->server, first->database),
			 errdetail("The cross-service reference checks of the tables a role owns log in through its user mapping, and splitdb creates none that needs a password or another role's credentials; in database \"%s\", run %s.%s%s",
					   first->database, splitdb_mapping_statement(first->role, first->server),
					   others.len > 0 ? "  Also missing:" : "", others.data),
			 errhint("Create the user mapping, then call splitdb_migrate() again.")));
}

/*
 * splitdb_install_in_sibling
 *		In the remote transaction open on conn, create splitdb (with
 *		postgres_fdw, CASCADE) in location's database, in the schema it has
 *		here, unless it is there: the reference ends (below) and the
 *		capture (migrate/capture.c) run its functions there.  Quoted, since
 *		the sibling's search_path is pg_catalog.  The caller is connected to
 *		SPI.
 */
void
splitdb_install_in_sibling(PGconn *conn, const char *location)
{
	const char *sql = "SELECT pg_catalog.quote_ident(n.nspname) FROM pg_catalog.pg_extension e"
		" JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace"
		" WHERE e.extname = 'splitdb'";
	const char *schema;
	int			rc = splitdb_spi_exec(sql, 0, NULL, NULL, NULL, true, 1);

	if (rc != SPI_OK_SELECT)
		splitdb_spi_failed(sql, rc);
	if (SPI_processed != 1)
		elog(ERROR, "could not find the schema of extension splitdb");
	schema = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

	splitdb_remote_command(conn, psprintf("CREATE SCHEMA IF NOT EXISTS %s", schema),
						   0, NULL, location);
	splitdb_remote_command(conn,
						   psprintf("CREATE EXTENSION IF NOT EXISTS splitdb SCHEMA %s CASCADE",
									schema),
						   0, NULL, location);
}

/*
 * prepare_sibling
 *		Give a sibling what its ends need before they are installed: splitdb
 *		itself, the servers to the other ends' databases, the owners' user
 *		mappings; commit it, and append the mappings it lacks to *missing.
 *
 * The servers are committed even when a mapping is missing, so that the
 * DBA can create the mapping on them.
 */
static void
prepare_sibling(PGconn *conn, const char *location, const char *own_server,
				ArrayType *owners, ArrayType *others, List **missing)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	const char *params[3];

	splitdb_remote_command(conn, "BEGIN", 0, NULL, location);
	splitdb_install_in_sibling(conn, location);
	/* the source writes here through its shims: the pair's secret */
	splitdb_origin_pair_source(conn, location, own_server);

	deconstruct_array(others, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		char	   *other = TextDatumGetCString(elems[i]);
		List	   *options;

		if (strcmp(other, "source") == 0)
		{
			params[0] = SPLITDB_SOURCE_SERVER;
			options = source_location_options();
		}
		else
		{
			params[0] = psprintf("%s%s", SPLITDB_SERVER_PREFIX, other);
			options = server_options(service_server(other));
		}
		params[1] = text_array_literal(options);
		params[2] = location;
		splitdb_remote_command(conn,
							   "SELECT splitdb.ensure_server($1::pg_catalog.name,"
							   " $2::pg_catalog.text[], $3)",
							   3, params, location);
	}
	ensure_mappings(conn, location,
					splitdb_catalog_get_service(location, SPLITDB_LOCK_NONE, false)->dbname,
					owners, own_server, missing);
	splitdb_remote_command(conn, "COMMIT", 0, NULL, location);
}

/*
 * install_sibling
 *		Install the ends a sibling holds, once prepare_sibling() gave it what
 *		they need, in a remote transaction of its own, left open: the caller
 *		commits it (COMMIT) once every database installed its ends.
 *
 * The triggers' DDL there waits for the transactions that hold its tables,
 * and such a transaction may itself wait for a lock that this one holds in
 * the source (a cutover's, or the caller's): a writer in the sibling whose
 * check of a referenced row waits for the cutover, which no deadlock
 * detector sees across the two databases.  So it waits no longer than
 * lock_timeout_ms (0: no bound), failing with 55P03 instead, when nothing
 * has been committed anywhere yet.
 */
static void
install_sibling(PGconn *conn, const char *location, const char *ends,
				int lock_timeout_ms)
{
	const char *params[1] = {ends};

	splitdb_remote_command(conn, "BEGIN", 0, NULL, location);
	if (lock_timeout_ms > 0)
	{
		params[0] = psprintf("%dms", lock_timeout_ms);
		splitdb_remote_command(conn, "SELECT pg_catalog.set_config('lock_timeout', $1, true)",
							   1, params, location);
		params[0] = ends;
	}
	splitdb_remote_command(conn, "SELECT splitdb.install_reference_ends($1::pg_catalog.jsonb)",
						   1, params, location);
}

/* what splitdb_reference_install() reads of one database that holds ends */
typedef struct EndsPlace
{
	char	   *location;		/* "source", or a service */
	char	   *server;			/* the source's server of the service */
	char	   *ends;			/* the ends, as jsonb text */
	ArrayType  *owners;			/* "owner-oid/server" items */
	ArrayType  *others;			/* the other locations it reaches */
	PGconn	   *conn;			/* its connection, while installing */
} EndsPlace;

/*
 * prepare_source
 *		Mark the source's servers of every service with splitdb.origin =
 *		source and make sure the owners of the source's ends have their user
 *		mappings, in the caller's transaction.
 */
static void
prepare_source(EndsPlace *place, List **missing)
{
	const char *sql = "SELECT s.server::text FROM splitdb.service s ORDER BY 1";
	ListCell   *lc;
	List	   *servers = NIL;
	int			rc = splitdb_spi_exec(sql, 0, NULL, NULL, NULL, true, 0);

	if (rc != SPI_OK_SELECT)
		splitdb_spi_failed(sql, rc);
	for (uint64 r = 0; r < SPI_processed; r++)
		servers = lappend(servers, SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1));
	foreach(lc, servers)
	{
		const char *p[3] = {lfirst(lc), "{}", "source"};

		splitdb_catalog_exec_text("SELECT splitdb.ensure_server($1::name, $2::text[], $3)",
								  3, p, false);
	}
	ensure_mappings(NULL, place->location, get_database_name(MyDatabaseId),
					place->owners, NULL, missing);
}

/*
 * sibling_pairs
 *		Add to pairs (a List of two-item Lists of locations) the pairs of
 *		location with the other siblings it reaches (others: text[]), once
 *		each, in either order.
 */
static List *
sibling_pairs(List *pairs, const char *location, ArrayType *others)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	deconstruct_array(others, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		char	   *other = TextDatumGetCString(elems[i]);
		bool		known = false;
		ListCell   *lc;

		if (strcmp(other, "source") == 0 || strcmp(other, location) == 0)
			continue;
		foreach(lc, pairs)
		{
			List	   *p = lfirst(lc);
			const char *a = linitial(p);
			const char *b = lsecond(p);

			if ((strcmp(a, location) == 0 && strcmp(b, other) == 0) ||
				(strcmp(a, other) == 0 && strcmp(b, location) == 0))
				known = true;
		}
		if (!known)
			pairs = lappend(pairs, list_make2(pstrdup(location), other));
	}
	return pairs;
}

/*
 * pair_siblings
 *		Give each pair of siblings whose references join them their shared
 *		secret (origin.c), once both have splitdb.  Each side commits on its
 *		own; installing again makes them agree.
 */
static void
pair_siblings(List *pairs)
{
	ListCell   *lc;

	foreach(lc, pairs)
	{
		List	   *p = lfirst(lc);
		const char *a = linitial(p);
		const char *b = lsecond(p);
		PGconn	   *conn_a = splitdb_remote_connect_server(service_server(a), a);
		PGconn	   *volatile conn_b = NULL;

		PG_TRY();
		{
			conn_b = splitdb_remote_connect_server(service_server(b), b);
			splitdb_origin_pair_siblings(conn_a, a, conn_b, b);
		}
		PG_FINALLY();
		{
			splitdb_remote_disconnect(conn_a);
			if (conn_b != NULL)
				splitdb_remote_disconnect(conn_b);
		}
		PG_END_TRY();
	}
}

/*
 * splitdb_reference_install
 *		Install the ends of cross-service references in the source and in
 *		the siblings that hold them.
 *
 * service:       install every reference with an end in this service (its
 *                job is cutting over or done), or NULL
 * reference_ids: the references to install, or NIL for every reference of
 *                service
 * service_conn:  an open connection to service's sibling, or NULL
 * sibling_lock_timeout: how long the installation in each sibling may wait
 *                for a lock there, in ms (0: no bound); callers pass their
 *                own lock_timeout, an offline cutover a bound of its own
 *
 * The caller is connected to SPI, in the transaction that must also commit
 * the source's side.  First every database gets its servers and user
 * mappings (each sibling in a transaction of its own); if a mapping that
 * splitdb may not create is missing anywhere, ERROR before any end is
 * installed.  Then the siblings' ends, each in a transaction of its own
 * that waits for locks no longer than sibling_lock_timeout, and the
 * source's last; the siblings commit once all are in.  Installing again is
 * harmless.
 */
void
splitdb_reference_install(const char *service, List *reference_ids,
						  PGconn *service_conn, int sibling_lock_timeout)
{
	Oid			types[2] = {NAMEOID, INT8ARRAYOID};
	Datum		values[2];
	char		nulls[2] = {' ', ' '};
	SPITupleTable *tuptable;
	uint64		nrows;
	EndsPlace  *places;
	int			rc;
	List	   *missing = NIL;
	List	   *pairs = NIL;

	values[0] = service ? DirectFunctionCall1(namein, CStringGetDatum(service)) : (Datum) 0;
	nulls[0] = service ? ' ' : 'n';
	if (reference_ids == NIL)
		nulls[1] = 'n';
	else
	{
		Datum	   *elems = palloc(sizeof(Datum) * list_length(reference_ids));
		int			i = 0;
		ListCell   *lc;

		foreach(lc, reference_ids)
			elems[i++] = Int64GetDatum(*(int64 *) lfirst(lc));
		values[1] = PointerGetDatum(construct_array(elems, i, INT8OID, 8, FLOAT8PASSBYVAL,
													TYPALIGN_DOUBLE));
	}

	rc = splitdb_spi_exec(sql_ends, 2, types, values, nulls, false, 0);
	if (rc != SPI_OK_SELECT)
		splitdb_spi_failed(sql_ends, rc);
	tuptable = SPI_tuptable;
	nrows = SPI_processed;

	places = palloc0(sizeof(EndsPlace) * Max(nrows, 1));
	for (uint64 i = 0; i < nrows; i++)
	{
		HeapTuple	tup = tuptable->vals[i];
		TupleDesc	desc = tuptable->tupdesc;
		bool		isnull;
		Datum		others;

		places[i].location = SPI_getvalue(tup, desc, 1);
		places[i].server = SPI_getvalue(tup, desc, 2);
		places[i].ends = SPI_getvalue(tup, desc, 3);
		places[i].owners = DatumGetArrayTypePCopy(SPI_getbinval(tup, desc, 4, &isnull));
		others = SPI_getbinval(tup, desc, 5, &isnull);
		places[i].others = isnull ? construct_empty_array(TEXTOID) : DatumGetArrayTypePCopy(others);
		check_end_types(places[i].ends);
	}

	PG_TRY();
	{
		/* servers and user mappings everywhere, the source's first */
		for (uint64 i = 0; i < nrows; i++)
			if (strcmp(places[i].location, "source") == 0)
				prepare_source(&places[i], &missing);
		for (uint64 i = 0; i < nrows; i++)
		{
			EndsPlace  *p = &places[i];

			if (strcmp(p->location, "source") == 0)
				continue;
			p->conn = service_conn;
			if (p->conn == NULL || service == NULL || strcmp(p->location, service) != 0)
				p->conn = splitdb_remote_connect_server(p->server, p->location);
			prepare_sibling(p->conn, p->location, p->server, p->owners, p->others, &missing);
			pairs = sibling_pairs(pairs, p->location, p->others);
		}
		if (missing != NIL)
			report_missing(missing);

		/*
		 * then the ends: the siblings', then the source's; the siblings
		 * commit theirs only once all are in, so that a lock timeout in one
		 * leaves every database as it was
		 */
		for (uint64 i = 0; i < nrows; i++)
		{
			EndsPlace  *p = &places[i];
			const char *params[1] = {p->ends};

			if (strcmp(p->location, "source") != 0)
				install_sibling(p->conn, p->location, p->ends, sibling_lock_timeout);
			else
			{
				splitdb_catalog_exec_text("SELECT splitdb.install_reference_ends($1::jsonb)",
										  1, params, false);
				/* sessions that use the shims load splitdb before postgres_fdw */
				splitdb_catalog_exec_text("SELECT splitdb.ensure_preloaded()", 0, NULL, false);
			}
		}
		for (uint64 i = 0; i < nrows; i++)
			if (strcmp(places[i].location, "source") != 0)
				splitdb_remote_command(places[i].conn, "COMMIT", 0, NULL, places[i].location);
		pair_siblings(pairs);
	}
	PG_FINALLY();
	{
		for (uint64 i = 0; i < nrows; i++)
			if (places[i].conn != NULL && places[i].conn != service_conn)
				splitdb_remote_disconnect(places[i].conn);
	}
	PG_END_TRY();
}

/*
 * The end of reference $1 whose table in this database was dropped
 * (splitdb_guard_dropped_ends keeps its row), as "referencing table
 * public.t" (or referenced); no row when none was.  The same in the source
 * and in a sibling.
 */
#define DROPPED_END_SQL \
	"SELECT CASE e.side WHEN 'c' THEN 'referencing' ELSE 'referenced' END" \
	"       OPERATOR(pg_catalog.||) ' table ' OPERATOR(pg_catalog.||) e.own_table" \
	"  FROM splitdb.reference_end e" \
	" WHERE e.reference_id = $1::pg_catalog.int8 AND e.own_server IS NULL" \
	"   AND NOT EXISTS (SELECT FROM pg_catalog.pg_class c WHERE c.oid = e.relid)" \
	" ORDER BY e.side LIMIT 1"

/*
 * dropped_in_source
 *		The end of reference_id whose table in the source was dropped, as
 *		DROPPED_END_SQL gives it, or NULL when none was.  Connected to SPI.
 */
static char *
dropped_in_source(int64 reference_id)
{
	const char *params[1] = {psprintf(INT64_FORMAT, reference_id)};

	splitdb_catalog_exec_text(DROPPED_END_SQL, 1, params, true);
	return SPI_processed == 1 ?
		SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1) : NULL;
}

/*
 * sibling_places
 *		The siblings that hold an end of reference_id: rows of (location,
 *		server), each once.  Connected to SPI.
 */
static List *
sibling_places(int64 reference_id)
{
	const char *params[1] = {psprintf(INT64_FORMAT, reference_id)};

	splitdb_catalog_exec_text("SELECT DISTINCT l.location, l.server"
							  "  FROM splitdb.reference_placement p,"
							  "       LATERAL (VALUES (p.child_location, p.child_server),"
							  "                       (p.parent_location, p.parent_server)) l(location, server)"
							  " WHERE p.reference_id = $1::bigint AND l.location <> 'source'"
							  " ORDER BY 1",
							  1, params, true);
	return splitdb_catalog_result_rows();
}

/*
 * dropped_in_sibling
 *		The end of reference_id whose table in a sibling was dropped, as
 *		"referencing table public.t in the database of service "svc"", or
 *		NULL when none was.  The source does not hear of such a drop
 *		(dropguard.c runs in the sibling), so each sibling that holds an end
 *		is asked.  Connected to SPI.
 */
static char *
dropped_in_sibling(int64 reference_id)
{
	const char *params[1] = {psprintf(INT64_FORMAT, reference_id)};
	char	   *volatile found = NULL;
	ListCell   *lc;

	foreach(lc, sibling_places(reference_id))
	{
		char	  **row = (char **) lfirst(lc);
		PGconn	   *volatile conn = NULL;

		PG_TRY();
		{
			char	   *end;

			conn = splitdb_remote_connect_server(row[1], row[0]);
			end = splitdb_remote_scalar(conn, DROPPED_END_SQL, 1, params, row[0]);
			if (end != NULL)
				found = psprintf("%s in the database of service \"%s\"", end, row[0]);
		}
		PG_FINALLY();
		{
			splitdb_remote_disconnect(conn);
		}
		PG_END_TRY();
		if (found != NULL)
			break;
	}
	return found;
}

/*
 * ends_off_everywhere
 *		Disable the triggers of reference_id's ends in the source and in
 *		every sibling that holds one (splitdb.reference_ends_off), each
 *		sibling's in a statement that commits there at once.  For a
 *		reference whose table in the source was dropped: its ends cannot be
 *		installed again, the dropped table's key types being gone.
 */
static void
ends_off_everywhere(int64 reference_id)
{
	const char *params[1] = {psprintf(INT64_FORMAT, reference_id)};
	ListCell   *lc;

	splitdb_catalog_exec_text("SELECT splitdb.reference_ends_off($1::bigint)", 1, params, false);
	foreach(lc, sibling_places(reference_id))
	{
		char	  **row = (char **) lfirst(lc);
		PGconn	   *volatile conn = NULL;

		PG_TRY();
		{
			conn = splitdb_remote_connect_server(row[1], row[0]);
			splitdb_remote_command(conn, "SELECT splitdb.reference_ends_off($1::pg_catalog.int8)",
								   1, params, row[0]);
		}
		PG_FINALLY();
		{
			splitdb_remote_disconnect(conn);
		}
		PG_END_TRY();
	}
}

/*
 * splitdb_reference_mode
 *		Set a reference's mode: strict enforces it, off disables its triggers
 *		in every database.  Returns the previous mode.  A reference whose
 *		table in the source was dropped may be turned off, not on again:
 *		PostgreSQL drops a foreign key along with its table.
 */
Datum
splitdb_reference_mode(PG_FUNCTION_ARGS)
{
	int64		reference_id = PG_GETARG_INT64(0);
	char	   *mode = text_to_cstring(PG_GETARG_TEXT_PP(1));
	Oid			types[2] = {INT8OID, TEXTOID};
	Datum		values[2];
	char	   *previous;
	char	   *dropped;
	char	   *in_sibling;
	bool		enforced;
	bool		isnull;
	int64	   *id;
	const char *sql;
	int			rc;

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to change the mode of a cross-service reference"),
				 errhint("Only superusers can call splitdb_reference_mode().")));
	if (strcmp(mode, "strict") != 0 && strcmp(mode, "off") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid reference mode \"%s\"", mode),
				 errhint("The mode is \"strict\" or \"off\".")));

	splitdb_spi_connect();
	values[0] = Int64GetDatum(reference_id);
	values[1] = CStringGetTextDatum(mode);
	(void) splitdb_spi_exec("SELECT r.mode, r.dropped_at IS NOT NULL, j.state, j.service::text"
							"  FROM splitdb.reference r JOIN splitdb.job j ON j.job_id = r.job_id"
							" WHERE r.reference_id = $1 FOR UPDATE OF r",
							1, types, values, NULL, false, 0);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("cross-service reference " INT64_FORMAT " does not exist", reference_id),
				 errhint("splitdb_references lists the references and their numbers.")));
	{
		char	   *state = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);

		/* the foreign key is back in one database: nothing crosses */
		if (strcmp(state, "cancelled") == 0 || strcmp(state, "rolled_back") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("cross-service reference " INT64_FORMAT " belongs to a migration that is %s",
							reference_id, strcmp(state, "cancelled") == 0 ? "cancelled" : "rolled back"),
					 errdetail("The foreign key is in the source again after the migration of service \"%s\", and PostgreSQL enforces it there.",
							   SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4)),
					 errhint("splitdb_references lists the references in force and their numbers.")));
	}
	previous = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	enforced = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	dropped = enforced ? dropped_in_source(reference_id) : NULL;
	/* a sibling's drop leaves ends that can be installed again, checking nothing */
	if (enforced && dropped == NULL && strcmp(mode, "strict") == 0 &&
		(in_sibling = dropped_in_sibling(reference_id)) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cross-service reference " INT64_FORMAT " cannot be enforced again", reference_id),
				 errdetail("Its %s was dropped; PostgreSQL drops a foreign key along with its table.",
						   in_sibling),
				 errhint("Turn it off with splitdb_reference_mode(" INT64_FORMAT ", 'off').",
						 reference_id)));
	if (dropped != NULL && strcmp(mode, "strict") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cross-service reference " INT64_FORMAT " cannot be enforced again", reference_id),
				 errdetail("Its %s was dropped; PostgreSQL drops a foreign key along with its table.",
						   dropped),
				 errhint("Turn it off with splitdb_reference_mode(" INT64_FORMAT ", 'off').",
						 reference_id)));

	sql = "UPDATE splitdb.reference SET mode = $2 WHERE reference_id = $1";
	rc = splitdb_spi_exec(sql, 2, types, values, NULL, false, 0);
	if (rc != SPI_OK_UPDATE)
		splitdb_spi_failed(sql, rc);

	/* enforced already: change the triggers everywhere now */
	if (enforced && strcmp(previous, mode) != 0)
	{
		/*
		 * Each sibling's triggers change in a remote transaction that
		 * commits at once: a ROLLBACK of the caller's would leave them in
		 * the new mode (a reference off there) while the source and the
		 * catalog keep the old one.  Refused only here, where something
		 * would change, so the refusals above read the same in a block.
		 */
		splitdb_require_own_transaction("splitdb_reference_mode",
										"It changes the reference's triggers in the siblings that hold an end, each committed there at once, before the calling transaction commits, so a ROLLBACK could not bring them back.",
										psprintf("splitdb_reference_mode(" INT64_FORMAT ", '%s')",
												 reference_id, mode));
		if (dropped != NULL)
			ends_off_everywhere(reference_id);
		else
		{
			id = palloc(sizeof(int64));
			*id = reference_id;
			splitdb_reference_install(NULL, list_make1(id), NULL, LockTimeout);
		}
	}
	previous = pstrdup(previous);
	SPI_finish();
	PG_RETURN_TEXT_P(cstring_to_text(previous));
}
