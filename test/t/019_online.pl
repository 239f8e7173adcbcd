# Copyright (c) 2026, splitdb developers

# Online migrations under continuous writers, with the worker killed,
# the server stopped with -m immediate, and a session idle in transaction
# at the cutover.
#
# Three clusters: "source" (splitdb preloaded: its launcher resumes jobs
# after a restart), "raw" (splitdb installed, not preloaded, restarted
# after a crash: nothing resumes a job by itself, splitdb_migrate() does)
# and "sibling" (each service's sibling database, reached through a
# postgres_fdw server of its own).  Each case has a service of its own,
# NAME, owning NAME_t (ROWS rows, a bigint key); NAME_audit and NAME_ids
# stay in the source.  The writers are pgbench clients (rate-limited) whose
# every transaction writes NAME_t and records the write in NAME_audit in
# the same statement (an UPDATE, v + 1; an INSERT, the id from NAME_ids; a
# DELETE), so NAME_audit holds exactly the committed writes, whether
# NAME_t is the original table or, after the cutover, the shim.  "Exact"
# below: the sibling's NAME_t holds exactly the rows that the initial
# rows and NAME_audit give (count, distinct keys, checksum of every row):
# no write lost, none applied twice.
#
# 1. live: writers throughout an online migration of 20,000 rows in
#    batches of 500, the copy held a while after its first batch; the job
#    ends done, writes were committed during the copy and through the shim
#    after the cutover, no writer saw an error; exact.
# 2. kills (raw): the worker held at copying, catching_up, cutover and
#    cutover_committing (splitdb.migrate_pause_at) and killed with SIGKILL:
#    the server crash-restarts, the job reads as failed and stays where it
#    stopped while new writers write; one splitdb_migrate() resumes it and
#    it ends done after two runs, exact, without copying again: the run
#    killed while copying resumes from its checkpoint (copy_rows_start),
#    the others keep rows_copied and bytes_copied, and their second run
#    never starts copying (copy_started_at stays NULL); no run logs that
#    the tables are copied again.
# 3. immediate stops (source): the worker held at copying and catching_up,
#    the source's server stopped with -m immediate and started: the
#    launcher resumes the job (its log line), writers write meanwhile, the
#    job ends done after two runs, exact, without copying again.
# 4. blocker: the worker held before its first cutover attempt, a session
#    updates a row of the table and stays idle in transaction; with
#    splitdb.cutover_lock_timeout = 100ms and splitdb.cutover_attempts = 3
#    a client's writes keep completing while the cutover tries, each in
#    less than 2 s; the job fails with 55P03 in phase catching_up after 3
#    attempts; the source is intact (the original table, no shim, no
#    archive, the capture complete) and the blocker's transaction is still
#    open.  Once it commits, splitdb_migrate() resumes, the job ends done,
#    exact, the blocker's write in the sibling.
# 5. no key: a table without a primary or unique key is refused online
#    with 0A000, nothing made in the source or the sibling; offline it
#    moves.
# 6. wait: the worker held before its cutover attempt (lock wait 20 s), a
#    session's UPDATE open; the attempt waits for its lock, the UPDATE
#    commits, the job ends done: the update is in the sibling, exact.
# 9. done: the worker held after the commit that made its job done
#    (splitdb.migrate_pause_at = done) and terminated there: the job stays
#    done with no error (before, the worker's exit recorded it failed, and
#    a splitdb_cancel() of it then dropped the sibling's live tables); its
#    cancel is refused, and the shim reads every row.
#
# Cases 4 and 6 guard the cutover's retries (splitdb_online_retry()) and the
# snapshot of its last round, taken once the tables' locks are granted: a
# write that commits while the lock is awaited must be replayed.

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use SplitdbTest qw(start_source fingerprint_sql poll_until psql_verbose sibling_service_sql
  RUNNING JOB_SUMMARY);

my $batch     = 500;
my $pause_key = 1936747639;    # SPLITDB_MIGRATE_PAUSE_KEY
my $running   = RUNNING;

# the application_name of the writers' sessions
use constant WRITER => 'splitdb_test_writer';

