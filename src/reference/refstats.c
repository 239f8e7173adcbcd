/*-------------------------------------------------------------------------
 *
 * refstats.c
 *	  Counters of cross-service reference enforcement, in shared memory.
 *
 * One entry per (database, reference, side) that enforced anything since
 * the server started: keys checked, violations raised, remote round trips
 * and the time they took.  Entries are created under an LWLock and updated
 * with atomics, so counting never waits.  Shared memory is reserved only
 * when splitdb is in shared_preload_libraries; otherwise nothing is counted
 * and splitdb_references shows NULL counters.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/reference/refstats.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "funcapi.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/tuplestore.h"

#include "compat.h"
#include "reference/refstats.h"

PG_FUNCTION_INFO_V1(splitdb_reference_counters);

/* entries the shared table holds; more references are not counted */
#define SPLITDB_REFSTATS_MAX	4096

typedef struct SplitdbRefCounterKey
{
	Oid			datid;
	int64		reference_id;
	char		side;
} SplitdbRefCounterKey;

struct SplitdbRefCounter
{
	SplitdbRefCounterKey key;
	pg_atomic_uint64 checks;
	pg_atomic_uint64 violations;
	pg_atomic_uint64 round_trips;
	pg_atomic_uint64 time_us;
};

typedef struct SplitdbRefStatsShared
{
	LWLock	   *lock;
} SplitdbRefStatsShared;

static SplitdbRefStatsShared *shared = NULL;
static HTAB *counters = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
refstats_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(SplitdbRefStatsShared)) +
						   hash_estimate_size(SPLITDB_REFSTATS_MAX,
											  sizeof(SplitdbRefCounter)));
	RequestNamedLWLockTranche("splitdb_refstats", 1);
}

static void
refstats_shmem_startup(void)
{
	HASHCTL		ctl;
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("splitdb refstats", sizeof(SplitdbRefStatsShared), &found);
	if (!found)
		shared->lock = &(GetNamedLWLockTranche("splitdb_refstats"))->lock;
	ctl.keysize = sizeof(SplitdbRefCounterKey);
	ctl.entrysize = sizeof(SplitdbRefCounter);
	counters = ShmemInitHash("splitdb reference counters",
							 SPLITDB_REFSTATS_MAX, SPLITDB_REFSTATS_MAX,
							 &ctl, HASH_ELEM | HASH_BLOBS);
	LWLockRelease(AddinShmemInitLock);
}

/*
 * splitdb_refstats_init
 *		From _PG_init while preloading: reserve the shared table.
 */
void
splitdb_refstats_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = refstats_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = refstats_shmem_startup;
}

/*
 * splitdb_refstats_get
 *		The counters of a reference end in this database, created on first
 *		use.  NULL when splitdb is not preloaded or the table is full.
 */
SplitdbRefCounter *
splitdb_refstats_get(int64 reference_id, char side)
{
	SplitdbRefCounterKey key;
	SplitdbRefCounter *entry;
	bool		found;

	if (counters == NULL)
		return NULL;
	memset(&key, 0, sizeof(key));
	key.datid = MyDatabaseId;
	key.reference_id = reference_id;
	key.side = side;

	LWLockAcquire(shared->lock, LW_SHARED);
	entry = hash_search(counters, &key, HASH_FIND, NULL);
	LWLockRelease(shared->lock);
	if (entry != NULL)
		return entry;

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	entry = hash_search(counters, &key, HASH_ENTER_NULL, &found);
	if (entry != NULL && !found)
	{
		pg_atomic_init_u64(&entry->checks, 0);
		pg_atomic_init_u64(&entry->violations, 0);
		pg_atomic_init_u64(&entry->round_trips, 0);
		pg_atomic_init_u64(&entry->time_us, 0);
	}
	LWLockRelease(shared->lock);
	return entry;
}

/*
 * splitdb_refstats_add
 *		Add to the counters of an end; c may be NULL (nothing is counted).
 */
void
splitdb_refstats_add(SplitdbRefCounter *c, uint64 checks, uint64 violations,
					 uint64 round_trips, uint64 time_us)
{
	if (c == NULL)
		return;
	if (checks)
		pg_atomic_fetch_add_u64(&c->checks, checks);
	if (violations)
		pg_atomic_fetch_add_u64(&c->violations, violations);
	if (round_trips)
		pg_atomic_fetch_add_u64(&c->round_trips, round_trips);
	if (time_us)
		pg_atomic_fetch_add_u64(&c->time_us, time_us);
}

/*
 * splitdb_reference_counters
 *		Every entry of the shared table, for every database of the cluster.
 */
Datum
splitdb_reference_counters(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HASH_SEQ_STATUS seq;
	SplitdbRefCounter *entry;

	InitMaterializedSRF(fcinfo, 0);
	if (counters == NULL)
		return (Datum) 0;

	LWLockAcquire(shared->lock, LW_SHARED);
	hash_seq_init(&seq, counters);
	while ((entry = hash_seq_search(&seq)) != NULL)
	{
		Datum		values[7];
		bool		nulls[7] = {false};

		values[0] = ObjectIdGetDatum(entry->key.datid);
		values[1] = Int64GetDatum(entry->key.reference_id);
		values[2] = CharGetDatum(entry->key.side);
		values[3] = Int64GetDatum((int64) pg_atomic_read_u64(&entry->checks));
		values[4] = Int64GetDatum((int64) pg_atomic_read_u64(&entry->violations));
		values[5] = Int64GetDatum((int64) pg_atomic_read_u64(&entry->round_trips));
		values[6] = Float8GetDatum(pg_atomic_read_u64(&entry->time_us) / 1000.0);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	LWLockRelease(shared->lock);
	return (Datum) 0;
}
