/*-------------------------------------------------------------------------
 *
 * catchup.c
 *	  Online mode's steps between the copy and the switch: replay rounds
 *	  and their lag, catching up, and the cutover's attempts under the
 *	  freeze budget.
 *
 * A round (online.c) replays what the capture logged into the sibling; this
 * file decides when to run one and what its rate says: catching_up runs
 * rounds until what is left is small (caught_up), and the cutover takes
 * the tables' locks only when what waits fits the freeze budget at the last
 * round's rate, runs the last round with that budget, and lets go, catches
 * up and tries again otherwise (splitdb_online_retry).
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/catchup.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "portability/instr_time.h"
#include "storage/lockdefs.h"
#include "utils/snapmgr.h"

#include "migrate/access.h"
#include "migrate/catchup.h"
#include "migrate/cutover.h"
#include "migrate/job.h"
#include "migrate/lockwait.h"
#include "migrate/online.h"
#include "migrate/worker_int.h"

/* the last replay round outside the cutover, and its rate */
static SplitdbRound last_round;

static void cutover_attempt(SplitdbJob *job, int attempt);
static void catch_up_between(SplitdbJob *job);
static void back_to_catching_up(SplitdbJob *job);

/*
 * splitdb_catchup_round
 *		One replay round in a REPEATABLE READ transaction of its own, then
 *		the lag it leaves, measured and recorded.  Returns the entries left
 *		to replay.
 */
int64
splitdb_catchup_round(SplitdbJob *job, const char *why)
{
	SplitdbRound round;
	int64		pending;

	splitdb_worker_begin_snapshot("replaying the writes captured in the source (%s)", why);
	splitdb_online_round(job, false, 0, &round);
	splitdb_worker_commit();

	splitdb_worker_begin("measuring the lag");
	pending = splitdb_online_pending(job->job_id);
	splitdb_online_record_lag(job, &round, pending);
	splitdb_worker_commit();
	last_round = round;
	return pending;
}

/*
 * replay_ms
 *		How long replaying pending log entries would take at the rate of the
 *		last round; -1 when no round has measured a rate yet.
 */
static double
replay_ms(int64 pending)
{
	if (last_round.seconds <= 0 || last_round.entries <= 0)
		return pending == 0 ? 0 : -1;
	return pending / (last_round.entries / last_round.seconds) * 1000.0;
}

/*
 * caught_up
 *		Whether what is left to replay is small enough for the cutover: 100
 *		entries or fewer, or a round that would take less than half the
 *		freeze budget at the last round's rate.
 */
static bool
caught_up(SplitdbJob *job, int64 pending)
{
	double		ms = replay_ms(pending);

	return pending <= 100 || (ms >= 0 && ms < job->cutover_max_freeze / 2.0);
}

/*
 * splitdb_step_catch_up
 *		Online mode: replay rounds until what is left would take a round
 *		shorter than half the cutover's freeze budget (at the last round's
 *		rate), or is 100 entries or fewer.  Each round and its lag are
 *		recorded; a lag that keeps growing keeps the job here (the status
 *		shows its trend), where splitdb_cancel() can end it.
 */
