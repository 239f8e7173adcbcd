# Copyright (c) 2026, splitdb developers

# Immediate stops (pg_ctl stop -m immediate) of the source's server and of
# the sibling's server, in each phase of an offline migration, then one
# resume as the documentation promises it.
#
# Two clusters: "source" (splitdb preloaded, installed in database
# postgres) and "sibling" (each service's sibling database, reached through
# a postgres_fdw server of its own).  For each phase a service of its own
# owns NAME_big (6000 rows, a bigserial key, a secondary index), NAME_small
# (a foreign key to NAME_big) and NAME_zplain (no key); in the cutover
# cases also NAME_item, whose foreign key to the source's NAME_owner, like
# that of the source's NAME_child to NAME_big, becomes a cross-service
# reference.  The worker is held in the phase as in
# 010_resume_each_phase.pl: by an event trigger in the sibling that makes a
# statement of the phase wait for a gate the test holds locked (preparing:
# CREATE TABLE; copying: the COPY of NAME_big's third batch, two batches
# being committed and checkpointed; indexing: CREATE INDEX), or by a lock
# the test holds on NAME_zplain (verifying: the checksum query) and on
# NAME_big's sequence (cutting_over: the setval, after the references were
# installed in the sibling).
#
# 1. source stops (s_prep ... s_cut): the source's server stops with -m
#    immediate while the worker waits in the sibling; its session there
#    waits on.  The server starts again, the launcher's resumer resumes the
#    job (its log line): the resumed run ends the stopped run's sibling
#    session while the lock it waits for is still held, and, once the test
#    lets the lock go, the job ends done after two runs.
# 2. sibling stops (b_prep ... b_cut): the sibling's server stops with -m
#    immediate while the worker waits there: the job is failed in that
#    phase with 08006, "lost the connection to the sibling of service ...",
#    libpq's first line as the detail, and the source's tables are still
#    ordinary tables with all their rows.  The sibling starts again, and
#    exactly one splitdb_migrate(wait => true) brings the job to done.
# After each: the sibling's tables hold exactly the source's rows (count,
# distinct rows, checksum of every row, and splitdb_verify), the sibling's
# public schema holds exactly the source's relations, with as many
# indexes, constraints and triggers per table as the source had (as a
# migration that nothing stopped leaves them, for the cutover cases: the
# control service), none invalid; the source's tables are shims and the
# archived originals hold every row; no splitdb session is left in the
# sibling; no referencing row lacks its referenced row on either side.
# 3. cross-service references (b_cut, migrated): a transaction in the
#    source writes through the shims and checks keys both ways; the
#    sibling's server stops with -m immediate in the middle of it.  Its
#    COMMIT fails, nothing of it stays on either side, no referencing row
#    lacks its referenced row on either side, and the next transaction, in
#    the same session and in a new one, commits and checks keys again.

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SplitdbTest qw(start_source job_sql faults_sql three_tables_sql RUNNING JOB_SUMMARY);

my $rows  = 6000;
my $batch = 1000;
# the rows of NAME_big in the sibling when a COPY is held: two batches
my $copy_after = 2 * $batch;
my $running = RUNNING;

my $node = start_source('source', $batch, "log_min_messages = debug1\n");
my $sib = PostgreSQL::Test::Cluster->new('sibling');
$sib->init;
$sib->start;
my $user = $node->safe_psql('postgres', 'SELECT current_user');

# ---------------------------------------------------------------------------
# helpers

# $db on the sibling's server, or postgres on the source's
sub query
{
	my ($db, $sql) = @_;
	return ($db eq 'postgres' ? $node : $sib)->safe_psql($db, $sql);
}

sub poll_until
{
	my ($cond, $what) = @_;
	return SplitdbTest::poll_until($cond, undef, $what);
}

# rows, distinct rows and a checksum of every row of a table
sub fingerprint_sql
{
	my ($table) = @_;
	return SplitdbTest::fingerprint_sql($table, 't::text');
}

sub fingerprint
{
	my ($db, $table) = @_;
	return query($db, fingerprint_sql($table));
}

