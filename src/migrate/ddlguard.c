/*-------------------------------------------------------------------------
 *
 * ddlguard.c
 *	  Refusing DDL on the tables of a migration under way and on archived
 *	  originals, and writes on archived originals.
 *
 * A table that a job is moving must not change shape while the job runs:
 * the sibling was built from its definition, and a column added, a key
 * dropped or a partition attached would make the two sides differ without
 * anyone noticing.  After the cutover the original lives in schema
 * splitdb_archive until splitdb_finalize() drops it or splitdb_rollback()
 * brings it back, and a change to it would change what a rollback restores.
 * Two event triggers refuse such commands:
 *
 *	splitdb_guard_ddl   ddl_command_end: any command that created or
 *	                    altered the table itself, or an index, trigger,
 *	                    rule, policy, constraint or extended statistics on
 *	                    it, or a partition of it (CREATE TABLE ... PARTITION
 *	                    OF, ATTACH, DETACH), or its schema (ALTER SCHEMA:
 *	                    renamed, a table of the old name could take its
 *	                    place), or a type of its columns (ALTER TYPE, ALTER
 *	                    DOMAIN: an enum value added or renamed, a domain's
 *	                    constraint dropped would make rows the sibling
 *	                    refuses), or a cast from or to such a type (CREATE
 *	                    CAST: the worker, a superuser, reads rows with
 *	                    to_jsonb() and ::text and passes keys as text cast
 *	                    to their type, which call casts), or a comment on
 *	                    it (the sibling has its comments), or a foreign key
 *	                    made on another table that references it (the job
 *	                    recorded its references when it prepared);
 *	splitdb_guard_drop  sql_drop: dropping the table, one of its columns
 *	                    (DROP TYPE ... CASCADE), a default or a constraint
 *	                    of it (DROP SEQUENCE, DROP FUNCTION ... CASCADE),
 *	                    or a trigger, rule or policy on it, named or taken
 *	                    along by a CASCADE (an online job's capture
 *	                    triggers among them, and the triggers of a foreign
 *	                    key that references it);
 *	splitdb_guard_start ddl_command_start, before the command does anything:
 *	                    DROP INDEX of an index of it, CREATE INDEX
 *	                    CONCURRENTLY on it, DETACH PARTITION ...
 *	                    CONCURRENTLY of or from it, ALTER SEQUENCE of a
 *	                    sequence it owns or uses in a default: what commits
 *	                    work of its own before ddl_command_end, or leaves no
 *	                    trace of the table by then (refused_before_it_runs);
 *	                    and a DROP ... CASCADE of a function, type,
 *	                    collation, operator class, extension, schema or the
 *	                    like, or a DROP OWNED ... CASCADE, that would take
 *	                    an index of it along (by sql_drop the index's table
 *	                    is gone from the catalog).
 *
 * All three fire only for the command tags listed in sql/splitdb--0.1.sql.
 * An event trigger that fires for every command would make PostgreSQL log
 * each one at DEBUG1 ("EventTriggerInvoke"), and with
 * log_min_error_statement at that level the statement text with it: a
 * CREATE USER MAPPING with its password.  None of the listed commands can
 * carry a password.
 *
 * GRANT, REVOKE and SECURITY LABEL stay allowed.  VACUUM, CLUSTER and
 * REINDEX fire no event trigger (PostgreSQL 15); they change no row.  A
 * table is guarded while its job's state is any but cancelled, rolled_back
 * and finalized; a failed job counts, since it is resumed from what the
 * sibling holds.
 *
 * Writes on an archived original are refused too: the cutover gives each
 * one a statement trigger, splitdb_archive_guard, BEFORE INSERT, UPDATE,
 * DELETE and TRUNCATE.  It is an ordinary trigger, so it does not fire in a
 * session with session_replication_role = replica: that is how a rollback
 * replays into the archive (only a superuser may set it).
 *
 * Invariants:
 * - The refusal is an error, so the command rolls back whole.
 * - splitdb's catalog is read as of now, not under the command's snapshot:
 *   a REPEATABLE READ transaction begun before the job (or before its
 *   rollback, cancel or finalize) is refused, or let through, as any other.
 * - splitdb's own DDL passes: everything its background workers run, and
 *   what a SQL function runs after splitdb_ddl_guard_off_for_xact(), which
 *   lasts until its transaction ends.  Neither is reachable by a client:
 *   the flag is no setting, and a session is not a background worker.
 * - In a database where splitdb's catalog is being dropped (DROP EXTENSION)
 *   or has no jobs, the triggers do nothing.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/ddlguard.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/objectaddress.h"
#include "commands/event_trigger.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "postmaster/bgworker.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "metadata/catalog.h"
#include "migrate/capture.h"
#include "migrate/ddlguard.h"
#include "reference/attachcheck.h"

PG_FUNCTION_INFO_V1(splitdb_guard_ddl);
PG_FUNCTION_INFO_V1(splitdb_guard_drop);
PG_FUNCTION_INFO_V1(splitdb_guard_start);
PG_FUNCTION_INFO_V1(splitdb_archive_guard);

/* the guard is off until the end of the current transaction */
static bool guard_off = false;
static bool callback_registered = false;

