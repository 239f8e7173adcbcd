# Copyright (c) 2026, splitdb developers

# A real schema, the public sample chinook ($SPLITDB_SAMPLES, or
# ../shared/samples next to the checkout, as 003_schema_oracle.pl finds
# it), migrated online while an application writes, its worker killed in
# each phase and between them, the server stopped with -m immediate at the
# cutover's commit, its rollback killed twice in a row, and a cancel killed
# twice in a row.
#
# Two clusters: "source" (splitdb installed, not preloaded: nothing resumes
# a job by itself, each splitdb_migrate() resumes it; restarted after each
# crash) and "sibling".  The service sales owns invoice and invoice_line
# (identity keys; a foreign key from invoice_line to invoice among them,
# from invoice to the staying customer and from invoice_line to the
# staying track: two crossing references).  The writers are pgbench
# clients whose every transaction, in one statement, inserts an invoice
# and one line, deletes a line or adds to a line's quantity, and records
# what it did in w_audit (a staying table), or updates a staying customer.
# "Exact" below: invoice and invoice_line hold exactly the rows that the
# sample's rows (copied to snap_invoice and snap_line before the job) and
# w_audit give (count, distinct keys, checksum of every row), and every
# original invoice is unchanged: no committed write lost or applied twice.
# "References hold": no invoice_line lacks its invoice, track or the
# invoice's customer, and an insert of a line for a missing track, of an
# invoice for a missing customer and the delete of a referenced track are
# refused with 23503, changing nothing.
#
# 1. job 1, online, writers throughout, one run after the other:
#    a. held after a batch of its copy, the worker is killed (SIGKILL: the
#       server crash-restarts);
#    b. resumed, the copy ends and the worker is killed while its sibling
#       session has built a unique index (an event trigger in the sibling
#       holds the statement at its end);
#    c. resumed, held before a round of catching up, killed;
#    d. resumed, held before its cutover, killed after a random delay
#       (between 0 and 0.4 s: before, in or after a catch-up round);
#    e. resumed, held after the sibling's commit of the cutover
#       (cutover_committing), the server stops with -m immediate;
#    f. resumed once more: done after six runs, exact in the sibling,
#       references hold through the shims and in the sibling.
# 2. splitdb_rollback() of job 1, writers writing through the shims: its
#    worker killed before the sibling's commit (locked), then again
#    between the two commits; the third call ends it: rolled_back, exact
#    in the source, references hold.
# 3. job 2, online, held before a round of catching up; splitdb_cancel()
#    waits to drop a table that a session reads in the sibling and is
#    terminated there, twice; the third cancel ends it: cancelled, no
#    capture trigger left on the tables, nothing left in the sibling,
#    exact in the source, references hold.
# 4. job 3, online, held after the sibling's commit of its cutover
#    (cutover_committing); the server stops with -m immediate, the writers
#    write again, splitdb_cancel(): cancelled, the source keeps its tables
#    without a capture trigger, nothing left in the sibling (no relation,
#    server or trigger), exact in the source, references hold.
# 5. job 4 migrates the service again while the writers write: done, exact.
#
# Once the tables are shims, a writer's transaction commits in the sibling
# (postgres_fdw, at pre-commit) just before it commits its audit row in the
# source: a crash of the source between the two keeps the write and loses
# its audit row (operations.md, "The two-database commit window").  So the
# kills after a cutover come only while the rollback holds the shims
# locked (locked, between_commits), when no writer can be in that window.

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use SplitdbTest qw(fingerprint_sql poll_until psql_verbose JOB_SUMMARY);

my $pause_key    = 1936747639;    # SPLITDB_MIGRATE_PAUSE_KEY
my $rb_pause_key = 1936747638;    # SPLITDB_ROLLBACK_PAUSE_KEY
my $batch        = 200;
my $svc          = 'sales';
my $db           = 'chinook';
my $running      = qr/^(queued|preparing|copying|indexing|catching_up|verifying|cutting_over)$/;

use constant WRITER => 'splitdb_test_writer';

