/*-------------------------------------------------------------------------
 *
 * catalog.c
 *	  Reading and writing splitdb's own catalog tables.
 *
 * splitdb.service and splitdb.owned_table are plain tables of the extension,
 * read and written here through SPI with every value passed as a parameter.
 * They are ordinary transactional data: a refused call rolls back with its
 * transaction and leaves the catalog exactly as it was.  The SPI helpers the
 * other files share (a statement with text parameters, result rows as C
 * strings, text[] literals) live here too.
 *
 * Invariants:
 * - Every function here expects the caller to be connected to SPI, and
 *   returns memory allocated in the SPI procedure context, valid until the
 *   caller's SPI_finish().
 * - Each statement runs with a fresh snapshot (SPI, read-write), so a row a
 *   concurrent transaction committed while we waited for a lock is seen.
 *   The callers rely on this to turn a race into a clean error.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/metadata/catalog.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/varlena.h"

#include "metadata/catalog.h"
#include "compat.h"
#include "splitdb.h"

static int	spi_exec_latest(const char *sql, int nparams, Oid *types, Datum *values,
							const char *nulls, bool read_only, long count);
static void catalog_exec_text(const char *sql, int nparams, const char *const *params,
							  bool read_only, bool latest);

static void run(const char *sql, int nargs, Oid *types, Datum *values,
				const char *nulls, int expected);
static char *get_text(int row, int col);
static bool get_bool(int row, int col);

/*
 * run
 *		Execute one statement through SPI and check its result code.
 *
 * expected: the SPI_OK_* code the statement must return
 */
static void
run(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls,
	int expected)
{
	int			rc = splitdb_spi_exec(sql, nargs, types, values, nulls, false, 0);

	if (rc != expected)
		splitdb_spi_failed(sql, rc);
}

/* the text value of (row, col) of SPI_tuptable, or NULL */
static char *
get_text(int row, int col)
{
	return SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);
}

/* the boolean value of (row, col) of SPI_tuptable; NULL reads as false */
static bool
get_bool(int row, int col)
{
	bool		isnull;
	Datum		d;

	d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col,
					  &isnull);
	return isnull ? false : DatumGetBool(d);
}

/*
 * splitdb_require_superuser
 *		Refuse the call unless the current user is a superuser.
 *
 * function: the SQL function being called, for the message
 */
void
splitdb_require_superuser(const char *function)
{
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for function %s", function),
				 errdetail("splitdb's functions that change services and ownership, or read table data, are reserved to superusers."),
				 errhint("Ask a superuser to run %s().", function)));
}

/*
 * splitdb_require_own_transaction
 *		Refuse (25001) a call inside a transaction block, explicit or
 *		implicit (several statements in one query), as PostgreSQL refuses
 *		CREATE DATABASE there.  For the functions that commit in another
 *		database before the calling transaction commits, which a ROLLBACK of
 *		that transaction could not undo.
 *
 * function: the SQL function being called; detail: what a ROLLBACK would
 * leave; call: the call to run on its own, for the hint
 */
void
splitdb_require_own_transaction(const char *function, const char *detail,
								const char *call)
{
	if (IsTransactionBlock())
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("%s() cannot run inside a transaction block", function),
				 errdetail_internal("%s", detail),
				 errhint("Call %s in a statement of its own, outside BEGIN ... COMMIT.", call)));
}

/*
 * splitdb_error_unknown_service
 *		Raise the error for a service name that is not registered.
 */
void
splitdb_error_unknown_service(const char *service)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("service \"%s\" does not exist", service),
			 errhint("Register it with splitdb_add_service() first; splitdb.service lists the registered services.")));
}

/*
 * splitdb_catalog_get_service
 *		Look a service up by name.
 *
 * service:    the name
 * lock:       lock the row FOR SHARE or FOR UPDATE, or not at all
 * missing_ok: return NULL instead of raising an error when it is not there
 */