/*
 * the relations a command touched, mapped to the table each belongs to
 * (RELATIONS_OF_COMMANDS); for a schema, its relations, and for a type
 * (ALTER TYPE, ALTER DOMAIN, a composite type's attributes) and for a cast
 * from or to a type (CREATE CAST; the types made after PostgreSQL's own, one
 * of which its maker owns), the relations with a column of that type or of
 * a type made of it (a domain over it, an array of it, a composite or range
 * with it): RELATIONS_OF_TYPE_COMMANDS.  That one reads pg_attribute by
 * type, which no index serves, so it runs only for the commands that name a
 * schema, a type or a cast (type_command()).
 */
#define COMMANDS_AND_RELATIONS \
	" d AS (SELECT d.classid, d.objid, d.command_tag" \
	"             FROM pg_catalog.pg_event_trigger_ddl_commands() d" \
	"            WHERE d.command_tag NOT IN ('GRANT', 'REVOKE', 'SECURITY LABEL'))," \
	" r AS (SELECT d.command_tag, CASE d.classid" \
	"         WHEN 'pg_catalog.pg_class'::pg_catalog.regclass THEN" \
	"           coalesce((SELECT i.indrelid FROM pg_catalog.pg_index i WHERE i.indexrelid = d.objid)," \
	"                    (SELECT p.refobjid FROM pg_catalog.pg_depend p" \
	"                      WHERE p.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND p.objid = d.objid" \
	"                        AND p.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass" \
	"                        AND p.refobjsubid > 0 AND p.deptype IN ('a', 'i') LIMIT 1)," \
	"                    d.objid)" \
	"         WHEN 'pg_catalog.pg_trigger'::pg_catalog.regclass THEN" \
	"           (SELECT t.tgrelid FROM pg_catalog.pg_trigger t WHERE t.oid = d.objid)" \
	"         WHEN 'pg_catalog.pg_rewrite'::pg_catalog.regclass THEN" \
	"           (SELECT w.ev_class FROM pg_catalog.pg_rewrite w WHERE w.oid = d.objid)" \
	"         WHEN 'pg_catalog.pg_policy'::pg_catalog.regclass THEN" \
	"           (SELECT p.polrelid FROM pg_catalog.pg_policy p WHERE p.oid = d.objid)" \
	"         WHEN 'pg_catalog.pg_constraint'::pg_catalog.regclass THEN" \
	"           (SELECT c.conrelid FROM pg_catalog.pg_constraint c WHERE c.oid = d.objid)" \
	"         WHEN 'pg_catalog.pg_statistic_ext'::pg_catalog.regclass THEN" \
	"           (SELECT s.stxrelid FROM pg_catalog.pg_statistic_ext s WHERE s.oid = d.objid)" \
	"         END AS relid FROM d),"

/*
 * and the tables that foreign keys made by the command reference (ALTER
 * TABLE ... ADD FOREIGN KEY, CREATE TABLE ... REFERENCES on a table that
 * stays: the job recorded its references when it prepared, and the cutover
 * would leave a new one pointing at the archived original).  A constraint
 * row the command made has an xmin of this transaction or one of its
 * subtransactions, which age() counts as 0 or less.
 */
#define RELATIONS_AND_PARENTS \
	"         SELECT command_tag, relid, NULL::text AS shown FROM r" \
	"         UNION SELECT r.command_tag, i.inhparent, NULL FROM r" \
	"                JOIN pg_catalog.pg_inherits i ON i.inhrelid = r.relid" \
	"         UNION SELECT r.command_tag, k.confrelid, NULL FROM r" \
	"                JOIN pg_catalog.pg_constraint k ON k.conrelid = r.relid AND k.contype = 'f'" \
	"               WHERE pg_catalog.age(k.xmin) <= 0"

#define RELATIONS_OF_COMMANDS \
	"WITH" COMMANDS_AND_RELATIONS " rel AS (" RELATIONS_AND_PARENTS ")"

