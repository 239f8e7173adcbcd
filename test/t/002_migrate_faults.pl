# Copyright (c) 2026, splitdb developers

# splitdb_migrate() under faults: the job's worker is killed, or the server
# stops, at several points of a migration, and the job is resumed.
#
# One cluster, splitdb preloaded (until the last case).  Each case has a
# service of its own, NAME, which owns NAME_big (200000 rows: bigint key,
# text, numeric, timestamptz, jsonb, and a secondary index) and NAME_small
# (a foreign key to NAME_big).  The copy runs in batches of 2000 rows:
# splitdb.batch_rows is set with ALTER SYSTEM and a reload, so that every
# session that starts a job, and the launcher that resumes one, has it.
# Checked here:
# 1. resv: the worker is killed (pg_terminate_backend) mid-copy, twice: once
#    while the sibling holds one committed batch more than the checkpoint,
#    once with a COPY in flight.  Each time splitdb.job reads failed, phase
#    copying, SQLSTATE 57P01, "the worker (pid N) was terminated before the
#    job ended", and the sibling holds a partial table.  splitdb_migrate()
#    resumes the same job.  The second kill leaves the killed run's COPY
#    waiting for a lock in the sibling: the third run ends that session
#    (the fence, fence.c) while the lock is still held, then waits for the
#    lock itself, and ends done once the test lets it go.
# 2. idx: killed while indexing, then, resumed, killed while verifying;
#    resumed again it ends done, with the sibling's index and foreign key.
# 3. offline mode (ofl): while the job copies, an INSERT waits (with a
#    lock_timeout it fails with 55P03; without, it is seen waiting for the
#    table's lock) and a SELECT answers.  The waiting INSERT goes on once
#    the job is done, through the new foreign table: its row is in the
#    sibling, not in the archived original.
# 4. crash: the server stops (immediate) mid-copy; the launcher resumes the
#    job by itself (its log line), which ends done with runs = 2.
# 5. fast: the same after a clean restart ($node->restart, mode fast).
# 6. nopre: without preloading, after an immediate stop mid-copy,
#    splitdb_status reads failed with a last_error saying the worker is gone
#    and the job's row is untouched; splitdb_migrate(wait => true) resumes
#    it to done, with runs = 2.
# After each job ends done: the sibling's tables and the archived originals
# (splitdb_archive.*) hold exactly the rows the source held before the
# migration (count, count of distinct keys, checksum of every row: no loss,
# no duplicate), and the old names are postgres_fdw foreign tables.
#
# Timing decides nothing.  The worker is held at a chosen point by a lock a
# session of the test holds: on the job's checkpoint row in
# splitdb.job_table (the worker stops at its next checkpoint), or on a table
# in the sibling (the worker's remote statement waits).  The test waits
# until the worker is seen waiting before it acts.  To know that the
# launcher has looked at every database after a restart, the cases with a
# restart wait for the line the launcher logs when it is done.
# When a step fails, the case stops there (after a failing assertion)
# rather than wait for a state that cannot come.

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SplitdbTest qw(start_source job_sql fingerprint_sql RUNNING JOB_SUMMARY);

# rows of each NAME_big, and of a copy batch
my $rows  = 200000;
my $batch = 2000;

# the states of a job that a worker is running
my $running = RUNNING;

my $node = start_source('main', $batch);

# ---------------------------------------------------------------------------
# helpers

sub query
{
	my ($db, $sql) = @_;
	return $node->safe_psql($db, $sql);
}