my $top     = dirname(dirname(dirname(abs_path(__FILE__))));
my $samples = $ENV{SPLITDB_SAMPLES} // "$top/../shared/samples";
if (!-f "$samples/chinook/Chinook_PostgreSql_AutoIncrementPKs.sql")
{
	fail("sample databases: no chinook in $samples"
		  . ' (put the samples in ../shared/samples next to the checkout,'
		  . ' or name their directory in SPLITDB_SAMPLES)');
	done_testing();
	exit;
}

my $src = PostgreSQL::Test::Cluster->new('source');
$src->init;
$src->append_conf('postgresql.conf', "restart_after_crash = on\nmax_worker_processes = 16\n");
$src->start;
my $sib = PostgreSQL::Test::Cluster->new('sibling');
$sib->init;
$sib->start;
my $user = $src->safe_psql('postgres', 'SELECT current_user');

sub src { return $src->safe_psql($db, $_[0]); }
sub sib { return $sib->safe_psql($svc, $_[0]); }

# ---------------------------------------------------------------------------
# the schema, the service, the sibling's hold

$src->safe_psql('postgres',
	q{DO $$ BEGIN IF to_regrole('postgres') IS NULL THEN CREATE ROLE postgres; END IF; END $$});
$src->safe_psql('postgres', "CREATE DATABASE $db");
{
	my $sql = slurp_file("$samples/chinook/Chinook_PostgreSql_AutoIncrementPKs.sql");
	$sql =~ s/^(DROP DATABASE|CREATE DATABASE|\\c ).*\n//mg;
	my $file = PostgreSQL::Test::Utils::tempdir() . '/chinook.sql';
	append_to_file($file, $sql);
	local $ENV{LC_ALL} = 'C';
	PostgreSQL::Test::Utils::system_or_bail('psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1',
		'-d', $src->connstr($db), '-f', $file);
}
$sib->safe_psql('postgres', "CREATE DATABASE $svc");
my ($host, $port) = ($sib->host, $sib->port);
src(qq{
CREATE EXTENSION splitdb CASCADE;
ALTER SYSTEM SET splitdb.batch_rows = $batch;
ALTER SYSTEM SET splitdb.copy_readers = 1;
SELECT pg_reload_conf();
CREATE TABLE snap_invoice AS SELECT * FROM invoice;
CREATE TABLE snap_line AS SELECT * FROM invoice_line;
CREATE TABLE w_audit (
	seq         bigserial PRIMARY KEY,
	op          "char" NOT NULL,
	line_id     integer NOT NULL,
	invoice_id  integer,
	track_id    integer,
	customer_id integer
);
CREATE SERVER sales_srv FOREIGN DATA WRAPPER postgres_fdw
	OPTIONS (host '$host', port '$port', dbname '$svc');
CREATE USER MAPPING FOR CURRENT_USER SERVER sales_srv OPTIONS (user '$user');
SELECT splitdb_add_service('$svc', server => 'sales_srv');
SELECT splitdb_assign('$svc', 'invoice', 'invoice_line');
});
$src->poll_query_until($db, "SELECT current_setting('splitdb.batch_rows')", $batch)
  or die 'splitdb.batch_rows was not reloaded';
my $lines = src('SELECT count(*) FROM invoice_line');

# in the sibling: splitdb's statements that end having made a unique
# index in public wait for faults.gate while 'unique' is armed
sib(q{
CREATE SCHEMA faults;
CREATE TABLE faults.gate ();
CREATE TABLE faults.armed (tag text PRIMARY KEY);
CREATE FUNCTION faults.on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
	IF pg_catalog.current_setting('application_name') = 'splitdb'
	   AND EXISTS (SELECT FROM faults.armed WHERE tag = 'unique')
	   AND EXISTS (SELECT FROM pg_catalog.pg_event_trigger_ddl_commands() c
	                 JOIN pg_catalog.pg_index i ON i.indexrelid = c.objid
	                WHERE i.indisunique) THEN
		LOCK TABLE faults.gate IN SHARE MODE;
	END IF;
END
$$;
CREATE EVENT TRIGGER faults_on_ddl ON ddl_command_end EXECUTE FUNCTION faults.on_ddl();
});

# ---------------------------------------------------------------------------
# the writers

