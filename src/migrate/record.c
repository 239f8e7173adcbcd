/*-------------------------------------------------------------------------
 *
 * record.c
 *	  What a migration job records in the artifact registry
 *	  (splitdb.artifact, src/metadata/artifact.c) of the objects it makes.
 *
 *	 preparing, indexing  the sibling's schemas, extensions, types,
 *	                      functions, sequences, tables, indexes,
 *	                      constraints, statistics, triggers and policies
 *	                      that the sibling lacks (splitdb_record_ddl);
 *	                      they go on cancel and on rollback
 *	 before the cutover   what the cutover needs in the sibling: splitdb's
 *	                      schema and extensions (the capture's and the
 *	                      reference ends'), the servers of the ends
 *	                      (splitdb_record_before_cutover); cancel, rollback;
 *	                      and in each other sibling that holds ends of a
 *	                      reference with this service (another service's,
 *	                      migrated), the server there that reaches this
 *	                      service's sibling (cancel, rollback)
 *	 cutover              the archived originals (finalize), the shims and
 *	                      the materialized views made over them, the
 *	                      reference triggers (rollback)
 *	                      (splitdb_record_cutover); and the source's
 *	                      triggers of other jobs' references that it
 *	                      installed again on a shim, under their jobs
 *	                      (reconcile_peer_triggers)
 *
 * Invariants:
 * - Only what the sibling lacks is recorded: an object that was there
 *   before the job (a type another application made, an extension) has no
 *   row, so no cancel or rollback ever drops it.
 * - A sibling object is recorded in a source transaction that commits
 *   before the statement that makes it runs; a crash in between leaves a
 *   row for an object that may be missing, which every drop takes with
 *   IF EXISTS.  The cutover's source objects are recorded in the
 *   cutover's own transaction.
 * - Objects a failed run leaves for the next one to use (failure) are not
 *   recorded to go on failure: a resumed job builds on them.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/record.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"

#include "metadata/artifact.h"
#include "metadata/catalog.h"
#include "migrate/ddl.h"
#include "migrate/record.h"
#include "remote/remote.h"
#include "splitdb.h"

/* the events on which what a job makes in the sibling goes */
#define SIBLING_EVENTS (SPLITDB_ON_CANCEL | SPLITDB_ON_ROLLBACK)

/* the object one statement makes, as the registry names it */
typedef struct DdlObject
{
	const char *kind;			/* registry kind, NULL: the statement makes none */
	const char *identity;
	const char *parent;
	const char *check;			/* remote query, true when it exists; NULL: the guard */
} DdlObject;

/*
 * object_of
 *		The registry's kind, identity and parent of what d makes, and how to
 *		ask the sibling whether it is there: its guard (ddlapply.c), or for
 *		the statements that have none (CREATE SCHEMA and CREATE EXTENSION IF
 *		NOT EXISTS, CREATE OR REPLACE FUNCTION) a query of their own.  kind
 *		is NULL for a statement that makes no object (grants, comments,
 *		ALTER ... SET, partition and index attachments).
 */