# Create NAME_big and NAME_small (and NAME_audit, a table with no key and no
# index, when asked), register service NAME and give it those tables.
# Returns the fingerprint of each table, by name, taken before the migration.
sub make_service
{
	my ($svc, %opt) = @_;
	my @tables = ("${svc}_big", "${svc}_small");

	query(
		'postgres', qq{
CREATE TABLE ${svc}_big (
	id         bigint PRIMARY KEY,
	label      text NOT NULL,
	amount     numeric(12,2),
	created_at timestamptz NOT NULL,
	doc        jsonb
);
INSERT INTO ${svc}_big
SELECT g, 'row ' || g || E'\\t' || repeat(chr(97 + g % 26), g % 40),
	   CASE WHEN g % 97 = 0 THEN NULL ELSE round((g * 7.31) % 100000, 2) END,
	   timestamptz '2024-01-01 00:00:00+00' + g * interval '37 seconds',
	   jsonb_build_object('g', g, 'even', g % 2 = 0, 'tags', jsonb_build_array('t' || g % 7))
  FROM generate_series(1, $rows) g;
CREATE INDEX ${svc}_big_created_at_idx ON ${svc}_big (created_at);
CREATE TABLE ${svc}_small (
	id     integer PRIMARY KEY,
	big_id bigint NOT NULL REFERENCES ${svc}_big (id),
	note   text
);
INSERT INTO ${svc}_small SELECT g, (g * 997) % $rows + 1, 'note ' || g
  FROM generate_series(1, 300) g;
});
	if ($opt{audit})
	{
		query(
			'postgres', qq{
CREATE TABLE ${svc}_audit (id integer NOT NULL, what text NOT NULL);
INSERT INTO ${svc}_audit SELECT g, 'event ' || g FROM generate_series(1, 5000) g;
});
		unshift @tables, "${svc}_audit";
	}
	query('postgres', "SELECT splitdb_add_service('$svc')");
	query('postgres',
		"SELECT splitdb_assign('$svc', " . join(', ', map { "'$_'" } @tables) . ')');

	my %before = map { $_ => fingerprint('postgres', "public.$_") } @tables;
	like($before{"${svc}_big"}, qr/^$rows rows, $rows keys, checksum -?\d+$/,
		"$svc: ${svc}_big holds $rows rows");
	return \%before;
}

# rows, distinct keys and a checksum of every row of a table
sub fingerprint
{
	my ($db, $table, $where) = @_;
	$where = 'true' unless defined $where;
	return query($db, fingerprint_sql($table, 'id', $where));
}

# columns of the service's job row
sub job
{
	my ($svc, $columns) = @_;
	return query('postgres', job_sql($svc, $columns));
}

# the job in one line, for diagnostics
sub job_summary
{
	my ($svc) = @_;
	return 'job: ' . job($svc, JOB_SUMMARY);
}

# columns of a table's row of the service's job
sub job_table
{
	my ($svc, $table, $columns) = @_;
	return query('postgres',
		"SELECT $columns FROM splitdb.job_table"
		  . " WHERE job_id = (SELECT job_id FROM splitdb.job WHERE service = '$svc')"
		  . " AND table_name = 'public.$table'");
}

# online (the default), but for idx, whose idx_audit has no key (online
# mode refuses it), and for ofl, which shows what offline mode blocks; a
# resumed job keeps the mode it started in
sub migrate
{
	my ($svc) = @_;
	my $mode = $svc =~ /^(idx|ofl)$/ ? ", mode => 'offline'" : '';
	return query('postgres', "SELECT splitdb_migrate('$svc'$mode)");
}

# splitdb_migrate(wait => true), which must return job $id; true when it did
sub migrate_wait
{
	my ($svc, $id) = @_;
	my ($out, $err);

	$node->psql(
		'postgres', "SELECT splitdb_migrate('$svc', wait => true)",
		stdout => \$out,
		stderr => \$err);
	return is($out, $id,
		"$svc: splitdb_migrate(wait => true) resumes job $id and returns when it is done")
	  || diag("stderr: $err");
}

