/*-------------------------------------------------------------------------
 *
 * artifact.c
 *	  The artifact registry (splitdb.artifact): recording the objects a job
 *	  makes, listing those that go on an event, and the statement that
 *	  drops each.
 *
 * Cancel, rollback, finalize and the doctor remove what a job made by
 * walking its registry, newest first, so an object that was in a database
 * before the job (a shared type, an extension's function) is never dropped:
 * the job recorded only what its guards found missing.
 *
 * Invariants:
 * - An object is recorded before it is made.  A source object is recorded
 *   in the transaction that makes it; a sibling object in a source
 *   transaction that commits before the remote statement runs, so a crash
 *   between the two leaves a record of an object that may be missing, never
 *   an object without a record.  Drops therefore say IF EXISTS.
 * - Recording is idempotent: a resumed step records the same object again
 *   and gets the same row.
 * - The DROP statement is derived from kind, identity and parent here,
 *   never stored, so a row of the registry cannot make splitdb run an
 *   arbitrary statement.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/metadata/artifact.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/formatting.h"

#include "metadata/artifact.h"
#include "metadata/catalog.h"

/* the events, in the order of their bits, as splitdb.artifact spells them */
static const char *const event_names[] = {"failure", "cancel", "rollback", "finalize"};

#define NEVENTS lengthof(event_names)

/* the text[] literal of a set of SPLITDB_ON_* bits */
static char *
events_literal(int events)
{
	char	   *items[NEVENTS];
	int			n = 0;

	for (int i = 0; i < (int) NEVENTS; i++)
		if (events & (1 << i))
			items[n++] = (char *) event_names[i];
	return splitdb_catalog_text_array(items, n);
}

/*
 * splitdb_artifact_record
 *		Record an object job_id is about to make, in the sibling of service
 *		(NULL: in this database), and return its row's id.  An object the
 *		job recorded before and has not dropped keeps its row (its events
 *		are widened to include drop_on).
 *
 * Runs in the caller's transaction, connected to SPI.
 */
int64
splitdb_artifact_record(int64 job_id, const char *service, const char *kind,
						const char *identity, const char *parent, int drop_on)
{
	const char *params[6];
	bool		isnull;
	Datum		id;

	params[0] = psprintf(INT64_FORMAT, job_id);
	params[1] = service;
	params[2] = kind;
	params[3] = identity;
	params[4] = parent;
	params[5] = events_literal(drop_on);

	splitdb_catalog_exec_text("UPDATE splitdb.artifact"
							  "   SET drop_on = ARRAY(SELECT DISTINCT e FROM pg_catalog.unnest("
							  "                   drop_on || $6::text[]) e ORDER BY e)"
							  " WHERE job_id = $1::bigint AND service IS NOT DISTINCT FROM $2::name"
							  "   AND kind = $3 AND identity = $4 AND parent IS NOT DISTINCT FROM $5"
							  "   AND dropped_at IS NULL"
							  " RETURNING artifact_id",
							  6, params, false);
	if (SPI_processed == 0)
		splitdb_catalog_exec_text("INSERT INTO splitdb.artifact"
								  " (job_id, service, kind, identity, parent, drop_on)"
								  " VALUES ($1::bigint, $2::name, $3, $4, $5, $6::text[])"
								  " RETURNING artifact_id",
								  6, params, false);
	id = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return DatumGetInt64(id);
}

/*
 * splitdb_artifact_dropped
 *		Mark an artifact dropped.  In the transaction that dropped it (a
 *		source object), or after the remote drop committed (a sibling one).
 */
void
splitdb_artifact_dropped(int64 artifact_id)
{
	const char *params[1] = {psprintf(INT64_FORMAT, artifact_id)};

	splitdb_catalog_exec_text("UPDATE splitdb.artifact SET dropped_at = pg_catalog.clock_timestamp()"
							  " WHERE artifact_id = $1::bigint AND dropped_at IS NULL",
							  1, params, false);
}