#define RELATIONS_OF_TYPE_COMMANDS \
	"WITH RECURSIVE" COMMANDS_AND_RELATIONS \
	" typ(command_tag, ty) AS (" \
	"   SELECT d.command_tag, d.objid FROM d" \
	"    WHERE d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass" \
	"   UNION SELECT d.command_tag, c.reltype FROM d JOIN pg_catalog.pg_class c ON c.oid = d.objid" \
	"    WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND c.relkind = 'c'" \
	"   UNION SELECT d.command_tag, e.ty FROM d JOIN pg_catalog.pg_cast c ON c.oid = d.objid" \
	"     CROSS JOIN LATERAL (VALUES (c.castsource), (c.casttarget)) e(ty)" \
	"    WHERE d.classid = 'pg_catalog.pg_cast'::pg_catalog.regclass" \
	"      AND e.ty >= " CppAsString2(FirstNormalObjectId) \
	"   UNION SELECT y.command_tag, x.ty FROM typ y CROSS JOIN LATERAL (" \
	"     SELECT t.oid FROM pg_catalog.pg_type t WHERE t.typtype = 'd' AND t.typbasetype = y.ty" \
	"     UNION ALL SELECT t.oid FROM pg_catalog.pg_type t" \
	"      WHERE t.typelem = y.ty AND t.typsubscript = 'pg_catalog.array_subscript_handler'::pg_catalog.regproc" \
	"     UNION ALL SELECT t.oid FROM pg_catalog.pg_attribute a" \
	"       JOIN pg_catalog.pg_type t ON t.typrelid = a.attrelid" \
	"      WHERE a.atttypid = y.ty AND a.attnum > 0 AND NOT a.attisdropped" \
	"     UNION ALL SELECT g.rngtypid FROM pg_catalog.pg_range g WHERE g.rngsubtype = y.ty" \
	"     UNION ALL SELECT g.rngmultitypid FROM pg_catalog.pg_range g WHERE g.rngtypid = y.ty) x(ty))," \
	" rel AS (" RELATIONS_AND_PARENTS \
	"         UNION SELECT y.command_tag, a.attrelid, NULL FROM typ y" \
	"                JOIN pg_catalog.pg_attribute a ON a.atttypid = y.ty" \
	"               WHERE a.attnum > 0 AND NOT a.attisdropped" \
	"         UNION SELECT y.command_tag, coalesce(k.conrelid, ad.adrelid, ix.indrelid, tg.tgrelid), NULL" \
	"                FROM typ y JOIN pg_catalog.pg_depend dp" \
	"                  ON dp.refclassid = 'pg_catalog.pg_type'::pg_catalog.regclass AND dp.refobjid = y.ty" \
	"                LEFT JOIN pg_catalog.pg_constraint k" \
	"                  ON dp.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass AND k.oid = dp.objid" \
	"                 AND k.conrelid <> 0" \
	"                LEFT JOIN pg_catalog.pg_attrdef ad" \
	"                  ON dp.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass AND ad.oid = dp.objid" \
	"                LEFT JOIN pg_catalog.pg_index ix" \
	"                  ON dp.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND ix.indexrelid = dp.objid" \
	"                LEFT JOIN pg_catalog.pg_trigger tg" \
	"                  ON dp.classid = 'pg_catalog.pg_trigger'::pg_catalog.regclass AND tg.oid = dp.objid" \
	"               WHERE coalesce(k.conrelid, ad.adrelid, ix.indrelid, tg.tgrelid) IS NOT NULL" \
	"         UNION SELECT d.command_tag, c.oid, NULL FROM d" \
	"                JOIN pg_catalog.pg_class c ON c.relnamespace = d.objid" \
	"               WHERE d.classid = 'pg_catalog.pg_namespace'::pg_catalog.regclass)"

/*
 * the same for a DROP ($1: its command tag): the tables it dropped, and the
 * tables of a trigger, rule or policy that went (DROP TRIGGER, the
 * triggers of a foreign key that references the table, whose reference
 * the job recorded, or a trigger whose function went with DROP FUNCTION
 * ... CASCADE; one that went with its table leaves no table to find), and
 * of a default or a constraint that went (DROP SEQUENCE or DROP FUNCTION
 * ... CASCADE), found by the dropped object's address, since its catalog
 * row is gone: schema, table, name
 */
#define RELATIONS_DROPPED \
	"WITH rel AS (SELECT $1 AS command_tag, d.objid AS relid," \
	"                    CASE WHEN d.objsubid = 0 THEN d.object_identity END AS shown" \
	"               FROM pg_catalog.pg_event_trigger_dropped_objects() d" \
	"              WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass" \
	"                AND d.object_type IN ('table', 'partitioned table', 'table column')" \
	"             UNION ALL" \
	"             SELECT $1, pg_catalog.to_regclass(pg_catalog.quote_ident(d.address_names[1])" \
	"                                               || '.' || pg_catalog.quote_ident(d.address_names[2]))," \
	"                    NULL" \
	"               FROM pg_catalog.pg_event_trigger_dropped_objects() d" \
	"              WHERE d.object_type IN ('trigger', 'rule', 'policy')" \
	"                AND pg_catalog.cardinality(d.address_names) = 3" \
	"             UNION ALL" \
	"             SELECT $1, pg_catalog.to_regclass(pg_catalog.quote_ident(d.address_names[1])" \
	"                                               || '.' || pg_catalog.quote_ident(d.address_names[2]))," \
	"                    NULL" \
	"               FROM pg_catalog.pg_event_trigger_dropped_objects() d" \
	"              WHERE d.object_type IN ('default value', 'table constraint')" \
	"                AND pg_catalog.cardinality(d.address_names) = 3)"

/*
 * the same for a command refused before it runs ($1: its command tag; $2:
 * the OIDs of the relations it names, start_targets()): each relation, the
 * table of an index, the tables that own a sequence (serial, identity) or
 * use it in a default, and their parents
 */