static DdlObject
object_of(const SplitdbDdl *d)
{
	DdlObject	o = {NULL, d->name, NULL, NULL};
	const char *k = d->kind;

	if (strcmp(k, "schema") == 0)
	{
		o.kind = "schema";
		o.check = "SELECT pg_catalog.to_regnamespace($1) IS NOT NULL";
	}
	else if (strcmp(k, "extension") == 0)
	{
		o.kind = "extension";
		o.check = "SELECT EXISTS (SELECT FROM pg_catalog.pg_extension e"
			" WHERE pg_catalog.quote_ident(e.extname) = $1)";
	}
	else if (strcmp(k, "function") == 0)
	{
		o.kind = "function";
		/* not to_regprocedure(), which raises when an argument's schema is missing */
		o.check = "SELECT EXISTS (SELECT FROM pg_catalog.pg_proc p"
			" WHERE p.oid::pg_catalog.regprocedure::pg_catalog.text = $1)";
	}
	else if (strcmp(k, "collation") == 0 || strcmp(k, "text search dictionary") == 0 ||
			 strcmp(k, "text search configuration") == 0 || strcmp(k, "type") == 0 ||
			 strcmp(k, "sequence") == 0 || strcmp(k, "table") == 0 ||
			 strcmp(k, "statistics") == 0)
		o.kind = k;
	else if (strcmp(k, "domain constraint") == 0)
	{
		/*
		 * A domain's CHECK that calls a function the job makes is added
		 * after that function (ddl.c, sql_domain_constraints): the domain is
		 * recorded once more here, after the function, so that a cancel,
		 * which drops in the reverse order, drops the domain and its
		 * constraint before the function they depend on.
		 */
		o.kind = "domain";
		o.identity = d->arg1;
	}
	else if (strcmp(k, "index") == 0 || strcmp(k, "key index") == 0 ||
			 strcmp(k, "partitioned index") == 0)
		o.kind = "index";
	else if (strcmp(k, "constraint") == 0 || strcmp(k, "foreign key") == 0 ||
			 strcmp(k, "trigger") == 0 || strcmp(k, "policy") == 0)
	{
		/* guard arguments: the table, the name */
		o.kind = strcmp(k, "foreign key") == 0 ? "constraint" : k;
		o.identity = quote_identifier(d->arg2);
		o.parent = d->arg1;
	}
	return o;
}

/* whether the sibling has the object o that d makes */
static bool
object_present(PGconn *conn, const SplitdbDdl *d, const DdlObject *o,
			   const char *service)
{
	const char *params[1] = {o->identity};
	char	   *value;

	if (o->check == NULL)
		return splitdb_ddl_present(conn, d, service);
	value = splitdb_remote_scalar(conn, o->check, 1, params, service);
	return value != NULL && strcmp(value, "t") == 0;
}

/*
 * splitdb_record_ddl
 *		Record the objects that items (splitdb_ddl_build()) will make in the
 *		sibling of service and that it lacks now, to go on cancel and
 *		rollback.
 *
 * conn: the job's connection to the sibling, outside a remote transaction
 *
 * Runs in the caller's source transaction (connected to SPI), which must
 * commit before any of items runs.
 */
void
splitdb_record_ddl(int64 job_id, const char *service, PGconn *conn, List *items)
{
	ListCell   *lc;

	foreach(lc, items)
	{
		SplitdbDdl *d = (SplitdbDdl *) lfirst(lc);
		DdlObject	o = object_of(d);

		if (o.kind == NULL || object_present(conn, d, &o, service))
			continue;
		splitdb_artifact_record(job_id, service, o.kind, o.identity, o.parent,
								SIBLING_EVENTS);
	}
}

/* record one sibling object named by name when the sibling lacks it */
static void
record_if_missing(int64 job_id, const char *service, PGconn *conn,
				  const char *kind, const char *name, const char *check)
{
	const char *params[1] = {name};
	char	   *value = splitdb_remote_scalar(conn, check, 1, params, service);

	if (value == NULL || strcmp(value, "t") != 0)
		splitdb_artifact_record(job_id, service, kind, quote_identifier(name), NULL,
								SIBLING_EVENTS);
}

/*
 * record_in_peers
 *		Record, in every other sibling whose ends of a reference with an end
 *		in service the cutover installs again (the other end's service is
 *		migrated: reference.c installs where splitdb.reference_placement
 *		says), the server there that will reach service's sibling, when that
 *		sibling lacks it.  The ends themselves were there before the job
 *		(that service's cutover installed them) and are not recorded: a
 *		cancel installs them again as they were (peer.c).
 */