/*
 * splitdb_artifact_give_back
 *		Mark dropped every row of job_id in this database (the source) that
 *		is still standing and does not go on event (one SPLITDB_ON_* bit):
 *		the objects that event gives back instead of dropping them.  A
 *		rollback gives the archived originals (they go on finalize) back
 *		under their names, so their rows, which name them in the archive,
 *		name nothing any more.  Returns how many rows it marked.
 *
 * Runs in the transaction that gave them back, connected to SPI.
 */
uint64
splitdb_artifact_give_back(int64 job_id, int event)
{
	const char *params[2] = {psprintf(INT64_FORMAT, job_id), events_literal(event)};

	splitdb_catalog_exec_text("UPDATE splitdb.artifact SET dropped_at = pg_catalog.clock_timestamp()"
							  " WHERE job_id = $1::bigint AND service IS NULL AND dropped_at IS NULL"
							  "   AND NOT drop_on && $2::text[]",
							  2, params, false);
	return SPI_processed;
}

/*
 * splitdb_artifact_list
 *		The artifacts of job_id not dropped yet that go on any of the events
 *		(SPLITDB_ON_* bits), newest first: the order to drop them in, since
 *		an object is recorded after what it depends on.
 */
List *
splitdb_artifact_list(int64 job_id, int event)
{
	const char *params[2] = {psprintf(INT64_FORMAT, job_id), events_literal(event)};
	List	   *result = NIL;

	splitdb_catalog_exec_text("SELECT artifact_id, job_id, service, kind, identity, parent,"
							  "       drop_on::text"
							  "  FROM splitdb.artifact"
							  " WHERE job_id = $1::bigint AND dropped_at IS NULL"
							  "   AND drop_on && $2::text[]"
							  " ORDER BY artifact_id DESC",
							  2, params, true);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		SplitdbArtifact *a = palloc0(sizeof(SplitdbArtifact));
		int			n;
		char	  **events;

		a->artifact_id = pg_strtoint64(SPI_getvalue(tup, desc, 1));
		a->job_id = pg_strtoint64(SPI_getvalue(tup, desc, 2));
		a->service = SPI_getvalue(tup, desc, 3);
		a->kind = SPI_getvalue(tup, desc, 4);
		a->identity = SPI_getvalue(tup, desc, 5);
		a->parent = SPI_getvalue(tup, desc, 6);
		events = splitdb_catalog_parse_text_array(SPI_getvalue(tup, desc, 7), &n);
		for (int e = 0; e < n; e++)
			for (int b = 0; b < (int) NEVENTS; b++)
				if (strcmp(events[e], event_names[b]) == 0)
					a->drop_on |= 1 << b;
		result = lappend(result, a);
	}
	return result;
}

/*
 * splitdb_artifact_drop_sql
 *		The statement that drops an artifact if it is there.  Errors on a
 *		kind the registry does not know (its CHECK constraint lists them).
 */
char *
splitdb_artifact_drop_sql(const SplitdbArtifact *a)
{
	const char *kind = a->kind;

	if (strcmp(kind, "trigger") == 0 || strcmp(kind, "policy") == 0)
	{
		if (a->parent == NULL)
			elog(ERROR, "artifact %lld: a %s without its table", (long long) a->artifact_id, kind);
		return psprintf("DROP %s IF EXISTS %s ON %s", strcmp(kind, "trigger") == 0 ? "TRIGGER" : "POLICY",
						a->identity, a->parent);
	}
	if (strcmp(kind, "constraint") == 0)
	{
		if (a->parent == NULL)
			elog(ERROR, "artifact %lld: a constraint without its table", (long long) a->artifact_id);
		return psprintf("ALTER TABLE IF EXISTS %s DROP CONSTRAINT IF EXISTS %s",
						a->parent, a->identity);
	}
	if (strcmp(kind, "server") == 0)
		return psprintf("DROP SERVER IF EXISTS %s CASCADE", a->identity);	/* its user mappings */
	if (strcmp(kind, "capture log") == 0)
		return psprintf("DROP TABLE IF EXISTS %s", a->identity);
	if (strcmp(kind, "schema") == 0 || strcmp(kind, "type") == 0 ||
		strcmp(kind, "domain") == 0 || strcmp(kind, "collation") == 0 ||
		strcmp(kind, "sequence") == 0 || strcmp(kind, "table") == 0 ||
		strcmp(kind, "index") == 0 || strcmp(kind, "function") == 0 ||
		strcmp(kind, "foreign table") == 0 || strcmp(kind, "view") == 0 ||
		strcmp(kind, "materialized view") == 0 || strcmp(kind, "statistics") == 0 ||
		strcmp(kind, "text search configuration") == 0 ||
		strcmp(kind, "text search dictionary") == 0 ||
		strcmp(kind, "extension") == 0)
		return psprintf("DROP %s IF EXISTS %s", asc_toupper(kind, strlen(kind)), a->identity);
	elog(ERROR, "artifact %lld has unknown kind \"%s\"", (long long) a->artifact_id, kind);
	return NULL;				/* keep compiler quiet */
}