SplitdbService *
splitdb_catalog_get_service(const char *service, SplitdbRowLock lock,
							bool missing_ok)
{
	static const char *const sql[] = {
		"SELECT service, dbname, server, server_created, database_created, mapping_role"
		" FROM splitdb.service WHERE service = $1",
		"SELECT service, dbname, server, server_created, database_created, mapping_role"
		" FROM splitdb.service WHERE service = $1 FOR SHARE",
		"SELECT service, dbname, server, server_created, database_created, mapping_role"
		" FROM splitdb.service WHERE service = $1 FOR UPDATE"
	};
	Oid			types[1] = {NAMEOID};
	Datum		values[1];
	SplitdbService *svc;

	values[0] = DirectFunctionCall1(namein, CStringGetDatum(service));
	run(sql[lock], 1, types, values, NULL, SPI_OK_SELECT);

	if (SPI_processed == 0)
	{
		if (!missing_ok)
			splitdb_error_unknown_service(service);
		return NULL;
	}

	svc = palloc0(sizeof(SplitdbService));
	svc->service = get_text(0, 1);
	svc->dbname = get_text(0, 2);
	svc->server = get_text(0, 3);
	svc->server_created = get_bool(0, 4);
	svc->database_created = get_bool(0, 5);
	svc->mapping_role = get_text(0, 6);
	return svc;
}

/*
 * splitdb_catalog_service_of_server
 *		The service that uses a foreign server, or NULL.
 */
SplitdbService *
splitdb_catalog_service_of_server(const char *server)
{
	Oid			types[1] = {NAMEOID};
	Datum		values[1];

	values[0] = DirectFunctionCall1(namein, CStringGetDatum(server));
	run("SELECT service FROM splitdb.service WHERE server = $1",
		1, types, values, NULL, SPI_OK_SELECT);
	if (SPI_processed == 0)
		return NULL;
	return splitdb_catalog_get_service(get_text(0, 1), SPLITDB_LOCK_NONE,
									   false);
}

/*
 * splitdb_catalog_insert_service
 *		Record a new service.  The caller has checked that the name is free.
 */
void
splitdb_catalog_insert_service(const SplitdbService *svc)
{
	Oid			types[6] = {NAMEOID, TEXTOID, NAMEOID, BOOLOID, BOOLOID, NAMEOID};
	Datum		values[6];
	char		nulls[7] = "      ";

	values[0] = DirectFunctionCall1(namein, CStringGetDatum(svc->service));
	values[1] = CStringGetTextDatum(svc->dbname);
	values[2] = DirectFunctionCall1(namein, CStringGetDatum(svc->server));
	values[3] = BoolGetDatum(svc->server_created);
	values[4] = BoolGetDatum(svc->database_created);
	if (svc->mapping_role != NULL)
		values[5] = DirectFunctionCall1(namein,
										CStringGetDatum(svc->mapping_role));
	else
		nulls[5] = 'n';

	run("INSERT INTO splitdb.service"
		" (service, dbname, server, server_created, database_created, mapping_role)"
		" VALUES ($1, $2, $3, $4, $5, $6)"
		" ON CONFLICT (service) DO NOTHING",
		6, types, values, nulls, SPI_OK_INSERT);

	/* a concurrent call registered the same name and committed first */
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("service \"%s\" already exists", svc->service),
				 errhint("Choose another name, or drop it first with splitdb_drop_service().")));
}

/*
 * splitdb_catalog_delete_service
 *		Forget a service.  The caller holds its row FOR UPDATE.
 */
void
splitdb_catalog_delete_service(const char *service)
{
	Oid			types[1] = {NAMEOID};
	Datum		values[1];

	values[0] = DirectFunctionCall1(namein, CStringGetDatum(service));
	run("DELETE FROM splitdb.service WHERE service = $1",
		1, types, values, NULL, SPI_OK_DELETE);
}

/*
 * splitdb_catalog_count_owned
 *		How many tables a service owns, partitions included.
 */
int64
splitdb_catalog_count_owned(const char *service)
{
	Oid			types[1] = {NAMEOID};
	Datum		values[1];
	bool		isnull;

	values[0] = DirectFunctionCall1(namein, CStringGetDatum(service));
	run("SELECT count(*) FROM splitdb.owned_table WHERE service = $1",
		1, types, values, NULL, SPI_OK_SELECT);
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * splitdb_catalog_owner_of
 *		The service that owns a table, or NULL when no service does.
 */
char *
splitdb_catalog_owner_of(Oid relid)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1];

	values[0] = ObjectIdGetDatum(relid);
	run("SELECT service FROM splitdb.owned_table WHERE relid = $1::pg_catalog.regclass",
		1, types, values, NULL, SPI_OK_SELECT);
	return SPI_processed == 0 ? NULL : get_text(0, 1);
}

/*
 * splitdb_catalog_partition_root_of
 *		The partitioned table an owned table was assigned through, or
 *		InvalidOid when it was assigned by itself or is not owned.
 */
