# Copyright (c) 2026, splitdb developers

# The lock budget of online mode outside the cutover: a cancel that must
# drop the capture's triggers while a session idle in transaction holds a
# lock on a table of the job, and the cutover settings a job keeps when it
# is resumed.
#
# One cluster (splitdb preloaded, so that its launcher resumes jobs after a
# restart; splitdb.cutover_attempts = 6 in its configuration); each case has
# a service of its own, NAME, owning NAME_t (2,000 rows, a bigint key, v =
# 0), its sibling a database of the same cluster.
#
# 1. cancel, blocker stays: the worker held before a round of catching_up
#    (the capture installed), a session updates row 1 of NAME_t and stays
#    idle in transaction; splitdb_cancel() with
#    splitdb.cutover_lock_timeout = 100ms and splitdb.cutover_attempts = 3
#    runs while a client writes NAME_t, one timed UPDATE at a time: every
#    write ends in less than 2 s, at least one while the cancel tries; the
#    cancel fails with 55P03 after 3 attempts, with a hint to call it
#    again; the job is failed and cancellable, the source intact (the
#    table, its rows, the four capture triggers, the capture complete, no
#    registry row of the source marked dropped), the blocker still open,
#    the sibling's table gone.  splitdb_migrate() then refuses to resume
#    the job (55000, naming the service, a hint to finish with
#    splitdb_cancel()) and changes nothing: the job's row, its tables' rows,
#    the table's triggers and the job's registry rows are as before, and no
#    worker runs.  After the blocker commits, a second cancel (the job's own settings)
#    ends the job cancelled: no capture trigger, no capture row, no log
#    schema, every registry row dropped, the sibling's table gone, the
#    source's rows the initial ones plus every committed write.
# 2. cancel, blocker ends: as 1 with 40 attempts; once the cancel has
#    logged its first failed attempt, writes go on for 2 s, then the
#    blocker commits: the same cancel ends the job cancelled, as in 1,
#    every write under 2 s.
# 3. resume: a job started with splitdb.cutover_lock_timeout = 100ms,
#    splitdb.cutover_max_freeze = 400ms and splitdb.cutover_attempts = 2
#    records them in splitdb.job; held before its cutover, a prepared
#    transaction (which outlives a restart) holds a row of NAME_t, and the
#    server stops with -m immediate.  The launcher resumes the job with the
#    recorded settings (its log line), not the server's: the cutover fails
#    after 2 attempts.  A splitdb_migrate() from a session that SET
#    splitdb.cutover_attempts = 3 resumes it with 3 attempts and 100 ms
#    (recorded) and records 3; a call from a session that set nothing
#    takes 3 again.  After COMMIT PREPARED, a resume ends done, the
#    prepared write in the sibling.
# 4. doctor, blocker: a job held in catching_up (the capture installed) is
#    stopped and set cancelled by hand, as a cancel that never reached the
#    source would leave it; a session updates row 1 of NAME_t and stays idle
#    in transaction.  splitdb_doctor(repair => true) with
#    splitdb.cutover_lock_timeout = 100ms and splitdb.cutover_attempts = 3
#    returns in less than 10 s: the job's leftovers in the sibling repaired,
#    those in the source (the capture's triggers and log) reported not
#    repaired, each with the reason (no lock in 3 attempts of 100 ms); the
#    source unchanged (its rows, the four triggers, the capture, the
#    registry rows standing), the blocker still open.  After the blocker
#    commits, a second repair drops them: no capture trigger, no standing
#    registry row, no row of splitdb.capture naming the dropped log, the
#    table's rows with the blocker's write; a third repairs nothing.
# 5. lock budget in all: a job of three tables held before its cutover with
#    splitdb.cutover_lock_timeout = 1000ms, each table written by an open
#    transaction.  Let go, the attempt waits for the first table; its
#    blocker commits after 0.6 s, then the attempt waits for the second,
#    whose blocker commits 0.7 s later: each wait is shorter than
#    lock_timeout, but 1.3 s in all.  The first attempt gives up (its
#    reason in the log) while the second blocker is still open, rather than
#    keeping the first table locked past the budget; once the blockers
#    have committed a later attempt cuts over, with every blocker's write.
# 6. doctor, lock budget in all: a job of three tables left cancelled in
#    catching_up as in 4 (the capture on each table), each table written
#    by an open transaction.  splitdb_doctor(repair => true) with
#    splitdb.cutover_lock_timeout = 1000ms and splitdb.cutover_attempts = 1
#    waits for the first table; its blocker commits after 0.6 s, then the
#    repair waits for the second, whose blocker stays open: 0.7 s later
#    the repair has returned, within the budget for all the tables though
#    each wait was shorter than lock_timeout, the sibling's leftovers
#    repaired and the source's reported not repaired with the reason;
#    the source unchanged (the capture triggers on the three tables, the
#    capture, the registry rows standing).  Once the blockers have
#    committed, a second repair drops them all.

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use SplitdbTest qw(start_source poll_until JOB_SUMMARY);