/*
 * depended_on_sql
 *		The (catalog, OID) pairs of the object of kind (a type, domain,
 *		collation, function or sequence) that the literal lit names, as
 *		pg_depend refers to it: a type with its array type.  None when it
 *		is gone.
 */
static char *
depended_on_sql(const char *kind, const char *lit)
{
	if (strcmp(kind, "collation") == 0)
		return psprintf("SELECT 'pg_catalog.pg_collation'::pg_catalog.regclass::pg_catalog.oid, c.oid"
						"  FROM pg_catalog.pg_collation c"
						" WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regcollation(%s)::pg_catalog.oid",
						lit);
	if (strcmp(kind, "function") == 0)
		/* not to_regprocedure(), which raises when an argument's schema is missing */
		return psprintf("SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass::pg_catalog.oid, p.oid"
						"  FROM pg_catalog.pg_proc p"
						" WHERE p.oid::pg_catalog.regprocedure::pg_catalog.text OPERATOR(pg_catalog.=) %s",
						lit);
	if (strcmp(kind, "sequence") == 0)
		return psprintf("SELECT 'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid, c.oid"
						"  FROM pg_catalog.pg_class c"
						" WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(%s)::pg_catalog.oid",
						lit);
	return psprintf("SELECT 'pg_catalog.pg_type'::pg_catalog.regclass::pg_catalog.oid, x.oid"
					"  FROM pg_catalog.pg_type t,"
					"       LATERAL (VALUES (t.oid), (t.typarray)) x(oid)"
					" WHERE t.oid OPERATOR(pg_catalog.=) pg_catalog.to_regtype(%s)::pg_catalog.oid",
					lit);
}

/*
 * splitdb_artifact_kept_sql
 *		A query whose one value is true when artifact a stays instead of
 *		going, because something the job did not make needs it (the
 *		application's, or the DBA's, made in the sibling since):
 *		- a schema that holds such objects, which DROP SCHEMA without
 *		  CASCADE refuses to drop (2BP01);
 *		- a server with a user mapping that holds a password: splitdb
 *		  makes none (ensure_user_mapping refuses one), so the DBA made it,
 *		  as the plan and the cutover ask, and DROP SERVER ... CASCADE
 *		  would take it with the server, leaving the next migration of the
 *		  service to fail at its cutover for want of it;
 *		- an extension that owns the foreign-data wrapper of a server that
 *		  stays (postgres_fdw, under a server kept as above or made by the
 *		  application), or one whose functions a trigger on a table
 *		  outside it calls (splitdb, for the capture and reference
 *		  triggers of another service sharing the sibling), or one that a
 *		  remaining extension requires (postgres_fdw under such a
 *		  splitdb), which DROP EXTENSION refuses to drop (2BP01);
 *		- a type, domain, collation, function or sequence that an object
 *		  depends on (a column of a table the application made with the
 *		  service's enum, a default that calls the function), which DROP
 *		  without CASCADE refuses to drop (2BP01).
 *		The drops of the job's own objects come first (newest first), so
 *		what is left then is someone else's.  NULL for the kinds that
 *		always go.
 */
