/*-------------------------------------------------------------------------
 *
 * mapping.c
 *	  The user mappings that cross-service references log in through: which
 *	  ones splitdb may create, and which ones a migration will need.
 *
 * The checks of a reference end log in to the other end's database through
 * the user mapping of the end's owner (refcheck_xact.c).  splitdb never puts
 * one role's credentials in another role's user mapping, and never sends a
 * password or any other secret to a database (so no statement a server logs
 * can show one).  It creates an owner's missing mapping only when it needs
 * no secret (splitdb_mapping_offer()); any other missing mapping is
 * reported, by the plan before anything moves
 * (splitdb_reference_plan_mappings) and by the installation before
 * anything is installed (reference.c), with the statement a DBA runs to
 * create it (splitdb_mapping_statement).
 *
 * Nothing here writes: the catalogs are read through the syscache and SPI.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/mapping.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/reloptions.h"
#include "catalog/pg_type.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/syscache.h"

#include "metadata/catalog.h"
#include "reference/mapping.h"
#include "splitdb.h"

/*
 * splitdb_mapping_is_secret
 *		Whether a libpq option of a server or user mapping is a secret, which
 *		splitdb never copies or sends.  (postgres_fdw accepts these on user
 *		mappings only.)
 */
bool
splitdb_mapping_is_secret(const char *name)
{
	return strcmp(name, "password") == 0 || strcmp(name, "sslpassword") == 0;
}

/*
 * find_mapping
 *		The options of role's own user mapping on a server of this database,
 *		or with or_public of the PUBLIC one when role has none, as a List of
 *		DefElem; *found tells whether there was one.
 */
static List *
find_mapping(Oid roleid, Oid serverid, bool or_public, bool *found)
{
	Oid			users[2] = {roleid, InvalidOid};

	*found = false;
	for (int i = 0; i < (or_public ? 2 : 1); i++)
	{
		HeapTuple	tp = SearchSysCache2(USERMAPPINGUSERSERVER,
										 ObjectIdGetDatum(users[i]),
										 ObjectIdGetDatum(serverid));
		bool		isnull;
		Datum		datum;
		List	   *options;

		if (!HeapTupleIsValid(tp))
			continue;
		datum = SysCacheGetAttr(USERMAPPINGUSERSERVER, tp,
								Anum_pg_user_mapping_umoptions, &isnull);
		options = isnull ? NIL : untransformRelOptions(datum);
		ReleaseSysCache(tp);
		*found = true;
		return options;
	}
	return NIL;
}

/*
 * has_secret
 *		Whether a List of DefElem holds a secret, or password_required: a
 *		superuser's decision for one server, which is not carried to
 *		another.
 */
static bool
has_secret(List *options)
{
	ListCell   *lc;

	foreach(lc, options)
	{
		const char *name = ((DefElem *) lfirst(lc))->defname;

		if (splitdb_mapping_is_secret(name) || strcmp(name, "password_required") == 0)
			return true;
	}
	return false;
}

/*
 * splitdb_mapping_offer
 *		Whether splitdb may create a user mapping for role owner on a server
 *		that reaches the place the source's server forward reaches, and with
 *		which options (*options, "name=value" strings).
 *
 * splitdb never puts one role's credentials in another role's mapping and
 * never sends a secret.  It offers:
 * - the options of owner's own mapping on forward in the source, when they
 *   hold no secret and no password_required (the installing role's own
 *   mapping, typically);
 * - user = owner and nothing else, when owner is a superuser and forward is
 *   a server that splitdb_add_service() made for a database of this
 *   cluster, and the installing role's mapping on forward holds no secret:
 *   this cluster then lets its roles in over the socket without a password,
 *   as splitdb_add_service() assumed for the installing role;
 * and nothing otherwise.  A role that is not a superuser needs a password
 * in its mapping (postgres_fdw's rule), which only a DBA can give.
 *
 * The caller is connected to SPI.
 */
bool
splitdb_mapping_offer(Oid owner, const char *forward, List **options_out)
{
	ForeignServer *server = GetForeignServerByName(forward, false);
	SplitdbService *svc;
	List	   *options;
	List	   *result = NIL;
	bool		found;
	ListCell   *lc;

	options = find_mapping(owner, server->serverid, false, &found);
	*options_out = NIL;
	if (found)
	{
		if (has_secret(options))
			return false;
		foreach(lc, options)
		{
			DefElem    *d = lfirst(lc);

			result = lappend(result, psprintf("%s=%s", d->defname, defGetString(d)));
		}
		*options_out = result;
		return true;
	}

	if (!superuser_arg(owner))
		return false;
	svc = splitdb_catalog_service_of_server(forward);
	if (svc == NULL || !svc->server_created)
		return false;
	options = find_mapping(GetUserId(), server->serverid, true, &found);
	if (!found || has_secret(options))
		return false;
	*options_out = list_make1(psprintf("user=%s", GetUserNameFromId(owner, false)));
	return true;
}