my $pause_key = 1936747639;    # SPLITDB_MIGRATE_PAUSE_KEY
my $rows      = 2000;

my $node = start_source('source', 500,
	"splitdb.cutover_attempts = 6\nmax_prepared_transactions = 4\n");

sub query
{
	my ($db, $sql) = @_;
	return $node->safe_psql($db, $sql);
}

sub job
{
	my ($id, $columns) = @_;
	return query('postgres', "SELECT $columns FROM splitdb.job WHERE job_id = $id");
}

# the job's state, failed when its row says it runs but its worker is gone
sub job_state
{
	my ($id) = @_;
	return job($id, "CASE WHEN splitdb.job_worker_gone(state, worker_pid) THEN 'failed' ELSE state END");
}

sub running
{
	my ($state) = @_;
	return $state =~ /^(queued|preparing|copying|indexing|catching_up|verifying|cutting_over)$/;
}

# the service NAME, its table and its sibling database
sub make_service
{
	my ($svc) = @_;
	query(
		'postgres', qq{
CREATE TABLE ${svc}_t (id bigint PRIMARY KEY, v integer NOT NULL);
INSERT INTO ${svc}_t SELECT g, 0 FROM generate_series(1, $rows) g;
SELECT splitdb_add_service('$svc');
SELECT splitdb_assign('$svc', '${svc}_t');
});
	return;
}

# a session that holds the pause lock, and an online splitdb_migrate($svc)
# held at $point with the settings $set; returns the holder and the job id
sub start_paused
{
	my ($svc, $point, $set) = @_;
	my $holder = $node->background_psql('postgres');
	$holder->query_safe("SELECT pg_advisory_lock($pause_key, 0)");
	my $id = query('postgres',
		"SET splitdb.migrate_pause_at = '$point'; " . ($set // '') . " SELECT splitdb_migrate('$svc')");
	poll_until(
		sub {
			query('postgres',
				"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'splitdb worker'"
				  . " AND query = 'paused at $point'") eq '1';
		},
		sub { !running(job_state($id)) },
		"the worker of $svc to pause at $point")
	  or die "the job of $svc ended before pausing at $point: " . job($id, JOB_SUMMARY);
	return ($holder, $id);
}

# a session that updates row 1 of NAME_t and stays idle in transaction
sub start_blocker
{
	my ($svc) = @_;
	my $blocker = $node->background_psql('postgres');
	$blocker->query_safe("BEGIN; UPDATE ${svc}_t SET v = v + 1 WHERE id = 1");
	return $blocker;
}

# splitdb_cancel($svc) in the background, after $set; returns its handle
# and references to its stdout and stderr
sub start_cancel
{
	my ($svc, $set) = @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[
			'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'),
			'-c', '\\set VERBOSITY verbose', '-c', "$set SELECT splitdb_cancel('$svc');"
		],
		'>', \$out, '2>', \$err);
	return { h => $h, out => \$out, err => \$err };
}

# whether the cancel $c has ended; reads what it wrote so far
sub ended
{
	my ($c) = @_;
	return 1 unless $c->{h}->pumpable;
	$c->{h}->pump_nb;
	return 0;
}

# One timed UPDATE at a time of NAME_t through $client (each under a
# statement_timeout of 10 s) while $until returns false; returns the
# writes' latencies and how many failed.  Dies after the default timeout.
sub write_while
{
	my ($client, $svc, $until) = @_;
	my (@latency, $failed);
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	$failed = 0;
	for (my $n = 0; !$until->(); $n++)
	{
		my $key   = 2 + ($n * 37) % ($rows - 1);
		my $start = time;
		my ($out, $ret) = $client->query("UPDATE ${svc}_t SET v = v + 1 WHERE id = $key");
		push @latency, time - $start;
		if ($ret)
		{
			$failed++;
			$client->{stderr} = '';
		}
		die "$svc: the cancel does not end" if time > $deadline;
	}
	return (\@latency, $failed);
}