static void
record_in_peers(int64 job_id, const char *service)
{
	const char *params[1] = {service};
	const char *server = psprintf("%s%s", SPLITDB_SERVER_PREFIX, service);
	List	   *peers = NIL;
	ListCell   *lc;

	splitdb_catalog_exec_text("SELECT DISTINCT CASE WHEN p.child_service = $1::name"
							  "   THEN p.parent_service ELSE p.child_service END::text"
							  "  FROM splitdb.reference_placement p"
							  " WHERE $1::name IN (p.child_service, p.parent_service)"
							  "   AND p.child_service IS DISTINCT FROM p.parent_service"
							  "   AND CASE WHEN p.child_service = $1::name THEN p.parent_location"
							  "            ELSE p.child_location END <> 'source'"
							  " ORDER BY 1",
							  1, params, false);
	foreach(lc, splitdb_catalog_result_rows())
		peers = lappend(peers, ((char **) lfirst(lc))[0]);
	foreach(lc, peers)
	{
		const char *peer = lfirst(lc);
		PGconn	   *volatile conn = NULL;

		PG_TRY();
		{
			conn = splitdb_remote_connect_server(splitdb_catalog_get_service(peer, SPLITDB_LOCK_NONE,
																			 false)->server,
												 peer);
			record_if_missing(job_id, peer, conn, "server", server,
							  "SELECT EXISTS (SELECT FROM pg_catalog.pg_foreign_server s WHERE s.srvname = $1)");
		}
		PG_FINALLY();
		{
			splitdb_remote_disconnect(conn);
		}
		PG_END_TRY();
	}
}

/*
 * splitdb_record_before_cutover
 *		Record what the cutover will make in the sibling of service when it
 *		lacks them: splitdb's schema and the extensions splitdb and
 *		postgres_fdw, which every cutover installs there (made before the
 *		cutover's locks, splitdb_capture_prepare_sibling); and for the
 *		reference ends (reference.c, prepare_sibling) the servers through
 *		which the sibling reaches the other ends where they are now
 *		(splitdb.reference_placement: the source for a table that stays or
 *		whose service has not migrated yet, else that service's sibling),
 *		and in the other siblings the servers that reach this one
 *		(record_in_peers): none when no cross-service reference has an end
 *		in the service.
 *
 * Runs in a source transaction of its own that commits before anything of
 * it is made in the sibling; connected to SPI.
 */
void
splitdb_record_before_cutover(int64 job_id, const char *service, PGconn *conn)
{
	const char *params[1] = {service};
	char	   *schema;
	List	   *others = NIL;
	ListCell   *lc;

	/* where the other ends are: a service not migrated yet is the source */
	splitdb_catalog_exec_text("SELECT DISTINCT CASE WHEN r.child_service = $1::name"
							  "   THEN r.parent_location ELSE r.child_location END"
							  "  FROM splitdb.reference_placement r"
							  " WHERE $1::name IN (r.child_service, r.parent_service)"
							  " ORDER BY 1",
							  1, params, false);
	foreach(lc, splitdb_catalog_result_rows())
		others = lappend(others, ((char **) lfirst(lc))[0]);

	/* every cutover installs splitdb there: the capture needs it */
	splitdb_catalog_exec_text("SELECT n.nspname::text FROM pg_catalog.pg_extension e"
							  "  JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace"
							  " WHERE e.extname = 'splitdb'", 0, NULL, false);
	schema = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

	record_if_missing(job_id, service, conn, "schema", schema,
					  "SELECT EXISTS (SELECT FROM pg_catalog.pg_namespace n WHERE n.nspname = $1)");
	foreach(lc, list_make2("postgres_fdw", "splitdb"))
		record_if_missing(job_id, service, conn, "extension", lfirst(lc),
						  "SELECT EXISTS (SELECT FROM pg_catalog.pg_extension e WHERE e.extname = $1)");
	if (others == NIL)
		return;

	foreach(lc, others)
	{
		const char *other = lfirst(lc);

		record_if_missing(job_id, service, conn, "server",
						  strcmp(other, "source") == 0 ? "splitdb_source" :
						  psprintf("%s%s", SPLITDB_SERVER_PREFIX, other),
						  "SELECT EXISTS (SELECT FROM pg_catalog.pg_foreign_server s WHERE s.srvname = $1)");
	}
	record_in_peers(job_id, service);
}

/*
 * The reference triggers of the job's references on relations of this
 * database: (name, table), for the source's SPI and the sibling alike.
 * $1: the reference ids, as a text[] literal.
 */
#define REFERENCE_TRIGGERS_SQL \
	"SELECT pg_catalog.quote_ident(tg.tgname), tg.tgrelid::pg_catalog.regclass::text" \
	"  FROM pg_catalog.pg_trigger tg JOIN pg_catalog.pg_proc p ON p.oid = tg.tgfoid" \
	"  JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace" \
	" WHERE p.proname IN ('reference_row', 'reference_flush') AND n.nspname = 'splitdb'" \
	"   AND tg.tgnargs = 2 AND tg.tgparentid = 0" \
	"   AND pg_catalog.split_part(pg_catalog.encode(tg.tgargs, 'escape'), '\\000', 1)" \
	"       = ANY ($1::pg_catalog.text[])" \
	" ORDER BY 2, 1"

