/*-------------------------------------------------------------------------
 *
 * freecores.c
 *	  How many of the machine's cores are free when a job's run starts: the
 *	  automatic values (0) of splitdb.copy_streams and splitdb.copy_readers.
 *
 * Free means idle now: the share of the machine's CPU time that was idle
 * (idle and iowait in /proc/stat) over a short sample the worker sleeps
 * through, times the cores online.  The one-minute load average, used
 * where /proc/stat cannot be read, lags: a minute after other work ended
 * it still counts that work's processes, and on a 2-core machine a load of
 * 0.5 or more left one stream, no faster than two in any run of `make
 * bench` there and slower in all but one (docs/benchmarks.md).
 *
 * One sample per process (a run of a job): both settings read it.
 *
 * Copyright (c) 2026, splitdb developers
 *
 * IDENTIFICATION
 *	  src/migrate/freecores.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "miscadmin.h"
#include "portability/instr_time.h"
#include "storage/latch.h"
#include "utils/wait_event.h"

#include "migrate/freecores.h"

/* how long the worker samples the machine's idle time */
#define SAMPLE_MS		100

/* the sample, taken once per process */
static bool sampled = false;
static double cores_free;		/* -1: none could be read */
static char how[128];			/* what cores_free was made of, for the log */

/*
 * read_cpu_times
 *		The machine's CPU time so far, in ticks, from the first line of
 *		/proc/stat: all of it (user to steal) and the idle part (idle and
 *		iowait).  False when it cannot be read.
 */
static bool
read_cpu_times(double *total, double *idle)
{
	FILE	   *f = fopen("/proc/stat", "r");
	double		v[8];
	int			n;

	if (f == NULL)
		return false;
	n = fscanf(f, "cpu %lf %lf %lf %lf %lf %lf %lf %lf",
			   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if (n != 8)
		return false;
	*total = 0;
	for (int i = 0; i < 8; i++)
		*total += v[i];
	*idle = v[3] + v[4];
	return true;
}

/*
 * sleep_ms
 *		Sleep ms milliseconds on the latch, however often it is set
 *		meanwhile (a set latch ends a wait at once).
 */
static void
sleep_ms(long ms)
{
	instr_time	start,
				now;

	INSTR_TIME_SET_CURRENT(start);
	for (;;)
	{
		long		elapsed;

		INSTR_TIME_SET_CURRENT(now);
		INSTR_TIME_SUBTRACT(now, start);
		elapsed = (long) INSTR_TIME_GET_MILLISEC(now);
		if (elapsed >= ms)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 ms - elapsed, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * take_sample
 *		Measure cores_free: the idle share of SAMPLE_MS of the machine's
 *		time, times the cores online; else the cores online less the
 *		one-minute load average; else -1.  The worker sleeps meanwhile, so
 *		its own process does not count as busy.
 */
static void
take_sample(void)
{
	double		total0,
				idle0,
				total1,
				idle1;
	double		load[1];
	long		cores_online = sysconf(_SC_NPROCESSORS_ONLN);

	sampled = true;
	cores_free = -1;
	strlcpy(how, "and the cores online or their idle time could not be read", sizeof(how));
	if (cores_online < 1)
		return;

	if (read_cpu_times(&total0, &idle0))
	{
		sleep_ms(SAMPLE_MS);
		if (read_cpu_times(&total1, &idle1) && total1 > total0)
		{
			cores_free = cores_online * Max(Min((idle1 - idle0) / (total1 - total0), 1.0), 0.0);
			snprintf(how, sizeof(how), "with %ld cores online, %.2f of them idle over %d ms",
					 cores_online, cores_free, SAMPLE_MS);
			return;
		}
	}
	if (getloadavg(load, 1) == 1)
	{
		cores_free = Max(cores_online - load[0], 0.0);
		snprintf(how, sizeof(how), "with %ld cores online and a one-minute load of %.2f",
				 cores_online, load[0]);
	}
}

/*
 * splitdb_free_cores
 *		An automatic setting (0): the free cores (rounded), divided by per,
 *		at least 1 and at most max; 1 when they cannot be read.  Logged,
 *		with what it was made of, so that a run's choice can be read
 *		afterwards: "job N of service "S" <verb> K <unit>s: <setting> is 0
 *		(auto), <how>".
 *
 * splitdb.copy_streams takes a stream per free core: each keeps a backend
 * of the sibling busy parsing rows while the worker reads the source.
 * splitdb.copy_readers takes a reader per SPLITDB_STREAMS_PER_READER free
 * cores: one reader kept about that many streams busy before it became the
 * ceiling.
 */
int
splitdb_free_cores(int64 job_id, const char *service, const char *setting,
				   const char *verb, const char *unit, int per, int max)
{
	int			n = 1;

	if (!sampled)
		take_sample();
	if (cores_free >= 0)
		n = (int) Max(Min(((int) rint(cores_free)) / per, max), 1);
	ereport(LOG,
			(errmsg("job " INT64_FORMAT " of service \"%s\" %s %d %s%s: %s is 0 (auto), %s",
					job_id, service, verb, n, unit, n == 1 ? "" : "s", setting, how)));
	return n;
}