Oid
splitdb_catalog_partition_root_of(Oid relid)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1];
	bool		isnull;
	Datum		d;

	values[0] = ObjectIdGetDatum(relid);
	run("SELECT partition_root::pg_catalog.oid FROM splitdb.owned_table"
		" WHERE relid = $1::pg_catalog.regclass",
		1, types, values, NULL, SPI_OK_SELECT);
	if (SPI_processed == 0)
		return InvalidOid;
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? InvalidOid : DatumGetObjectId(d);
}

/*
 * splitdb_catalog_insert_owned
 *		Record that a service owns a table.
 *
 * partition_root: the partitioned table it comes with, or InvalidOid
 *
 * Returns false, changing nothing, when the table already has an owner
 * (a concurrent assign may just have committed one); the caller then reads
 * the owner with splitdb_catalog_owner_of().
 */
bool
splitdb_catalog_insert_owned(Oid relid, const char *service, Oid partition_root)
{
	Oid			types[3] = {OIDOID, NAMEOID, OIDOID};
	Datum		values[3];
	char		nulls[4] = "   ";

	values[0] = ObjectIdGetDatum(relid);
	values[1] = DirectFunctionCall1(namein, CStringGetDatum(service));
	values[2] = ObjectIdGetDatum(partition_root);
	if (!OidIsValid(partition_root))
		nulls[2] = 'n';

	run("INSERT INTO splitdb.owned_table (relid, service, partition_root)"
		" VALUES ($1::pg_catalog.regclass, $2, $3::pg_catalog.regclass)"
		" ON CONFLICT (relid) DO NOTHING",
		3, types, values, nulls, SPI_OK_INSERT);
	return SPI_processed == 1;
}

/*
 * splitdb_catalog_delete_owned
 *		Forget that a service owns a table, and the partitions that came with
 *		it.  Returns how many rows went.
 */
int
splitdb_catalog_delete_owned(Oid relid, const char *service)
{
	Oid			types[2] = {OIDOID, NAMEOID};
	Datum		values[2];

	values[0] = ObjectIdGetDatum(relid);
	values[1] = DirectFunctionCall1(namein, CStringGetDatum(service));
	run("DELETE FROM splitdb.owned_table"
		" WHERE service = $2"
		"   AND (relid = $1::pg_catalog.regclass"
		"        OR partition_root = $1::pg_catalog.regclass)",
		2, types, values, NULL, SPI_OK_DELETE);
	return (int) SPI_processed;
}

/*
 * splitdb_catalog_require_no_job
 *		Refuse a change to a service that has a migration job, running or
 *		done (cancelled and rolled-back jobs do not count).  Read as of now
 *		(splitdb_spi_exec_latest): a REPEATABLE READ transaction older than
 *		the job is refused too, and one older than its cancel or rollback is
 *		not.
 *
 * what: the refused action, for the message ("drop", "assign tables to")
 */
void
splitdb_catalog_require_no_job(const char *service, const char *what)
{
	Oid			types[1] = {NAMEOID};
	Datum		values[1];

	values[0] = DirectFunctionCall1(namein, CStringGetDatum(service));
	(void) splitdb_spi_exec_latest("SELECT job_id, state FROM splitdb.job"
								   " WHERE service = $1 AND state NOT IN ('cancelled', 'rolled_back')"
								   " ORDER BY job_id DESC LIMIT 1",
								   1, types, values, NULL, 0);
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot %s service \"%s\" because it has a migration job", what, service),
				 errdetail("Job %s is %s.", get_text(0, 1), get_text(0, 2)),
				 errhint("A service's tables are fixed from the start of its migration until splitdb_cancel() or splitdb_rollback() ends it; see splitdb_status.")));
}

/*
 * splitdb_spi_connect
 *		SPI_connect(), with its failure reported.
 */
void
splitdb_spi_connect(void)
{
	int			rc = SPI_connect();

	if (rc != SPI_OK_CONNECT)
		splitdb_spi_failed("SPI_connect()", rc);
}

/*
 * splitdb_spi_failed
 *		Report that SQL could not be run through SPI.  Only an internal error
 *		gets here (SPI raises the statement's own errors itself), so it is an
 *		elog, with SPI's code as text.
 */
void
splitdb_spi_failed(const char *sql, int rc)
{
	elog(ERROR, "could not run \"%s\": %s", sql, SPI_result_code_string(rc));
}

/*
 * splitdb_spi_exec
 *		SPI_execute_with_args() (SPI_execute() when nparams is 0 and types is
 *		NULL), with a failure reported; returns SPI's result code.
 */