# Start a session that waits until run $run of the job has checkpointed the
# copy of $table past $after rows, then locks that checkpoint row (FOR
# UPDATE) and keeps the lock: the worker stops at its next checkpoint.
# Start it before splitdb_migrate(); hold_worker() waits for it.  It gives up
# when that run ends first.
sub start_freezer
{
	my ($svc, $table, $run, $after) = @_;
	my $bg = $node->background_psql('postgres');
	my $where = "j.service = '$svc' AND jt.table_name = 'public.$table'";

	$bg->query_safe('BEGIN');
	$bg->query_until(
		qr/freezer waits/, qq{\\echo freezer waits
DO \$\$
DECLARE
	n        bigint;
	st       text;
	alive    boolean;
	deadline timestamptz := clock_timestamp()
		+ make_interval(secs => $PostgreSQL::Test::Utils::timeout_default);
BEGIN
	LOOP
		SELECT jt.rows_copied, j.state,
			   EXISTS (SELECT FROM pg_stat_activity a
						WHERE a.pid = j.worker_pid AND a.backend_type = 'splitdb worker')
		  INTO n, st, alive
		  FROM splitdb.job j JOIN splitdb.job_table jt USING (job_id)
		 WHERE $where AND j.runs >= $run;
		IF n > $after THEN
			PERFORM FROM splitdb.job j JOIN splitdb.job_table jt USING (job_id)
			 WHERE $where FOR UPDATE OF jt;
			PERFORM set_config('faults.held', 'yes', true);
			RETURN;
		END IF;
		EXIT WHEN st IS NOT NULL AND (st NOT IN $running OR NOT alive);
		EXIT WHEN clock_timestamp() > deadline;
		PERFORM pg_sleep(0.005);
	END LOOP;
END
\$\$;
\\echo freezer done
});
	return $bg;
}

# Wait until the freezer holds the checkpoint row and the worker waits for
# it.  True when it does; otherwise a failing assertion, false.
sub hold_worker
{
	my ($bg, $svc) = @_;

	$bg->query_until(qr/freezer done/, '');
	if ($bg->query_safe(q{SELECT current_setting('faults.held', true)}) ne 'yes')
	{
		fail("$svc: the worker copies on and is caught at a checkpoint, mid-copy");
		diag(job_summary($svc));
		release($bg);
		return 0;
	}

	# the worker waits for the lock, or it is gone
	my $worker = qq{coalesce((SELECT coalesce(a.wait_event_type, 'running')
		FROM splitdb.job j
		JOIN pg_stat_activity a ON a.pid = j.worker_pid AND a.backend_type = 'splitdb worker'
	   WHERE j.service = '$svc'), 'gone')};
	$node->poll_query_until('postgres', "SELECT $worker IN ('Lock', 'gone')")
	  or die "the worker of $svc neither waits nor ends";
	if (query('postgres', "SELECT $worker") ne 'Lock')
	{
		fail("$svc: the worker is held at its next checkpoint");
		diag(job_summary($svc));
		release($bg);
		return 0;
	}
	return 1;
}

sub release
{
	my ($bg) = @_;
	$bg->query_safe('ROLLBACK');
	$bg->quit;
	return;
}

# a session in database $db holding a lock on a table, in a transaction
sub lock_table
{
	my ($db, $table, $mode) = @_;
	my $bg = $node->background_psql($db);
	$bg->query_safe("BEGIN; LOCK TABLE public.$table IN $mode MODE");
	return $bg;
}

# Wait until a session waits for a lock on $table in the sibling of $svc, or
# the worker of $svc is gone.  True when a session waits; otherwise a failing
# assertion, false.
sub wait_sibling_waiter
{
	my ($svc, $table, $what) = @_;
	my $dboid = query('postgres', "SELECT oid FROM pg_database WHERE datname = '$svc'");
	my $reloid = query($svc, "SELECT 'public.$table'::regclass::oid");
	# a lock on the table itself: the copy streams wait for each other's
	# relation extension locks ("extend") on it, briefly
	my $waiter = qq{EXISTS (SELECT FROM pg_locks
		WHERE database = $dboid AND relation = $reloid AND locktype = 'relation'
		  AND NOT granted)};

	$node->poll_query_until(
		'postgres', qq{
SELECT $waiter
	OR NOT EXISTS (SELECT FROM splitdb.job j JOIN pg_stat_activity a ON a.pid = j.worker_pid
					WHERE j.service = '$svc' AND a.backend_type = 'splitdb worker')})
	  or die "nothing happens in the sibling of $svc";
	return ok(query('postgres', "SELECT $waiter") eq 't',
		"$svc: $what waits for the lock on $table in the sibling")
	  || diag(job_summary($svc));
}

