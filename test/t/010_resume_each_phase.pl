# Copyright (c) 2026, splitdb developers

# One resume after a kill in each phase of a migration job.
#
# A worker that is terminated leaves its sessions in the sibling behind: a
# statement under way there goes on, and may commit, after the worker is
# gone.  Every run of a job first ends those sessions (the fence, fence.c),
# so that exactly one splitdb_migrate(wait => true) after a kill in any
# phase brings the job to done.  For each phase, a service of its own,
# NAME, owns NAME_big (40000 rows, a bigserial key, a secondary index),
# NAME_small (a foreign key to NAME_big) and NAME_zplain (no key, no index:
# the indexing step leaves it alone, and it is verified last; so the jobs
# are offline: online mode refuses a table without a key, and
# 019_online.pl kills online jobs).  The worker
# is held in the phase by something in the sibling that its statement
# waits for, and terminated there, with its sibling session still waiting:
#
# 1. preparing (prep): an event trigger in the sibling makes the CREATE
#    TABLE of the before-data transaction wait for a gate (a table the test
#    holds locked);
# 2. copying (copy): the same event trigger gives the new tables a
#    statement trigger that makes a COPY wait for the gate;
# 3. indexing (idx): the event trigger makes a CREATE INDEX wait for the
#    gate once it has built the index (the case where a resumed run's own
#    CREATE INDEX used to fail on pg_class_relname_nsp_index);
# 4. verifying (ver): held at a CREATE INDEX as in 3, the test locks
#    NAME_zplain in the sibling (ACCESS EXCLUSIVE) and opens the gate: the
#    verification's read of NAME_zplain waits;
# 5. cutting_over (cut): held at the verification as in 4, the test also
#    locks the sibling's sequence of NAME_big (ALTER SEQUENCE in an open
#    transaction) and lets the verification go: the cutover's setval waits.
#
# In 1-3 the gate stays closed while the one resume runs (wait => true,
# statement_timeout 60 s): it can only end done if the killed run's session
# was ended, since the gate never opens for it.  In 4-5 the resume runs in
# the background: the killed run's session must be gone while the lock it
# waited for is still held, then the test releases the lock.  After each
# resume: the job is done after two runs, the worker logged that it ended
# the earlier run's session, the sibling holds exactly the source's rows
# (count, distinct keys, checksum of every row) and as many indexes,
# constraints and triggers per table as the source had, none invalid.
#
# 6. bounded wait (fto): a session that is not splitdb's holds the job's
#    advisory lock in the sibling; with splitdb.fence_timeout = 1s the
#    resume fails with 55P03 naming its pid, and the job is failed with
#    that error; once that session ends, the next resume ends done.
# 7. invalid index (inv): killed while indexing, the killed run's sessions
#    left to end, then the sibling's index under the name of the source's
#    secondary index replaced by one a failed CREATE INDEX CONCURRENTLY
#    left invalid: the resume drops it and builds the source's index.
# 8. indexing again (idx2), with the sibling on a second server reached
#    through a postgres_fdw server of its own: the fence finds the killed
#    run's sessions in that server's pg_locks and ends them the same way.

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SplitdbTest qw(start_source job_sql fingerprint_sql poll_until faults_sql three_tables_sql
  JOB_SUMMARY);

my $rows  = 40000;
my $batch = 4000;

# the first key of the job's advisory lock (SPLITDB_JOB_LOCK_KEY)
my $job_lock_key = 0x73706c75;

my $node = start_source('main', $batch);

# ---------------------------------------------------------------------------
# helpers

# the sibling's server of each service whose sibling is not on $node; a
# sibling database is named as its service
my %sibling_node;

