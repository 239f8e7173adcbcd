/*-------------------------------------------------------------------------
 *
 * range.c
 *	  Key ranges of a large table, each copied by a reader of its own.
 *
 * One process that reads and encodes every row is the ceiling of a table's
 * copy, however many streams carry the rows to the sibling.  A table of at
 * least two SPLITDB_MIN_RANGE_ROWS is therefore split by its key (the one
 * copy.c orders batches by) into as many ranges as the job has readers (the
 * worker and its copiers, copier.c), and each range is copied by one reader
 * at a time, in key-ordered batches, with a checkpoint of its own in
 * splitdb.job_range.
 *
 * The bounds come from the key's distribution: the histogram of the first
 * key column in pg_stats when it has enough distinct bounds (nothing is
 * read), else a block sample of the table's keys cut into equal tiles.  A
 * histogram bound covers the first key column only; a range's bounds are
 * compared as rows over as many leading key columns as they have, which
 * still cuts the key space of a composite key into contiguous parts.
 *
 * Invariants:
 * - The ranges of a table are contiguous, disjoint and cover every key:
 *   range 0 is unbounded below, the last unbounded above, and each upper
 *   bound is the next range's lower bound, so no row is sent twice and none
 *   is skipped, whatever the bounds (stale statistics only unbalance them).
 * - A reader copies a range only while it holds the range's session lock
 *   (an advisory lock keyed by job, table and range) and has seen it not
 *   done after taking it: two readers never copy one range at once, and
 *   the locks go with a reader that dies.
 * - A range's checkpoint, its table's sums and the job's heartbeat are one
 *   transaction, recorded only while the job's worker still runs the job
 *   (its pid in splitdb.job, not finished): a copier that outlives its
 *   worker cannot move a checkpoint under a later run.
 * - Offline mode blocks writes to the table for the whole job (worker.c
 *   block_writes), so the readers' different snapshots see the same rows.
 *   An online mode must capture the changes of each range from the
 *   snapshot its reader starts with.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/range.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/memutils.h"

#include "metadata/catalog.h"
#include "migrate/job.h"
#include "migrate/jobstate.h"
#include "migrate/range.h"
#include "migrate/worker_int.h"

/*
 * cuts_from_histogram
 *		n - 1 cuts over the first key column, evenly spaced in its pg_stats
 *		histogram; NULL when there is no histogram (the table was never
 *		analyzed, the type is an array or composite) or it has too few
 *		distinct bounds.  Each cut is a one-element key prefix.
 */
static char ***
cuts_from_histogram(SplitdbCopySource *src, int n, int *ncuts)
{
	const char *params[2];
	char	  **bounds;
	char	 ***cuts;
	int			nbounds;
	int			k = 0;

	params[0] = psprintf("%u", src->relid);
	params[1] = src->key_names[0];
	splitdb_worker_sql("SELECT s.histogram_bounds::pg_catalog.text::pg_catalog.text[]"
					   "  FROM pg_catalog.pg_class c"
					   "  JOIN pg_catalog.pg_namespace ns ON ns.oid = c.relnamespace"
					   "  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid"
					   "   AND pg_catalog.quote_ident(a.attname) = $2"
					   "  JOIN pg_catalog.pg_type t ON t.oid = a.atttypid"
					   "  JOIN pg_catalog.pg_stats s ON s.schemaname = ns.nspname"
					   "   AND s.tablename = c.relname AND s.attname = a.attname AND NOT s.inherited"
					   " WHERE c.oid = $1::pg_catalog.oid AND t.typcategory <> 'A' AND t.typtype <> 'c'"
					   "   AND s.histogram_bounds IS NOT NULL",
					   2, params);
	if (SPI_processed != 1)
		return NULL;
	bounds = splitdb_catalog_array_elems(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
										 1, &nbounds);
	if (nbounds < 2)
		return NULL;

	/* the first bound is the least value: a cut there leaves range 0 empty */
	cuts = palloc(sizeof(char **) * n);
	for (int i = 1; i < n; i++)
	{
		char	   *b = bounds[(int) ((int64) i * (nbounds - 1) / n)];

		if (b == NULL || strcmp(b, bounds[0]) == 0 ||
			(k > 0 && strcmp(cuts[k - 1][0], b) == 0))
			continue;
		cuts[k] = palloc(sizeof(char *));
		cuts[k++][0] = b;
	}
	*ncuts = k;
	return k == n - 1 ? cuts : NULL;
}

/*
 * cuts_from_sample
 *		Up to n - 1 cuts: the first key of each of n equal tiles of a block
 *		sample of the table (SPLITDB_RANGE_SAMPLE_ROWS rows of rows), whole
 *		keys.  Fewer when the sample holds fewer rows.
 */