# Wait until the remote sessions of killed workers have ended in database
# $db (a statement that waited for a lock ends when it gets it).
sub wait_no_remote_session
{
	my ($db) = @_;
	$node->poll_query_until(
		$db, q{
SELECT NOT EXISTS (SELECT FROM pg_stat_activity
					WHERE datname = current_database() AND application_name = 'splitdb')})
	  or die "splitdb sessions are left in database $db";
	return;
}

# Terminate the service's worker and wait until it is gone.  Returns its pid.
sub kill_worker
{
	my ($svc) = @_;
	my $pid = job($svc, 'worker_pid');

	is(query('postgres', "SELECT pg_terminate_backend($pid)"),
		't', "$svc: the worker (pid $pid) is sent SIGTERM");
	$node->poll_query_until('postgres',
		"SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $pid)")
	  or die "worker $pid did not exit";
	return $pid;
}

# the job, as the killed worker $pid left it
sub check_killed
{
	my ($svc, $pid, $phase) = @_;

	is( job($svc, "state, phase, last_sqlstate, worker_pid"),
		"failed|$phase|57P01|$pid",
		"$svc: killed in phase $phase, the job is failed, SQLSTATE 57P01");
	is( job($svc, 'last_error'),
		"the worker (pid $pid) was terminated before the job ended",
		"$svc: last_error says the worker was terminated");
	is( query('postgres',
			"SELECT state || '|' || phase FROM splitdb_status WHERE service = '$svc'"),
		"failed|$phase",
		"$svc: splitdb_status reads failed too");
	return;
}

# The checkpoint of NAME_big, checked to be mid-copy; returns it.
sub checkpoint_mid_copy
{
	my ($svc) = @_;
	my ($ckpt, $total, $phase) = split /\|/,
	  job_table($svc, "${svc}_big", 'rows_copied, rows_total, phase');

	is("$phase $total", "copying $rows",
		"$svc: the worker is held while copying ${svc}_big ($rows rows)");
	ok($ckpt > 0 && $ckpt < $rows && $ckpt % $batch == 0,
		"$svc: the checkpoint ($ckpt rows) is mid-copy, in whole batches of $batch rows");
	return $ckpt;
}

# The job is done: the sibling and the archive hold exactly what the source
# held before; the old names are foreign tables.  $where filters the rows of
# NAME_big that are compared.
sub check_migrated
{
	my ($svc, $before, $where) = @_;

	is(job($svc, "state || '|' || phase"), 'done|done', "$svc: the job is done")
	  or return diag(job_summary($svc));
	for my $table (sort keys %$before)
	{
		my $w = $table eq "${svc}_big" ? $where : undef;

		is(fingerprint($svc, "public.$table", $w),
			$before->{$table},
			"$svc: the sibling's $table holds exactly the source's rows");
		is(fingerprint('postgres', "splitdb_archive.$table", $w),
			$before->{$table}, "$svc: the archived $table is the original");
		is( query('postgres',
				"SELECT relkind FROM pg_class WHERE oid = 'public.$table'::regclass"),
			'f',
			"$svc: public.$table is a foreign table");
	}
	return;
}

# ---------------------------------------------------------------------------
# 1. killed mid-copy, twice