void
splitdb_step_catch_up(SplitdbJob *job)
{
	for (;;)
	{
		int64		pending;

		splitdb_worker_begin("catching up");
		splitdb_worker_pause_at(job, SPLITDB_PAUSE_CATCHING_UP, "catching_up");
		splitdb_worker_commit();
		pending = splitdb_catchup_round(job, "catching up");
		if (caught_up(job, pending))
			break;
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * splitdb_catchup_verify_round
 *		The round of the verification, in the caller's REPEATABLE READ
 *		transaction, whose snapshot the checksums then read; it is the last
 *		round whose rate counts.
 */
void
splitdb_catchup_verify_round(SplitdbJob *job)
{
	splitdb_online_round(job, false, 0, &last_round);
}

/*
 * cutover_attempt
 *		Online mode: one attempt at the cutover.  Every table is locked
 *		within the job's lock_timeout for them all (in OID order, the order
 *		of every splitdb lock on them: splitdb_lockwait_relations); the
 *		last round replays what the capture
 *		logged since the one before.
 *
 *		The tables are locked before the other relations that the cutover
 *		changes for cross-service references (splitdb_cutover_other_ends())
 *		on odd
 *		attempts, and after them on even ones.  Writers lock in both
 *		orders: a transaction that writes a referenced table and then a
 *		table that refers to it, the first; a statement that writes a
 *		referencing row and then checks (or reads) the referenced one, the
 *		second.  Either, arriving steadily, would meet every attempt of a
 *		single order in a lock cycle that the attempt's lock_timeout ends
 *		on the cutover's side; alternating, one of the two orders gets
 *		through.  The attempt gives up
 *		(lock_not_available), before anything is committed in any
 *		database, when what waits would take longer than the freeze budget
 *		at the last round's rate, when the round runs past the budget, or
 *		when it took longer than the budget in all; else the capture goes
 *		and the cutover runs in the same transaction.
 */
static void
cutover_attempt(SplitdbJob *job, int attempt)
{
	const char *params[2];
	instr_time	start;
	instr_time	held;
	SplitdbRound round;
	int64		pending;
	double		round_ms;
	double		held_ms;
	double		estimate;

	splitdb_access_check_withheld(job->service);
	splitdb_worker_begin("counting the cutover's attempts");
	splitdb_worker_pause_at(job, SPLITDB_PAUSE_CUTOVER, "cutover");
	params[0] = splitdb_worker_int64_text(job->job_id);
	params[1] = psprintf("%d", attempt);
	splitdb_worker_sql("UPDATE splitdb.job SET cutover_attempts = $2::integer,"
					   " updated_at = pg_catalog.clock_timestamp() WHERE job_id = $1::bigint",
					   2, params);
	splitdb_worker_commit();

	splitdb_worker_begin("cutting over (attempt %d)", attempt);
	params[0] = psprintf("%dms", job->cutover_lock_timeout);
	splitdb_worker_sql("SELECT pg_catalog.set_config('lock_timeout', $1, true)", 1, params);
	if (attempt % 2 == 0)
		splitdb_lockwait_relations(splitdb_cutover_other_ends(job->job_id), AccessExclusiveLock,
								   job->cutover_lock_timeout);
	splitdb_lockwait_relations(job->relids, AccessExclusiveLock, job->cutover_lock_timeout);
	INSTR_TIME_SET_CURRENT(start);

	/*
	 * A snapshot taken now: the one the transaction began with is older
	 * than the lock, and misses the writers the lock waited for, whose log
	 * entries the round's DELETE (which takes a snapshot of its own) would
	 * then remove unreplayed.  Every writer has committed by now.
	 */
	PopActiveSnapshot();
	PushActiveSnapshot(GetTransactionSnapshot());

	/*
	 * What is left would take longer than the budget at the last round's
	 * rate: let go at once, rather than hold the writes to find out.
	 */
	pending = splitdb_online_pending(job->job_id);
	estimate = replay_ms(pending);
	if (estimate > job->cutover_max_freeze)
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("the last replay of service \"%s\" would hold writes for about %.0f ms, longer than splitdb.cutover_max_freeze (%d ms)",
						job->service, estimate, job->cutover_max_freeze),
				 errdetail(INT64_FORMAT " captured changes wait, at the last round's rate.", pending),
				 errhint("The next attempt tries again after more rounds without locks; raise splitdb.cutover_max_freeze, or migrate when fewer writes come in.")));

	/* and a round that runs past the budget all the same lets go then */
	splitdb_online_round(job, true, job->cutover_max_freeze, &round);
	INSTR_TIME_SET_CURRENT(held);
	INSTR_TIME_SUBTRACT(held, start);
	round_ms = INSTR_TIME_GET_MILLISEC(held);
	if (round_ms > job->cutover_max_freeze)
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("the last replay of service \"%s\" held writes for %.0f ms, longer than splitdb.cutover_max_freeze (%d ms)",
						job->service, round_ms, job->cutover_max_freeze),
				 errdetail("It replayed " INT64_FORMAT " captured changes.", round.entries),
				 errhint("The next attempt tries again after more rounds without locks; raise splitdb.cutover_max_freeze, or migrate when fewer writes come in.")));
	elog(LOG, "job " INT64_FORMAT " of service \"%s\": the cutover's last replay carried " INT64_FORMAT " changes in %.0f ms",
		 job->job_id, job->service, round.entries, round_ms);

	splitdb_online_remove_capture(job->job_id);
	splitdb_step_cut_over(job);

	/*
	 * The switch is not budgeted (a service's switch can outgrow any
	 * budget, and would then never cut over): say so when it took the
	 * hold past the budget, so that the DBA sees what writes waited.
	 */
	INSTR_TIME_SET_CURRENT(held);
	INSTR_TIME_SUBTRACT(held, start);
	held_ms = INSTR_TIME_GET_MILLISEC(held);
	ereport(held_ms > job->cutover_max_freeze ? WARNING : LOG,
			(errmsg("job " INT64_FORMAT " of service \"%s\" held the tables' locks for %.0f ms at its cutover",
					job->job_id, job->service, held_ms),
			 held_ms > job->cutover_max_freeze ?
			 errdetail("The last replay took %.0f ms, within splitdb.cutover_max_freeze (%d ms); the switch to the shims after it, which the budget does not cover, took %.0f ms.",
					   round_ms, job->cutover_max_freeze, held_ms - round_ms) : 0));
}

/*
 * catch_up_between
 *		Online mode, between the cutover's attempts: rounds without locks
 *		until the job has caught up again (caught_up), at most
 *		CATCH_UP_BETWEEN_ROUNDS of them; the next attempt's estimate decides
 *		whether what is left then fits the budget.
 */
#define CATCH_UP_BETWEEN_ROUNDS 10

static void
catch_up_between(SplitdbJob *job)
{
	for (int i = 0; i < CATCH_UP_BETWEEN_ROUNDS; i++)
	{
		if (caught_up(job, splitdb_catchup_round(job, "between the cutover's attempts")))
			break;
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * back_to_catching_up
 *		Online mode, after the cutover's last attempt: the job stops in the
 *		catching_up phase, so that the next splitdb_migrate() catches up
 *		and tries again; the capture goes on logging meanwhile.
 */
static void
back_to_catching_up(SplitdbJob *job)
{
	const char *params[2];

	splitdb_worker_begin("giving up the cutover");
	params[0] = splitdb_worker_int64_text(job->job_id);
	params[1] = splitdb_worker_phase_name(SPLITDB_PHASE_CATCHING_UP);
	splitdb_worker_sql("UPDATE splitdb.job SET phase = $2, updated_at = pg_catalog.clock_timestamp()"
					   " WHERE job_id = $1::bigint", 2, params);
	splitdb_worker_commit();
}

/*
 * splitdb_catchup_cutover
 *		Online mode's cutover: a round without locks for what was written
 *		while the verification read, then attempts (cutover_attempt) until
 *		one commits the cutover, with rounds between them; after the last,
 *		the job goes back to catching_up and fails with 55P03.
 */
void
splitdb_catchup_cutover(SplitdbJob *job)
{
	splitdb_catchup_round(job, "before the cutover");
	splitdb_online_retry(job, "take the cutover's locks within its budget", cutover_attempt,
						 catch_up_between, back_to_catching_up);
}