#define RELATIONS_NAMED \
	"WITH n AS (SELECT o AS objid FROM pg_catalog.unnest($2::pg_catalog.oid[]) o)," \
	" r AS (SELECT coalesce(i.indrelid, n.objid) AS relid" \
	"         FROM n LEFT JOIN pg_catalog.pg_index i ON i.indexrelid = n.objid" \
	"       UNION SELECT p.refobjid FROM n JOIN pg_catalog.pg_depend p" \
	"          ON p.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND p.objid = n.objid" \
	"         AND p.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass" \
	"         AND p.refobjsubid > 0 AND p.deptype IN ('a', 'i')" \
	"       UNION SELECT a.adrelid FROM n JOIN pg_catalog.pg_depend p" \
	"          ON p.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND p.refobjid = n.objid" \
	"         AND p.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass" \
	"        JOIN pg_catalog.pg_attrdef a ON a.oid = p.objid)," \
	" rel AS (SELECT $1 AS command_tag, r.relid, NULL::text AS shown FROM r" \
	"         UNION SELECT $1, i.inhparent, NULL FROM r" \
	"                JOIN pg_catalog.pg_inherits i ON i.inhrelid = r.relid)"

/*
 * the same for a DROP ... CASCADE refused before it runs ($1: its command
 * tag; $2, $3: the catalogs and OIDs of the objects it names): the tables
 * of the indexes that depend on them, directly or through other objects,
 * as the CASCADE would find them (a dependency on one column of a table
 * leads only to what depends on that column)
 */
#define RELATIONS_CASCADED_FROM(seed) \
	"WITH RECURSIVE dep(classid, objid, objsubid) AS (" \
	seed \
	"  UNION" \
	"  SELECT d.classid, d.objid, d.objsubid FROM dep JOIN pg_catalog.pg_depend d" \
	"    ON d.refclassid = dep.classid AND d.refobjid = dep.objid" \
	"   AND (dep.objsubid = 0 OR d.refobjsubid = dep.objsubid))," \
	" rel AS (SELECT DISTINCT $1 AS command_tag, i.indrelid AS relid, NULL::text AS shown" \
	"           FROM dep JOIN pg_catalog.pg_index i ON i.indexrelid = dep.objid" \
	"          WHERE dep.classid = 'pg_catalog.pg_class'::pg_catalog.regclass)"
#define RELATIONS_CASCADED RELATIONS_CASCADED_FROM( \
	"  SELECT u.c, u.o, 0 FROM ROWS FROM (pg_catalog.unnest($2::pg_catalog.oid[])," \
	"                                     pg_catalog.unnest($3::pg_catalog.oid[])) u(c, o)")

/*
 * the same for DROP OWNED ... CASCADE ($2: the roles' OIDs): from what the
 * roles own in this database
 */
#define RELATIONS_OWNED_CASCADED RELATIONS_CASCADED_FROM( \
	"  SELECT s.classid, s.objid, 0 FROM pg_catalog.pg_shdepend s" \
	"   WHERE s.dbid = (SELECT d.oid FROM pg_catalog.pg_database d" \
	"                    WHERE d.datname = pg_catalog.current_database())" \
	"     AND s.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass" \
	"     AND s.refobjid = ANY ($2::pg_catalog.oid[]) AND s.deptype = 'o'")

/* the first of them that a job guards */
#define GUARDED_AMONG \
	" SELECT rel.command_tag, t.table_name, j.job_id, j.service::text, j.state," \
	"        coalesce(rel.shown, pg_catalog.format('%s.%s', pg_catalog.quote_ident(n.nspname)," \
	"                                              pg_catalog.quote_ident(c.relname)))" \
	"   FROM rel JOIN splitdb.job_table t ON t.relid = rel.relid" \
	"   JOIN splitdb.job j ON j.job_id = t.job_id" \
	"   LEFT JOIN pg_catalog.pg_class c ON c.oid = t.relid" \
	"   LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace" \
	"  WHERE j.state NOT IN ('cancelled', 'rolled_back', 'finalized')" \
	"  ORDER BY j.job_id, t.table_name LIMIT 1"

/* reset the flag at the end of the transaction that set it */
static void
guard_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
		guard_off = false;
}

/*
 * splitdb_ddl_guard_off_for_xact
 *		Let the current transaction change guarded tables: for splitdb's own
 *		functions that move or drop originals (finalize, rollback) when they
 *		run in a client's backend.  Ends with the transaction.
 */
void
splitdb_ddl_guard_off_for_xact(void)
{
	if (!callback_registered)
	{
		RegisterXactCallback(guard_xact_callback, NULL);
		callback_registered = true;
	}
	guard_off = true;
}

/* whether this process runs splitdb's own code only: its background workers */
static bool
splitdb_process(void)
{
	return MyBgworkerEntry != NULL &&
		strcmp(MyBgworkerEntry->bgw_library_name, "splitdb") == 0;
}