# indexes, constraints, user triggers (the test's own and splitdb's change
# capture aside) and invalid indexes of a table
sub objects_sql
{
	my ($table) = @_;
	return qq{
SELECT (SELECT count(*) FROM pg_index WHERE indrelid = '$table'::regclass) || ' indexes, '
	|| (SELECT count(*) FROM pg_constraint WHERE conrelid = '$table'::regclass) || ' constraints, '
	|| (SELECT count(*) FROM pg_trigger WHERE tgrelid = '$table'::regclass AND NOT tgisinternal
		  AND tgname NOT LIKE 'zz_fault%' AND tgname NOT LIKE 'splitdb\_capture\_%') || ' triggers, '
	|| (SELECT count(*) FROM pg_index WHERE indrelid = '$table'::regclass AND NOT indisvalid)
	|| ' invalid'};
}

sub objects
{
	my ($db, $table) = @_;
	return query($db, objects_sql($table));
}

# the relations of schema public whose name starts with the service's
sub relations
{
	my ($db, $svc) = @_;
	return query($db,
		"SELECT string_agg(relname || ':' || relkind::text, ' ' ORDER BY relname) FROM pg_class"
		  . " WHERE relnamespace = 'public'::regnamespace AND relname LIKE '${svc}\\_%'"
		  . " AND relkind IN ('r', 'p', 'i', 'I', 'S') AND relname !~ '_(owner|child)(_|\$)'");
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

# the service's tables, its sibling database with the test's faults (as in
# 010_resume_each_phase.pl), the service; returns what the source held
sub make_service
{
	my ($svc, %opt) = @_;
	my @tables = ("${svc}_big", "${svc}_small", "${svc}_zplain");
	my $xref = '';

	if ($opt{xref})
	{
		push @tables, "${svc}_item";
		$xref = qq{
CREATE TABLE ${svc}_owner (id integer PRIMARY KEY);
INSERT INTO ${svc}_owner SELECT generate_series(1, 50);
CREATE TABLE ${svc}_item (id integer PRIMARY KEY, owner_id integer NOT NULL REFERENCES ${svc}_owner);
INSERT INTO ${svc}_item SELECT g, 1 + g % 50 FROM generate_series(1, 200) g;
CREATE TABLE ${svc}_child (id integer PRIMARY KEY, big_id bigint NOT NULL REFERENCES ${svc}_big);
INSERT INTO ${svc}_child SELECT g, 1 + (g * 31) % $rows FROM generate_series(1, 200) g;
};
	}

	$sib->safe_psql('postgres', "CREATE DATABASE $svc");
	my ($host, $port) = ($sib->host, $sib->port);
	query('postgres',
		three_tables_sql($svc, $rows, 500) . qq{
$xref
CREATE SERVER ${svc}_srv FOREIGN DATA WRAPPER postgres_fdw
	OPTIONS (host '$host', port '$port', dbname '$svc');
CREATE USER MAPPING FOR CURRENT_USER SERVER ${svc}_srv OPTIONS (user '$user');
SELECT splitdb_add_service('$svc', server => '${svc}_srv');
SELECT splitdb_assign('$svc', VARIADIC ARRAY[@{[ join(', ', map { "'$_'" } @tables) ]}]::regclass[]);
});
	query($svc, faults_sql(copy_after => $copy_after));

	my %before = (relations => relations('postgres', $svc), xref => $opt{xref});
	$before{tables} = {
		map {
			$_ => {
				rows    => fingerprint('postgres', "public.$_"),
				objects => objects('postgres', "public.$_")
			}
		} @tables
	};
	return \%before;
}

# a session of the test in the sibling database $db, in a transaction that
# ran $sql
sub hold
{
	my ($db, $sql) = @_;
	my $bg = $sib->background_psql($db, on_error_stop => 0);
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

# a session whose server stopped
sub forget
{
	my ($bg) = @_;
	eval { $bg->quit; };
	return;
}

# the pids of splitdb's sessions in $svc's sibling, comma-separated
sub sibling_sessions
{
	my ($svc) = @_;
	return query($svc,
		"SELECT coalesce(string_agg(pid::text, ',' ORDER BY pid), '') FROM pg_stat_activity"
		  . " WHERE datname = current_database() AND application_name = 'splitdb'");
}

sub alive
{
	my ($svc, $pids) = @_;
	return query($svc, "SELECT count(*) FROM pg_stat_activity WHERE pid IN ($pids)");
}

# Wait until a splitdb session of $svc's sibling waits for a lock on
# $relation; returns the pids of splitdb's sessions there, or undef after
# a failing assertion when the worker ended instead.
sub wait_waiter
{
	my ($svc, $relation, $what) = @_;
	my $waiter = qq{SELECT EXISTS (SELECT FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE a.datname = current_database() AND a.application_name = 'splitdb' AND NOT l.granted
		  AND l.locktype = 'relation' AND l.relation = '$relation'::regclass)};

	poll_until(sub { query($svc, $waiter) eq 't' || job($svc, "state NOT IN $running") eq 't' },
		"the sibling of $svc");
	ok(query($svc, $waiter) eq 't', "$svc: $what waits in the sibling")
	  or return diag(job_summary($svc));
	return sibling_sessions($svc);
}

# Hold the worker of a new job of $svc in $phase.  Returns the job id, the
# sibling sessions then, and the sessions of the test that hold it.
sub hold_in_phase
{
	my ($svc, $phase) = @_;
	my %tag = (preparing => 'CREATE TABLE', copying => 'COPY', indexing => 'CREATE INDEX');
	my $tag = $tag{$phase} // 'CREATE INDEX';

	query($svc, "INSERT INTO faults.armed VALUES ('$tag')");
	my $gate = hold($svc, 'LOCK TABLE faults.gate IN EXCLUSIVE MODE');
	my $id   = query('postgres', "SELECT splitdb_migrate('$svc', mode => 'offline')");
	my $step = $tag{$phase} ? $phase : 'indexing';
	my $pids = wait_waiter($svc, 'faults.gate', "a $tag of the $step step")
	  or return;
	query($svc, 'DELETE FROM faults.armed');
	if ($phase eq 'copying')
	{
		is( query('postgres',
				"SELECT jt.rows_copied || ' ' || jt.phase FROM splitdb.job_table jt"
				  . " WHERE jt.job_id = $id AND jt.table_name = 'public.${svc}_big'")
			  . ', ' . query($svc, "SELECT count(*) FROM public.${svc}_big"),
			"$copy_after copying, $copy_after",
			"$svc: held mid-copy, at a checkpoint of $copy_after rows the sibling holds");
	}
	return ($id, $pids, $gate) if $tag{$phase};

	my $relation = "public.${svc}_zplain";
	my @holders = (hold($svc, "LOCK TABLE $relation IN ACCESS EXCLUSIVE MODE"));
	if ($phase eq 'cutting_over')
	{
		# the sibling's sequence behind the source's, so that the cutover sets it (it leaves one that is already as far alone)
		query($svc, "SELECT setval('public.${svc}_big_id_seq', 1)");
		push @holders, hold($svc, "ALTER SEQUENCE public.${svc}_big_id_seq INCREMENT BY 1");
		$relation = "public.${svc}_big_id_seq";
	}
	release($gate);
	$pids = wait_waiter($svc, "public.${svc}_zplain", "the verification's read of ${svc}_zplain")
	  or return;
	if ($phase eq 'cutting_over')
	{
		release(shift @holders);
		$pids = wait_waiter($svc, $relation, "the cutover's setval") or return;
	}
	return ($id, $pids, @holders);
}

# wait until the job of $svc no longer runs
sub wait_job_end
{
	my ($svc) = @_;
	$node->poll_query_until('postgres',
		"SELECT worker_pid IS NOT NULL AND state NOT IN $running FROM splitdb.job"
		  . " WHERE service = '$svc'")
	  or die "the job of $svc does not end";
	return;
}

# one line per table of @tables, in $schema of $db: the table's name,
# and what $what (a function of a table's name, such as fingerprint_sql)
# says of it, in one query
sub per_table
{
	my ($db, $what, $schema, @tables) = @_;
	return query($db,
		join("\nUNION ALL ", map { "SELECT '$_', (" . $what->("$schema.$_") . ')' } @tables)
		  . "\nORDER BY 1");
}

# The objects of the sibling's tables of a service made with xref, as a
# migration that nothing stopped leaves them (its cross-service keys are
# triggers there), with the names of service $svc: those of service
# control, migrated once, in one run.
my $control;

sub control_objects
{
	my ($svc) = @_;
	if (!defined $control)
	{
		my $before = make_service('control', xref => 1);
		query('postgres', "SELECT splitdb_migrate('control', mode => 'offline', wait => true)");
		$control = per_table('control', \&objects_sql, 'public', sort keys %{ $before->{tables} });
	}
	(my $objects = $control) =~ s/^control_/${svc}_/mg;
	return $objects;
}

# The job is done after two runs and the sibling holds exactly what the
# source held, the source the shims and the archived originals.
sub check_migrated
{
	my ($svc, $before) = @_;
	my @tables = sort keys %{ $before->{tables} };
	my $rows = join("\n", map { "$_|$before->{tables}{$_}{rows}" } @tables);
	my $objects = join("\n", map { "$_|$before->{tables}{$_}{objects}" } @tables);

	is(job($svc, "state || '|' || runs || '|' || coalesce(last_error, 'no error')"),
		'done|2|no error', "$svc: the job is done after 2 runs")
	  or return diag(job_summary($svc));
	is(per_table($svc, \&fingerprint_sql, 'public', @tables),
		$rows, "$svc: the sibling's tables hold exactly the source's rows");
	is(per_table($svc, \&objects_sql, 'public', @tables),
		$before->{xref} ? control_objects($svc) : $objects,
		"$svc: the sibling's tables have the source's indexes, constraints and triggers, once, all valid");
	is(relations($svc, $svc), $before->{relations},
		"$svc: the sibling holds exactly the source's relations, none twice");
	is(per_table('postgres', \&fingerprint_sql, 'splitdb_archive', @tables),
		$rows, "$svc: the archived originals hold every row");
	is(per_table('postgres', sub { "SELECT relkind::text FROM pg_class WHERE oid = '$_[0]'::regclass" },
			'public', @tables),
		join("\n", map { "$_|f" } @tables),
		"$svc: the source's tables are shims");
	is(per_table('postgres', \&fingerprint_sql, 'public', @tables),
		$rows, "$svc: the shims read the same rows");
	is( query(
			'postgres',
			"SELECT count(*) || ' tables, ' || count(*) FILTER (WHERE ok) || ' ok'"
			  . " FROM splitdb_verify('$svc')"),
		scalar(@tables) . ' tables, ' . scalar(@tables) . ' ok',
		"$svc: splitdb_verify finds the same counts and checksums on both sides");
	ok( poll_until(sub { sibling_sessions($svc) eq '' }, "the sessions of $svc to end"),
		"$svc: no splitdb session is left in the sibling");
	return unless $before->{xref};
	is( query(
			'postgres',
			"SELECT string_agg(constraint_name, ' ' ORDER BY constraint_name) FROM splitdb_references"
			  . " WHERE enforced AND constraint_name LIKE '${svc}\\_%'"),
		"${svc}_child_big_id_fkey ${svc}_item_owner_id_fkey",
		"$svc: both keys between moved and staying tables are cross-service references");
	is(orphans($svc), '0 source, 0 sibling',
		"$svc: no referencing row without its referenced row on either side");
	return;
}

# ---------------------------------------------------------------------------
# 1. the source's server stops

sub case_source_stop
{
	my ($svc, $phase) = @_;
	my $before = make_service($svc, xref => $phase eq 'cutting_over');
	my ($id, $pids, @holders) = hold_in_phase($svc, $phase)
	  or return;

	is(job($svc, 'phase'), $phase, "$svc: the job is in phase $phase");
	my $offset = -s $node->logfile;
	$node->stop('immediate');
	ok(alive($svc, $pids) > 0,
		"$svc: the stopped worker's session in the sibling goes on ($pids)");
	$node->start;
	$node->wait_for_log(
		qr/the launcher looked for interrupted jobs in \d+ of \d+ databases/, $offset);
	ok( $node->log_contains(
			qr/resuming job $id of service "$svc" after a restart/, $offset),
		"$svc: the launcher resumes the job after the restart")
	  or return diag(job_summary($svc));

	# the resumed run ends the stopped run's session, whose lock is still held
	poll_until(sub { alive($svc, $pids) == 0 || job($svc, "state = 'failed'") eq 't' },
		"the sessions of $svc to end");
	is(alive($svc, $pids), 0,
		"$svc: the resumed run ended the stopped run's sibling session while its lock was held");
	my $ended = qr/job $id of service "$svc" ended \d+ sessions? of an earlier run in the sibling/;
	poll_until(sub { $node->log_contains($ended, $offset) || job($svc, "state = 'failed'") eq 't' },
		"the log line of the fence of $svc");
	ok($node->log_contains($ended, $offset), "$svc: the resumed run logged that it ended them");
	release($_) for @holders;
	wait_job_end($svc);
	check_migrated($svc, $before);
	return;
}

# ---------------------------------------------------------------------------
# 2. the sibling's server stops

sub case_sibling_stop
{
	my ($svc, $phase) = @_;
	my $before = make_service($svc, xref => $phase eq 'cutting_over');
	my ($id, $pids, @holders) = hold_in_phase($svc, $phase)
	  or return;

	is(job($svc, 'phase'), $phase, "$svc: the job is in phase $phase");
	$sib->stop('immediate');
	forget($_) for @holders;
	wait_job_end($svc);
	like(
		job($svc, "state || '|' || phase || '|' || last_sqlstate || '|' || last_error"),
		qr/^failed\|$phase\|08006\|lost the connection to the sibling of service "$svc" \([^\n()]+\)$/,
		"$svc: the job is failed in phase $phase: lost the connection to the sibling (08006), libpq's first line in the detail"
	) or diag(job_summary($svc));
	for my $table (sort keys %{ $before->{tables} })
	{
		is(query('postgres',
				"SELECT relkind::text || ' ' || relnamespace::regnamespace FROM pg_class"
				  . " WHERE oid = 'public.$table'::regclass"),
			'r public', "$svc: $table is still an ordinary table of the source");
		is(fingerprint('postgres', "public.$table"),
			$before->{tables}{$table}{rows}, "$svc: with all its rows");
	}
	$sib->start;

	my ($out, $err);
	$node->psql(
		'postgres',
		"SET statement_timeout = '60s'; SELECT splitdb_migrate('$svc', wait => true)",
		stdout => \$out,
		stderr => \$err);
	is($out, $id, "$svc: one splitdb_migrate(wait => true) resumes job $id to done")
	  or diag("stderr: $err");
	check_migrated($svc, $before);
	return;
}

case_source_stop('s_prep', 'preparing');
case_source_stop('s_copy', 'copying');
case_source_stop('s_idx',  'indexing');
case_source_stop('s_ver',  'verifying');
case_source_stop('s_cut',  'cutting_over');

case_sibling_stop('b_prep', 'preparing');
case_sibling_stop('b_copy', 'copying');
case_sibling_stop('b_idx',  'indexing');
case_sibling_stop('b_ver',  'verifying');
case_sibling_stop('b_cut',  'cutting_over');

# ---------------------------------------------------------------------------
# 3. cross-service references: the sibling stops in a transaction

# The referencing rows of $svc without their referenced row: in the source
# (NAME_child, against the shim of NAME_big) and in the sibling (NAME_item,
# against the source's NAME_owner).
sub orphans
{
	my ($svc) = @_;
	my $child = query('postgres',
		"SELECT count(*) FROM ${svc}_child c WHERE NOT EXISTS"
		  . " (SELECT FROM ${svc}_big b WHERE b.id = c.big_id)");
	my %owners = map { $_ => 1 } split /\n/, query('postgres', "SELECT id FROM ${svc}_owner");
	my $items = grep { !$owners{$_} }
	  split /\n/, query($svc, "SELECT owner_id FROM public.${svc}_item");
	return "$child source, $items sibling";
}

# one transaction's writes: a row of the source's NAME_owner, one of NAME_big
# through its shim, a row of the source's NAME_child that references it and
# one of NAME_item, through its shim, that references the owner
sub writes
{
	my ($svc, $k) = @_;
	return qq{INSERT INTO ${svc}_owner VALUES ($k);
INSERT INTO ${svc}_big (id, label, created_at) VALUES ($k, 'new $k', '2026-01-01');
INSERT INTO ${svc}_child VALUES ($k, $k);
INSERT INTO ${svc}_item VALUES ($k, $k)};
}

# how many rows of key $k each of the four tables holds, on its side
sub written
{
	my ($svc, $k) = @_;
	return join(' ',
		query('postgres', "SELECT count(*) FROM ONLY public.${svc}_owner WHERE id = $k"),
		query('postgres', "SELECT count(*) FROM ONLY public.${svc}_child WHERE id = $k"),
		query($svc,       "SELECT count(*) FROM public.${svc}_big WHERE id = $k"),
		query($svc,       "SELECT count(*) FROM public.${svc}_item WHERE id = $k"));
}

sub case_references
{
	my ($svc) = @_;
	my $tx = $node->background_psql('postgres', on_error_stop => 0);
	$tx->query_safe('\\set VERBOSITY verbose');
	$tx->query_safe('BEGIN; ' . writes($svc, 100000));
	$sib->stop('immediate');
	$tx->{stderr} = '';
	my ($out, $ret) = $tx->query('COMMIT');
	isnt($ret, 0, "$svc: a transaction across services cannot commit once the sibling stopped")
	  or diag("stdout: $out");
	note "the failed COMMIT: $tx->{stderr}";
	$sib->start;

	is(written($svc, 100000), '0 0 0 0', "$svc: nothing of the transaction stays on either side");
	is(orphans($svc), '0 source, 0 sibling',
		"$svc: no referencing row without its referenced row on either side");
	is(query('postgres', "SELECT count(*) FROM splitdb_orphans('$svc')"),
		'0', "$svc: splitdb_orphans finds none");

	# the next transaction, in the same session and in a new one
	$tx->{stderr} = '';
	($out, $ret) = $tx->query('BEGIN; ' . writes($svc, 100001) . '; COMMIT');
	is($ret, 0, "$svc: the next transaction in the same session commits")
	  or diag("stderr: $tx->{stderr}");
	is(written($svc, 100001), '1 1 1 1', "$svc: its rows are on both sides");
	$tx->{stderr} = '';
	($out, $ret) = $tx->query("INSERT INTO ${svc}_child VALUES (100002, 999999)");
	like($tx->{stderr}, qr/ERROR:  23503: /,
		"$svc: and it checks keys: a row referencing no row of the shim is refused (23503)");
	$tx->{stderr} = '';
	($out, $ret) = $tx->query("INSERT INTO ${svc}_item VALUES (100002, 999999)");
	like($tx->{stderr}, qr/ERROR:  23503: /,
		"$svc: a row written through the shim referencing no row of the source is refused (23503)");
	$tx->quit;
	query('postgres', writes($svc, 100003));
	is(written($svc, 100003), '1 1 1 1', "$svc: a transaction of a new session commits");
	is(written($svc, 100002), '0 0 0 0', "$svc: the refused rows are nowhere");
	is(orphans($svc), '0 source, 0 sibling',
		"$svc: still no referencing row without its referenced row");
	return;
}

case_references('b_cut');

$sib->stop;
$node->stop;
done_testing();