static char ***
cuts_from_sample(SplitdbCopySource *src, int64 rows, int n, int *ncuts)
{
	StringInfoData sql;
	StringInfoData outer;
	const char *params[2];
	char	 ***cuts;
	double		pct = Min(100.0, 100.0 * SPLITDB_RANGE_SAMPLE_ROWS / Max(rows, 1));

	initStringInfo(&outer);
	for (int k = 0; k < src->nkeys; k++)
		appendStringInfo(&outer, "%ss.%s", k > 0 ? ", " : "", src->key_names[k]);
	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "SELECT DISTINCT ON (s.\"splitdb tile\") %s FROM ("
					 " SELECT %s, pg_catalog.ntile($1::pg_catalog.int4) OVER (ORDER BY %s) AS \"splitdb tile\""
					 "   FROM ONLY %s TABLESAMPLE SYSTEM ($2::pg_catalog.float4)) s"
					 " WHERE s.\"splitdb tile\" > 1 ORDER BY s.\"splitdb tile\", %s",
					 outer.data, src->key_list, src->key_list, src->name, outer.data);
	params[0] = psprintf("%d", n);
	params[1] = psprintf("%.6f", pct);
	splitdb_worker_sql(sql.data, 2, params);

	*ncuts = (int) SPI_processed;
	cuts = palloc(sizeof(char **) * (*ncuts + 1));
	for (int i = 0; i < *ncuts; i++)
	{
		cuts[i] = palloc(sizeof(char *) * src->nkeys);
		for (int k = 0; k < src->nkeys; k++)
			cuts[i][k] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, k + 1);
	}
	return cuts;
}

/*
 * splitdb_range_count
 *		Into how many ranges a table of rows rows is split with readers
 *		readers: each holds at least SPLITDB_MIN_RANGE_ROWS.  Below 2 the
 *		table is copied whole, by one reader.
 */
int
splitdb_range_count(int64 rows, int readers)
{
	return (int) Min((int64) readers, rows / SPLITDB_MIN_RANGE_ROWS);
}

/*
 * splitdb_range_forget
 *		Delete the ranges of a table of a job (relid invalid: of every table
 *		of the job), so that its copy starts over whole or planned again.
 *		In a transaction.
 */
void
splitdb_range_forget(int64 job_id, Oid relid)
{
	const char *params[2];

	params[0] = psprintf(INT64_FORMAT, job_id);
	params[1] = OidIsValid(relid) ? psprintf("%u", relid) : NULL;
	splitdb_worker_sql("DELETE FROM splitdb.job_range WHERE job_id = $1::pg_catalog.int8"
					   "   AND ($2::pg_catalog.oid IS NULL OR relid = $2::pg_catalog.oid)",
					   2, params);
}

/*
 * splitdb_range_plan
 *		Split a table into at most nranges ranges by its key, and record
 *		them, with no checkpoint, in place of any earlier ones.
 *
 * rows: the table's rows (the job counted them while preparing)
 *
 * In a transaction.  Returns the number of ranges recorded; 0, recording
 * none, when the key's distribution gives fewer than two.
 */
int
splitdb_range_plan(int64 job_id, Oid relid, SplitdbCopySource *src,
				   int64 rows, int nranges)
{
	char	 ***cuts;
	int			ncuts = 0;
	int			nlen = 1;

	Assert(src->nkeys > 0 && nranges >= 2);
	splitdb_range_forget(job_id, relid);
	cuts = cuts_from_histogram(src, nranges, &ncuts);
	if (cuts == NULL)
	{
		cuts = cuts_from_sample(src, rows, nranges, &ncuts);
		nlen = src->nkeys;
	}
	if (ncuts == 0)
		return 0;

	for (int r = 0; r <= ncuts; r++)
	{
		const char *params[5];

		params[0] = psprintf(INT64_FORMAT, job_id);
		params[1] = psprintf("%u", relid);
		params[2] = psprintf("%d", r);
		params[3] = r > 0 ? splitdb_catalog_text_array(cuts[r - 1], nlen) : NULL;
		params[4] = r < ncuts ? splitdb_catalog_text_array(cuts[r], nlen) : NULL;
		splitdb_worker_sql("INSERT INTO splitdb.job_range (job_id, relid, range_no, lower_key, upper_key)"
						   " VALUES ($1::pg_catalog.int8, $2::pg_catalog.oid, $3::pg_catalog.int4,"
						   "         $4::pg_catalog.text[], $5::pg_catalog.text[])",
						   5, params);
	}
	return ncuts + 1;
}

/*
 * splitdb_range_load
 *		The ranges of a table of a job, in key order, allocated in the
 *		current memory context.  In a transaction.
 */
