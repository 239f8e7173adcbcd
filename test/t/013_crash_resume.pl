# Copyright (c) 2026, splitdb developers

# A job whose worker is killed with SIGKILL resumes by itself.
#
# PostgreSQL treats a process killed with SIGKILL as a crash: it ends every
# session, reinitializes shared memory and starts over, without loading
# shared_preload_libraries again (restart_after_crash, on here; the test
# framework turns it off by default).  The launcher runs again after that
# reinitialization and resumes the job.  One cluster, splitdb preloaded,
# one service, crash, owning crash_big (100000 rows) and crash_small (a
# foreign key to crash_big), copied in batches of 2000 rows.  The worker is
# held mid-copy by a session of the test that locks the job's checkpoint
# row of crash_big (the worker stops at its next checkpoint), then killed
# with SIGKILL.  Checked here, without any further splitdb_migrate():
# - the server crash-restarts, and after that the launcher logs its run
#   and that it resumes the job;
# - the job ends done, with runs = 2 (one resumed run, no duplicate);
# - the sibling's tables and the archived originals hold exactly the rows
#   the source held (count, distinct keys, checksum of every row).

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SplitdbTest qw(start_source job_sql fingerprint_sql RUNNING JOB_SUMMARY);

my $rows  = 100000;
my $batch = 2000;
my $svc   = 'crash';

my $running = RUNNING;

my $node = start_source('main', $batch, "restart_after_crash = on\n");

sub query
{
	my ($db, $sql) = @_;
	return $node->safe_psql($db, $sql);
}

# rows, distinct keys and a checksum of every row of a table
sub fingerprint
{
	my ($db, $table) = @_;
	return query($db, fingerprint_sql($table, 'id'));
}

sub job
{
	my ($columns) = @_;
	return query('postgres', job_sql($svc, $columns));
}

sub job_summary
{
	return 'job: ' . job(JOB_SUMMARY);
}

query(
	'postgres', qq{
CREATE TABLE crash_big (
	id         bigint PRIMARY KEY,
	label      text NOT NULL,
	amount     numeric(12,2),
	created_at timestamptz NOT NULL
);
INSERT INTO crash_big
SELECT g, 'row ' || g, CASE WHEN g % 97 = 0 THEN NULL ELSE round((g * 7.31) % 100000, 2) END,
	   timestamptz '2024-01-01 00:00:00+00' + g * interval '37 seconds'
  FROM generate_series(1, $rows) g;
CREATE TABLE crash_small (
	id     integer PRIMARY KEY,
	big_id bigint NOT NULL REFERENCES crash_big (id),
	note   text
);
INSERT INTO crash_small SELECT g, (g * 997) % $rows + 1, 'note ' || g FROM generate_series(1, 300) g;
SELECT splitdb_add_service('$svc');
SELECT splitdb_assign('$svc', 'crash_big', 'crash_small');
});
my %before = map { $_ => fingerprint('postgres', "public.$_") } qw(crash_big crash_small);
like($before{crash_big}, qr/^$rows rows, $rows keys, checksum -?\d+$/,
	"crash_big holds $rows rows");

# A session that waits until the job has checkpointed crash_big past its
# first batch, then locks that checkpoint row and keeps the lock.
my $freezer = $node->background_psql('postgres');
$freezer->query_safe('BEGIN');
$freezer->query_until(
	qr/freezer waits/, qq{\\echo freezer waits
DO \$\$
DECLARE
	n        bigint;
	deadline timestamptz := clock_timestamp()
		+ make_interval(secs => $PostgreSQL::Test::Utils::timeout_default);
BEGIN
	LOOP
		SELECT jt.rows_copied INTO n
		  FROM splitdb.job j JOIN splitdb.job_table jt USING (job_id)
		 WHERE j.service = '$svc' AND jt.table_name = 'public.crash_big';
		IF n > 0 THEN
			PERFORM FROM splitdb.job j JOIN splitdb.job_table jt USING (job_id)
			 WHERE j.service = '$svc' AND jt.table_name = 'public.crash_big' FOR UPDATE OF jt;
			RETURN;
		END IF;
		EXIT WHEN clock_timestamp() > deadline;
		PERFORM pg_sleep(0.005);
	END LOOP;
END
\$\$;
\\echo freezer done
});

my $id = query('postgres', "SELECT splitdb_migrate('$svc')");
like($id, qr/^\d+$/, 'splitdb_migrate returns a job id');
$freezer->query_until(qr/freezer done/, '');

# the worker waits for the checkpoint row, mid-copy
$node->poll_query_until(
	'postgres', qq{
SELECT a.wait_event_type = 'Lock' FROM splitdb.job j
  JOIN pg_stat_activity a ON a.pid = j.worker_pid AND a.backend_type = 'splitdb worker'
 WHERE j.service = '$svc'})
  or die 'the worker is not held at its checkpoint: ' . job_summary();
my ($ckpt, $phase) = split /\|/,
  query('postgres',
	"SELECT rows_copied, phase FROM splitdb.job_table WHERE job_id = $id"
	  . " AND table_name = 'public.crash_big'");
ok($phase eq 'copying' && $ckpt > 0 && $ckpt < $rows,
	"the worker is held while copying crash_big, at $ckpt of $rows rows");
my $pid = job('worker_pid');

# SIGKILL: the postmaster ends every session and reinitializes
my $offset = -s $node->logfile;
is(kill('KILL', $pid), 1, "the worker (pid $pid) is sent SIGKILL");
$node->wait_for_log(qr/all server processes terminated; reinitializing/, $offset);
$freezer->quit;

# the launcher runs again after the reinitialization, by itself
$node->wait_for_log(
	qr/the launcher looked for interrupted jobs in (\d+) of \1 databases/,
	$offset);
my $log = slurp_file($node->logfile, $offset);
ok($log =~ /reinitializing.*the launcher looked for interrupted jobs/s,
	'the launcher logged its run after the crash-restart');
like($log, qr/resuming job $id of service "$svc" after a restart/,
	'the launcher resumes the job after the crash-restart');

# the resumer left worker_pid NULL; the new worker sets it when it takes
# the job, or when it records a failure before that
$node->poll_query_until('postgres',
	"SELECT worker_pid IS NOT NULL AND state NOT IN $running"
	  . " FROM splitdb.job WHERE service = '$svc'")
  or die 'the resumed job does not end: ' . job_summary();
is(job("state || '|' || phase || '|' || runs"), 'done|done|2',
	'the job is done after one resumed run, without another splitdb_migrate()')
  or diag(job_summary());
for my $table (sort keys %before)
{
	is(fingerprint($svc, "public.$table"), $before{$table},
		"the sibling's $table holds exactly the source's rows");
	is(fingerprint('postgres', "splitdb_archive.$table"), $before{$table},
		"the archived $table is the original");
}

$node->stop;
done_testing();
