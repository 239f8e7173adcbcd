# Copyright (c) 2026, splitdb developers

# A large table copied by three readers (the worker and two copiers,
# splitdb.copy_readers = 3), stopped mid-copy and resumed.
#
# One cluster, splitdb preloaded.  Each case has a service of its own, NAME,
# owning NAME_big (150000 rows, a composite key of a text and a uuid
# column) and NAME_small (20 rows), copied in batches of 2000 rows, so
# NAME_big is split into three ranges.  The readers are held mid-copy by a
# session of the test that waits until a range has a checkpoint and then
# locks every range's row of splitdb.job_range: each reader stops when it
# records its next checkpoint, its batch committed in the sibling but not
# recorded, so the sibling holds rows beyond the checkpoints.  Checked:
# - while held: two copiers (backend_type "splitdb copier") run beside the
#   worker, the readers wait for the lock, the table's rows_copied is the
#   sum of its ranges' and splitdb_status shows it, and the sibling holds
#   more rows than the checkpoints;
# 1. kill: a copier is terminated (pg_terminate_backend).  Once the ranges
#    are let go, the job is failed in phase copying with 57P01 and "copier
#    N (pid P) of table "public.kill_big" stopped: the copier (pid P) was
#    terminated before its ranges were copied", no copier is left, and some
#    range is not done.  splitdb_migrate(wait => true) resumes it to done.
# 2. main: the worker is terminated.  While the ranges are still locked,
#    the copiers are gone too; the job is failed with 57P01, "the worker
#    (pid P) was terminated before the job ended", and resumes to done.
# 3. stop: the server stops with -m immediate; once started again, the
#    launcher resumes the job by itself, and it ends done after two runs.
# After each: the sibling's tables hold exactly the source's rows (count,
# distinct keys, checksum of every row, and splitdb_verify), every range is
# done, and the ranges' rows add up to the table's.

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SplitdbTest qw(start_source job_sql fingerprint_sql RUNNING JOB_SUMMARY);

my $rows    = 150000;
my $batch   = 2000;
my $readers = 3;
my $running = RUNNING;

my $node = start_source('main', $batch, '', $readers);

sub query
{
	my ($db, $sql) = @_;
	return $node->safe_psql($db, $sql);
}

sub fingerprint
{
	my ($db, $table) = @_;
	return query($db, fingerprint_sql($table, 't::text'));
}

sub job
{
	my ($svc, $columns) = @_;
	return query('postgres', job_sql($svc, $columns));
}

sub job_summary
{
	my ($svc) = @_;
	return 'job: ' . job($svc, JOB_SUMMARY);
}

# the service's tables; returns the fingerprints of the source's
sub make_service
{
	my ($svc) = @_;
	query(
		'postgres', qq{
CREATE TABLE ${svc}_big (
	tag  text NOT NULL,
	id   uuid NOT NULL,
	n    integer NOT NULL,
	note text,
	PRIMARY KEY (tag, id));
INSERT INTO ${svc}_big
SELECT 'tag ' || (g % 4), md5('$svc' || g)::uuid, g, CASE WHEN g % 13 = 0 THEN NULL ELSE 'note ' || g END
  FROM generate_series(1, $rows) g;
CREATE TABLE ${svc}_small (id integer PRIMARY KEY, what text);
INSERT INTO ${svc}_small SELECT g, 'w' || g FROM generate_series(1, 20) g;
SELECT splitdb_add_service('$svc');
SELECT splitdb_assign('$svc', '${svc}_big', '${svc}_small');
});
	return { map { $_ => fingerprint('postgres', "public.$_") } ("${svc}_big", "${svc}_small") };
}

# A session that waits until a range of NAME_big has a checkpoint, then
# locks every range's row and keeps the locks.
sub start_freezer
{
	my ($svc) = @_;
	my $bg = $node->background_psql('postgres');
	my $where = "j.service = '$svc' AND jt.table_name = 'public.${svc}_big'";

	$bg->query_safe('BEGIN');
	$bg->query_until(
		qr/freezer waits/, qq{\\echo freezer waits
DO \$\$
DECLARE
	deadline timestamptz := clock_timestamp()
		+ make_interval(secs => $PostgreSQL::Test::Utils::timeout_default);
BEGIN
	LOOP
		IF EXISTS (SELECT FROM splitdb.job j JOIN splitdb.job_table jt USING (job_id)
					 JOIN splitdb.job_range r USING (job_id, relid)
					WHERE $where AND r.rows_copied > 0) THEN
			PERFORM FROM splitdb.job j JOIN splitdb.job_table jt USING (job_id)
					JOIN splitdb.job_range r USING (job_id, relid)
			 WHERE $where FOR UPDATE OF r;
			PERFORM set_config('faults.held', 'yes', true);
			RETURN;
		END IF;
		EXIT WHEN clock_timestamp() > deadline;
		PERFORM pg_sleep(0.002);
	END LOOP;
END
\$\$;
\\echo freezer done
});
	return $bg;
}