sub longest
{
	my ($latency) = @_;
	my ($max) = sort { $b <=> $a } @$latency;
	return $max // 0;
}

# what the source holds of the job of $svc: the table's kind, its rows and
# the sum of v, the capture triggers on it, whether the capture is
# complete, the registry rows of the source not marked dropped
sub source_state
{
	my ($svc, $id) = @_;
	return query(
		'postgres', qq{
SELECT concat_ws(' ',
       (SELECT relkind::text FROM pg_class WHERE oid = '${svc}_t'::regclass),
       (SELECT count(*) || ' rows, v ' || sum(v) FROM ONLY ${svc}_t),
       (SELECT count(*) || ' triggers' FROM pg_trigger WHERE tgrelid = '${svc}_t'::regclass
         AND tgname LIKE 'splitdb\\_capture\\_%' AND tgenabled = 'A'),
       coalesce(splitdb.capture_problem($id, ARRAY['public.${svc}_t']), 'capture intact'),
       (SELECT count(*) || ' standing' FROM splitdb.artifact
         WHERE job_id = $id AND service IS NULL AND dropped_at IS NULL))});
}

# what a refused call must leave as it was: the job's row, its tables'
# rows, the triggers on NAME_t, the job's registry rows, the workers
sub job_snapshot
{
	my ($svc, $id) = @_;
	return query(
		'postgres', qq{
SELECT concat_ws(E'\n',
       (SELECT j::text FROM splitdb.job j WHERE job_id = $id),
       (SELECT string_agg(t::text, E'\n' ORDER BY relid) FROM splitdb.job_table t WHERE job_id = $id),
       (SELECT string_agg(tgname || ' ' || tgenabled::text, E'\n' ORDER BY tgname)
          FROM pg_trigger WHERE tgrelid = '${svc}_t'::regclass),
       (SELECT string_agg(a::text, E'\n' ORDER BY artifact_id) FROM splitdb.artifact a WHERE job_id = $id),
       (SELECT count(*) || ' workers' FROM pg_stat_activity
         WHERE backend_type = 'splitdb worker'))});
}

# what must hold once the job of $svc is cancelled; $writes: the committed
# UPDATEs of v
sub check_cancelled
{
	my ($svc, $id, $writes) = @_;
	is(job($id, 'state'), 'cancelled', "$svc: the job is cancelled");
	is(source_state($svc, $id),
		"r $rows rows, v $writes 0 triggers public.${svc}_t has no capture row of job $id 0 standing",
		"$svc: the source keeps its table and every committed write; the capture and its registry rows are gone");
	is( query('postgres',
			"SELECT (SELECT count(*) FROM splitdb.capture WHERE job_id = $id) || ' '"
			  . " || (to_regnamespace('splitdb_capture') IS NULL) || ' '"
			  . " || (SELECT count(*) FROM splitdb.artifact WHERE job_id = $id AND dropped_at IS NULL)"),
		'0 true 0', "$svc: no capture row, no log schema, every registry row of the job dropped");
	is(query($svc, "SELECT to_regclass('public.${svc}_t') IS NULL"),
		't', "$svc: the sibling's table is gone");
	return;
}

# ---------------------------------------------------------------------------
# 1. the blocker stays: the cancel gives up after its attempts