/*
 * reconcile_peer_triggers
 *		Bring the source's rows of the reference triggers of other jobs'
 *		references with an end in service up to date, once the cutover has
 *		installed those ends again (the end on service's table is now on its
 *		shim).  A shim is a foreign table, which PostgreSQL gives no TRUNCATE
 *		trigger and no constraint trigger: the referenced end's TRUNCATE
 *		trigger is gone, and a deferrable reference's constraint trigger is a
 *		plain trigger now; and the end on the other service's shim can go
 *		when the reference joins two siblings now.  The rows of the
 *		triggers that are gone, on either end, are marked dropped, and the
 *		triggers without a row are recorded under the
 *		reference's job, to go on its rollback as the others do; so the
 *		doctor, which looks each row's object up by name, finds what the
 *		rows say.
 *
 * job_id: the job cutting over; service: its service.  Runs in the
 * cutover's transaction, after the ends were installed, connected to SPI.
 */
static void
reconcile_peer_triggers(int64 job_id, const char *service)
{
	const char *params[2] = {service, psprintf(INT64_FORMAT, job_id)};
	ListCell   *lc;

	splitdb_catalog_exec_text("SELECT r.job_id::text,"
							  "       pg_catalog.array_agg(r.reference_id::text ORDER BY r.reference_id)::text"
							  "  FROM splitdb.reference r"
							  " WHERE $1::name IN (r.child_service, r.parent_service)"
							  "   AND r.job_id <> $2::bigint AND r.dropped_at IS NOT NULL"
							  " GROUP BY r.job_id ORDER BY r.job_id",
							  2, params, false);
	foreach(lc, splitdb_catalog_result_rows())
	{
		char	  **group = (char **) lfirst(lc);
		const char *p[2] = {group[0], group[1]};
		ListCell   *lt;

		splitdb_catalog_exec_text("UPDATE splitdb.artifact a"
								  "   SET dropped_at = pg_catalog.clock_timestamp()"
								  "  FROM splitdb.reference r"
								  " WHERE a.job_id = $1::bigint AND a.service IS NULL"
								  "   AND a.kind = 'trigger' AND a.dropped_at IS NULL"
								  "   AND r.reference_id::text = ANY ($2::text[])"
								  "   AND (a.identity LIKE 'splitdb\\_ref\\_' || r.reference_id || '\\_%'"
								  "        OR a.identity = pg_catalog.quote_ident(r.constraint_name))"
								  "   AND NOT EXISTS (SELECT FROM pg_catalog.pg_trigger t"
								  "                    WHERE t.tgrelid = pg_catalog.to_regclass(a.parent)"
								  "                      AND pg_catalog.quote_ident(t.tgname) = a.identity)",
								  2, p, false);
		splitdb_catalog_exec_text(REFERENCE_TRIGGERS_SQL, 1, &p[1], false);
		foreach(lt, splitdb_catalog_result_rows())
		{
			char	  **row = (char **) lfirst(lt);

			splitdb_artifact_record(strtoi64(group[0], NULL, 10), NULL, "trigger",
									row[0], row[1], SPLITDB_ON_ROLLBACK);
		}
	}
}

/*
 * splitdb_record_cutover
 *		Record, in the cutover's transaction, what it made: the archived
 *		originals and materialized views (they go on finalize), the shims,
 *		the materialized views made again over them and the reference
 *		triggers, in the source and in the service's sibling (they go on
 *		rollback).
 *
 * matviews: the OIDs of the materialized views the cutover archived (and
 *           made again over the shims)
 *
 * The queries are not read-only: they must see what this transaction made
 * (a read-only query keeps the transaction's first snapshot).
 *
 * Called at the end of splitdb_cutover_run(), when the archive names are
 * chosen (archive_relation may have renamed an original to name_N); the
 * transaction is the one that made them, so a row and its object commit
 * together.  The sibling's reference triggers are on the service's moved
 * tables and go with them; they are recorded after their remote
 * transaction committed (install_reference_ends names them), which leaves
 * a window where a failed cutover's triggers have no row: the tables they
 * are on do, and a cancel drops those.
 */