List *
splitdb_range_load(int64 job_id, Oid relid)
{
	MemoryContext cxt = CurrentMemoryContext;
	const char *params[2];
	List	   *ranges = NIL;

	params[0] = psprintf(INT64_FORMAT, job_id);
	params[1] = psprintf("%u", relid);
	splitdb_worker_sql("SELECT range_no, lower_key, upper_key, last_key, done FROM splitdb.job_range"
					   " WHERE job_id = $1::pg_catalog.int8 AND relid = $2::pg_catalog.oid"
					   " ORDER BY range_no",
					   2, params);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		MemoryContext old = MemoryContextSwitchTo(cxt);
		SplitdbRange *r = palloc0(sizeof(SplitdbRange));
		bool		isnull;
		int			n;

		r->range_no = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
		r->bounds.lower = splitdb_catalog_array_elems(tup, desc, 2, &r->bounds.nlower);
		r->bounds.upper = splitdb_catalog_array_elems(tup, desc, 3, &r->bounds.nupper);
		r->last_key = splitdb_catalog_array_elems(tup, desc, 4, &n);
		r->done = DatumGetBool(SPI_getbinval(tup, desc, 5, &isnull));
		ranges = lappend(ranges, r);
		MemoryContextSwitchTo(old);
	}
	return ranges;
}

/* the session lock a reader holds on a range while it copies it */
static void
range_lock_tag(LOCKTAG *tag, int64 job_id, Oid relid, int range_no)
{
	struct
	{
		int64		job_id;
		Oid			relid;
		int			range_no;
	}			k;

	memset(&k, 0, sizeof(k));
	k.job_id = job_id;
	k.relid = relid;
	k.range_no = range_no;
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, SPLITDB_RANGE_LOCK_KEY,
						 hash_bytes((const unsigned char *) &k, sizeof(k)), 2);
}

/*
 * claim_range
 *		A range of the reader's table that is not done, locked for this
 *		reader, with its checkpoint, in memory context cxt; NULL when every
 *		range is done or locked by another reader.  With wait, waits for a
 *		range another reader holds instead of passing it over.
 */
static SplitdbRange *
claim_range(SplitdbRangeReader *rd, bool wait, MemoryContext cxt, LOCKTAG *tag)
{
	List	   *ranges;
	ListCell   *lc;

	MemoryContext old;

	/* the list outlives the transaction it is read in */
	splitdb_worker_begin("choosing a range of %s", rd->table);
	old = MemoryContextSwitchTo(cxt);
	ranges = splitdb_range_load(rd->job_id, rd->relid);
	MemoryContextSwitchTo(old);
	foreach(lc, ranges)
	{
		SplitdbRange *r = (SplitdbRange *) lfirst(lc);
		List	   *now;
		ListCell   *lc2;

		if (r->done)
			continue;
		range_lock_tag(tag, rd->job_id, rd->relid, r->range_no);
		if (LockAcquire(tag, ExclusiveLock, true, !wait) == LOCKACQUIRE_NOT_AVAIL)
			continue;

		/* another reader may have finished it: look again, with a new snapshot */
		splitdb_worker_commit();
		splitdb_worker_begin("choosing a range of %s", rd->table);
		now = splitdb_range_load(rd->job_id, rd->relid);
		foreach(lc2, now)
		{
			SplitdbRange *n = (SplitdbRange *) lfirst(lc2);
			SplitdbRange *kept;

			if (n->range_no != r->range_no || n->done)
				continue;
			kept = MemoryContextAlloc(cxt, sizeof(SplitdbRange));
			*kept = *n;
			kept->bounds.lower = n->bounds.lower ?
				splitdb_copy_key(cxt, n->bounds.lower, n->bounds.nlower) : NULL;
			kept->bounds.upper = n->bounds.upper ?
				splitdb_copy_key(cxt, n->bounds.upper, n->bounds.nupper) : NULL;
			kept->last_key = n->last_key ?
				splitdb_copy_key(cxt, n->last_key, rd->src->nkeys) : NULL;
			splitdb_worker_commit();
			return kept;
		}
		LockRelease(tag, ExclusiveLock, true);
	}
	splitdb_worker_commit();
	return NULL;
}

/*
 * record_batch
 *		A range's checkpoint after a batch, with its table's sums and the
 *		job's heartbeat; done once a batch copied nothing.  Raises an error,
 *		recording nothing, when the job's worker no longer runs the job.
 *		In the batch's transaction.
 */