# Start the job with the freezer; check the readers are held mid-copy.
# Returns the job id and the freezer, or nothing after a failing assertion.
sub hold_readers
{
	my ($svc) = @_;
	my $freezer = start_freezer($svc);
	my $id      = query('postgres', "SELECT splitdb_migrate('$svc')");

	$freezer->query_until(qr/freezer done/, '');
	if ($freezer->query_safe(q{SELECT current_setting('faults.held', true)}) ne 'yes')
	{
		fail("$svc: the readers are caught mid-copy");
		return diag(job_summary($svc));
	}

	# the worker and both copiers wait for the locks of their ranges
	my $waiting = q{SELECT count(*) FROM pg_stat_activity
		WHERE backend_type IN ('splitdb worker', 'splitdb copier') AND wait_event_type = 'Lock'};
	if (!$node->poll_query_until('postgres', $waiting, $readers))
	{
		fail("$svc: the $readers readers wait at their checkpoints");
		diag(query('postgres',
			"SELECT string_agg(backend_type || ' ' || coalesce(wait_event_type, '-'), ', ')"
			  . " FROM pg_stat_activity WHERE backend_type LIKE 'splitdb%'"));
		return diag(job_summary($svc));
	}
	is( query('postgres',
			"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'splitdb copier'"),
		$readers - 1,
		"$svc: " . ($readers - 1) . ' copiers run beside the worker');

	# progress: the sum of the ranges, shown by splitdb_status
	my ($table_rows, $range_rows, $ranges, $status_rows) = split /\|/, query(
		'postgres', qq{
SELECT jt.rows_copied, (SELECT sum(r.rows_copied) FROM splitdb.job_range r
						 WHERE r.job_id = jt.job_id AND r.relid = jt.relid),
	   (SELECT count(*) FROM splitdb.job_range r WHERE r.job_id = jt.job_id AND r.relid = jt.relid),
	   (SELECT s.rows_copied FROM splitdb_status s WHERE s.service = '$svc')
  FROM splitdb.job_table jt WHERE jt.job_id = $id AND jt.table_name = 'public.${svc}_big'});
	ok($table_rows > 0 && $table_rows < $rows && $table_rows == $range_rows
		  && $status_rows >= $table_rows && $ranges == $readers,
		"$svc: $ranges ranges; ${svc}_big's progress ($table_rows) is the sum of its ranges' ($range_rows),"
		  . " in splitdb_status ($status_rows)");
	my $sibling = query($svc, "SELECT count(*) FROM public.${svc}_big");
	ok($sibling > $range_rows,
		"$svc: the sibling holds batches beyond the checkpoints ($sibling > $range_rows rows)");
	return ($id, $freezer);
}

# the sibling holds exactly the source's rows; every range is done
sub check_copied
{
	my ($svc, $id, $before) = @_;
	for my $table (sort keys %$before)
	{
		is(fingerprint($svc, "public.$table"), $before->{$table},
			"$svc: the sibling's $table holds exactly the source's rows");
	}
	is( query('postgres',
			"SELECT string_agg(table_name || ' ' || ok, ', ' ORDER BY table_name) FROM splitdb_verify('$svc')"),
		"public.${svc}_big true, public.${svc}_small true",
		"$svc: splitdb_verify finds the same counts and checksums");
	is( query(
			'postgres', qq{
SELECT count(*) || ' ranges, ' || count(*) FILTER (WHERE r.done) || ' done, '
	   || sum(r.rows_copied) || ' rows'
  FROM splitdb.job_range r JOIN splitdb.job_table jt USING (job_id, relid)
 WHERE jt.job_id = $id AND jt.table_name = 'public.${svc}_big'}),
		"$readers ranges, $readers done, $rows rows",
		"$svc: every range is done, and the ranges hold the table's rows");
	return;
}