sub case_killed_mid_copy
{
	my $svc    = 'resv';
	my $before = make_service($svc);

	# first run: held after a checkpoint, with one more batch in the sibling
	my $freezer = start_freezer($svc, 'resv_big', 1, 0);
	my $id = migrate($svc);
	like($id, qr/^\d+$/, "$svc: splitdb_migrate returns a job id");
	hold_worker($freezer, $svc) or return;
	my $ckpt = checkpoint_mid_copy($svc);
	is(query($svc, 'SELECT count(*) FROM public.resv_big'),
		$ckpt + $batch,
		"$svc: the sibling holds one committed batch more than the checkpoint");

	my $pid = kill_worker($svc);
	release($freezer);
	check_killed($svc, $pid, 'copying');
	my $partial = query($svc, 'SELECT count(*) FROM public.resv_big');
	ok($partial > 0 && $partial < $rows,
		"$svc: the sibling holds a partial resv_big ($partial rows)");
	is(job_table($svc, 'resv_small', 'phase'),
		'created', "$svc: resv_small is not copied yet");

	# second run: held after a checkpoint, then its next COPY waits for a
	# lock in the sibling, and it is killed there
	$freezer = start_freezer($svc, 'resv_big', 2, $partial);
	is(migrate($svc), $id, "$svc: splitdb_migrate resumes the same job");
	hold_worker($freezer, $svc) or return;
	is(job($svc, 'runs'), '2', "$svc: the job runs for the second time");
	$ckpt = job_table($svc, 'resv_big', 'rows_copied');
	ok($ckpt > $partial && $ckpt < $rows,
		"$svc: the second run went back to the checkpoint and copied on ($partial -> $ckpt)");
	my $sib_lock = lock_table($svc, 'resv_big', 'SHARE');
	release($freezer);
	wait_sibling_waiter($svc, 'resv_big', 'the next COPY') or return;
	$ckpt = job_table($svc, 'resv_big', 'rows_copied');
	my $killed_sessions = query('postgres',
		"SELECT string_agg(pid::text, ',') FROM pg_stat_activity"
		  . " WHERE datname = '$svc' AND application_name = 'splitdb'");
	$pid = kill_worker($svc);
	check_killed($svc, $pid, 'copying');

	# third run, started while the killed run's COPY still waits in the
	# sibling: before it looks at the sibling's rows it ends the sessions of
	# the killed run, so that COPY cannot commit behind its back; then its
	# own trim of resv_big waits for the lock the test holds
	is(migrate($svc), $id, "$svc: splitdb_migrate resumes the job a third time");
	$node->poll_query_until(
		'postgres', qq{
SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid IN ($killed_sessions))
	OR (SELECT state IN ('done', 'failed') FROM splitdb.job WHERE service = '$svc')})
	  or die "the killed run's sessions in the sibling of $svc do not end";
	is( query('postgres',
			"SELECT count(*) FROM pg_stat_activity WHERE pid IN ($killed_sessions)"),
		'0',
		"$svc: the third run ended the killed run's sessions in the sibling, the lock they waited for still held");
	wait_sibling_waiter($svc, 'resv_big', "the third run's trim") or return;
	ok( $node->log_contains(
			qr/job $id of service "$svc" ended \d+ sessions? of an earlier run in the sibling/),
		"$svc: the third run logged that it ended them");
	release($sib_lock);
	$node->poll_query_until('postgres',
		"SELECT state IN ('done', 'failed') FROM splitdb.job WHERE service = '$svc'")
	  or die "the third run of $svc does not end";
	is(job($svc, "runs || '|' || coalesce(last_error, 'no error')"),
		'3|no error', "$svc: three runs; the last one left no error");
	check_migrated($svc, $before);
	return;
}

# ---------------------------------------------------------------------------
# 2. killed while indexing, then while verifying
#
# idx_audit has no key and no index, so the indexing step does not touch it;
# it is copied first (names sort so), in one pass.  In the sibling, a ROW EXCLUSIVE lock on
# idx_big lets the COPY in but keeps out CREATE INDEX and the foreign key; an
# ACCESS EXCLUSIVE lock on idx_audit, taken once idx_audit is copied, keeps
# out the verification's read of it.