/* whether splitdb's catalog is there to read (not during DROP EXTENSION) */
static bool
catalog_present(void)
{
	Oid			nsp = get_namespace_oid("splitdb", true);

	return OidIsValid(nsp) &&
		OidIsValid(get_relname_relid("job_table", nsp)) &&
		OidIsValid(get_relname_relid("job", nsp));
}

/*
 * refuse_if_guarded
 *		Run the query (RELATIONS_... followed by GUARDED_AMONG, with the
 *		nparams text params: the command tag as $1 and, for RELATIONS_NAMED,
 *		the relations' OIDs as $2) and raise an error naming the first
 *		guarded table it finds.
 */
static void
refuse_if_guarded(const char *sql, int nparams, const char *const *params)
{
	HeapTuple	tup;
	TupleDesc	desc;
	char	   *tag;
	char	   *table;
	char	   *job;
	char	   *service;
	char	   *state;
	char	   *now_named;
	const char *on;

	splitdb_spi_connect();
	/*
	 * as of now (a transaction older than the job, the cutover, the rollback
	 * or the finalize is guarded as any other), and not read-only: the
	 * command counter advanced, it sees what the command made
	 */
	splitdb_catalog_exec_text_latest(sql, nparams, params, false);
	if (SPI_processed == 0)
	{
		SPI_finish();
		return;
	}
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	tag = SPI_getvalue(tup, desc, 1);
	table = SPI_getvalue(tup, desc, 2);
	job = SPI_getvalue(tup, desc, 3);
	service = SPI_getvalue(tup, desc, 4);
	state = SPI_getvalue(tup, desc, 5);
	now_named = SPI_getvalue(tup, desc, 6);

	/* a command on the table's schema or column types is named as such */
	if (strcmp(tag, "ALTER SCHEMA") == 0)
		on = "its schema";
	else if (strcmp(tag, "ALTER TYPE") == 0 || strcmp(tag, "ALTER DOMAIN") == 0)
		on = "a type of its columns";
	else if (strstr(tag, "CASCADE") != NULL)
		on = "an index of it";
	else
		on = "it";

	/* a cast changes no row, but splitdb would call it */
	if (strcmp(tag, "CREATE CAST") == 0 && strcmp(state, "done") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("table \"%s\" is the archived original of table \"%s\" of service \"%s\"",
						splitdb_message_name(now_named ? now_named : table),
						splitdb_message_name(table), service),
				 errdetail("splitdb_verify() reads its rows as text, which would call the new cast with its caller's rights."),
				 errhint("Create the cast once the service is finalized or rolled back.")));
	if (strcmp(tag, "CREATE CAST") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("table \"%s\" belongs to a migration of service \"%s\"",
						splitdb_message_name(table), service),
				 errdetail("Job %s is %s; its worker reads the rows of the table as text and JSON, which would call the new cast with the worker's rights.",
						   job, state),
				 errhint("Create the cast once the service's job is cancelled, rolled back or finalized.")));

	if (strcmp(state, "done") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("table \"%s\" is the archived original of table \"%s\" of service \"%s\"",
						splitdb_message_name(now_named ? now_named : table),
						splitdb_message_name(table), service),
				 strcmp(on, "an index of it") == 0 ?
				 errdetail("%s would drop an index of it, which would change what splitdb_rollback() brings back.",
						   tag) :
				 errdetail("%s on %s would change what splitdb_rollback() brings back.", tag, on),
				 errhint("Drop it with splitdb_finalize('%s') once the service is to stay where it is.",
						 service)));
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_IN_USE),
			 errmsg("table \"%s\" belongs to a migration of service \"%s\"",
					splitdb_message_name(table), service),
			 strcmp(on, "an index of it") == 0 ?
			 errdetail("Job %s is %s; %s would drop an index of the table, which its copy in the sibling keeps.",
					   job, state, tag) :
			 errdetail("Job %s is %s; %s on %s would make its copy in the sibling differ from it.",
					   job, state, tag,
					   strcmp(on, "it") == 0 ? "the table" :
					   strcmp(on, "its schema") == 0 ? "the table's schema" :
					   "a type of the table's columns"),
			 strcmp(state, "failed") == 0 ?
			 errhint("Cancel the job with splitdb_cancel('%s') first, then change the table and migrate again.",
					 service) :
			 errhint("Wait for the job to end, or cancel it with splitdb_cancel('%s').", service)));
}

/* whether the event trigger's command names a schema, a type or a cast */
static bool
type_command(FunctionCallInfo fcinfo)
{
	const char *tag = GetCommandTagName(((EventTriggerData *) fcinfo->context)->tag);

	return strcmp(tag, "ALTER SCHEMA") == 0 || strcmp(tag, "ALTER TYPE") == 0 ||
		strcmp(tag, "ALTER DOMAIN") == 0 || strcmp(tag, "CREATE CAST") == 0;
}

/*
 * whether a job guards any table: without one, nothing can be refused, and
 * the guard costs one probe of splitdb.job (a sibling, whose splitdb has no
 * jobs, runs a cutover's DDL through it)
 */