my $script = "$PostgreSQL::Test::Utils::tmp_check/sales_writer.sql";
append_to_file(
	$script, qq{\\set r random(1, 10)
\\set c random(1, 59)
\\set t random(1, 3503)
\\set l random(1, $lines + 800)
\\if :r <= 4
WITH i AS (INSERT INTO invoice (customer_id, invoice_date, billing_address, total) VALUES (:c, '2026-01-01', 'writer', 0.99) RETURNING invoice_id, customer_id), l AS (INSERT INTO invoice_line (invoice_id, track_id, unit_price, quantity) SELECT invoice_id, :t, 0.99, 1 FROM i RETURNING invoice_line_id, invoice_id, track_id) INSERT INTO w_audit (op, line_id, invoice_id, track_id, customer_id) SELECT 'i', l.invoice_line_id, l.invoice_id, l.track_id, i.customer_id FROM l, i;
\\elif :r = 5
WITH d AS (DELETE FROM invoice_line WHERE invoice_line_id = :l RETURNING invoice_line_id) INSERT INTO w_audit (op, line_id) SELECT 'd', invoice_line_id FROM d;
\\elif :r <= 9
WITH u AS (UPDATE invoice_line SET quantity = quantity + 1 WHERE invoice_line_id = :l RETURNING invoice_line_id) INSERT INTO w_audit (op, line_id) SELECT 'u', invoice_line_id FROM u;
\\else
UPDATE customer SET fax = 'writer ' || :t WHERE customer_id = :c;
\\endif
});

# pgbench writers: 2 clients, 100 transactions a second
sub start_writers
{
	my ($out, $err) = ('', '');
	local $ENV{PGAPPNAME} = WRITER;
	my $h = IPC::Run::start(
		[
			'pgbench', '-n', '-c', '2', '-j', '1', '-R', '100', '-T', '300', '-f', $script,
			'-h', $src->host, '-p', $src->port, $db
		],
		'>', \$out, '2>', \$err);
	return { h => $h, err => \$err };
}

# stop the writers and wait until none of their sessions is left; returns
# what they wrote on stderr
sub stop_writers
{
	my ($w) = @_;
	$w->{h}->kill_kill(grace => 5);
	poll_until(
		sub {
			src("SELECT count(*) FROM pg_stat_activity WHERE application_name = '" . WRITER . "'") eq '0';
		},
		undef,
		'the end of the writers\' sessions');
	return ${ $w->{err} };
}

sub audited { return src('SELECT count(*) FROM w_audit'); }

# wait until the writers have committed $n more audited writes
sub more_writes
{
	my ($n, $what) = @_;
	my $from = audited();
	poll_until(sub { audited() >= $from + $n }, undef, "$n writes $what");
	return;
}

# ---------------------------------------------------------------------------
# the checks

# what invoice_line and invoice must hold: the sample's rows and the
# audited writes
my $expected_lines = q{
WITH a AS (SELECT line_id, count(*) FILTER (WHERE op = 'u') AS nu, bool_or(op = 'd') AS del
             FROM w_audit GROUP BY line_id),
     b AS (SELECT invoice_line_id AS id, invoice_id, track_id, quantity FROM snap_line
           UNION ALL SELECT line_id, invoice_id, track_id, 1 FROM w_audit WHERE op = 'i')
SELECT count(*) || ' rows, ' || count(DISTINCT b.id) || ' keys, checksum '
       || coalesce(sum(hashtext(ROW(b.id, b.invoice_id, b.track_id, b.quantity + coalesce(a.nu, 0))::text)), 0)
  FROM b LEFT JOIN a ON a.line_id = b.id WHERE NOT coalesce(a.del, false)};
my $actual_lines = q{
SELECT count(*) || ' rows, ' || count(DISTINCT invoice_line_id) || ' keys, checksum '
       || coalesce(sum(hashtext(ROW(invoice_line_id, invoice_id, track_id, quantity)::text)), 0)
  FROM invoice_line};
my $expected_invoices = q{
SELECT count(*) || ' rows, ' || count(DISTINCT id) || ' keys, checksum '
       || coalesce(sum(hashtext(ROW(id, customer_id, billing_address, total)::text)), 0)
  FROM (SELECT invoice_id AS id, customer_id, billing_address, total FROM snap_invoice
        UNION ALL SELECT invoice_id, customer_id, 'writer', 0.99 FROM w_audit WHERE op = 'i') e};