{
	my $svc = 'lk_stay';
	make_service($svc);
	my ($holder, $id) = start_paused($svc, 'catching_up');
	is(source_state($svc, $id), "r $rows rows, v 0 4 triggers capture intact 5 standing",
		"$svc: the job captures the table's writes");
	my $blocker = start_blocker($svc);
	my $bpid    = $blocker->query_safe('SELECT pg_backend_pid()');
	my $client  = $node->background_psql('postgres');
	$client->query_safe("SET statement_timeout = '10s'");

	my $c = start_cancel($svc,
		"SET splitdb.cutover_lock_timeout = '100ms'; SET splitdb.cutover_attempts = 3;");
	my ($latency, $failed) = write_while($client, $svc, sub { ended($c) });
	$c->{h}->finish;
	my $err = ${ $c->{err} };

	is($failed, 0, "$svc: no write failed while the cancel tried");
	ok(@$latency > 1, sprintf("$svc: %d writes completed while the cancel tried", scalar @$latency));
	ok(longest($latency) < 2,
		sprintf("$svc: each write took less than 2 s (longest %.3f s)", longest($latency)));
	like($err,
		qr/ERROR:  55P03: could not remove the change capture of service "$svc" from its tables in 3 attempts/,
		"$svc: the cancel fails with 55P03 after 3 attempts");
	like($err, qr/attempt 2 to remove the change capture of service "$svc" failed, retrying/,
		"$svc: it retried");
	like($err, qr/HINT:  .*call splitdb_cancel\('$svc'\) again/, "$svc: its hint says to call it again");
	is(job_state($id), 'failed', "$svc: the job is failed, not cancelled");
	is(query('postgres', "SELECT way_out FROM splitdb_status WHERE service = '$svc'"),
		'cancel', "$svc: and can be cancelled");
	is(source_state($svc, $id),
		"r $rows rows, v " . scalar(@$latency) . " 4 triggers capture intact 5 standing",
		"$svc: the source is intact: its table and rows, the capture complete, its registry rows standing");
	is(query('postgres', "SELECT state FROM pg_stat_activity WHERE pid = $bpid"),
		'idle in transaction', "$svc: the blocker's transaction is still open");
	is(query($svc, "SELECT to_regclass('public.${svc}_t') IS NULL"),
		't', "$svc: the sibling's table is gone already");

	# a resume would work against tables that are not there: refused
	my $before = job_snapshot($svc, $id);
	like($before, qr/^splitdb_capture_.* A\n.*\n0 workers$/ms, "$svc: the snapshot holds the capture triggers, no worker");
	my ($mret, $mout, $merr) = ('', '', '');
	$mret = $node->psql('postgres', "\\set VERBOSITY verbose\nSELECT splitdb_migrate('$svc')",
		stdout => \$mout, stderr => \$merr);
	isnt($mret, 0, "$svc: splitdb_migrate() fails");
	like($merr,
		qr/ERROR:  55000: cannot resume the migration of service "$svc" because its tables are gone from the sibling/,
		"$svc: it refuses to resume the job, with 55000");
	like($merr, qr/DETAIL:  Job $id \(failed in phase catching_up\) made 1 table in the sibling; 1 is not there, public.${svc}_t among them/,
		"$svc: its detail names the missing table");
	like($merr, qr/HINT:  Finish the cancel with splitdb_cancel\('$svc'\)/,
		"$svc: its hint says to finish with splitdb_cancel()");
	is(job_snapshot($svc, $id), $before,
		"$svc: the refusal changes nothing: the job's row, its tables' rows, the triggers, the registry rows, no worker");

	$blocker->query_safe('COMMIT');
	$blocker->quit;
	my ($ret, $out, $cerr) = ('', '', '');
	$ret = $node->psql('postgres', "SELECT splitdb_cancel('$svc')", stdout => \$out, stderr => \$cerr);
	is($ret, 0, "$svc: a second cancel succeeds") or diag($cerr);
	like($cerr, qr/job $id of service "$svc" is cancelled/, "$svc: it says so");
	check_cancelled($svc, $id, 1 + scalar(@$latency));
	$client->quit;
	eval { $holder->quit; };
}

# ---------------------------------------------------------------------------
# 2. the blocker ends while the cancel retries