void
splitdb_record_cutover(int64 job_id, const char *service, PGconn *conn,
					   List *matview_relids)
{
	const char *params[1] = {psprintf(INT64_FORMAT, job_id)};
	List	   *rows;
	ListCell   *lc;
	char	   *ids;
	PGresult   *res;

	/* the originals, by OID: their names in the archive now */
	splitdb_catalog_exec_text("SELECT t.relid::pg_catalog.regclass::text, t.table_name"
							  "  FROM splitdb.job_table t WHERE t.job_id = $1::bigint"
							  " ORDER BY t.relid",
							  1, params, false);
	rows = splitdb_catalog_result_rows();
	foreach(lc, rows)
		splitdb_artifact_record(job_id, NULL, "table", ((char **) lfirst(lc))[0], NULL,
								SPLITDB_ON_FINALIZE);
	foreach(lc, matview_relids)
	{
		const char *p[1] = {psprintf("%u", lfirst_oid(lc))};

		splitdb_catalog_exec_text("SELECT $1::pg_catalog.oid::pg_catalog.regclass::text",
								  1, p, false);
		splitdb_artifact_record(job_id, NULL, "materialized view",
								SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1),
								NULL, SPLITDB_ON_FINALIZE);
	}

	/* the shims, under the names the originals had */
	foreach(lc, rows)
	{
		const char *p[1] = {((char **) lfirst(lc))[1]};

		splitdb_catalog_exec_text("SELECT c.oid::pg_catalog.regclass::text FROM pg_catalog.pg_class c"
								  " WHERE c.oid = pg_catalog.to_regclass($1) AND c.relkind = 'f'",
								  1, p, false);
		if (SPI_processed == 1)
			splitdb_artifact_record(job_id, NULL, "foreign table",
									SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1),
									NULL, SPLITDB_ON_ROLLBACK);
	}

	/* the materialized views made again over the shims */
	splitdb_catalog_exec_text("SELECT DISTINCT v.oid::pg_catalog.regclass::text"
							  "  FROM splitdb.job_table t"
							  "  JOIN pg_catalog.pg_depend d"
							  "    ON d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass"
							  "   AND d.refobjid = pg_catalog.to_regclass(t.table_name)"
							  "   AND d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass"
							  "  JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid"
							  "  JOIN pg_catalog.pg_class v ON v.oid = r.ev_class AND v.relkind = 'm'"
							  " WHERE t.job_id = $1::bigint ORDER BY 1",
							  1, params, false);
	foreach(lc, splitdb_catalog_result_rows())
		splitdb_artifact_record(job_id, NULL, "materialized view", ((char **) lfirst(lc))[0],
								NULL, SPLITDB_ON_ROLLBACK);

	/* the reference triggers of the job's references, here and in the sibling */
	splitdb_catalog_exec_text("SELECT coalesce(pg_catalog.array_agg(r.reference_id::text), '{}')::text"
							  "  FROM splitdb.reference r WHERE r.job_id = $1::bigint",
							  1, params, false);
	ids = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	{
		const char *p[1] = {ids};

		splitdb_catalog_exec_text(REFERENCE_TRIGGERS_SQL, 1, p, false);
		foreach(lc, splitdb_catalog_result_rows())
		{
			char	  **row = (char **) lfirst(lc);

			splitdb_artifact_record(job_id, NULL, "trigger", row[0], row[1],
									SPLITDB_ON_ROLLBACK);
		}
		res = splitdb_remote_exec(conn, REFERENCE_TRIGGERS_SQL, 1, p, service);
		rows = splitdb_remote_result_rows(res);
		splitdb_remote_clear(res);
		foreach(lc, rows)
		{
			char	  **row = (char **) lfirst(lc);

			splitdb_artifact_record(job_id, service, "trigger", row[0], row[1],
									SPLITDB_ON_ROLLBACK);
		}
	}
	reconcile_peer_triggers(job_id, service);
}