my $actual_invoices = q{
SELECT count(*) || ' rows, ' || count(DISTINCT invoice_id) || ' keys, checksum '
       || coalesce(sum(hashtext(ROW(invoice_id, customer_id, billing_address, total)::text)), 0)
  FROM invoice};
my $max_invoice = src('SELECT max(invoice_id) FROM snap_invoice');
my $originals = src(fingerprint_sql('public.snap_invoice', 'invoice_id'));

# the tables in $where ('sibling' or 'source') hold exactly the sample's
# rows and the committed writes
sub check_exact
{
	my ($where, $what) = @_;
	my $q = $where eq 'sibling' ? \&sib : \&src;
	is($q->($actual_lines), src($expected_lines),
		"$what: invoice_line in the $where holds exactly the sample's rows and the committed writes");
	is($q->($actual_invoices), src($expected_invoices),
		"$what: invoice in the $where holds exactly the sample's rows and the committed inserts");
	is($q->(fingerprint_sql('public.invoice', 'invoice_id', "invoice_id <= $max_invoice")),
		$originals, "$what: every original invoice is unchanged in the $where");
	return;
}

# no line lacks its invoice, its track or its invoice's customer; the
# refused writes change nothing
sub check_references
{
	my ($what) = @_;
	is( src(q{
SELECT (SELECT count(*) FROM invoice_line l WHERE NOT EXISTS (SELECT FROM invoice i WHERE i.invoice_id = l.invoice_id))
       || ' ' || (SELECT count(*) FROM invoice_line l WHERE NOT EXISTS (SELECT FROM track t WHERE t.track_id = l.track_id))
       || ' ' || (SELECT count(*) FROM invoice i WHERE NOT EXISTS (SELECT FROM customer c WHERE c.customer_id = i.customer_id))}),
		'0 0 0', "$what: every line has its invoice and its track, every invoice its customer");
	my $before = src($actual_lines) . ' / ' . src($actual_invoices) . ' / ' . src('SELECT count(*) FROM track');
	my $used   = src('SELECT min(track_id) FROM invoice_line');
	for my $write (
		['a line for a missing track', 'INSERT INTO invoice_line (invoice_id, track_id, unit_price, quantity) VALUES (1, 999999, 1, 1)'],
		['an invoice for a missing customer', "INSERT INTO invoice (customer_id, invoice_date, total) VALUES (999999, '2026-01-01', 1)"],
		['the delete of a referenced track', "DELETE FROM track WHERE track_id = $used"])
	{
		my ($ret, $out, $err) = psql_verbose($src, $db, "$write->[1];");
		like($err, qr/ERROR:  23503/, "$what: $write->[0] is refused with 23503");
	}
	is(src($actual_lines) . ' / ' . src($actual_invoices) . ' / ' . src('SELECT count(*) FROM track'),
		$before, "$what: the refused writes changed nothing");
	return;
}

# ---------------------------------------------------------------------------
# the job

sub job
{
	my ($id, $columns) = @_;
	return src("SELECT $columns FROM splitdb.job WHERE job_id = $id");
}

sub job_state
{
	my ($id) = @_;
	return job($id, "CASE WHEN splitdb.job_worker_gone(state, worker_pid) THEN 'failed' ELSE state END");
}

# a session that holds the pause lock, and a call of splitdb_migrate()
# with splitdb.migrate_pause_at = $point (new or resumed); waits until the
# worker is paused there; returns the holder, the job id, the worker's pid
sub start_paused
{
	my ($point) = @_;
	my $holder = $src->background_psql($db);
	$holder->query_safe("SELECT pg_advisory_lock($pause_key, 0)");
	my $id = src("SET splitdb.migrate_pause_at = '$point'; SELECT splitdb_migrate('$svc')");
	poll_until(
		sub {
			src("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'splitdb worker'"
				  . " AND query = 'paused at $point'") eq '1';
		},
		sub { job_state($id) !~ $running },
		"the worker of $svc to pause at $point")
	  or die "the job of $svc ended before pausing at $point: " . job($id, JOB_SUMMARY);
	return ($holder, $id, job($id, 'worker_pid'));
}