{
	my $svc = 'lk_end';
	make_service($svc);
	my ($holder, $id) = start_paused($svc, 'catching_up');
	my $blocker = start_blocker($svc);
	my $client  = $node->background_psql('postgres');
	$client->query_safe("SET statement_timeout = '10s'");

	my $c = start_cancel($svc,
		"SET splitdb.cutover_lock_timeout = '100ms'; SET splitdb.cutover_attempts = 40;");
	my $retried = qr/attempt 1 to remove the change capture of service "$svc" failed, retrying/;
	my ($before, $bfailed) = write_while($client, $svc,
		sub { ended($c) || ${ $c->{err} } =~ $retried });
	like(${ $c->{err} }, $retried, "$svc: the cancel's first attempt fails while the blocker is open");
	my $until = time + 2;
	my ($during, $dfailed) = write_while($client, $svc, sub { time > $until });
	$blocker->query_safe('COMMIT');
	$blocker->quit;
	my ($after, $afailed) = write_while($client, $svc, sub { ended($c) });
	$c->{h}->finish;
	my @latency = (@$before, @$during, @$after);

	is($bfailed + $dfailed + $afailed, 0, "$svc: no write failed while the cancel tried");
	ok(@$during > 1, sprintf("$svc: %d writes completed while the cancel retried", scalar @$during));
	ok(longest(\@latency) < 2,
		sprintf("$svc: each write took less than 2 s (longest %.3f s)", longest(\@latency)));
	unlike(${ $c->{err} }, qr/ERROR/, "$svc: the cancel succeeds once the blocker has ended");
	like(${ $c->{err} }, qr/job $id of service "$svc" is cancelled/, "$svc: it says so");
	check_cancelled($svc, $id, 1 + scalar(@latency));
	$client->quit;
	eval { $holder->quit; };
}

# ---------------------------------------------------------------------------
# 3. a resumed job keeps the cutover settings it was started with

{
	my $svc = 'lk_resume';
	make_service($svc);
	my ($holder, $id) = start_paused($svc, 'cutover',
		"SET splitdb.cutover_lock_timeout = '100ms'; SET splitdb.cutover_max_freeze = '400ms';"
		  . " SET splitdb.cutover_attempts = 2;");
	is(job($id, "concat_ws(' ', cutover_lock_timeout, cutover_max_freeze, cutover_max_attempts)"),
		'100 400 2', "$svc: the job records the settings it was started with");
	query('postgres',
		"BEGIN; UPDATE ${svc}_t SET v = v + 1 WHERE id = 1; PREPARE TRANSACTION '${svc}_blocker'");

	my $offset = -s $node->logfile;
	$node->stop('immediate');
	$node->start;
	eval { $holder->quit; };
	$node->wait_for_log(qr/resuming job $id of service "$svc" after a restart/, $offset);
	pass("$svc: the launcher resumes the job after the restart");
	poll_until(sub { job($id, 'runs') eq '2' && !running(job_state($id)) },
		undef, "the end of the resumed run of $svc");
	like(slurp_file($node->logfile, $offset),
		qr/job $id of service "$svc" runs with splitdb.cutover_lock_timeout = 100 ms, splitdb.cutover_max_freeze = 400 ms, splitdb.cutover_attempts = 2/,
		"$svc: the resumed run logs the recorded settings");
	is(job($id, "concat_ws(' ', state, last_sqlstate, cutover_attempts)"),
		'failed 55P03 2', "$svc: its cutover gives up after the recorded 2 attempts, not the server's 6");
	like(job($id, 'last_error'), qr/in 2 attempts/, "$svc: its error names 2 attempts");

	# a session that SET one setting: that one changes, the others stay
	my ($ret, $out, $err) = ('', '', '');
	$node->psql('postgres',
		"SET splitdb.cutover_attempts = 3; SELECT splitdb_migrate('$svc', wait => true)",
		stdout => \$out, stderr => \$err);
	like($err, qr/in 3 attempts/, "$svc: a resume after SET splitdb.cutover_attempts = 3 tries 3 times");
	is(job($id, "concat_ws(' ', cutover_attempts, cutover_lock_timeout, cutover_max_freeze, cutover_max_attempts)"),
		'3 100 400 3', "$svc: and records 3, keeping the other settings");
	$node->psql('postgres', "SELECT splitdb_migrate('$svc', wait => true)", stdout => \$out, stderr => \$err);
	like($err, qr/in 3 attempts/, "$svc: a resume from a session that set nothing keeps 3");
	is(job($id, 'runs'), '4', "$svc: four runs so far");

	query('postgres', "COMMIT PREPARED '${svc}_blocker'");
	is(query('postgres', "SELECT splitdb_migrate('$svc', wait => true)"), $id, "$svc: a last resume");
	is(job($id, 'state'), 'done', "$svc: the job is done") or diag(job($id, JOB_SUMMARY));
	is(query($svc, "SELECT v FROM ${svc}_t WHERE id = 1"), '1', "$svc: the prepared write is in the sibling");
}

# ---------------------------------------------------------------------------
# 4. the doctor's repair in the source waits a bounded time for its locks