my $src = start_source('source', $batch, "restart_after_crash = on\n");
my $raw = PostgreSQL::Test::Cluster->new('raw');
$raw->init;
$raw->append_conf('postgresql.conf', "restart_after_crash = on\nmax_worker_processes = 16\n");
$raw->start;
$raw->safe_psql('postgres', 'CREATE EXTENSION splitdb CASCADE');
my $sib = PostgreSQL::Test::Cluster->new('sibling');
$sib->init;
$sib->start;
my $user = $src->safe_psql('postgres', 'SELECT current_user');

# ---------------------------------------------------------------------------
# helpers

# a service NAME of $rows rows on $node, its sibling database made
sub make_service
{
	my ($node, $svc, $rows, $keyless) = @_;
	my $next = $rows + 1;

	$sib->safe_psql('postgres', "CREATE DATABASE $svc");
	my $table = $keyless
	  ? "CREATE TABLE ${svc}_t (id bigint NOT NULL, v integer NOT NULL, note text NOT NULL, pad text)"
	  : "CREATE TABLE ${svc}_t (id bigint PRIMARY KEY, v integer NOT NULL, note text NOT NULL, pad text)";
	$node->safe_psql(
		'postgres', qq{
$table;
INSERT INTO ${svc}_t SELECT g, 0, 'row ' || g, repeat('x', 50) FROM generate_series(1, $rows) g;
CREATE TABLE ${svc}_audit (
	seq bigserial PRIMARY KEY,
	op  "char" NOT NULL,
	id  bigint NOT NULL,
	at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE SEQUENCE ${svc}_ids START $next;
}
		  . sibling_service_sql($sib, $user, $svc, tables => ["${svc}_t"]));
	return;
}

# the statements of a writer of $svc: an UPDATE (7 in 10), an INSERT (2
# in 10) or a DELETE (1 in 10) of NAME_t, each recording what it changed
# in NAME_audit in the same statement; keys from $min to 2,000 above $rows
sub write_sql
{
	my ($svc, $rows, $min) = @_;
	my $max = $rows + 2000;
	return qq{\\set r random(1, 10)
\\set id random($min, $max)
\\if :r <= 2
WITH w AS (INSERT INTO ${svc}_t (id, v, note) VALUES (nextval('${svc}_ids'), 0, 'new') RETURNING id) INSERT INTO ${svc}_audit (op, id) SELECT 'i', id FROM w;
\\elif :r = 3
WITH w AS (DELETE FROM ${svc}_t WHERE id = :id RETURNING id) INSERT INTO ${svc}_audit (op, id) SELECT 'd', id FROM w;
\\else
WITH w AS (UPDATE ${svc}_t SET v = v + 1, note = 'updated' WHERE id = :id RETURNING id) INSERT INTO ${svc}_audit (op, id) SELECT 'u', id FROM w;
\\endif
};
}

# pgbench writers of $svc on $node: 2 clients, 150 transactions a second
sub start_writers
{
	my ($node, $svc, $rows) = @_;
	my $script = "$PostgreSQL::Test::Utils::tmp_check/${svc}_writer.sql";
	my ($out, $err) = ('', '');

	PostgreSQL::Test::Utils::append_to_file($script, write_sql($svc, $rows, 1)) unless -e $script;
	local $ENV{PGAPPNAME} = WRITER;
	my $h = IPC::Run::start(
		[
			'pgbench', '-n', '-c', '2', '-j', '1', '-R', '150', '-T', '300',
			'-f', $script, '-h', $node->host, '-p', $node->port, 'postgres'
		],
		'>', \$out, '2>', \$err);
	return { h => $h, out => \$out, err => \$err };
}

# stop the writers (when they run) and wait until none of their sessions
# is left on $node (when it is up); returns what pgbench wrote on stderr
sub stop_writers
{
	my ($node, $w) = @_;

	$w->{h}->kill_kill(grace => 5);
	poll_until(
		sub {
			$node->safe_psql('postgres',
				"SELECT count(*) FROM pg_stat_activity WHERE application_name = '" . WRITER . "'") eq '0';
		},
		undef,
		'the end of the writers\' sessions');
	return ${ $w->{err} };
}

sub audit_count
{
	my ($node, $svc) = @_;
	return $node->safe_psql('postgres', "SELECT count(*) FROM ${svc}_audit");
}

# the fingerprint of the rows that NAME_t must hold: the $rows initial
# ones and the inserted ones, less the deleted ones, each with its updates
sub expected_sql
{
	my ($svc, $rows) = @_;
	return qq{
WITH a AS (SELECT id, count(*) FILTER (WHERE op = 'u') AS nu, bool_or(op = 'd') AS del,
                  bool_or(op = 'i') AS ins
             FROM ${svc}_audit GROUP BY id),
     e AS (SELECT k.id, coalesce(a.nu, 0)::integer AS v,
                  CASE WHEN a.nu > 0 THEN 'updated' WHEN k.id > $rows THEN 'new'
                       ELSE 'row ' || k.id END AS note,
                  CASE WHEN k.id <= $rows THEN repeat('x', 50) END AS pad
             FROM (SELECT g AS id FROM generate_series(1, $rows) g
                   UNION ALL SELECT id FROM a WHERE ins) k
             LEFT JOIN a USING (id)
            WHERE NOT coalesce(a.del, false))
SELECT count(*) || ' rows, ' || count(DISTINCT id) || ' keys, checksum '
       || coalesce(sum(hashtext(ROW(id, v, note, pad)::text)), 0) FROM e};
}

# the sibling's NAME_t holds exactly the committed writes
sub check_exact
{
	my ($node, $svc, $rows) = @_;
	my $expected = $node->safe_psql('postgres', expected_sql($svc, $rows));
	my $actual   = $sib->safe_psql($svc, fingerprint_sql("public.${svc}_t", 'id'));

	is($actual, $expected,
		"$svc: the sibling holds exactly the initial rows and the committed writes")
	  or diag(
		"differing keys (sibling row, audit): "
		  . $node->safe_psql(
			'postgres', qq{
SELECT string_agg(coalesce(s.id, a.id) || ': ' || coalesce(s.v::text, 'none') || ' / '
                  || a.ops, '; ' ORDER BY coalesce(s.id, a.id))
  FROM (SELECT id, v FROM ${svc}_t) s
  FULL JOIN (SELECT id, string_agg(op::text, '' ORDER BY seq) AS ops, count(*) FILTER (WHERE op = 'u') AS nu,
                    bool_or(op = 'd') AS del
               FROM ${svc}_audit GROUP BY id) a USING (id)
 WHERE (s.id IS NULL) <> coalesce(a.del, false) OR s.v <> coalesce(a.nu, 0)}));
	return;
}

sub job
{
	my ($node, $id, $columns) = @_;
	return $node->safe_psql('postgres', "SELECT $columns FROM splitdb.job WHERE job_id = $id");
}

# the job's state, failed when its row says it runs but its worker is gone
sub job_state
{
	my ($node, $id) = @_;
	return job($node, $id,
		"CASE WHEN splitdb.job_worker_gone(state, worker_pid) THEN 'failed' ELSE state END");
}

# wait until job $id is no longer running; returns its state.  A worker
# that exits right after committing done can be seen gone while the row
# is read as it was before that commit: the row is read once more.
sub wait_job
{
	my ($node, $id) = @_;
	my $state;
	poll_until(sub { $state = job_state($node, $id); $state !~ /^(queued|preparing|copying|indexing|catching_up|verifying|cutting_over)$/ },
		undef, "the end of job $id");
	my $row = job($node, $id, 'state');
	return $row =~ /^(queued|preparing|copying|indexing|catching_up|verifying|cutting_over)$/ ? $state : $row;
}

# a session of $node that holds the pause lock, and a call of
# splitdb_migrate($svc) with splitdb.migrate_pause_at = $point and the
# settings $set; waits until the worker is paused there; returns the
# holder, the job id and the worker's pid
sub start_paused
{
	my ($node, $svc, $point, $set) = @_;
	my $holder = $node->background_psql('postgres');
	$holder->query_safe("SELECT pg_advisory_lock($pause_key, 0)");
	my $id = $node->safe_psql('postgres',
		"SET splitdb.migrate_pause_at = '$point'; SET splitdb.batch_rows = $batch; "
		  . ($set // '') . " SELECT splitdb_migrate('$svc')");
	poll_until(
		sub {
			$node->safe_psql('postgres',
				"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'splitdb worker'"
				  . " AND query = 'paused at $point'") eq '1';
		},
		sub { job_state($node, $id) !~ /^(queued|preparing|copying|indexing|catching_up|verifying|cutting_over)$/ },
		"the worker of $svc to pause at $point")
	  or die "the job of $svc ended before pausing at $point: " . job($node, $id, JOB_SUMMARY);
	my $pid = job($node, $id, 'worker_pid');
	return ($holder, $id, $pid);
}

# what must hold of every service once its job is done: the shim, the
# capture gone from the source, rounds run
sub check_done
{
	my ($node, $svc, $id) = @_;
	is(job($node, $id, "state || ' ' || mode"), 'done online', "$svc: the online job is done")
	  or diag(job($node, $id, JOB_SUMMARY));
	is($node->safe_psql('postgres', "SELECT relkind FROM pg_class WHERE oid = '${svc}_t'::regclass"),
		'f', "$svc: the table's name leads to the shim");
	is( $node->safe_psql('postgres',
			"SELECT count(*) FROM splitdb.capture WHERE job_id = $id"),
		'0', "$svc: the capture is gone from the source");
	ok(job($node, $id, 'rounds') > 0, "$svc: the job replayed captured writes in rounds");
	return;
}

# ---------------------------------------------------------------------------
# 5. no key: refused online, nothing made; offline it moves

{
	my $svc = 'ol_nokey';
	make_service($src, $svc, 2000, 1);
	my $before = $src->safe_psql('postgres', fingerprint_sql("public.${svc}_t", 'id'));
	my ($ret, $out, $err) = psql_verbose($src, 'postgres', "SELECT splitdb_migrate('$svc');");
	like(
		$err,
		qr/0A000: table "public\.${svc}_t" of service "$svc" has no primary key or unique key over NOT NULL columns/,
		"$svc: an online migration of a table without a key is refused with 0A000");
	like($err, qr/HINT:  .*mode => 'offline'/, "$svc: the hint names the offline mode");
	is( $src->safe_psql('postgres',
			"SELECT (SELECT count(*) FROM splitdb.job WHERE service = '$svc') || ' '"
			  . " || (SELECT count(*) FROM pg_trigger WHERE tgrelid = '${svc}_t'::regclass) || ' '"
			  . " || (SELECT count(*) FROM splitdb.capture WHERE relid = '${svc}_t'::regclass) || ' '"
			  . " || (SELECT count(*) FROM splitdb.artifact)"),
		'0 0 0 0', "$svc: the refused call made no job, no trigger, no capture, no artifact");
	is( $sib->safe_psql($svc,
			"SELECT count(*) FROM pg_class WHERE relnamespace NOT IN"
			  . " ('pg_catalog'::regnamespace, 'information_schema'::regnamespace, 'pg_toast'::regnamespace)"),
		'0', "$svc: and nothing in the sibling");
	my $id = $src->safe_psql('postgres', "SELECT splitdb_migrate('$svc', mode => 'offline', wait => true)");
	is(job($src, $id, "state || ' ' || mode"), 'done offline', "$svc: offline, the job is done");
	is($sib->safe_psql($svc, fingerprint_sql("public.${svc}_t", 'id')),
		$before, "$svc: the sibling holds the table's rows");
}

# ---------------------------------------------------------------------------
# 1. writers throughout an online migration

{
	my $svc  = 'ol_live';
	my $rows = 20000;
	make_service($src, $svc, $rows);
	my $w = start_writers($src, $svc, $rows);
	usleep(300_000);
	my ($holder, $id) = start_paused($src, $svc, 'copying');
	my $ckpt = $src->safe_psql('postgres', "SELECT rows_copied FROM splitdb.job_table WHERE job_id = $id");
	is($ckpt, $batch, "$svc: the copy is held after its first batch");
	usleep(1_000_000);
	$holder->query_safe("SELECT pg_advisory_unlock($pause_key, 0)");
	my $state = wait_job($src, $id);
	is($state, 'done', "$svc: the job ends done while the writers write")
	  or diag(job($src, $id, JOB_SUMMARY));
	# go on writing through the shim
	my $at_cutover = audit_count($src, $svc);
	poll_until(sub { audit_count($src, $svc) > $at_cutover + 50 }, undef, 'writes through the shim');
	my $err = stop_writers($src, $w);
	$holder->quit;
	is($err, '', "$svc: no writer saw an error");
	check_done($src, $svc, $id);
	my ($during_copy, $after) = split /\|/,
	  $src->safe_psql('postgres', qq{
SELECT count(*) FILTER (WHERE a.at BETWEEN j.copy_started_at AND j.copy_finished_at),
       count(*) FILTER (WHERE a.at > j.finished_at)
  FROM ${svc}_audit a, splitdb.job j WHERE j.job_id = $id});
	ok($during_copy > 0, "$svc: $during_copy writes committed while the table was copied");
	ok($after > 0, "$svc: $after writes committed through the shim after the cutover");
	check_exact($src, $svc, $rows);
}

# ---------------------------------------------------------------------------
# 4. a session idle in transaction holds a row of the table at the cutover

{
	my $svc  = 'ol_block';
	my $rows = 5000;
	make_service($src, $svc, $rows);
	my ($holder, $id) = start_paused($src, $svc, 'cutover',
		"SET splitdb.cutover_lock_timeout = '100ms'; SET splitdb.cutover_attempts = 3;");

	my $blocker = $src->background_psql('postgres');
	$blocker->query_safe(qq{BEGIN;
WITH w AS (UPDATE ${svc}_t SET v = v + 1, note = 'updated' WHERE id = 1 RETURNING id)
INSERT INTO ${svc}_audit (op, id) SELECT 'u', id FROM w});
	my $bpid = $blocker->query_safe('SELECT pg_backend_pid()');

	# one write at a time, each timed, until the job fails
	my $client  = $src->background_psql('postgres');
	my $monitor = $src->background_psql('postgres');
	my (@latency, $state, $attempts);
	my $during   = 0;
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	$holder->query_safe("SELECT pg_advisory_unlock($pause_key, 0)");
	for (my $n = 0;; $n++)
	{
		my $key   = 2 + ($n * 37) % ($rows - 1);
		my $start = time;
		$client->query_safe(qq{
WITH w AS (UPDATE ${svc}_t SET v = v + 1, note = 'updated' WHERE id = $key RETURNING id)
INSERT INTO ${svc}_audit (op, id) SELECT 'u', id FROM w});
		push @latency, time - $start;
		($state, $attempts) = split /\|/,
		  $monitor->query_safe(
			"SELECT CASE WHEN splitdb.job_worker_gone(state, worker_pid) THEN 'failed' ELSE state END,"
			  . " cutover_attempts FROM splitdb.job WHERE job_id = $id");
		last if $state !~ /^(queued|preparing|copying|indexing|catching_up|verifying|cutting_over)$/;
		$during++ if $attempts > 0;
		die "job $id does not end" if time > $deadline;
	}
	my ($max) = sort { $b <=> $a } @latency;
	ok($during > 0, "$svc: $during writes completed while the cutover tried");
	ok($max < 2, sprintf("$svc: each of %d writes took less than 2 s (longest %.3f s)", scalar @latency, $max));
	is(job($src, $id, "concat_ws(' ', state, phase, last_sqlstate, cutover_attempts)"),
		'failed catching_up 55P03 3',
		"$svc: after 3 attempts the job fails with 55P03, in phase catching_up");
	like(job($src, $id, "coalesce(last_error, 'no error')"),
		qr/could not take the cutover's locks within its budget for service "$svc" in 3 attempts/,
		"$svc: its error says why");
	is( $src->safe_psql('postgres', qq{
SELECT (SELECT relkind::text FROM pg_class WHERE oid = '${svc}_t'::regclass) || ' '
       || (to_regclass('splitdb_archive.${svc}_t') IS NULL) || ' '
       || (SELECT count(*) FROM pg_foreign_table f JOIN pg_class c ON c.oid = f.ftrelid
            WHERE c.relname = '${svc}_t') || ' '
       || (SELECT count(*) FROM pg_trigger WHERE tgrelid = '${svc}_t'::regclass
             AND tgname LIKE 'splitdb\\_capture\\_%' AND tgenabled = 'A') || ' '
       || coalesce(splitdb.capture_problem($id, ARRAY['public.${svc}_t']), 'capture intact')}),
		'r true 0 4 capture intact',
		"$svc: the source is intact: the original table, no archive, no shim, the capture complete");
	is($src->safe_psql('postgres', "SELECT state FROM pg_stat_activity WHERE pid = $bpid"),
		'idle in transaction', "$svc: the blocker's transaction is still open");
	is($sib->safe_psql($svc, "SELECT v || ' ' || note FROM ${svc}_t WHERE id = 1"),
		'0 row 1', "$svc: the blocker's write is not in the sibling yet");

	$blocker->query_safe('COMMIT');
	$blocker->quit;
	$client->quit;
	$monitor->quit;
	$holder->quit;
	$src->safe_psql('postgres', "SELECT splitdb_migrate('$svc', wait => true)");
	is(job($src, $id, 'runs'), '2', "$svc: splitdb_migrate() resumed the job");
	check_done($src, $svc, $id);
	is($sib->safe_psql($svc, "SELECT v || ' ' || note FROM ${svc}_t WHERE id = 1"),
		'1 updated', "$svc: the blocker's write is in the sibling");
	check_exact($src, $svc, $rows);
}

# ---------------------------------------------------------------------------
# 2. and 3. the worker killed, or the server stopped with -m immediate,
#    at a pause point, while writers write

sub stop_case
{
	my ($node, $how, $point) = @_;
	my $svc  = "ol_${how}_$point";
	my $rows = 10000;
	make_service($node, $svc, $rows);
	my $w = start_writers($node, $svc, $rows);
	my ($holder, $id, $pid) = start_paused($node, $svc, $point);
	my ($ckpt, $bytes) = split /\|/,
	  $node->safe_psql('postgres',
		"SELECT rows_copied, bytes_copied FROM splitdb.job_table WHERE job_id = $id");
	my $phase = job($node, $id, 'phase');
	if ($point eq 'copying')
	{
		is($ckpt, $batch, "$svc: the copy is held after its first batch");
	}
	else
	{
		like($node->safe_psql('postgres', "SELECT phase FROM splitdb.job_table WHERE job_id = $id"),
			qr/^(indexed|verified)$/, "$svc: the copy is over when the worker is held at $point");
	}
	if ($point eq 'cutover_committing')
	{
		# the worker holds the table: the writers wait
		poll_until(
			sub {
				$node->safe_psql('postgres',
					"SELECT count(*) > 0 FROM pg_stat_activity WHERE application_name = '" . WRITER
					  . "' AND wait_event_type = 'Lock'") eq 't';
			},
			undef,
			"a writer of $svc waiting for the cutover's lock");
		pass("$svc: the writers wait while the worker holds the table between the commits");
	}
	else
	{
		my $held = audit_count($node, $svc);
		poll_until(sub { audit_count($node, $svc) > $held + 30 }, undef,
			"writes while the worker of $svc is held");
	}

	my $offset = -s $node->logfile;
	if ($how eq 'kill')
	{
		is(kill('KILL', $pid), 1, "$svc: the worker held at $point is sent SIGKILL");
		$node->wait_for_log(qr/all server processes terminated; reinitializing/, $offset);
		$node->poll_query_until('postgres', 'SELECT true')
		  or die "$svc: the server does not come back after the crash";
	}
	else
	{
		$node->stop('immediate');
		$node->start;
	}
	eval { $holder->quit; };
	stop_writers($node, $w);
	$w = start_writers($node, $svc, $rows);
	my $stopped = audit_count($node, $svc);

	if ($how eq 'kill')
	{
		# nothing resumes the job by itself here
		poll_until(sub { audit_count($node, $svc) > $stopped + 30 }, undef, 'writes while the job is stopped');
		is(job($node, $id, "concat_ws(' ', splitdb.job_worker_gone(state, worker_pid), phase, runs)"),
			"t $phase 1", "$svc: the job reads as failed, in phase $phase, while the writers write");
		is($node->safe_psql('postgres', "SELECT splitdb_migrate('$svc')"),
			$id, "$svc: splitdb_migrate() resumes the job");
	}
	else
	{
		$node->wait_for_log(qr/resuming job $id of service "$svc" after a restart/, $offset);
		pass("$svc: the launcher resumes the job after the restart");
		poll_until(sub { job($node, $id, 'runs') eq '2' }, undef, "the resumed run of $svc");
	}
	my $state = wait_job($node, $id);
	is($state, 'done', "$svc: the resumed job ends done") or diag(job($node, $id, JOB_SUMMARY));
	my $at_end = audit_count($node, $svc);
	poll_until(sub { audit_count($node, $svc) > $at_end + 30 }, undef, 'writes through the shim')
	  if $state eq 'done';
	stop_writers($node, $w);
	ok(audit_count($node, $svc) > $stopped, "$svc: writes committed after the " . ($how eq 'kill' ? 'kill' : 'restart'));
	is(job($node, $id, 'runs'), '2', "$svc: the job took two runs");
	check_done($node, $svc, $id);
	check_exact($node, $svc, $rows);

	# not copied again
	if ($point eq 'copying')
	{
		is(job($node, $id, 'copy_rows_start'), $ckpt,
			"$svc: the second run resumed the copy from its checkpoint, $ckpt rows");
	}
	else
	{
		is( $node->safe_psql('postgres',
				"SELECT rows_copied || '|' || bytes_copied FROM splitdb.job_table WHERE job_id = $id"),
			"$ckpt|$bytes", "$svc: no row was copied again");
		is(job($node, $id, 'copy_started_at IS NULL'), 't', "$svc: the second run did not copy");
	}
	unlike(slurp_file($node->logfile, $offset), qr/copied again/,
		"$svc: no run logged that the tables are copied again");
	return;
}

stop_case($raw, 'kill', $_) for ('copying', 'catching_up', 'cutover', 'cutover_committing');
stop_case($src, 'stop', $_) for ('copying', 'catching_up');

# ---------------------------------------------------------------------------
# 6. a write that commits while the cutover waits for its lock

{
	my $svc  = 'ol_wait';
	my $rows = 2000;
	make_service($src, $svc, $rows);
	my ($holder, $id) = start_paused($src, $svc, 'cutover',
		"SET splitdb.cutover_lock_timeout = '20s';");
	my $writer = $src->background_psql('postgres');
	$writer->query_safe(qq{BEGIN;
WITH w AS (UPDATE ${svc}_t SET v = v + 1, note = 'updated' WHERE id = 7 RETURNING id)
INSERT INTO ${svc}_audit (op, id) SELECT 'u', id FROM w});
	$holder->query_safe("SELECT pg_advisory_unlock($pause_key, 0)");
	poll_until(
		sub {
			$src->safe_psql('postgres',
				"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'splitdb worker'"
				  . " AND wait_event_type = 'Lock'") eq '1';
		},
		sub { job_state($src, $id) ne 'cutting_over' },
		"the cutover of $svc to wait for the writer's lock")
	  or die "$svc: the job ended without waiting for the writer's lock: " . job($src, $id, JOB_SUMMARY);
	pass("$svc: the cutover waits for the lock of a writer's open transaction");
	$writer->query_safe('COMMIT');
	$writer->quit;
	$holder->quit;
	is(wait_job($src, $id), 'done', "$svc: the job ends done") or diag(job($src, $id, JOB_SUMMARY));
	# the last round reads with a snapshot taken once the locks are granted
	is($sib->safe_psql($svc, "SELECT v || ' ' || note FROM ${svc}_t WHERE id = 7"),
		'1 updated', "$svc: the write committed while the cutover waited is in the sibling");
	check_exact($src, $svc, $rows);
}

# ---------------------------------------------------------------------------
# 9. the worker terminated after the commit that made its job done, before
#    it ended (held at done): before, its exit recorded the job failed over
#    done, and a splitdb_cancel() of that failed job dropped the sibling's
#    live tables; now the job stays done, and the cancel is refused

{
	my $svc = 'ol_term_done';
	make_service($src, $svc, 1000);
	my $holder = $src->background_psql('postgres');
	$holder->query_safe("SELECT pg_advisory_lock($pause_key, 0)");
	my $id = $src->safe_psql('postgres',
		"SET splitdb.migrate_pause_at = 'done'; SELECT splitdb_migrate('$svc')");
	poll_until(
		sub {
			$src->safe_psql('postgres',
				"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'splitdb worker'"
				  . " AND query = 'paused at done'") eq '1';
		},
		undef,
		"the worker of $svc to pause at done");
	is(job($src, $id, 'state'), 'done', "$svc: the job is done while its worker is held after the commit");
	my $pid = job($src, $id, 'worker_pid');
	$src->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
	poll_until(
		sub { $src->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE pid = $pid") eq '0' },
		undef, "the worker of $svc to be gone");
	eval { $holder->quit; };
	is(job($src, $id, "concat_ws(' ', state, coalesce(last_sqlstate, '-'))"), 'done -',
		"$svc: the job stays done, with no error recorded");
	my ($ret, $out, $err) = psql_verbose($src, 'postgres', "SELECT splitdb_cancel('$svc')");
	isnt($ret, 0, "$svc: its cancel is refused");
	check_done($src, $svc, $id);
	is($src->safe_psql('postgres', "SELECT count(*) FROM ${svc}_t"), '1000',
		"$svc: the shim reads every row from the sibling");
}

done_testing();