char *
splitdb_artifact_kept_sql(const SplitdbArtifact *a)
{
	const char *lit = quote_literal_cstr(a->identity);

	if (strcmp(a->kind, "schema") == 0)
		return psprintf("SELECT EXISTS (SELECT FROM pg_catalog.pg_depend d"
						" WHERE d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_namespace'::pg_catalog.regclass"
						"   AND d.refobjid OPERATOR(pg_catalog.=) pg_catalog.to_regnamespace(%s)::pg_catalog.oid"
						"   AND d.deptype OPERATOR(pg_catalog.=) 'n')",
						lit);
	if (strcmp(a->kind, "server") == 0)
		return psprintf("SELECT EXISTS (SELECT FROM pg_catalog.pg_user_mapping m"
						"  JOIN pg_catalog.pg_foreign_server s ON s.oid OPERATOR(pg_catalog.=) m.umserver,"
						"       pg_catalog.unnest(m.umoptions) o"
						" WHERE s.srvname OPERATOR(pg_catalog.=) %s"
						"   AND pg_catalog.split_part(o, '=', 1) OPERATOR(pg_catalog.=) ANY ('{password,sslpassword}'))",
						lit);
	if (strcmp(a->kind, "type") == 0 || strcmp(a->kind, "domain") == 0 ||
		strcmp(a->kind, "collation") == 0 || strcmp(a->kind, "function") == 0 ||
		strcmp(a->kind, "sequence") == 0)
		/*
		 * normal dependencies (a column's type or collation, a default);
		 * for a sequence also a column that owns it (auto), which a
		 * domain's own CHECK constraints are on their domain
		 */
		return psprintf("SELECT EXISTS (SELECT FROM pg_catalog.pg_depend d"
						" WHERE d.deptype OPERATOR(pg_catalog.=) ANY ('%s')"
						"   AND (d.refclassid, d.refobjid) IN (%s))",
						strcmp(a->kind, "sequence") == 0 ? "{n,a}" : "{n}",
						depended_on_sql(a->kind, lit));
	if (strcmp(a->kind, "extension") == 0)
		return psprintf("SELECT EXISTS (SELECT FROM pg_catalog.pg_foreign_server s"
						"  JOIN pg_catalog.pg_depend d"
						"    ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_foreign_data_wrapper'::pg_catalog.regclass"
						"   AND d.objid OPERATOR(pg_catalog.=) s.srvfdw"
						"   AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass"
						"   AND d.deptype OPERATOR(pg_catalog.=) 'e'"
						"  JOIN pg_catalog.pg_extension e ON e.oid OPERATOR(pg_catalog.=) d.refobjid"
						" WHERE e.extname OPERATOR(pg_catalog.=) %s)"
						" OR EXISTS (SELECT FROM pg_catalog.pg_depend m"
						"  JOIN pg_catalog.pg_depend d"
						"    ON d.refclassid OPERATOR(pg_catalog.=) m.classid"
						"   AND d.refobjid OPERATOR(pg_catalog.=) m.objid"
						"   AND d.deptype OPERATOR(pg_catalog.=) 'n'"
						" WHERE m.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass"
						"   AND m.refobjid OPERATOR(pg_catalog.=) (SELECT e.oid FROM pg_catalog.pg_extension e"
						"                          WHERE e.extname OPERATOR(pg_catalog.=) %s)"
						"   AND m.deptype OPERATOR(pg_catalog.=) 'e'"
						"   AND d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_trigger'::pg_catalog.regclass"
						"   AND NOT EXISTS (SELECT FROM pg_catalog.pg_trigger t"
						"                     JOIN pg_catalog.pg_depend x"
						"                       ON x.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass"
						"                      AND x.objid OPERATOR(pg_catalog.=) t.tgrelid"
						"                      AND x.deptype OPERATOR(pg_catalog.=) 'e'"
						"                    WHERE t.oid OPERATOR(pg_catalog.=) d.objid))"
						" OR EXISTS (SELECT FROM pg_catalog.pg_depend d"
						"  JOIN pg_catalog.pg_extension e ON e.oid OPERATOR(pg_catalog.=) d.refobjid"
						" WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass"
						"   AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass"
						"   AND d.deptype OPERATOR(pg_catalog.=) 'n'"
						"   AND e.extname OPERATOR(pg_catalog.=) %s)",
						lit, lit, lit);
	return NULL;
}