{
	my $svc = 'lk_doctor';
	make_service($svc);
	my ($holder, $id) = start_paused($svc, 'catching_up');
	query('postgres',
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'splitdb worker'");
	poll_until(sub { job_state($id) eq 'failed' }, undef, "the worker of $svc to stop");
	eval { $holder->quit; };
	query('postgres', "UPDATE splitdb.job SET state = 'cancelled' WHERE job_id = $id");
	my $in_sibling = query('postgres',
		"SELECT count(*) FROM splitdb.artifact WHERE job_id = $id AND service IS NOT NULL AND dropped_at IS NULL");
	ok($in_sibling > 0, "$svc: the job left $in_sibling objects in its sibling");
	is(source_state($svc, $id), "r $rows rows, v 0 4 triggers capture intact 5 standing",
		"$svc: and its capture in the source");

	my $blocker = start_blocker($svc);
	my $bpid    = $blocker->query_safe('SELECT pg_backend_pid()');
	my $repair  = "SET splitdb.cutover_lock_timeout = '100ms'; SET splitdb.cutover_attempts = 3;"
	  . " SELECT location, repaired, count(*),"
	  . "        bool_and(action LIKE 'drop it; not done: no lock in 3 attempts of at most 100 ms (canceling statement due to lock timeout); end the sessions that hold locks on its table%')"
	  . "   FROM splitdb_doctor(repair => true)"
	  . "  WHERE job_id = $id AND problem = 'left over: the job is cancelled'"
	  . "  GROUP BY 1, 2 ORDER BY 1, 2";
	my $start  = time;
	my $report = query('postgres', $repair);
	my $took   = time - $start;
	ok($took < 10, sprintf("$svc: the repair returns while the blocker is open (%.3f s)", $took));
	like($report, qr/^$svc\|t\|\d+\|f\nsource\|f\|5\|t$/,
		"$svc: the sibling's leftovers are repaired, the source's 5 reported not repaired, with the reason");
	is(source_state($svc, $id), "r $rows rows, v 0 4 triggers capture intact 5 standing",
		"$svc: the source is unchanged: its rows, the capture, its registry rows standing");
	is(query('postgres', "SELECT state FROM pg_stat_activity WHERE pid = $bpid"),
		'idle in transaction', "$svc: the blocker's transaction is still open");
	is(query($svc, "SELECT to_regclass('public.${svc}_t') IS NULL"),
		't', "$svc: the sibling's table is gone");

	$blocker->query_safe('COMMIT');
	$blocker->quit;
	is(query('postgres', $repair), "source|t|5|f",
		"$svc: once the blocker has ended, a second repair drops the source's leftovers");
	is( query('postgres',
			"SELECT concat_ws(' ', (SELECT count(*) || ' rows, v ' || sum(v) FROM ONLY ${svc}_t),"
			  . " (SELECT count(*) || ' triggers' FROM pg_trigger WHERE tgrelid = '${svc}_t'::regclass"
			  . "   AND tgname LIKE 'splitdb\\_capture\\_%'),"
			  . " (SELECT count(*) || ' standing' FROM splitdb.artifact WHERE job_id = $id AND dropped_at IS NULL),"
			  . " (SELECT count(*) || ' capture rows' FROM splitdb.capture WHERE job_id = $id))"),
		"$rows rows, v 1 0 triggers 0 standing 0 capture rows",
		"$svc: no capture trigger, no standing registry row, no splitdb.capture row naming the dropped log; the table keeps its rows and the blocker's write");
	is(query('postgres', "SELECT count(*) FROM splitdb_doctor(repair => true) WHERE repaired AND job_id = $id"),
		'0', "$svc: a third repair finds nothing to repair");
}

# ---------------------------------------------------------------------------
# 5. the cutover's locks, within one lock_timeout for all the tables

{
	my $svc = 'lk_total';
	query(
		'postgres', qq{
CREATE TABLE ${svc}_a (id bigint PRIMARY KEY, v integer NOT NULL);
CREATE TABLE ${svc}_b (id bigint PRIMARY KEY, v integer NOT NULL);
CREATE TABLE ${svc}_c (id bigint PRIMARY KEY, v integer NOT NULL);
INSERT INTO ${svc}_a SELECT g, 0 FROM generate_series(1, 100) g;
INSERT INTO ${svc}_b SELECT g, 0 FROM generate_series(1, 100) g;
INSERT INTO ${svc}_c SELECT g, 0 FROM generate_series(1, 100) g;
SELECT splitdb_add_service('$svc');
SELECT splitdb_assign('$svc', '${svc}_a', '${svc}_b', '${svc}_c');
});
	my ($holder, $id) = start_paused($svc, 'cutover',
		"SET splitdb.cutover_lock_timeout = '1000ms'; SET splitdb.cutover_attempts = 10;");
	my %blocker;
	for my $t (qw(a b c))
	{
		$blocker{$t} = $node->background_psql('postgres');
		$blocker{$t}->query_safe("BEGIN; UPDATE ${svc}_$t SET v = v + 1 WHERE id = 1");
	}
	my $offset = -s $node->logfile;
	my $failed =
	  qr/job $id of service "$svc": attempt 1 to take the cutover's locks within its budget failed, retrying: (canceling statement due to lock timeout|could not lock relation "${svc}_b" within the 1000 ms)/;

	# until the worker waits for the lock of table $t, or attempt 1 failed
	my $waits_for = sub {
		my ($t) = @_;
		poll_until(
			sub {
				query('postgres',
					"SELECT count(*) FROM pg_locks l JOIN splitdb.job j ON j.worker_pid = l.pid"
					  . " WHERE j.job_id = $id AND NOT l.granted AND l.relation = '${svc}_$t'::regclass")
				  eq '1';
			},
			sub { slurp_file($node->logfile, $offset) =~ $failed },
			"the cutover of $svc to wait for ${svc}_$t");
	};

	# Each blocker ends 0.6 to 0.7 s after the attempt began to wait for
	# its table: each wait is shorter than lock_timeout, but the second
	# ends past it counted from the first, so the attempt lets go while
	# the second blocker is open instead of holding the first table locked.
	$holder->query_safe("SELECT pg_advisory_unlock($pause_key, 0)");
	$waits_for->('a');
	usleep(600_000);
	$blocker{a}->query_safe('COMMIT');
	$waits_for->('b');
	usleep(700_000);
	like(slurp_file($node->logfile, $offset), $failed,
		"$svc: the first attempt gave up within one lock_timeout in all, while the second table's blocker was still open");
	$blocker{b}->query_safe('COMMIT');
	$blocker{c}->query_safe('COMMIT');
	$_->quit for values %blocker;
	$holder->quit;
	poll_until(sub { !running(job_state($id)) }, undef, "the end of the job of $svc");
	is(job($id, "state || ' ' || (cutover_attempts >= 2)"),
		'done true', "$svc: a later attempt, once the blockers have ended, cuts over");
	is( query('postgres',
			"SELECT (SELECT sum(v) FROM ${svc}_a) || ' ' || (SELECT sum(v) FROM ${svc}_b)"
			  . " || ' ' || (SELECT sum(v) FROM ${svc}_c)"),
		'1 1 1', "$svc: every blocker's write is in the sibling, read through the shims");
}

# ---------------------------------------------------------------------------
# 6. the doctor's drops in the source, within one lock_timeout for all the
#    tables

{
	my $svc = 'lk_doctor_all';
	my @tables = map { "${svc}_$_" } qw(a b c);
	query('postgres',
		join('', map { "CREATE TABLE $_ (id bigint PRIMARY KEY, v integer NOT NULL);"
			  . " INSERT INTO $_ SELECT g, 0 FROM generate_series(1, 100) g;" } @tables)
		  . " SELECT splitdb_add_service('$svc'); SELECT splitdb_assign('$svc', '"
		  . join("', '", @tables) . "');");
	my ($holder, $id) = start_paused($svc, 'catching_up');
	query('postgres',
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'splitdb worker'");
	poll_until(sub { job_state($id) eq 'failed' }, undef, "the worker of $svc to stop");
	eval { $holder->quit; };
	query('postgres', "UPDATE splitdb.job SET state = 'cancelled' WHERE job_id = $id");

	# the three tables' rows and capture triggers, the capture, the
	# registry rows of the source that stand
	my $state_sql = "SELECT concat_ws(' ', "
	  . join(', ',
		map { "(SELECT count(*) || ' rows, v ' || sum(v) FROM ONLY $_),"
			  . " (SELECT count(*) || ' triggers' FROM pg_trigger WHERE tgrelid = '$_'::regclass"
			  . "   AND tgname LIKE 'splitdb\\_capture\\_%' AND tgenabled = 'A')" } @tables)
	  . ", coalesce(splitdb.capture_problem($id, ARRAY['"
	  . join("', '", map { "public.$_" } @tables)
	  . "']), 'capture intact'),"
	  . " (SELECT count(*) || ' standing' FROM splitdb.artifact"
	  . "   WHERE job_id = $id AND service IS NULL AND dropped_at IS NULL))";
	my $standing = query('postgres',
		"SELECT count(*) FROM splitdb.artifact WHERE job_id = $id AND service IS NULL AND dropped_at IS NULL");
	is(query('postgres', $state_sql),
		"100 rows, v 0 4 triggers 100 rows, v 0 4 triggers 100 rows, v 0 4 triggers capture intact $standing standing",
		"$svc: the job left its capture on the three tables in the source");

	my %blocker;
	for my $t (@tables)
	{
		$blocker{$t} = $node->background_psql('postgres');
		$blocker{$t}->query_safe("BEGIN; UPDATE $t SET v = v + 1 WHERE id = 1");
	}
	my $repair = "SET splitdb.cutover_lock_timeout = '1000ms'; SET splitdb.cutover_attempts = 1;"
	  . " SELECT location, repaired, count(*), bool_and(action ~ '^drop it; not done: no lock in 1 attempt of at most 1000 ms"
	  . " \\((canceling statement due to lock timeout|could not lock relation \"${svc}_[bc]\" within the 1000 ms the locks of the attempt may take in all)\\); end the sessions')"
	  . "   FROM splitdb_doctor(repair => true)"
	  . "  WHERE job_id = $id AND problem = 'left over: the job is cancelled'"
	  . "  GROUP BY 1, 2 ORDER BY 1, 2";
	my ($out, $err) = ('', '');
	my $doctor = IPC::Run::start(
		[
			'psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
			'-d', $node->connstr('postgres') . " application_name=$svc", '-c', $repair
		],
		'>', \$out, '2>', \$err);
	my $doctor_ended = sub {
		return query('postgres', "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$svc'") eq '0';
	};

	# until the doctor waits for the lock of table $t, or has ended
	my $waits_for = sub {
		my ($t) = @_;
		poll_until(
			sub {
				query('postgres',
					"SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
					  . " WHERE a.application_name = '$svc' AND NOT l.granted AND l.relation = '$t'::regclass")
				  eq '1';
			},
			$doctor_ended,
			"the doctor to wait for $t");
	};

	# Each blocker ends 0.6 to 0.7 s after the doctor began to wait for its
	# table: each wait is shorter than lock_timeout, but the second ends
	# past it counted from the first, so the doctor gives up while the
	# second blocker is open instead of holding the first table locked.
	$waits_for->($tables[0]);
	usleep(600_000);
	$blocker{ $tables[0] }->query_safe('COMMIT');
	$waits_for->($tables[1]);
	usleep(700_000);
	ok($doctor_ended->(),
		"$svc: the repair gave up within one lock_timeout in all, while the second table's blocker was still open");
	$doctor->finish;
	like($out, qr/^$svc\|t\|\d+\|f\nsource\|f\|$standing\|t$/,
		"$svc: the sibling's leftovers are repaired, the source's $standing reported not repaired, with the reason")
	  or diag($out, $err);
	is(query('postgres', $state_sql),
		"100 rows, v 1 4 triggers 100 rows, v 0 4 triggers 100 rows, v 0 4 triggers capture intact $standing standing",
		"$svc: the source is unchanged: the capture on the three tables, its registry rows standing");

	$blocker{$_}->query_safe('COMMIT') for @tables[ 1 .. 2 ];
	$_->quit for values %blocker;
	is(query('postgres', $repair), "source|t|$standing|f",
		"$svc: once the blockers have ended, a second repair drops the source's leftovers");
	is(query('postgres', $state_sql),
		"100 rows, v 1 0 triggers 100 rows, v 1 0 triggers 100 rows, v 1 0 triggers"
		  . " public.${svc}_a has no capture row of job $id 0 standing",
		"$svc: no capture trigger, no registry row standing; the tables keep their rows and the blockers' writes");
}

done_testing();