# SIGKILL $pid, a backend of the source: the server crash-restarts
sub crash
{
	my ($pid, $what) = @_;
	my $offset = -s $src->logfile;
	is(kill('KILL', $pid), 1, "$what: sent SIGKILL");
	$src->wait_for_log(qr/all server processes terminated; reinitializing/, $offset);
	$src->poll_query_until($db, 'SELECT true') or die "the server does not come back after $what";
	return;
}

# ---------------------------------------------------------------------------
# 1. job 1: the worker killed in each phase of an online migration

my $w = start_writers();
more_writes(20, 'before the job');

# a. killed after a batch of its copy
my ($holder, $id, $pid) = start_paused('copying');
my $ckpt = src("SELECT sum(rows_copied) FROM splitdb.job_table WHERE job_id = $id");
ok($ckpt > 0 && $ckpt < $lines, "job 1: held in its copy after $ckpt rows");
more_writes(20, 'while the copy is held');
crash($pid, 'job 1 held in its copy');
eval { $holder->quit; };
stop_writers($w);
is(job($id, "concat_ws(' ', splitdb.job_worker_gone(state, worker_pid), phase, runs)"),
	't copying 1', 'job 1: after the kill the job reads as failed, in phase copying');

# b. killed while its sibling session has built a unique index
$w = start_writers();
sib("INSERT INTO faults.armed VALUES ('unique')");
my $gate = $sib->background_psql($svc);
$gate->query_safe('BEGIN; LOCK TABLE faults.gate IN EXCLUSIVE MODE');
is(src("SELECT splitdb_migrate('$svc')"), $id, 'job 1: splitdb_migrate() resumes it');
poll_until(
	sub {
		sib(q{SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
			WHERE a.application_name = 'splitdb' AND NOT l.granted AND l.relation = 'faults.gate'::regclass}) ne '0';
	},
	sub { job_state($id) !~ $running },
	'a statement of the sibling that made a unique index')
  or die 'job 1 ended before it made a unique index: ' . job($id, JOB_SUMMARY);
is(job($id, 'phase'), 'indexing', 'job 1: held in phase indexing, a unique index built in the sibling');
more_writes(10, 'while the index is held');
crash(job($id, 'worker_pid'), 'job 1 held at a unique index');
sib('DELETE FROM faults.armed');
$gate->query_safe('ROLLBACK');
$gate->quit;
stop_writers($w);

# c. killed before a round of catching up
$w = start_writers();
($holder, $id, $pid) = start_paused('catching_up');
is(job($id, 'runs'), '3', 'job 1: its third run is held before a round of catching up');
more_writes(20, 'while the job is held before a round');
crash($pid, 'job 1 held before a round');
eval { $holder->quit; };
stop_writers($w);

# d. killed after a random delay, somewhere before its cutover
$w = start_writers();
my $delay = int(rand(400_000));
note("job 1: the fourth run is killed after $delay us");
$holder = $src->background_psql($db);
$holder->query_safe("SELECT pg_advisory_lock($pause_key, 0)");
src("SET splitdb.migrate_pause_at = 'cutover'; SELECT splitdb_migrate('$svc')");
poll_until(sub { job($id, "worker_pid IS NOT NULL AND state <> 'failed'") eq 't' },
	undef, 'the fourth run\'s worker');
usleep($delay);
$pid = job($id, 'worker_pid');
crash($pid, "job 1 after $delay us");
eval { $holder->quit; };
stop_writers($w);
is(job($id, 'runs'), '4', 'job 1: the fourth run was killed before its cutover');

# e. the server stopped with -m immediate at the cutover's commit
$w = start_writers();
($holder, $id, $pid) = start_paused('cutover_committing');
$src->stop('immediate');
$src->start;
eval { $holder->quit; };
stop_writers($w);
is(src("SELECT relkind FROM pg_class WHERE oid = 'invoice'::regclass")
	  . ' ' . sib("SELECT count(*) FROM pg_class WHERE relname IN ('invoice', 'invoice_line') AND relkind = 'r'"),
	'r 2', 'job 1: after a stop at the cutover\'s commit the source has its tables, the sibling its copies');