static bool
any_job_guards(void)
{
	bool		any;

	splitdb_spi_connect();
	splitdb_catalog_exec_text_latest("SELECT FROM splitdb.job j"
									 " WHERE j.state NOT IN ('cancelled', 'rolled_back', 'finalized') LIMIT 1",
									 0, NULL, true);
	any = SPI_processed > 0;
	SPI_finish();
	return any;
}

/* the checks shared by both triggers: whether to look at all */
static bool
guard_applies(FunctionCallInfo fcinfo)
{
	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function can only be called as an event trigger"),
				 errhint("Only splitdb's own event triggers call it.")));
	return !guard_off && !splitdb_process() && catalog_present() && any_job_guards();
}

/*
 * splitdb_guard_ddl
 *		SQL: event trigger on ddl_command_end.  Refuses a command that
 *		changed a guarded table or something on it, and checks the rows of a
 *		partition it attached to a table that references another database
 *		(attachcheck.c).
 */
Datum
splitdb_guard_ddl(PG_FUNCTION_ARGS)
{
	int			nestlevel;

	/* splitdb's queries, under a search_path the caller cannot change */
	nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	if (guard_applies(fcinfo))
		refuse_if_guarded(type_command(fcinfo) ?
						  RELATIONS_OF_TYPE_COMMANDS GUARDED_AMONG :
						  RELATIONS_OF_COMMANDS GUARDED_AMONG, 0, NULL);
	AtEOXact_GUC(true, nestlevel);

	/*
	 * A partition attached to a referencing end: its rows are checked.  Under
	 * the session's search_path, which the command's names were looked up
	 * under (the function has no SET search_path of its own for this);
	 * attachcheck.c pins it for its own queries.
	 */
	if (!splitdb_process() && catalog_present())
	{
		splitdb_check_attached_partitions((EventTriggerData *) fcinfo->context);
		/* a partition made or attached under a table that captures: it does too */
		splitdb_capture_new_partitions((EventTriggerData *) fcinfo->context);
	}
	PG_RETURN_VOID();
}

/*
 * splitdb_guard_drop
 *		SQL: event trigger on sql_drop.  Refuses dropping a guarded table,
 *		or a trigger, rule or policy on one.
 */
Datum
splitdb_guard_drop(PG_FUNCTION_ARGS)
{
	if (guard_applies(fcinfo))
	{
		const char *tag = GetCommandTagName(((EventTriggerData *) fcinfo->context)->tag);

		refuse_if_guarded(RELATIONS_DROPPED GUARDED_AMONG, 1, &tag);
	}
	PG_RETURN_VOID();
}

/*
 * drops_an_index_along
 *		Whether stmt is a DROP ... CASCADE of a kind of object that an index
 *		can depend on without its table doing so (an expression's function
 *		or operator, a collation, an operator class, a text search
 *		configuration, and what holds them: a schema, an extension), so
 *		that the CASCADE could drop an index and leave its table.  Indexes
 *		themselves are DROP INDEX's; a type or domain is named here as well,
 *		for a column of a type that an expression index casts to.
 */
static bool
drops_an_index_along(DropStmt *stmt)
{
	if (stmt->behavior != DROP_CASCADE)
		return false;
	switch (stmt->removeType)
	{
		case OBJECT_FUNCTION:
		case OBJECT_ROUTINE:
		case OBJECT_OPERATOR:
		case OBJECT_OPCLASS:
		case OBJECT_OPFAMILY:
		case OBJECT_COLLATION:
		case OBJECT_TYPE:
		case OBJECT_DOMAIN:
		case OBJECT_CAST:
		case OBJECT_TSCONFIGURATION:
		case OBJECT_TSDICTIONARY:
		case OBJECT_TSPARSER:
		case OBJECT_TSTEMPLATE:
		case OBJECT_ACCESS_METHOD:
		case OBJECT_SCHEMA:
		case OBJECT_EXTENSION:
			return true;
		default:
			return false;
	}
}

/*
 * refused_before_it_runs
 *		Whether the command is one the guard must refuse at ddl_command_start,
 *		from its parse tree alone (no catalog read): DROP INDEX (the table of
 *		an index is gone by sql_drop, and with CONCURRENTLY the index is
 *		already invalid, committed, by then), CREATE INDEX CONCURRENTLY and
 *		ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY (both commit
 *		transactions of their own before ddl_command_end, whose error then
 *		leaves what they committed), ALTER SEQUENCE (OWNED BY NONE leaves
 *		no trace of the table the sequence belonged to), and a DROP ...
 *		CASCADE or DROP OWNED ... CASCADE that may take an index along
 *		(drops_an_index_along).
 */