int
splitdb_spi_exec(const char *sql, int nparams, Oid *types, Datum *values,
				 const char *nulls, bool read_only, long count)
{
	int			rc;

	if (nparams == 0 && types == NULL)
		rc = SPI_execute(sql, read_only, count);
	else
		rc = SPI_execute_with_args(sql, nparams, types, values, nulls,
								   read_only, count);
	if (rc < 0)
		splitdb_spi_failed(sql, rc);
	return rc;
}

/*
 * splitdb_spi_exec_latest
 *		Run a read-only query of splitdb's catalog tables under the newest
 *		snapshot instead of the statement's; returns SPI's result code.
 *
 * For the rows that go with a trigger splitdb installed (a capture, an end
 * of a cross-service reference, a shim's job): PostgreSQL fires the
 * triggers it finds in the catalogs as they are now, so the row must be
 * read as of now too.  Under the statement's snapshot a transaction that
 * took it before the trigger's creation committed (REPEATABLE READ begun
 * before a migration, or a statement that then waited for the lock the
 * creation held) would find the trigger without its row.
 */
int
splitdb_spi_exec_latest(const char *sql, int nparams, Oid *types, Datum *values,
						const char *nulls, long count)
{
	return spi_exec_latest(sql, nparams, types, values, nulls, true, count);
}

/*
 * spi_exec_latest
 *		splitdb_spi_exec_latest(), read-only or not: not read-only, SPI
 *		advances the command counter first, so that the query sees what the
 *		current command did too (an event trigger's query of the objects
 *		its command made).
 */
static int
spi_exec_latest(const char *sql, int nparams, Oid *types, Datum *values,
				const char *nulls, bool read_only, long count)
{
	SPIPlanPtr	plan;
	int			rc;

	plan = SPI_prepare(sql, nparams, types);
	if (plan == NULL)
		splitdb_spi_failed(sql, SPI_result);
	rc = SPI_execute_snapshot(plan, values, nulls, GetLatestSnapshot(),
							  InvalidSnapshot, read_only, false, count);
	if (rc < 0)
		splitdb_spi_failed(sql, rc);
	SPI_freeplan(plan);
	return rc;
}

/*
 * splitdb_catalog_exec_text
 *		Run a statement through SPI with text parameters (a NULL entry is SQL
 *		NULL; the statement casts them).  Raises ERROR when it fails.
 */
void
splitdb_catalog_exec_text(const char *sql, int nparams,
						  const char *const *params, bool read_only)
{
	catalog_exec_text(sql, nparams, params, read_only, false);
}

/*
 * splitdb_catalog_exec_text_latest
 *		splitdb_catalog_exec_text() under the newest snapshot, as
 *		splitdb_spi_exec_latest(): for the guards that decide from splitdb's
 *		catalog what a client's command may do (ddlguard.c, trigguard.c).
 *		A transaction whose snapshot is older than a job, a cutover, a
 *		rollback or a finalize must be refused, or let through, as any
 *		other is now.
 */
void
splitdb_catalog_exec_text_latest(const char *sql, int nparams,
								 const char *const *params, bool read_only)
{
	catalog_exec_text(sql, nparams, params, read_only, true);
}

/* the two above: text parameters, under the statement's or the newest snapshot */
static void
catalog_exec_text(const char *sql, int nparams, const char *const *params,
				  bool read_only, bool latest)
{
	Oid		   *types = palloc(sizeof(Oid) * Max(nparams, 1));
	Datum	   *values = palloc(sizeof(Datum) * Max(nparams, 1));
	char	   *nulls = palloc(Max(nparams, 1));

	for (int i = 0; i < nparams; i++)
	{
		types[i] = TEXTOID;
		values[i] = params[i] ? CStringGetTextDatum(params[i]) : (Datum) 0;
		nulls[i] = params[i] ? ' ' : 'n';
	}
	if (latest)
		(void) spi_exec_latest(sql, nparams, types, values, nulls, read_only, 0);
	else
		splitdb_spi_exec(sql, nparams, types, values, nulls, read_only, 0);
}

/*
 * splitdb_catalog_array_elems
 *		The elements of a text[] or name[] column of an SPI row as C strings
 *		(NULL for a NULL element); NULL and *n = 0 for SQL NULL.
 */
char	  **
splitdb_catalog_array_elems(HeapTuple tuple, TupleDesc desc, int col, int *n)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tuple, desc, col, &isnull);

	*n = 0;
	if (isnull)
		return NULL;
	return splitdb_catalog_text_items(DatumGetArrayTypeP(d), n);
}

/*
 * splitdb_catalog_text_items
 *		The elements of a one-dimensional text[] (or name[]) as C strings,
 *		NULL for a NULL element.
 */