# the cluster that holds database $db: the source's is postgres
sub node_of
{
	my ($db) = @_;
	return $db eq 'postgres' ? $node : ($sibling_node{$db} // $node);
}

sub query
{
	my ($db, $sql) = @_;
	return node_of($db)->safe_psql($db, $sql);
}

# Call $cond until it is true, or $gone is, for at most the default
# timeout; dies then.  Returns the last value of $cond.

# whether no splitdb worker runs in the source
sub no_worker
{
	return query('postgres',
		"SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE backend_type = 'splitdb worker')")
	  eq 't';
}

# rows, distinct keys and a checksum of every row of a table
sub fingerprint
{
	my ($db, $table) = @_;
	return query($db, fingerprint_sql($table, 't::text'));
}

# indexes, constraints and user triggers of a table (the test's own fault
# triggers and splitdb's change capture aside), and invalid indexes
sub objects
{
	my ($db, $table) = @_;
	return query(
		$db, qq{
SELECT (SELECT count(*) FROM pg_index WHERE indrelid = '$table'::regclass) || ' indexes, '
	|| (SELECT count(*) FROM pg_constraint WHERE conrelid = '$table'::regclass) || ' constraints, '
	|| (SELECT count(*) FROM pg_trigger WHERE tgrelid = '$table'::regclass AND NOT tgisinternal
		  AND tgname NOT LIKE 'zz_fault%' AND tgname NOT LIKE 'splitdb\_capture\_%') || ' triggers, '
	|| (SELECT count(*) FROM pg_index WHERE indrelid = '$table'::regclass AND NOT indisvalid)
	|| ' invalid'});
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

# Create the service's tables and the service, with the test's faults in
# its sibling: a gate table, the tags armed, and an event trigger that
# holds the sessions named splitdb at the gate for an armed tag (and gives
# every new table a statement trigger that does so for the tag COPY).
# Returns the fingerprints and object counts of the tables.
sub make_service
{
	my ($svc, %opt) = @_;
	my $n = $opt{rows} // $rows;
	my $server = $opt{server} ? "'$opt{server}'" : 'NULL';
	my @tables = ("${svc}_big", "${svc}_small", "${svc}_zplain");

	query('postgres',
		three_tables_sql($svc, $n, 2000) . qq{
SELECT splitdb_add_service('$svc', server => $server);
SELECT splitdb_assign('$svc', '${svc}_big', '${svc}_small', '${svc}_zplain');
});
	query($svc, faults_sql());

	my %before = map {
		$_ => {
			rows    => fingerprint('postgres', "public.$_"),
			objects => objects('postgres', "public.$_")
		}
	} @tables;
	return \%before;
}

# a session of the test in database $db, in a transaction, that ran $sql
sub hold
{
	my ($db, $sql) = @_;
	my $bg = node_of($db)->background_psql($db);
	$bg->query_safe("BEGIN; $sql");
	return $bg;
}

sub release
{
	my ($bg) = @_;
	$bg->query_safe('ROLLBACK');
	$bg->quit;
	return;
}

# the gate of $svc's sibling, closed; tags armed
sub close_gate
{
	my ($svc, @tags) = @_;
	query($svc, 'INSERT INTO faults.armed VALUES ' . join(', ', map { "('$_')" } @tags))
	  if @tags;
	return hold($svc, 'LOCK TABLE faults.gate IN EXCLUSIVE MODE');
}

sub disarm
{
	my ($svc) = @_;
	query($svc, 'DELETE FROM faults.armed');
	return;
}

# Wait until a splitdb session in $svc's sibling waits for a lock on
# $relation, or the worker is gone.  Returns the pids of the splitdb
# sessions in the sibling then, comma-separated; a failing assertion and
# undef when none waits.
sub wait_sibling_waiter
{
	my ($svc, $relation, $what) = @_;
	my $waiter = qq{SELECT EXISTS (SELECT FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE a.datname = current_database() AND a.application_name = 'splitdb' AND NOT l.granted
		  AND l.locktype = 'relation' AND l.relation = '$relation'::regclass)};

	poll_until(sub { query($svc, $waiter) eq 't' }, \&no_worker, "the sibling of $svc");
	if (!ok(query($svc, $waiter) eq 't', "$svc: $what waits in the sibling"))
	{
		diag(job_summary($svc));
		return undef;
	}
	return sibling_sessions($svc);
}

# the pids of splitdb's sessions in $svc's sibling, comma-separated
sub sibling_sessions
{
	my ($svc) = @_;
	return query($svc,
		"SELECT coalesce(string_agg(pid::text, ',' ORDER BY pid), '') FROM pg_stat_activity"
		  . " WHERE datname = current_database() AND application_name = 'splitdb'");
}

# how many of the sessions $pids of $svc's sibling are still there
sub alive
{
	my ($svc, $pids) = @_;
	return query($svc,
		"SELECT count(*) FROM pg_stat_activity WHERE pid IN ($pids)");
}

# Terminate the service's worker and wait until it is gone; the job is
# failed in $phase, and the worker's sibling sessions $pids live on.
sub kill_worker
{
	my ($svc, $phase, $pids) = @_;
	my $pid = job($svc, 'worker_pid');

	is(job($svc, 'phase'), $phase, "$svc: the job is in phase $phase");
	query('postgres', "SELECT pg_terminate_backend($pid)");
	$node->poll_query_until('postgres',
		"SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $pid)")
	  or die "worker $pid did not exit";
	is(job($svc, "state || '|' || phase || '|' || last_sqlstate"),
		"failed|$phase|57P01", "$svc: killed in phase $phase, the job is failed");
	ok(alive($svc, $pids) > 0,
		"$svc: the killed worker's session in the sibling goes on ($pids)");
	return;
}

# The job is done after $runs runs, its last run ended the killed run's
# sessions, and the sibling holds exactly what the source held.
sub check_migrated
{
	my ($svc, $before, $id, $runs) = @_;

	is(job($svc, "state || '|' || runs || '|' || coalesce(last_error, 'no error')"),
		"done|$runs|no error", "$svc: the job is done after $runs runs")
	  or return diag(job_summary($svc));
	ok( $node->log_contains(
			qr/job $id of service "$svc" ended \d+ sessions? of an earlier run in the sibling/),
		"$svc: the last run logged that it ended the earlier run's sessions");
	# splitdb.copy_streams is left at 0 (auto): each run logs the streams it
	# took, a number from 1 to 8
	my @streams = slurp_file($node->logfile) =~
	  /job $id of service "$svc" copies over (\d+) streams?: splitdb\.copy_streams is 0 \(auto\)/g;
	ok(@streams == $runs && !grep({ $_ < 1 || $_ > 8 } @streams),
		"$svc: each of the $runs runs took 1 to 8 streams (auto): @streams");
	# from the cores idle when the run started, sampled (/proc/stat), not
	# from the load average, which lags
	my @idle = slurp_file($node->logfile) =~
	  /job $id of service "$svc" copies over \d+ streams?: splitdb\.copy_streams is 0 \(auto\), with \d+ cores online, (\d+\.\d\d) of them idle over 100 ms/g;
	ok(@idle == $runs, "$svc: each run measured the idle cores: @idle");
	for my $table (sort keys %$before)
	{
		is(fingerprint($svc, "public.$table"),
			$before->{$table}{rows},
			"$svc: the sibling's $table holds exactly the source's rows");
		is(objects($svc, "public.$table"),
			$before->{$table}{objects},
			"$svc: the sibling's $table has the source's indexes, constraints and triggers, once");
	}
	is(query('postgres',
			"SELECT relkind FROM pg_class WHERE oid = 'public.${svc}_big'::regclass"),
		'f', "$svc: public.${svc}_big is a foreign table");
	return;
}

# The one resume, with wait => true, run here; true when it returned $id.
sub resume_wait
{
	my ($svc, $id) = @_;
	my ($out, $err);

	$node->psql(
		'postgres',
		"SET statement_timeout = '60s'; SELECT splitdb_migrate('$svc', wait => true)",
		stdout => \$out,
		stderr => \$err);
	return is($out, $id, "$svc: one splitdb_migrate(wait => true) resumes job $id to done")
	  || diag("stderr: $err");
}

# The one resume, with wait => true, in a session of its own; collect its
# answer with resume_result().
sub resume_start
{
	my ($svc) = @_;
	my $bg = $node->background_psql('postgres');
	$bg->query_until(qr/resume sent/,
		"\\echo resume sent\nSELECT splitdb_migrate('$svc', wait => true);\n");
	return $bg;
}

sub resume_result
{
	my ($bg, $svc, $id) = @_;
	my ($out) = $bg->query('SELECT 0');
	my $err = $bg->{stderr};
	$bg->quit;
	return is($out, "$id\n0",
		"$svc: one splitdb_migrate(wait => true) resumes job $id to done")
	  || diag("stderr: $err");
}

# Wait until the sessions $pids are gone, or the job ended.  True when they
# are gone.
sub wait_ended
{
	my ($svc, $pids, $runs) = @_;
	# the job is still failed from the killed run until the resumed run's
	# worker claims it: only an end of a later run stops the wait
	return poll_until(
		sub { alive($svc, $pids) == 0 },
		sub { job($svc, "state IN ('done', 'failed') AND runs > $runs") eq 't' },
		"the sessions of $svc to end");
}

# ---------------------------------------------------------------------------
# 1-3: held at the gate by a statement in the sibling

sub case_gate
{
	my ($svc, $phase, $tag, %opt) = @_;
	my $before = make_service($svc, %opt);
	my $gate   = close_gate($svc, $tag);

	my $id = query('postgres', "SELECT splitdb_migrate('$svc', mode => 'offline')");
	my $pids = wait_sibling_waiter($svc, 'faults.gate', "a $tag of the $phase step")
	  or return release($gate);
	kill_worker($svc, $phase, $pids);
	disarm($svc);

	# the gate stays closed: only a run that ends the killed session ends
	resume_wait($svc, $id);
	is(alive($svc, $pids), 0, "$svc: the killed run's sibling sessions are gone");
	release($gate);
	check_migrated($svc, $before, $id, 2);
	return;
}

# ---------------------------------------------------------------------------
# 4-5: held at the verification's read of NAME_zplain, and then at the
# cutover's setval of NAME_big's sequence

sub case_late
{
	my ($svc, $phase) = @_;
	my $before = make_service($svc);
	my $gate   = close_gate($svc, 'CREATE INDEX');

	my $id = query('postgres', "SELECT splitdb_migrate('$svc', mode => 'offline')");
	wait_sibling_waiter($svc, 'faults.gate', 'a CREATE INDEX of the indexing step')
	  or return release($gate);
	my $plain = hold($svc, "LOCK TABLE public.${svc}_zplain IN ACCESS EXCLUSIVE MODE");
	disarm($svc);
	release($gate);
	my $pids = wait_sibling_waiter($svc, "public.${svc}_zplain",
		"the verification's read of ${svc}_zplain")
	  or return release($plain);
	my $blocker = $plain;
	my $relation = "public.${svc}_zplain";
	if ($phase eq 'cutting_over')
	{
		# the sibling's sequence behind the source's, so that the cutover sets it (it leaves one that is already as far alone)
		query($svc, "SELECT setval('public.${svc}_big_id_seq', 1)");
		$blocker = hold($svc, "ALTER SEQUENCE public.${svc}_big_id_seq INCREMENT BY 1");
		release($plain);
		$relation = "public.${svc}_big_id_seq";
		$pids = wait_sibling_waiter($svc, $relation, "the cutover's setval")
		  or return release($blocker);
	}
	kill_worker($svc, $phase, $pids);

	# the resumed run ends the killed run's session while the lock it
	# waits for is still held, then waits for that lock itself
	my $runs   = job($svc, 'runs');
	my $resume = resume_start($svc);
	ok(wait_ended($svc, $pids, $runs),
		"$svc: the resumed run ended the killed run's sibling sessions, whose lock is still held")
	  or diag(job_summary($svc));
	wait_sibling_waiter($svc, $relation, 'the resumed run');
	release($blocker);
	resume_result($resume, $svc, $id);
	check_migrated($svc, $before, $id, 2);
	return;
}

# ---------------------------------------------------------------------------
# 6: a holder of the job's lock that is not splitdb's is waited for, boundedly

sub case_fence_timeout
{
	my $svc    = 'fto';
	my $before = make_service($svc, rows => 2000);
	my $gate   = close_gate($svc, 'CREATE TABLE');

	my $id = query('postgres', "SELECT splitdb_migrate('$svc', mode => 'offline')");
	my $pids = wait_sibling_waiter($svc, 'faults.gate', 'a CREATE TABLE of the preparing step')
	  or return release($gate);
	kill_worker($svc, 'preparing', $pids);
	disarm($svc);
	release($gate);

	my $other = $node->background_psql($svc);
	my $other_pid = $other->query_safe(
		"SELECT pg_advisory_lock_shared($job_lock_key, $id), pg_backend_pid()");
	$other_pid =~ s/^.*\|//;

	my ($out, $err);
	my $ret = $node->psql(
		'postgres',
		"SET splitdb.fence_timeout = '1s'; SELECT splitdb_migrate('$svc', wait => true)",
		stdout => \$out,
		stderr => \$err,
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	like(
		$err,
		qr/ERROR:  55P03: migration of service "$svc" failed: sessions of an earlier run of job $id are still open in the sibling of service "$svc" \(Process\(es\) $other_pid of the sibling's server still hold the job's advisory lock after 1000 ms/,
		"$svc: with another session holding the job's lock, the resume fails with 55P03 after splitdb.fence_timeout, naming it");
	is(job($svc, "state || '|' || phase || '|' || last_sqlstate"),
		'failed|preparing|55P03', "$svc: the job is failed, still preparing");
	is(alive($svc, $other_pid), 1, "$svc: the session that is not splitdb's was not ended");

	$other->quit;
	poll_until(sub { alive($svc, $other_pid) == 0 }, sub { 0 }, "session $other_pid to end");
	resume_wait($svc, $id);
	is(job($svc, "state || '|' || runs"), 'done|3', "$svc: then the job is done");
	for my $table (sort keys %$before)
	{
		is(fingerprint($svc, "public.$table"), $before->{$table}{rows},
			"$svc: the sibling's $table holds exactly the source's rows");
	}
	return;
}

case_gate('prep', 'preparing', 'CREATE TABLE');
case_gate('copy', 'copying', 'COPY');
case_gate('idx', 'indexing', 'CREATE INDEX');
case_late('ver', 'verifying');
case_late('cut', 'cutting_over');
case_fence_timeout();

# ---------------------------------------------------------------------------
# 7: an index left invalid in the sibling is built again, not taken as done

sub case_invalid_index
{
	my $svc    = 'inv';
	my $before = make_service($svc, rows => 5000);
	my $gate   = close_gate($svc, 'CREATE INDEX');

	my $id = query('postgres', "SELECT splitdb_migrate('$svc', mode => 'offline')");
	my $pids = wait_sibling_waiter($svc, 'faults.gate', 'a CREATE INDEX of the indexing step')
	  or return release($gate);
	kill_worker($svc, 'indexing', $pids);
	disarm($svc);
	release($gate);
	poll_until(sub { alive($svc, $pids) == 0 }, sub { 0 }, "the sessions of $svc to end");

	# the name of the source's index, taken by an index a failed CREATE
	# INDEX CONCURRENTLY left invalid
	query($svc, 'DROP INDEX IF EXISTS public.inv_big_created_at_idx');
	my ($out, $err);
	node_of($svc)->psql(
		$svc,
		'CREATE UNIQUE INDEX CONCURRENTLY inv_big_created_at_idx ON public.inv_big ((1))',
		stdout => \$out,
		stderr => \$err);
	like($err, qr/could not create unique index/, "$svc: a CREATE INDEX CONCURRENTLY fails in the sibling");
	is( query($svc,
			"SELECT indisvalid FROM pg_index WHERE indexrelid = 'public.inv_big_created_at_idx'::regclass"),
		'f',
		"$svc: it leaves an invalid index under the name of the source's index");

	resume_wait($svc, $id);
	is(job($svc, "state || '|' || runs"), 'done|2', "$svc: the job is done after 2 runs");
	is( query($svc,
			"SELECT pg_get_indexdef(indexrelid) || ' ' || indisvalid FROM pg_index"
			  . " WHERE indexrelid = 'public.inv_big_created_at_idx'::regclass"),
		'CREATE INDEX inv_big_created_at_idx ON public.inv_big USING btree (created_at) true',
		"$svc: the invalid index was dropped and the source's built in its place");
	ok($node->log_contains(qr/job $id of service "$svc" drops an invalid index in the sibling/),
		"$svc: the worker logged that it dropped the invalid index");
	for my $table (sort keys %$before)
	{
		is(fingerprint($svc, "public.$table"), $before->{$table}{rows},
			"$svc: the sibling's $table holds exactly the source's rows");
		is(objects($svc, "public.$table"), $before->{$table}{objects},
			"$svc: the sibling's $table has the source's indexes, constraints and triggers, once");
	}
	return;
}

case_invalid_index();

# 8. the indexing case again, with the sibling on a second server
my $node2 = PostgreSQL::Test::Cluster->new('second');
$node2->init;
$node2->start;
$node2->safe_psql('postgres', 'CREATE DATABASE idx2');
$sibling_node{idx2} = $node2;
{
	my ($host, $port) = ($node2->host, $node2->port);
	my $user = query('postgres', 'SELECT current_user');
	query('postgres', qq{
CREATE SERVER idx2_srv FOREIGN DATA WRAPPER postgres_fdw
	OPTIONS (host '$host', port '$port', dbname 'idx2');
CREATE USER MAPPING FOR CURRENT_USER SERVER idx2_srv OPTIONS (user '$user');
});
}
case_gate('idx2', 'indexing', 'CREATE INDEX', server => 'idx2_srv');
$node2->stop;

$node->stop;
done_testing();