static bool
refused_before_it_runs(Node *parsetree)
{
	ListCell   *lc;

	switch (nodeTag(parsetree))
	{
		case T_DropStmt:
			return ((DropStmt *) parsetree)->removeType == OBJECT_INDEX ||
				drops_an_index_along((DropStmt *) parsetree);
		case T_DropOwnedStmt:
			return ((DropOwnedStmt *) parsetree)->behavior == DROP_CASCADE;
		case T_IndexStmt:
			return ((IndexStmt *) parsetree)->concurrent;
		case T_AlterSeqStmt:
			return true;
		case T_AlterTableStmt:
			foreach(lc, ((AlterTableStmt *) parsetree)->cmds)
			{
				AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);

				if (cmd->subtype == AT_DetachPartition &&
					((PartitionCmd *) cmd->def)->concurrent)
					return true;
			}
			return false;
		default:
			return false;
	}
}

/* the OID of the relation rv names, as the command will find it; 0 if none */
static Oid
named_relation(RangeVar *rv)
{
	return rv ? RangeVarGetRelid(rv, NoLock, true) : InvalidOid;
}

/*
 * start_targets
 *		The relations that a command refused_before_it_runs() names, looked
 *		up without locks (the command takes its own): the indexes of DROP
 *		INDEX, the table of CREATE INDEX, the sequence of ALTER SEQUENCE, the
 *		partitioned table and the partition of DETACH PARTITION.  Names that
 *		find nothing are left out (the command reports them itself).
 */
static List *
start_targets(Node *parsetree)
{
	List	   *relids = NIL;
	ListCell   *lc;

	switch (nodeTag(parsetree))
	{
		case T_DropStmt:
			foreach(lc, ((DropStmt *) parsetree)->objects)
				relids = lappend_oid(relids,
									 named_relation(makeRangeVarFromNameList((List *) lfirst(lc))));
			break;
		case T_IndexStmt:
			relids = lappend_oid(relids, named_relation(((IndexStmt *) parsetree)->relation));
			break;
		case T_AlterSeqStmt:
			relids = lappend_oid(relids, named_relation(((AlterSeqStmt *) parsetree)->sequence));
			break;
		case T_AlterTableStmt:
			relids = lappend_oid(relids, named_relation(((AlterTableStmt *) parsetree)->relation));
			foreach(lc, ((AlterTableStmt *) parsetree)->cmds)
			{
				AlterTableCmd *cmd = (AlterTableCmd *) lfirst(lc);

				if (cmd->subtype == AT_DetachPartition)
					relids = lappend_oid(relids,
										 named_relation(((PartitionCmd *) cmd->def)->name));
			}
			break;
		default:
			break;
	}
	return list_delete_oid(relids, InvalidOid);
}

/*
 * cascade_targets
 *		The objects a DROP ... CASCADE (drops_an_index_along) names, as
 *		catalog and OID, appended to *classids and *objids; looked up as
 *		the DROP will (get_object_address), under the lock the DROP takes
 *		(ACCESS EXCLUSIVE, as RemoveObjects() does: a weaker one first would
 *		have to be upgraded, and two such DROPs could deadlock).  Names that
 *		find nothing are left out (the command reports them itself).
 */
static void
cascade_targets(DropStmt *stmt, List **classids, List **objids)
{
	ListCell   *lc;

	foreach(lc, stmt->objects)
	{
		Relation	rel = NULL;
		ObjectAddress address = get_object_address(stmt->removeType, lfirst(lc), &rel,
												   AccessExclusiveLock, true);

		if (rel != NULL)
			table_close(rel, NoLock);
		if (!OidIsValid(address.objectId))
			continue;
		*classids = lappend_oid(*classids, address.classId);
		*objids = lappend_oid(*objids, address.objectId);
	}
}

/* relids as an oid[] literal */
static char *
oid_array(List *relids)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	foreach(lc, relids)
		appendStringInfo(&buf, "%s%u", foreach_current_index(lc) > 0 ? "," : "",
						 lfirst_oid(lc));
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/*
 * splitdb_guard_start
 *		SQL: event trigger on ddl_command_start.  Refuses, before it does
 *		anything, a command that refused_before_it_runs() and that names a
 *		guarded table, an index of one, or a sequence one owns or uses, or
 *		that would drop an index of one by CASCADE.
 *
 * The parse tree is looked at first.  The names in it are looked up under
 * the session's search_path, as the command will look them up: the
 * function is declared without a SET search_path for that reason (with
 * one, an unqualified DROP INDEX found nothing and passed).  Its queries
 * then run under search_path pg_catalog, pg_temp, set here for them and
 * restored after, so that no operator or function of the caller's schemas
 * takes part in deciding what is guarded; the probe of any_job_guards()
 * stays the first query.
 */