# f. the last run
$w = start_writers();
is(src("SELECT splitdb_migrate('$svc', wait => true)"), $id, 'job 1: the last splitdb_migrate()');
is(job($id, "state || ' ' || mode || ' ' || runs"), 'done online 6', 'job 1: done, online, after six runs')
  or diag(job($id, JOB_SUMMARY));
more_writes(30, 'through the shims');
is(stop_writers($w), '', 'job 1: no writer saw an error through the shims');
is(src("SELECT string_agg(relkind::text, ' ' ORDER BY relname) FROM pg_class WHERE relname IN ('invoice', 'invoice_line') AND relnamespace = 'public'::regnamespace"),
	'f f', 'job 1: the tables\' names lead to the shims');
check_exact('sibling', 'job 1');
check_references('job 1');
{
	my ($ret, $out, $err) = psql_verbose($sib, $svc,
		'INSERT INTO invoice_line (invoice_id, track_id, unit_price, quantity) VALUES (999999, 1, 1, 1);');
	like($err, qr/ERROR:  23503/, 'job 1: in the sibling, a line for a missing invoice is refused with 23503');
}

# ---------------------------------------------------------------------------
# 2. the rollback killed twice in a row

sub start_rollback
{
	my ($point) = @_;
	my $hold = $src->background_psql($db);
	$hold->query_safe("SELECT pg_advisory_lock($rb_pause_key, $id)");
	my $caller = $src->background_psql($db, on_error_stop => 0);
	$caller->query_safe("SET splitdb.rollback_pause_at = '$point'");
	$caller->{stdin} .= "SELECT splitdb_rollback('$svc');\n";
	$caller->{run}->pump_nb;
	$src->poll_query_until($db, "SELECT count(*) FROM pg_stat_activity WHERE query = 'paused at $point'", '1')
	  or die "the rollback does not pause at $point";
	return ($hold, $caller, src("SELECT pid FROM pg_stat_activity WHERE query = 'paused at $point'"));
}

$w = start_writers();
more_writes(20, 'through the shims before the rollback');
for my $point ('locked', 'between_commits')
{
	my ($hold, $caller, $rpid) = start_rollback($point);
	crash($rpid, "the rollback held at $point");
	eval { $hold->quit; $caller->quit; };
	stop_writers($w);
	is(job($id, 'state'), 'done', "rollback killed at $point: the job is still done");
	is(src("SELECT relkind FROM pg_class WHERE oid = 'invoice_line'::regclass"),
		'f', "rollback killed at $point: the name still leads to the shim");
	$w = start_writers();
}
src("SELECT splitdb_rollback('$svc')");
stop_writers($w);
is(job($id, 'state') . ', ' . src("SELECT step || ', ' || runs FROM splitdb.rollback WHERE job_id = $id"),
	'rolled_back, done, 3', 'rollback: the third call ends it');
is(src("SELECT string_agg(relkind::text, ' ' ORDER BY relname) FROM pg_class WHERE relname IN ('invoice', 'invoice_line') AND relnamespace = 'public'::regnamespace"),
	'r r', 'rollback: the originals are back under their names');
is(sib(q{SELECT count(*) FROM pg_class WHERE relname IN ('invoice', 'invoice_line')}),
	'0', 'rollback: the sibling\'s copies are gone');
check_exact('source', 'rollback');
check_references('rollback');

# ---------------------------------------------------------------------------
# 3. a cancel killed twice in a row

$w = start_writers();
my $id2;
($holder, $id2, $pid) = start_paused('catching_up');
ok($id2 > $id, 'job 2: a new online job, held before a round of catching up');
my $reader = $sib->background_psql($svc);
$reader->query_safe('BEGIN; SELECT count(*) FROM invoice_line');
my $dropping = q{SELECT coalesce(string_agg(a.pid::text, ',' ORDER BY a.pid), '')
  FROM pg_locks l JOIN pg_stat_activity a USING (pid)
 WHERE a.application_name = 'splitdb' AND NOT l.granted AND l.relation = 'public.invoice_line'::regclass};