sub case_killed_indexing_verifying
{
	my $svc    = 'idx';
	my $before = make_service($svc, audit => 1);

	my $freezer = start_freezer($svc, 'idx_big', 1, 0);
	my $id = migrate($svc);
	hold_worker($freezer, $svc) or return;
	checkpoint_mid_copy($svc);
	is(job_table($svc, 'idx_audit', 'phase'),
		'copied', "$svc: idx_audit is copied already");
	my $sib_big   = lock_table($svc, 'idx_big',   'ROW EXCLUSIVE');
	my $sib_audit = lock_table($svc, 'idx_audit', 'ACCESS EXCLUSIVE');
	release($freezer);

	wait_sibling_waiter($svc, 'idx_big', 'a statement of the indexing step')
	  or return;
	is(job($svc, "state || '|' || phase"),
		'indexing|indexing', "$svc: the job is indexing");
	like(job($svc, 'current_table'),
		qr/idx_big_created_at_idx/, "$svc: it is creating idx_big's index");
	is(query($svc, "SELECT count(*) FROM public.idx_big"),
		$rows, "$svc: every row of idx_big is in the sibling");
	my $pid = kill_worker($svc);
	check_killed($svc, $pid, 'indexing');
	release($sib_big);
	wait_no_remote_session($svc);

	# resumed: it indexes, then its verification waits for idx_audit
	is(migrate($svc), $id, "$svc: splitdb_migrate resumes the same job");
	wait_sibling_waiter($svc, 'idx_audit', 'the verification') or return;
	is( job($svc, "state || '|' || phase || '|' || runs"),
		'verifying|verifying|2', "$svc: the second run is verifying");
	is( query(
			$svc, q{
SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_index i
  JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = 'public.idx_big'::regclass}),
		'idx_big_created_at_idx,idx_big_pkey',
		"$svc: the sibling's idx_big has its index, once");
	is( query(
			$svc, q{
SELECT string_agg(conname || ' ' || pg_get_constraintdef(oid), ',') FROM pg_constraint
 WHERE conrelid = 'public.idx_small'::regclass AND contype = 'f'}),
		'idx_small_big_id_fkey FOREIGN KEY (big_id) REFERENCES idx_big(id)',
		"$svc: the sibling's idx_small has its foreign key, once");
	$pid = kill_worker($svc);
	check_killed($svc, $pid, 'verifying');
	release($sib_audit);
	wait_no_remote_session($svc);

	migrate_wait($svc, $id) or return;
	is(job($svc, 'runs'), '3', "$svc: three runs");
	check_migrated($svc, $before);
	return;
}

# ---------------------------------------------------------------------------
# 3. offline mode: writes wait, reads go on

sub case_offline
{
	my $svc    = 'ofl';
	my $before = make_service($svc);
	my $late   = $rows + 1;
	my $insert = "INSERT INTO ofl_big (id, label, created_at)"
	  . " VALUES ($late, 'late', '2030-01-01 00:00:00+00')";
	my ($ret, $out, $err);

	my $freezer = start_freezer($svc, 'ofl_big', 1, 0);
	my $id = migrate($svc);
	hold_worker($freezer, $svc) or return;
	checkpoint_mid_copy($svc);

	$ret = $node->psql(
		'postgres', "\\set VERBOSITY verbose\nSET lock_timeout = '200ms';\n$insert",
		stdout => \$out,
		stderr => \$err);
	isnt($ret, 0, "$svc: an INSERT during the copy does not go through");
	like($err, qr/ERROR:  55P03: canceling statement due to lock timeout/,
		"$svc: it waited for a lock until its lock_timeout (55P03)");
	is(query('postgres', 'SELECT count(*) FROM ofl_big'),
		$rows, "$svc: a SELECT during the copy answers");

	my $writer = $node->background_psql('postgres', on_error_stop => 0);
	my $wpid = $writer->query_safe('SELECT pg_backend_pid()');
	$writer->query_until(qr/writer starts/,
		"\\echo writer starts\n$insert;\n\\echo writer done\n");
	$node->poll_query_until('postgres',
		"SELECT wait_event_type || '/' || wait_event FROM pg_stat_activity WHERE pid = $wpid",
		'Lock/relation')
	  or die 'the writer does not wait for a lock';
	is( query(
			'postgres', qq{
SELECT count(*) FROM pg_locks
 WHERE pid = $wpid AND relation = 'ofl_big'::regclass AND NOT granted}),
		'1',
		"$svc: an INSERT without a timeout waits for the lock on ofl_big");
	is(query('postgres', 'SELECT count(*) FROM ofl_big'),
		$rows, "$svc: reads still answer while it waits");

	release($freezer);
	$node->poll_query_until('postgres',
		"SELECT state NOT IN $running FROM splitdb.job WHERE service = '$svc'")
	  or die "the job of $svc does not end";
	$writer->query_until(qr/writer done/, '');
	# true when psql printed an error since the session started
	my (undef, $writer_failed) = $writer->query('SELECT 1');
	$writer->quit;
	is($writer_failed, 0, "$svc: the waiting INSERT went through after the job");
	is(query($svc, "SELECT label FROM public.ofl_big WHERE id = $late"),
		'late', "$svc: its row is in the sibling");
	is(query('postgres', "SELECT count(*) FROM splitdb_archive.ofl_big WHERE id = $late"),
		'0', "$svc: not in the archived original");
	check_migrated($svc, $before, "id <> $late");
	return;
}