# ---------------------------------------------------------------------------
# 1. a copier is terminated mid-copy
{
	my $svc    = 'kill';
	my $before = make_service($svc);
	my ($id, $freezer) = hold_readers($svc);
	if (defined $id)
	{
		my $pid = query('postgres',
			"SELECT min(pid) FROM pg_stat_activity WHERE backend_type = 'splitdb copier'");
		is(query('postgres', "SELECT pg_terminate_backend($pid)"), 't', "kill: copier $pid is terminated");
		$freezer->query_safe('ROLLBACK');
		$freezer->quit;

		$node->poll_query_until('postgres', job_sql($svc, "state NOT IN $running"))
		  or die 'the job does not end: ' . job_summary($svc);
		my ($state, $phase, $sqlstate, $error) =
		  split /\|/, job($svc, 'state, phase, last_sqlstate, last_error');
		is("$state $phase $sqlstate", 'failed copying 57P01',
			'kill: the job fails in phase copying with 57P01');
		like(
			$error,
			qr/^copier \d \(pid $pid\) of table "public\.kill_big" stopped: the copier \(pid $pid\) was terminated before its ranges were copied$/,
			'kill: the error names the copier and why it stopped');
		ok( $node->poll_query_until(
				'postgres',
				"SELECT count(*) FROM pg_stat_activity WHERE backend_type IN ('splitdb copier', 'splitdb worker')",
				'0'),
			'kill: the other copier and the worker are gone');
		ok( query('postgres',
				"SELECT count(*) FROM splitdb.job_range WHERE job_id = $id AND NOT done") > 0,
			'kill: ranges are left to copy');

		# resume: each range is trimmed to its checkpoint and copied on
		is(query('postgres', "SELECT splitdb_migrate('$svc', wait => true)"), $id,
			'kill: splitdb_migrate resumes the job');
		is(job($svc, "state || ' ' || runs"), 'done 2', 'kill: the job is done after two runs')
		  or diag(job_summary($svc));
		check_copied($svc, $id, $before);
	}
}

# ---------------------------------------------------------------------------
# 2. the worker is terminated mid-copy: its copiers stop with it
{
	my $svc    = 'main';
	my $before = make_service($svc);
	my ($id, $freezer) = hold_readers($svc);
	if (defined $id)
	{
		my $pid = job($svc, 'worker_pid');
		is(query('postgres', "SELECT pg_terminate_backend($pid)"), 't', "main: the worker $pid is terminated");
		ok( $node->poll_query_until(
				'postgres',
				"SELECT count(*) FROM pg_stat_activity WHERE backend_type IN ('splitdb copier', 'splitdb worker')",
				'0'),
			'main: the copiers are gone with the worker, while their ranges are still locked');
		$freezer->query_safe('ROLLBACK');
		$freezer->quit;
		is( job($svc, "state || ' ' || phase || ' ' || last_sqlstate || ' ' || last_error"),
			"failed copying 57P01 the worker (pid $pid) was terminated before the job ended",
			'main: the job is failed, the worker terminated');
		is(query('postgres', "SELECT splitdb_migrate('$svc', wait => true)"), $id,
			'main: splitdb_migrate resumes the job');
		is(job($svc, "state || ' ' || runs"), 'done 2', 'main: the job is done after two runs')
		  or diag(job_summary($svc));
		check_copied($svc, $id, $before);
	}
}

# ---------------------------------------------------------------------------
# 3. the server stops (immediate) mid-copy
{
	my $svc    = 'stop';
	my $before = make_service($svc);
	my ($id, $freezer) = hold_readers($svc);
	if (defined $id)
	{
		my $offset = -s $node->logfile;
		$node->stop('immediate');
		eval { $freezer->quit; };
		$node->start;
		$node->wait_for_log(qr/resuming job $id of service "$svc" after a restart/, $offset);
		$node->poll_query_until('postgres',
			job_sql($svc, "worker_pid IS NOT NULL AND state NOT IN $running"))
		  or die 'the resumed job does not end: ' . job_summary($svc);
		is(job($svc, "state || ' ' || runs"), 'done 2',
			'stop: the launcher resumed the job, done after two runs')
		  or diag(job_summary($svc));
		like(slurp_file($node->logfile, $offset),
			qr/copies table public\.stop_big in $readers ranges \(\d to go\) with \d readers?/,
			'stop: the resumed run copies the ranges left');
		check_copied($svc, $id, $before);
	}
}

$node->stop;
done_testing();