char	  **
splitdb_catalog_text_items(ArrayType *array, int *n)
{
	Datum	   *elems;
	bool	   *nulls;
	char	  **result;

	deconstruct_array(array, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, n);
	result = palloc(sizeof(char *) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
		result[i] = nulls[i] ? NULL : TextDatumGetCString(elems[i]);
	return result;
}

/*
 * splitdb_catalog_parse_text_array
 *		The elements of a text[] literal, as splitdb_catalog_text_items.
 */
char	  **
splitdb_catalog_parse_text_array(const char *literal, int *n)
{
	Datum		d = OidInputFunctionCall(F_ARRAY_IN, (char *) literal, TEXTOID, -1);

	return splitdb_catalog_text_items(DatumGetArrayTypeP(d), n);
}

/*
 * splitdb_catalog_text_array_datum
 *		A one-dimensional text[] of n C strings, NULL ones as NULL elements.
 */
Datum
splitdb_catalog_text_array_datum(char *const *items, int n)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	bool	   *nulls = palloc(sizeof(bool) * Max(n, 1));
	int			dims[1] = {n};
	int			lbs[1] = {1};

	for (int i = 0; i < n; i++)
	{
		nulls[i] = (items[i] == NULL);
		elems[i] = nulls[i] ? (Datum) 0 : CStringGetTextDatum(items[i]);
	}
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs, TEXTOID,
											  -1, false, TYPALIGN_INT));
}

/*
 * splitdb_catalog_result_rows
 *		The rows of SPI_tuptable as arrays of C strings (NULL for SQL NULL),
 *		one palloc'd array per row; NIL when the statement returned none.
 */
List *
splitdb_catalog_result_rows(void)
{
	List	   *rows = NIL;

	if (SPI_tuptable == NULL)
		return NIL;
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		int			ncols = SPI_tuptable->tupdesc->natts;
		char	  **row = palloc(sizeof(char *) * ncols);

		for (int c = 0; c < ncols; c++)
			row[c] = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, c + 1);
		rows = lappend(rows, row);
	}
	return rows;
}

/*
 * splitdb_catalog_text_array
 *		The text[] literal of n C strings (none NULL), to pass as a text
 *		parameter here or to another database.
 */
char *
splitdb_catalog_text_array(char *const *items, int n)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		elems[i] = CStringGetTextDatum(items[i]);
	return OidOutputFunctionCall(F_ARRAY_OUT,
								 PointerGetDatum(construct_array(elems, n, TEXTOID, -1,
																 false, TYPALIGN_INT)));
}

/*
 * splitdb_type_is_object_oid
 *		Whether values of a (base) type are OIDs of database objects: the
 *		reg* types.  Such a value names another object, or none, in another
 *		database, so it crosses databases, and is compared, by its text
 *		form (the object's name).
 */
bool
splitdb_type_is_object_oid(Oid typid)
{
	switch (typid)
	{
		case REGPROCOID:
		case REGPROCEDUREOID:
		case REGOPEROID:
		case REGOPERATOROID:
		case REGCLASSOID:
		case REGCOLLATIONOID:
		case REGTYPEOID:
		case REGROLEOID:
		case REGNAMESPACEOID:
		case REGCONFIGOID:
		case REGDICTIONARYOID:
			return true;
		default:
			return false;
	}
}

/*
 * splitdb_message_name
 *		A schema-qualified name as quote_qualified_identifier() writes it
 *		(public."Order"), as PostgreSQL's messages show a name: its raw
 *		parts joined by a dot (public.Order), for the message to put in
 *		double quotes.  A string that does not parse as a name comes back
 *		unchanged.  Returns a palloc'd string.
 */
char *
splitdb_message_name(const char *qualified)
{
	char	   *copy = pstrdup(qualified);
	List	   *parts;
	StringInfoData buf;
	ListCell   *lc;

	if (!SplitIdentifierString(copy, '.', &parts) || parts == NIL)
		return pstrdup(qualified);
	initStringInfo(&buf);
	foreach(lc, parts)
	{
		if (foreach_current_index(lc) > 0)
			appendStringInfoChar(&buf, '.');
		appendStringInfoString(&buf, (char *) lfirst(lc));
	}
	return buf.data;
}

/*
 * splitdb_catalog_relowner
 *		The role that owns a relation (pg_class.relowner); InvalidOid when
 *		there is no such relation.
 */
Oid
splitdb_catalog_relowner(Oid relid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		return InvalidOid;
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}