Datum
splitdb_guard_start(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata = (EventTriggerData *) fcinfo->context;
	const char *params[3];
	int			nparams;
	const char *sql;
	int			nestlevel;

	if (CALLED_AS_EVENT_TRIGGER(fcinfo) && !refused_before_it_runs(trigdata->parsetree))
		PG_RETURN_VOID();
	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		(void) guard_applies(fcinfo);	/* raises the error */

	/* the objects, found as the command will find them */
	if (IsA(trigdata->parsetree, DropOwnedStmt))
	{
		List	   *roles = NIL;
		ListCell   *lc;

		foreach(lc, ((DropOwnedStmt *) trigdata->parsetree)->roles)
		{
			Oid			role = get_rolespec_oid(lfirst(lc), true);

			if (OidIsValid(role))
				roles = lappend_oid(roles, role);
		}
		if (roles == NIL)
			PG_RETURN_VOID();
		params[0] = "DROP OWNED ... CASCADE";
		params[1] = oid_array(roles);
		nparams = 2;
		sql = RELATIONS_OWNED_CASCADED GUARDED_AMONG;
	}
	else if (IsA(trigdata->parsetree, DropStmt) &&
		drops_an_index_along((DropStmt *) trigdata->parsetree))
	{
		List	   *classids = NIL;
		List	   *objids = NIL;

		cascade_targets((DropStmt *) trigdata->parsetree, &classids, &objids);
		if (objids == NIL)
			PG_RETURN_VOID();
		params[0] = psprintf("%s ... CASCADE", GetCommandTagName(trigdata->tag));
		params[1] = oid_array(classids);
		params[2] = oid_array(objids);
		nparams = 3;
		sql = RELATIONS_CASCADED GUARDED_AMONG;
	}
	else
	{
		List	   *relids = start_targets(trigdata->parsetree);

		if (relids == NIL)
			PG_RETURN_VOID();
		params[0] = GetCommandTagName(trigdata->tag);
		params[1] = oid_array(relids);
		nparams = 2;
		sql = RELATIONS_NAMED GUARDED_AMONG;
	}

	/* then splitdb's queries, under a search_path the caller cannot change */
	nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	if (guard_applies(fcinfo))
		refuse_if_guarded(sql, nparams, params);
	AtEOXact_GUC(true, nestlevel);
	PG_RETURN_VOID();
}

/*
 * splitdb_archive_guard_install
 *		Give every archived original of job_id (tables and partitioned
 *		tables, partitions included) the statement trigger that refuses
 *		writes.  From the cutover, in its transaction, after the move.
 *
 * The caller is connected to SPI.
 */
void
splitdb_archive_guard_install(int64 job_id, const char *service)
{
	const char *params[2] = {psprintf(INT64_FORMAT, job_id), service};
	List	   *statements = NIL;
	ListCell   *lc;

	splitdb_catalog_exec_text("SELECT pg_catalog.format('CREATE TRIGGER splitdb_archive_guard"
							  " BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s"
							  " FOR EACH STATEMENT EXECUTE FUNCTION splitdb.archive_guard(%L, %L, %L)',"
							  "  t.relid::pg_catalog.regclass, t.table_name, $2,"
							  "  coalesce((SELECT r.table_name FROM splitdb.job_table r"
							  "             WHERE r.job_id = t.job_id AND r.relid = t.partition_root),"
							  "           t.table_name))"
							  "  FROM splitdb.job_table t"
							  " WHERE t.job_id = $1::bigint AND t.relkind IN ('r', 'p')"
							  "   AND NOT EXISTS (SELECT FROM pg_catalog.pg_trigger g"
							  "                    WHERE g.tgrelid = t.relid AND g.tgname = 'splitdb_archive_guard')"
							  " ORDER BY t.relid",
							  2, params, true);
	for (uint64 i = 0; i < SPI_processed; i++)
		statements = lappend(statements,
							 SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
	foreach(lc, statements)
		splitdb_spi_exec((const char *) lfirst(lc), 0, NULL, NULL, NULL, false, 0);
}

/*
 * splitdb_archive_guard
 *		SQL: statement trigger on an archived original; refuses the write.
 *		Arguments: the table's name before the cutover, its service, and
 *		the shim that takes its writes (a partition's: its root's).
 */
Datum
splitdb_archive_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	const char *op;
	const char *was = "?";
	const char *service = "?";
	const char *shim = "?";

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function splitdb.archive_guard() must be called as a trigger"),
				 errhint("Only splitdb's own triggers on archived originals call it.")));
	if (trigdata->tg_trigger->tgnargs == 3)
	{
		was = trigdata->tg_trigger->tgargs[0];
		service = trigdata->tg_trigger->tgargs[1];
		shim = trigdata->tg_trigger->tgargs[2];
	}
	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		op = "INSERT";
	else if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		op = "UPDATE";
	else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		op = "DELETE";
	else
		op = "TRUNCATE";

	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_IN_USE),
			 errmsg("table \"%s.%s\" is the archived original of table \"%s\" of service \"%s\"",
					get_namespace_name(RelationGetNamespace(trigdata->tg_relation)),
					RelationGetRelationName(trigdata->tg_relation),
					splitdb_message_name(was), service),
			 errdetail("%s on it would change what splitdb_rollback() brings back; the table's rows live in the sibling now.",
					   op),
			 errhint("Write through the shim \"%s\" instead.", splitdb_message_name(shim))));
	PG_RETURN_NULL();			/* keep compiler quiet */
}