static void
record_batch(SplitdbRangeReader *rd, SplitdbRange *r, char **key, int64 rows,
			 int64 bytes)
{
	const char *params[8];

	params[0] = psprintf(INT64_FORMAT, rd->job_id);
	params[1] = psprintf("%d", rd->worker_pid);
	params[2] = psprintf("%u", rd->relid);
	params[3] = psprintf("%d", r->range_no);
	params[4] = key ? splitdb_catalog_text_array(key, rd->src->nkeys) : NULL;
	params[5] = psprintf(INT64_FORMAT, rows);
	params[6] = psprintf(INT64_FORMAT, bytes);
	params[7] = rows == 0 ? "true" : "false";

	splitdb_worker_sql("UPDATE splitdb.job_range SET last_key = coalesce($5::pg_catalog.text[], last_key),"
					   " rows_copied = rows_copied + $6::pg_catalog.int8,"
					   " bytes_copied = bytes_copied + $7::pg_catalog.int8, done = $8::pg_catalog.bool,"
					   " updated_at = pg_catalog.clock_timestamp()"
					   " WHERE job_id = $1::pg_catalog.int8 AND relid = $3::pg_catalog.oid"
					   "   AND range_no = $4::pg_catalog.int4", 8, params);
	splitdb_worker_sql("UPDATE splitdb.job_table SET rows_copied = rows_copied + $6::pg_catalog.int8,"
					   " bytes_copied = bytes_copied + $7::pg_catalog.int8,"
					   " updated_at = pg_catalog.clock_timestamp()"
					   " WHERE job_id = $1::pg_catalog.int8 AND relid = $3::pg_catalog.oid", 8, params);

	/*
	 * The job's row last, held the shortest: a run that takes the job over
	 * (claim_job) waits for this transaction, or this one sees it and
	 * records nothing.
	 */
	splitdb_worker_sql("UPDATE splitdb.job SET updated_at = pg_catalog.clock_timestamp()"
					   " WHERE job_id = $1::pg_catalog.int8 AND worker_pid = $2::pg_catalog.int4"
					   "   AND finished_at IS NULL", 2, params);
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_ADMIN_SHUTDOWN),
				 errmsg("job " INT64_FORMAT " of service \"%s\" is no longer run by worker %d",
						rd->job_id, rd->service, rd->worker_pid),
				 errhint("The job failed or was taken over; the next run copies range %d of table \"%s\" again from its checkpoint.",
						 r->range_no, splitdb_message_name(rd->table))));
}

/*
 * copy_range
 *		Copy a claimed range from its checkpoint to its end, batch by batch,
 *		each batch a checkpoint.  The rows beyond the checkpoint are gone
 *		from the sibling already (the worker trimmed them).
 */
static void
copy_range(SplitdbRangeReader *rd, SplitdbRange *r)
{
	MemoryContext base = CurrentMemoryContext;
	MemoryContext keycxt = AllocSetContextCreate(base, "splitdb range key",
												 ALLOCSET_SMALL_SIZES);
	char	  **last_key = r->last_key;

	for (;;)
	{
		char	  **key = last_key;
		int64		rows;
		int64		bytes;

		if (rd->check != NULL)
			rd->check(rd->check_arg);
		CHECK_FOR_INTERRUPTS();
		splitdb_worker_begin("copying %s, range %d", rd->table, r->range_no);
		rows = splitdb_copy_batch(rd->conns, rd->nconns, rd->src, &r->bounds, &key,
								  rd->batch_rows, &bytes, rd->service);
		record_batch(rd, r, rows > 0 ? key : NULL, rows, bytes);
		if (rows > 0)
		{
			/* the new checkpoint outlives the transaction; the old one goes */
			MemoryContext next = AllocSetContextCreate(base, "splitdb range key",
													   ALLOCSET_SMALL_SIZES);

			last_key = splitdb_copy_key(next, key, rd->src->nkeys);
			MemoryContextDelete(keycxt);
			keycxt = next;
		}
		splitdb_worker_commit();
		if (rows == 0)
			break;
	}
	MemoryContextDelete(keycxt);
}

/*
 * splitdb_range_read
 *		Copy ranges of the reader's table, one at a time, until none is left
 *		that no other reader holds.
 *
 * wait: wait for ranges other readers hold instead of leaving them (the
 *       worker, once its copiers are gone, for a range none could take)
 *
 * Runs between transactions, in a memory context that lives as long as the
 * call.  Returns the number of ranges this reader copied.
 */
int
splitdb_range_read(SplitdbRangeReader *rd, bool wait)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "splitdb range",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	int			copied = 0;

	for (;;)
	{
		LOCKTAG		tag;
		SplitdbRange *r = claim_range(rd, wait, cxt, &tag);

		if (r == NULL)
			break;
		copy_range(rd, r);
		splitdb_worker_begin("leaving range %d of %s", r->range_no, rd->table);
		LockRelease(&tag, ExclusiveLock, true);
		splitdb_worker_commit();
		copied++;
		MemoryContextReset(cxt);
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return copied;
}