/*
 * splitdb_mapping_statement
 *		The statement a DBA runs to create a missing user mapping; the
 *		password is left for them to fill in.
 */
char *
splitdb_mapping_statement(const char *role, const char *server)
{
	return psprintf("CREATE USER MAPPING FOR %s SERVER %s OPTIONS (user %s, password '...')",
					quote_identifier(role), quote_identifier(server),
					quote_literal_cstr(role));
}

/*
 * The user mappings that the references of service $1 will need once it has
 * moved: one row per database, owner and server, as splitdb_reference_install()
 * would place them (sql_ends), but read from the foreign keys that its
 * migration will convert as well as from the references already recorded.
 * A recorded end's relation is the one that stands for it as sql_ends reads
 * it (splitdb.reference_end_relid): once a finalize has dropped a moved
 * table's archived original, its shim, whose owner is the table's.
 * Columns: location (NULL for the source), database, owner, owner's name,
 * server there, the source's server that reaches the same place.
 */
static const char *const sql_plan_mappings =
"WITH own AS (SELECT o.relid, o.service FROM (" SPLITDB_OWNED_RELATION_SQL ") o),"
" svc AS ("
"  SELECT s.service, s.server, s.dbname"
"    FROM splitdb.service s"
"   WHERE s.service = $1"
"      OR EXISTS (SELECT FROM splitdb.job j WHERE j.service = s.service"
"                    AND j.state IN ('cutting_over', 'done', 'finalized'))),"
" r AS ("
"  SELECT c.conrelid AS crel, co.service AS csvc, c.confrelid AS prel, po.service AS psvc"
"    FROM pg_constraint c"
"    LEFT JOIN own co ON co.relid = c.conrelid"
"    LEFT JOIN own po ON po.relid = c.confrelid"
"   WHERE c.contype = 'f' AND c.conparentid = 0"
"     AND $1 IN (co.service, po.service) AND co.service IS DISTINCT FROM po.service"
"  UNION"
"  SELECT splitdb.reference_end_relid(r.child_relid, r.child_table),"
"         coalesce(co.service, r.child_service),"
"         splitdb.reference_end_relid(r.parent_relid, r.parent_table),"
"         coalesce(po.service, r.parent_service)"
"    FROM splitdb.reference r"
"    LEFT JOIN own co ON co.relid = r.child_relid"
"    LEFT JOIN own po ON po.relid = r.parent_relid"
"   WHERE r.dropped_at IS NOT NULL"
"     AND $1 IN (co.service, po.service, r.child_service, r.parent_service)),"
" e AS (SELECT crel AS rel, csvc AS svc, psvc AS other FROM r"
"       UNION SELECT prel, psvc, csvc FROM r),"
" l AS ("
"  SELECT c.relowner AS owner, c.relispartition AS part,"
"         os.service AS own_loc, os.server AS own_server, os.dbname AS own_db,"
"         xs.service AS other_loc, xs.server AS other_server"
"    FROM e JOIN pg_class c ON c.oid = e.rel"
"    LEFT JOIN svc os ON os.service = e.svc"
"    LEFT JOIN svc xs ON xs.service = e.other),"
" m AS ("
"  SELECT NULL::text AS location, current_database()::text AS dbname, l.owner,"
"         coalesce(l.other_server, l.own_server) AS server,"
"         coalesce(l.other_server, l.own_server) AS forward"
"    FROM l WHERE l.own_loc IS NULL OR NOT l.part"
"  UNION"
"  SELECT l.own_loc::text, l.own_db, l.owner,"
"         CASE WHEN l.other_loc IS NULL THEN '" SPLITDB_SOURCE_SERVER "'"
"              ELSE '" SPLITDB_SERVER_PREFIX "' || l.other_loc END,"
"         coalesce(l.other_server, l.own_server)"
"    FROM l WHERE l.own_loc IS NOT NULL)"
" SELECT m.location, m.dbname, m.owner, a.rolname::text, m.server::text, m.forward::text,"
"        a.rolcanlogin"
"   FROM m JOIN pg_roles a ON a.oid = m.owner"
"  WHERE m.server IS NOT NULL"
"  ORDER BY m.location NULLS FIRST, a.rolname, m.server";

/*
 * nologin_place
 *		Add one place (database and server) where the checks of the tables
 *		of an owner that cannot log in (NOLOGIN on this cluster) log in as
 *		that owner, to the warning about that owner in *nologin (one per
 *		owner, made on its first place).
 *
 * The checks of the writes of a role with no user mapping of its own for
 * the other end's server log in there as the owner of the relation with
 * the end, through the owner's mapping (refcheck_xact.c; in the source on
 * postgres_fdw's connection): the cutover succeeds, and then every such
 * write that a check runs for fails with 08001.
 */