my $stale = '';
for my $try (1, 2)
{
	my $bg = $src->background_psql($db, on_error_stop => 0);
	$bg->{stdin} .= "SELECT splitdb_cancel('$svc');\n";
	$bg->{run}->pump_nb;
	# this cancel's drop waits in the sibling (the killed one's session may wait there too)
	poll_until(sub { my $now = sib($dropping); $now ne '' && $now ne $stale }, undef,
		"cancel ${try}'s drop in the sibling");
	$stale = sib($dropping);
	my $cpid = src("SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT splitdb_cancel(%'");
	src("SELECT pg_terminate_backend($cpid)");
	$src->poll_query_until($db, "SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $cpid)")
	  or die "the cancel's backend $cpid did not exit";
	eval { $bg->quit; };
	is(job_state($id2), 'failed', "cancel $try, terminated: job 2 reads as failed");
	is(sib(q{SELECT count(*) FROM pg_class WHERE relname IN ('invoice', 'invoice_line') AND relkind = 'r'}),
		'2', "cancel $try, terminated: the sibling's tables are still there");
}
eval { $holder->quit; };
more_writes(10, 'between the cancels');
{
	my $bg = $src->background_psql($db, on_error_stop => 0);
	$bg->{stdin} .= "SELECT splitdb_cancel('$svc');\n";
	$bg->{run}->pump_nb;
	usleep(200_000);
	$reader->query_safe('ROLLBACK');
	$reader->quit;
	my ($out) = $bg->query('SELECT 0');
	is($out, "\n0", 'cancel 3: returns') or diag("stderr: $bg->{stderr}");
	$bg->quit;
}
stop_writers($w);
is(job($id2, 'state'), 'cancelled', 'cancel 3: job 2 is cancelled');
is( src(q{SELECT count(*) FROM pg_trigger WHERE tgrelid IN ('invoice'::regclass, 'invoice_line'::regclass)
	AND tgname LIKE 'splitdb\_capture\_%'}) . ' ' . src("SELECT count(*) FROM splitdb.capture WHERE job_id = $id2"),
	'0 0', 'cancel 3: no capture trigger and no capture row left in the source');
is(sib(q{SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace}),
	'0', 'cancel 3: nothing left in the sibling\'s public schema');
check_exact('source', 'cancel');
check_references('cancel');

# ---------------------------------------------------------------------------
# 4. a cancel after an immediate stop at the cutover's commit

$w = start_writers();
my $id3;
($holder, $id3, $pid) = start_paused('cutover_committing');
ok($id3 > $id2, 'job 3: a new online job, held after the sibling\'s commit of its cutover');
$src->stop('immediate');
$src->start;
eval { $holder->quit; };
stop_writers($w);
$w = start_writers();
more_writes(20, 'after the stop at the cutover\'s commit');
src("SELECT splitdb_cancel('$svc')");
stop_writers($w);
is(job($id3, 'state'), 'cancelled', 'job 3: cancelled after the stop at the cutover\'s commit');
is( src(q{SELECT count(*) FROM pg_trigger WHERE tgrelid IN ('invoice'::regclass, 'invoice_line'::regclass)
	AND tgname LIKE 'splitdb\_capture\_%'}) . ' ' . src("SELECT count(*) FROM splitdb.capture WHERE job_id = $id3")
	  . ' ' . src("SELECT string_agg(relkind::text, ' ' ORDER BY relname) FROM pg_class WHERE relname IN ('invoice', 'invoice_line') AND relnamespace = 'public'::regnamespace"),
	'0 0 r r', 'job 3: the source keeps its tables, without a capture trigger or row');
is( sib(q{SELECT (SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace) || ' '
	|| (SELECT count(*) FROM pg_foreign_server) || ' ' || (SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal)}),
	'0 0 0', 'job 3: nothing left in the sibling (relations, servers, triggers)');
check_exact('source', 'job 3, cancelled');
check_references('job 3, cancelled');

# ---------------------------------------------------------------------------
# 5. migrated again while the writers write

$w = start_writers();
my $id4 = src("SELECT splitdb_migrate('$svc', wait => true)");
is(job($id4, "state || ' ' || mode || ' ' || runs"), 'done online 1', 'job 4: done in one run')
  or diag(job($id4, JOB_SUMMARY));
more_writes(20, 'through the shims of job 4');
is(stop_writers($w), '', 'job 4: no writer saw an error');
check_exact('sibling', 'job 4');
check_references('job 4');

done_testing();