# ---------------------------------------------------------------------------
# 4 and 5. the server stops mid-copy; the launcher resumes the job

sub case_restart
{
	my ($svc, $mode) = @_;
	my $before = make_service($svc);

	my $freezer = start_freezer($svc, "${svc}_big", 1, 0);
	my $id = migrate($svc);
	hold_worker($freezer, $svc) or return;
	checkpoint_mid_copy($svc);

	my $offset = -s $node->logfile;
	if ($mode eq 'immediate')
	{
		$node->stop('immediate');
		$node->start;
	}
	else
	{
		$node->restart;
	}
	$freezer->quit;

	# the launcher has been through every database once it logs so
	$node->wait_for_log(
		qr/the launcher looked for interrupted jobs in (\d+) of \1 databases/,
		$offset);
	ok( $node->log_contains(
			qr/resuming job $id of service "$svc" after a restart/, $offset),
		"$svc: after the restart ($mode) the launcher resumes the job")
	  or return diag(job_summary($svc));

	# the resumer left worker_pid NULL; the new worker sets it when it takes
	# the job, or when it records a failure before that
	$node->poll_query_until('postgres',
		"SELECT worker_pid IS NOT NULL AND state NOT IN $running"
		  . " FROM splitdb.job WHERE service = '$svc'")
	  or die "the resumed job of $svc does not end";
	is(job($svc, "job_id || '|' || runs"), "$id|2",
		"$svc: the same job ran a second time, once");
	check_migrated($svc, $before);
	return;
}

# ---------------------------------------------------------------------------
# 6. without preloading: an immediate stop leaves the job to the next call

sub case_no_preload
{
	my $svc = 'nopre';

	$node->adjust_conf('postgresql.conf', 'shared_preload_libraries', "''");
	$node->restart;
	is(query('postgres', 'SHOW shared_preload_libraries'),
		'', 'splitdb is no longer preloaded');
	my $before = make_service($svc);

	my $freezer = start_freezer($svc, 'nopre_big', 1, 0);
	my $id = migrate($svc);
	hold_worker($freezer, $svc) or return;
	checkpoint_mid_copy($svc);
	my $pid = job($svc, 'worker_pid');

	$node->stop('immediate');
	$freezer->quit;
	$node->start;

	is(job($svc, "state || '|' || runs || '|' || coalesce(last_error, 'no error')"),
		'copying|1|no error', "$svc: the job's row is as the worker left it");
	is( query(
			'postgres',
			"SELECT state || '|' || phase || '|' || coalesce(worker_pid::text, 'no worker')"
			  . " FROM splitdb_status WHERE service = '$svc'"),
		'failed|copying|no worker',
		"$svc: splitdb_status reads failed, in phase copying, with no worker");
	is( query('postgres', "SELECT last_error FROM splitdb_status WHERE service = '$svc'"),
		"the worker (pid $pid) ended without recording a result: it was killed"
		  . " or the server restarted; call splitdb_migrate('$svc') to resume",
		"$svc: its last_error says the worker is gone");

	migrate_wait($svc, $id) or return;
	is(job($svc, 'runs'), '2', "$svc: the job ran a second time, once");
	check_migrated($svc, $before);
	return;
}

case_killed_mid_copy();
case_killed_indexing_verifying();
case_offline();

case_restart('crash', 'immediate');
case_restart('fast',  'fast');
case_no_preload();

$node->stop;
done_testing();