static void
nologin_place(List **nologin, const char *location, const char *dbname,
			  const char *role, const char *server)
{
	SplitdbMappingNeed *need = NULL;
	ListCell   *lc;
	char	   *object = psprintf("role %s", quote_identifier(role));
	char	   *place = location ?
		psprintf("database %s of service %s (server %s)", quote_identifier(dbname),
				 quote_identifier(location), quote_identifier(server)) :
		psprintf("database %s, the source (server %s)", quote_identifier(dbname),
				 quote_identifier(server));

	foreach(lc, *nologin)
	{
		SplitdbMappingNeed *n = lfirst(lc);

		if (strcmp(n->object, object) == 0)
			need = n;
	}
	if (need != NULL)
	{
		need->detail = psprintf("%s, %s", need->detail, place);
		return;
	}
	need = palloc(sizeof(SplitdbMappingNeed));
	need->blocker = false;
	need->object = object;
	need->detail = psprintf("role %s cannot log in (NOLOGIN on this cluster), and the cross-service reference checks of the tables it owns log in to the other database as that role, through its user mapping, for the writers with no user mapping of their own for that database; so after the cutover every write of theirs that such a check runs for fails (08001, not permitted to log in); before migrating, give the role LOGIN and a password (ALTER ROLE %s LOGIN PASSWORD '...', run with log_statement off), the password that its user mappings hold; where: %s",
							quote_identifier(role), quote_identifier(role), place);
	*nologin = lappend(*nologin, need);
}

/*
 * splitdb_reference_plan_mappings
 *		The user mappings that the references of a service will need after
 *		its migration and that splitdb cannot create, as a List of
 *		SplitdbMappingNeed: a blocker for one missing in the source, a
 *		warning for one in a sibling, whose catalogs the plan does not read;
 *		first, one warning for each owner that cannot log in
 *		(nologin_place).
 *
 * Judged for the calling role, as the role that would run the migration;
 * NIL for a role that is not a superuser, which cannot run one and may not
 * learn what other roles' user mappings hold.  The caller is connected to
 * SPI.
 */
List *
splitdb_reference_plan_mappings(const char *service)
{
	Oid			types[1] = {NAMEOID};
	Datum		values[1];
	SPITupleTable *tuptable;
	uint64		nrows;
	List	   *result = NIL;
	List	   *nologin = NIL;
	int			rc;

	if (!superuser())
		return NIL;
	values[0] = DirectFunctionCall1(namein, CStringGetDatum(service));
	rc = splitdb_spi_exec(sql_plan_mappings, 1, types, values, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		splitdb_spi_failed(sql_plan_mappings, rc);
	tuptable = SPI_tuptable;
	nrows = SPI_processed;

	for (uint64 i = 0; i < nrows; i++)
	{
		HeapTuple	tup = tuptable->vals[i];
		TupleDesc	desc = tuptable->tupdesc;
		char	   *location = SPI_getvalue(tup, desc, 1);
		char	   *dbname = SPI_getvalue(tup, desc, 2);
		bool		isnull;
		Oid			owner = DatumGetObjectId(SPI_getbinval(tup, desc, 3, &isnull));
		char	   *role = SPI_getvalue(tup, desc, 4);
		char	   *server = SPI_getvalue(tup, desc, 5);
		char	   *forward = SPI_getvalue(tup, desc, 6);
		bool		canlogin = DatumGetBool(SPI_getbinval(tup, desc, 7, &isnull));
		SplitdbMappingNeed *need;
		List	   *options;

		if (!canlogin)
			nologin_place(&nologin, location, dbname, role, server);
		if (location == NULL)
		{
			bool		found;

			(void) find_mapping(owner, GetForeignServerByName(server, false)->serverid,
								true, &found);
			if (found || splitdb_mapping_offer(owner, forward, &options))
				continue;
			need = palloc(sizeof(SplitdbMappingNeed));
			need->blocker = true;
			need->object = psprintf("user mapping for %s on server %s",
									quote_identifier(role), quote_identifier(server));
			need->detail = psprintf("user mapping for role %s on server %s in database %s is missing; the cross-service reference checks of the tables that role owns log in through it, and splitdb creates none that needs a password or another role's credentials; create it before migrating: %s",
									quote_identifier(role), quote_identifier(server),
									quote_identifier(dbname), splitdb_mapping_statement(role, server));
		}
		else
		{
			if (splitdb_mapping_offer(owner, forward, &options))
				continue;
			need = palloc(sizeof(SplitdbMappingNeed));
			need->blocker = false;
			need->object = psprintf("user mapping for %s on server %s",
									quote_identifier(role), quote_identifier(server));
			need->detail = psprintf("in database %s of service %s, role %s needs a user mapping on server %s for the cross-service reference checks of the tables it owns, and splitdb creates none that needs a password or another role's credentials; the server may not exist there yet: a cutover that finds the mapping missing creates the server, if missing, and stops before it changes the source; create the mapping there then, and call splitdb_migrate() again (or, where the server exists, before migrating): %s",
									quote_identifier(dbname), quote_identifier(location),
									quote_identifier(role), quote_identifier(server),
									splitdb_mapping_statement(role, server));
		}
		result = lappend(result, need);
	}
	return list_concat(nologin, result);
}
