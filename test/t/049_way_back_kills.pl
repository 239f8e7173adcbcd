# Copyright (c) 2026, splitdb developers

# The way back, killed in every step, for a service whose tables are a
# two-level partition tree (a partitioned partition with a default
# partition), an inheritance parent with a child, and a plain table with a
# quoted, mixed-case, non-ASCII name, all owned by a role that is no
# superuser and logs in with its password (scram).
#
# 1. splitdb_rollback() of service rb: after the cutover, the application
#    writes in the sibling through each level (the root, the partitioned
#    partition, a leaf; rows moved between partitions; a partition made
#    there with rows, one under the partitioned partition, and a table
#    loaded apart and ATTACHed), through the inheritance parent (rows of
#    the child too) and into the child, into the plain table, and through
#    the shims in the source.  Then one rollback, stopped at each of its
#    steps in turn (splitdb.rollback_pause_at): after it made the new
#    partitions in the archive (SIGKILL of its worker; a partition made
#    after that), after its replay rounds (an immediate stop); a run
#    during whose rounds a partition is made with rows, and that gives up
#    on the switch's locks (55P03) for a writer (the rows must not land in
#    the archive's default partition, which made every later call fail);
#    holding the switch's locks (SIGKILL), between the sibling's commit
#    and the source's (an immediate stop: writes through the shims fail
#    with the rolled-back message and a hint that says how to finish,
#    splitdb_doctor() reports it, splitdb_finalize() is refused and
#    changes nothing, nothing is lost), before its cleanup of the sibling
#    (SIGKILL); each call after a stop goes on from there, and the last
#    one completes.
# 2. splitdb_cancel() of service cx's online job, held at catching_up with
#    writes in the source (a partition made there meanwhile is refused,
#    55006): stopped immediately while its drops in the
#    sibling wait for a session there, then SIGKILLed while its drops in
#    the source wait for a writer; the third call ends it.
# 3. splitdb_finalize() of cx, migrated again (offline), after a rollback
#    SIGKILLed once it made the sibling's new partition in the archive:
#    SIGKILLed while
#    its rehearsal waits for a reader of an archived original, then stopped
#    immediately between the sibling's commit and the source's (the
#    rollback then refuses: the capture is gone); the third call ends it,
#    and the rollback is refused as finalized.
#
# After each: every table of the service holds exactly the rows of the
# model (the sibling's rows before the way back, the source's before the
# cancel): its count, its distinct rows and every row, table by table,
# each row in its own partition; splitdb_status and splitdb_doctor() are
# clean, no capture trigger or log is left, the archive holds nothing of
# the service (but after finalize's kills), and the monolith's code
# writes into each level of the restored tables.

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SplitdbTest qw(start_scram_node poll_until psql_verbose);

my %pw = (super => 'Pw-super-49w', app => 'Pw-app-49w');
my $rollback_key = 1936747638;    # SPLITDB_ROLLBACK_PAUSE_KEY
my $migrate_key  = 1936747639;    # SPLITDB_MIGRATE_PAUSE_KEY

my ($node, $user) = start_scram_node('wayback', \%pw, "restart_after_crash = on\n");
$node->safe_psql('postgres', q{
CREATE EXTENSION splitdb CASCADE;
GRANT CREATE ON SCHEMA public TO app;
});

sub src { return $node->safe_psql('postgres', $_[0]); }
sub sib { return $node->safe_psql($_[0], $_[1]); }

# $sql in database $db as the tables' owner, with its password: (exit
# code, stdout, stderr)
sub as_app
{
	my ($db, $sql) = @_;
	local $ENV{PGPASSWORD} = $pw{app};
	return psql_verbose($node, $db, $sql,
		connstr => $node->connstr($db) . ' user=app', on_error_stop => 1);
}

# the same, which must succeed; returns stdout
sub app_ok
{
	my ($db, $sql, $what) = @_;
	my ($ret, $out, $err) = as_app($db, $sql);
	is($ret, 0, $what) or diag($err);
	return $out;
}

# the leaves of service $p's tables (each with rows of its own), in order
sub leaves
{
	my ($p) = @_;
	my @t = map { "${p}_orders_$_" } qw(eu_low eu_rest us);
	return (@t, "${p}_animal", "${p}_dog", qq{"Kundenkonto Größe $p"});
}

# make_service($p): the tables, owned by app, and service $p whose
# sibling is database $p of this cluster, reached with passwords
sub make_service
{
	my ($p) = @_;
	app_ok('postgres', qq{
CREATE TABLE ${p}_orders (id integer NOT NULL, region text NOT NULL, amount integer NOT NULL,
	note text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE ${p}_orders_eu PARTITION OF ${p}_orders FOR VALUES IN ('eu') PARTITION BY RANGE (id);
CREATE TABLE ${p}_orders_eu_low PARTITION OF ${p}_orders_eu FOR VALUES FROM (0) TO (1000);
CREATE TABLE ${p}_orders_eu_rest PARTITION OF ${p}_orders_eu DEFAULT;
CREATE TABLE ${p}_orders_us PARTITION OF ${p}_orders FOR VALUES IN ('us');
INSERT INTO ${p}_orders SELECT g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END, g * 3, 'order ' || g
  FROM generate_series(1, 600) g;
INSERT INTO ${p}_orders SELECT g, 'eu', g, 'far ' || g FROM generate_series(5001, 5100) g;
CREATE TABLE ${p}_animal (id integer PRIMARY KEY, name text NOT NULL);
CREATE TABLE ${p}_dog (breed text NOT NULL DEFAULT 'mixed') INHERITS (${p}_animal);
ALTER TABLE ${p}_dog ADD PRIMARY KEY (id);
INSERT INTO ${p}_animal SELECT g, 'animal ' || g FROM generate_series(1, 100) g;
INSERT INTO ${p}_dog SELECT g, 'dog ' || g, 'breed ' || g % 4 FROM generate_series(101, 160) g;
CREATE TABLE "Kundenkonto Größe $p" ("Nr" integer PRIMARY KEY, "Wert" text NOT NULL);
INSERT INTO "Kundenkonto Größe $p" SELECT g, 'wert ' || g FROM generate_series(1, 200) g;
}, "$p: the owner makes the tables");
	src("CREATE DATABASE $p");
	my ($host, $port) = ($node->host, $node->port);
	src(qq{
SET log_statement = 'none';
CREATE SERVER ${p}_srv FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '$host', port '$port', dbname '$p');
CREATE USER MAPPING FOR CURRENT_USER SERVER ${p}_srv OPTIONS (user '$user', password '$pw{super}');
CREATE USER MAPPING FOR app SERVER ${p}_srv OPTIONS (user 'app', password '$pw{app}');
SELECT splitdb_add_service('$p', server => '${p}_srv');
SELECT splitdb_assign('$p', '${p}_orders', '${p}_animal', '${p}_dog', '"Kundenkonto Größe $p"');
});
	return;
}

# the model of table $t in database $db: its count, its distinct rows and
# every row (ONLY the table), with the partition each row is in
sub table_rows
{
	my ($db, $t) = @_;
	return $t . ': '
	  . sib($db,
		"SELECT count(*) || ' rows, ' || count(DISTINCT t::text) || ' distinct: '"
		  . " || coalesce(string_agg(t::text, ' ' ORDER BY t::text), '') FROM ONLY $t t");
}

# the model of every table in @tables of database $db, one per line
sub model
{
	my ($db, @tables) = @_;
	return join("\n", map { table_rows($db, $_) } @tables);
}

# the kinds and schemas of the relations named in @tables, in the source
sub placed
{
	my (@tables) = @_;
	my $names = join(', ', map { my $n = $_; $n =~ s/^"(.*)"$/$1/; "'$n'" } @tables);
	return src("SELECT string_agg(c.relname || ' ' || c.relkind::text || ' ' || n.nspname || ' '"
		  . " || pg_get_userbyid(c.relowner), ', ' ORDER BY c.relname, n.nspname)"
		  . " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
		  . " WHERE c.relname IN ($names) AND n.nspname IN ('public', 'splitdb_archive')");
}

# the launcher has looked for interrupted jobs after a start
sub wait_launcher
{
	my ($offset) = @_;
	$node->wait_for_log(qr/the launcher looked for interrupted jobs in (\d+) of \1 databases/, $offset);
	return;
}

# SIGKILL of $pid: the cluster restarts every process
sub sigkill
{
	my ($pid, $what) = @_;
	my $offset = -s $node->logfile;
	ok(kill('KILL', $pid), "$what: SIGKILL of process $pid");
	$node->wait_for_log(qr/\(PID $pid\) was terminated by signal 9/, $offset);
	$node->wait_for_log(qr/all server processes terminated; reinitializing/, $offset);
	$node->poll_query_until('postgres', 'SELECT true') or die "$what: the server does not come back";
	wait_launcher($offset);
	return;
}

# an immediate stop and a start
sub immediate_stop
{
	my ($what) = @_;
	my $offset = -s $node->logfile;
	$node->stop('immediate');
	$node->start;
	wait_launcher($offset);
	pass("$what: the server stopped immediately and started again");
	return;
}

# a session whose server went away
sub forget
{
	my ($bg) = @_;
	eval { $bg->quit; };
	return;
}

sub job { return src("SELECT $_[1] FROM splitdb.job WHERE service = '$_[0]' ORDER BY job_id DESC LIMIT 1"); }

# nothing of splitdb's left over: the doctor, capture triggers and logs in
# the source, locks
sub check_clean
{
	my ($p, $what) = @_;
	is( src(q{SELECT coalesce(string_agg(severity || ' ' || coalesce(service::text, '-') || ' ' || location
	          || ' ' || object || ': ' || problem, '; '), '') FROM splitdb_doctor()}),
		'', "$what: splitdb_doctor() finds nothing");
	is( src("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'splitdb\\_capture%'"
			  . " OR tgname LIKE 'splitdb\\_rolled\\_back%'"),
		'0', "$what: no capture trigger in the source");
	is(src("SELECT count(*) FROM pg_namespace WHERE nspname = 'splitdb_capture'"),
		'0', "$what: no capture log in the source");
	poll_until(sub { src("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") eq '0' },
		undef, "$what: the advisory locks to go");
	return;
}

# the monolith's code writes into each level of $p's tables in the source;
# returns where each row went
sub monolith_writes
{
	my ($p, $what) = @_;
	return app_ok('postgres', qq{
INSERT INTO ${p}_orders VALUES (990, 'eu', 1, 'mono'), (991, 'us', 1, 'mono'), (9900, 'eu', 1, 'mono');
INSERT INTO ${p}_orders_eu VALUES (992, 'eu', 1, 'mono');
INSERT INTO ${p}_orders_eu_rest VALUES (9901, 'eu', 1, 'mono');
INSERT INTO ${p}_animal VALUES (990, 'mono');
INSERT INTO ${p}_dog VALUES (991, 'mono', 'mono');
INSERT INTO "Kundenkonto Größe $p" VALUES (990, 'mono');
SELECT string_agg(tableoid::regclass || ' ' || id, ', ' ORDER BY tableoid::regclass::text, id)
  FROM ${p}_orders WHERE note = 'mono';
DELETE FROM ${p}_orders WHERE note = 'mono';
DELETE FROM ${p}_animal WHERE id IN (990, 991);
DELETE FROM "Kundenkonto Größe $p" WHERE "Nr" = 990;
}, "$what: the monolith's code writes into each level");
}

# ---------------------------------------------------------------------------
# 1. the rollback, stopped at each of its steps

# start the rollback of $svc that pauses at $point; returns (holder,
# caller, worker's pid)
sub start_rollback_paused
{
	my ($svc, $point) = @_;
	my $id = job($svc, 'job_id');
	my $holder = $node->background_psql('postgres');
	$holder->query_safe("SELECT pg_advisory_lock($rollback_key, $id)");
	my $caller = $node->background_psql('postgres', on_error_stop => 0);
	$caller->query_safe("SET splitdb.rollback_pause_at = '$point'");
	$caller->{stdin} .= "\\set VERBOSITY verbose\nSELECT splitdb_rollback('$svc');\n\\echo caller done\n";
	$caller->{run}->pump_nb;
	poll_until(
		sub {
			src("SELECT count(*) FROM pg_stat_activity WHERE query = 'paused at $point'") eq '1';
		},
		undef,
		"the rollback of $svc to pause at $point");
	pass("$svc: the rollback waits at $point");
	return ($holder, $caller, src("SELECT pid FROM pg_stat_activity WHERE query = 'paused at $point'"));
}

# the application's writes in the sibling of $p after the cutover
sub sibling_writes
{
	my ($p, $round, $what) = @_;
	my $base = 2000 + 100 * $round;
	my $sql = qq{
INSERT INTO ${p}_orders SELECT g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END, g, 'after $round'
  FROM generate_series($base + 1, $base + 40) g;
INSERT INTO ${p}_orders VALUES (6000 + $round, 'eu', $round, 'default $round');
INSERT INTO ${p}_orders_eu VALUES ($base + 41, 'eu', 2, 'via eu $round');
INSERT INTO ${p}_orders_us VALUES ($base + 43, 'us', 3, 'via leaf $round');
UPDATE ${p}_orders SET amount = amount + 1 WHERE id % 10 = $round;
UPDATE ${p}_orders SET region = 'us' WHERE id IN ($round * 2 + 100, $round * 2 + 200) AND region = 'eu';
UPDATE ${p}_orders SET id = id + 7000 WHERE id IN ($round * 2 + 300) AND region = 'eu';
DELETE FROM ${p}_orders WHERE id % 25 = $round;
UPDATE ${p}_animal SET name = name || ' $round' WHERE id % 7 = $round;
DELETE FROM ${p}_animal WHERE id % 11 = $round;
INSERT INTO ${p}_dog VALUES (200 + $round, 'dog $round', 'pug');
UPDATE ${p}_dog SET breed = 'collie $round' WHERE id % 5 = $round;
INSERT INTO ${p}_animal VALUES (300 + $round, 'animal $round');
INSERT INTO "Kundenkonto Größe $p" VALUES (300 + $round, 'neu $round');
UPDATE "Kundenkonto Größe $p" SET "Wert" = "Wert" || ' ä$round' WHERE "Nr" % 3 = $round;
DELETE FROM "Kundenkonto Größe $p" WHERE "Nr" % 13 = $round;
};
	app_ok($p, $sql, "$p: $what");
	return;
}

{
	my $p = 'rb';
	make_service($p);
	src("SELECT splitdb_migrate('$p', mode => 'offline', wait => true)");
	is(job($p, 'state'), 'done', "$p: migrated");
	sib($p, 'GRANT CREATE ON SCHEMA public TO app');

	# writes in the sibling through each level, partitions made there
	sibling_writes($p, 1, 'writes in the sibling through each level');
	app_ok($p, qq{
CREATE TABLE ${p}_orders_eu_mid PARTITION OF ${p}_orders_eu FOR VALUES FROM (1000) TO (2000);
INSERT INTO ${p}_orders SELECT g, 'eu', g, 'mid' FROM generate_series(1000, 1019) g;
INSERT INTO ${p}_orders_eu_mid VALUES (1020, 'eu', 5, 'mid leaf');
UPDATE ${p}_orders SET id = id + 1100 WHERE id IN (10, 12) AND region = 'eu';
CREATE TABLE ${p}_orders_asia PARTITION OF ${p}_orders FOR VALUES IN ('asia');
INSERT INTO ${p}_orders SELECT g, 'asia', g, 'asia' FROM generate_series(1, 15) g;
CREATE TABLE ${p}_orders_af (LIKE ${p}_orders);
INSERT INTO ${p}_orders_af SELECT g, 'af', g, 'attached' FROM generate_series(1, 12) g;
ALTER TABLE ${p}_orders ATTACH PARTITION ${p}_orders_af FOR VALUES IN ('af');
UPDATE ${p}_orders SET note = 'af changed' WHERE region = 'af' AND id < 4;
DELETE FROM ${p}_orders_af WHERE id = 12;
}, "$p: the owner makes partitions in the sibling, one under the partitioned partition, one ATTACHed");
	app_ok('postgres', qq{
INSERT INTO ${p}_orders VALUES (800, 'eu', 8, 'shim'), (801, 'us', 8, 'shim'), (1800, 'eu', 8, 'shim');
UPDATE "Kundenkonto Größe $p" SET "Wert" = 'shim' WHERE "Nr" = 1;
INSERT INTO ${p}_dog VALUES (170, 'dog via shim', 'shim');
}, "$p: the monolith writes through the shims");
	my @tables = (leaves($p), map { "${p}_orders_$_" } qw(eu_mid asia af));

	# after its first step: the new partitions are in the archive
	my ($holder, $caller, $pid) = start_rollback_paused($p, 'partitions_made');
	is( src("SELECT string_agg(relname, ' ' ORDER BY relname) FROM pg_class"
			  . " WHERE relnamespace = 'splitdb_archive'::regnamespace AND relname IN"
			  . " ('${p}_orders_eu_mid', '${p}_orders_asia', '${p}_orders_af')"),
		"${p}_orders_af ${p}_orders_asia ${p}_orders_eu_mid",
		"$p: the partitions the sibling got are made in the archive");
	sigkill($pid, "$p rollback after its partitions");
	forget($_) for ($holder, $caller);
	is(job($p, 'state'), 'done', "$p: the killed rollback left the job done");
	is(src("SELECT count(*) FROM ${p}_orders WHERE region = 'asia'"), '15', "$p: the shims read the sibling");

	# more writes, and a partition made after the archive's were
	sibling_writes($p, 2, 'writes in the sibling after the kill');
	app_ok($p, qq{
CREATE TABLE ${p}_orders_eu_high PARTITION OF ${p}_orders_eu FOR VALUES FROM (3000) TO (4000);
INSERT INTO ${p}_orders SELECT g, 'eu', g, 'high' FROM generate_series(3000, 3009) g;
UPDATE ${p}_orders SET id = id + 2500 WHERE id = 1001 AND region = 'eu';
}, "$p: a partition made in the sibling after the rollback made the others in the archive");
	push @tables, "${p}_orders_eu_high";

	# after its replay rounds: an immediate stop
	($holder, $caller, $pid) = start_rollback_paused($p, 'replayed');
	immediate_stop("$p rollback after its replays");
	forget($_) for ($holder, $caller);
	is(job($p, 'state'), 'done', "$p: the stopped rollback left the job done");
	sibling_writes($p, 3, 'writes in the sibling after the stop');

	# a partition made after the rollback's first step, with rows, while a
	# writer holds a table of the sibling through every attempt at the
	# switch's locks: the rounds replay its rows, the call gives up (55P03)
	($holder, $caller, $pid) = start_rollback_paused($p, 'partitions_made');
	app_ok($p, qq{
CREATE TABLE ${p}_orders_eu_top PARTITION OF ${p}_orders_eu FOR VALUES FROM (4000) TO (4500);
INSERT INTO ${p}_orders SELECT g, 'eu', g, 'top' FROM generate_series(4000, 4004) g;
INSERT INTO ${p}_orders_eu_top VALUES (4005, 'eu', 1, 'top leaf');
}, "$p: a partition made in the sibling after the rollback's first step");
	push @tables, "${p}_orders_eu_top";
	my $writer = app_session($p);
	$writer->query_safe("BEGIN; INSERT INTO ${p}_orders_us VALUES (4401, 'us', 1, 'held')");
	$holder->query_safe("SELECT pg_advisory_unlock_all()");
	$caller->query_until(qr/caller done/, '');
	like($caller->{stderr},
		qr/ERROR:  55P03: rollback of service "$p" failed: could not lock the tables of service "$p" for the switch back/,
		"$p: the rollback gives up on the switch's locks (55P03)");
	forget($_) for ($holder, $caller);
	$writer->query_safe('COMMIT');
	$writer->quit;
	is(job($p, 'state'), 'done', "$p: the job is still done");
	is( src("SELECT count(*) FROM ONLY splitdb_archive.${p}_orders_eu_rest WHERE id BETWEEN 4000 AND 4499"),
		'0', "$p: no row of the new partition replayed into the archive's default partition");

	# holding the switch's locks: SIGKILL
	($holder, $caller, $pid) = start_rollback_paused($p, 'locked');
	sigkill($pid, "$p rollback holding the switch's locks");
	forget($_) for ($holder, $caller);
	is(job($p, 'state'), 'done', "$p: the killed rollback left the job done");
	is( placed("${p}_orders", "${p}_orders_asia"),
		"${p}_orders f public app, ${p}_orders p splitdb_archive app, ${p}_orders_asia r splitdb_archive app",
		"$p: the shims in place, the originals archived");
	sibling_writes($p, 4, 'writes in the sibling after the kill');

	# the model: the sibling's rows, table by table
	my $expected = model($p, @tables);

	# between the sibling's commit and the source's: an immediate stop
	($holder, $caller, $pid) = start_rollback_paused($p, 'between_commits');
	immediate_stop("$p rollback between its commits");
	forget($_) for ($holder, $caller);
	is(job($p, 'state'), 'done', "$p: the stopped rollback left the job done");
	is( src("SELECT state || ' ' || coalesce(way_out, '-') FROM splitdb_status WHERE service = '$p'"),
		'done rollback', "$p: splitdb_status: the way out left is to finish the rollback");
	my ($ret, $out, $err) = as_app('postgres', "INSERT INTO ${p}_orders VALUES (4444, 'us', 1, 'lost?')");
	like($err, qr/ERROR:  55000: service "$p" was rolled back: table .* no longer takes writes/,
		"$p: a write through the shim is refused, saying why");
	like($err, qr/HINT:  .*While it shows the job done, its rollback stopped half way: call splitdb_rollback\('$p'\) in the source database to finish it\./,
		"$p: the hint says how to finish the rollback");
	($ret, $out, $err) = as_app($p, "INSERT INTO ${p}_orders_eu_mid VALUES (1555, 'eu', 1, 'lost?')");
	like($err, qr/ERROR:  55000: service "$p" was rolled back/, "$p: so is a write in the sibling's new partition");
	is(model($p, @tables), $expected, "$p: the sibling lost nothing");
	is( src("SELECT severity || ' ' || location || ' ' || object || ': ' || problem || ' / ' || action"
			  . " FROM splitdb_doctor() WHERE job_id IS NOT NULL"),
		"critical $p the tables of job " . job($p, 'job_id')
		  . ": a splitdb_rollback() stopped after the sibling's commit: these tables refuse every write,"
		  . " and writes through the source's shims fail, until it finishes / none here: call splitdb_rollback('$p') to finish it",
		"$p: splitdb_doctor() reports the rollback stopped between its commits");
	($ret, $out, $err) = psql_verbose($node, 'postgres', "SELECT splitdb_finalize('$p')");
	like($err,
		qr/ERROR:  55000: cannot finalize the migration of service "$p" because its rollback has switched the sibling/,
		"$p: a finalize now is refused: the sibling's tables refuse writes already");
	like($err, qr/HINT:  Call splitdb_rollback\('$p'\) to finish the rollback\./, "$p: the hint says how to finish");
	is(job($p, 'state'), 'done', "$p: the refused finalize changed nothing");
	is( placed("${p}_orders"), "${p}_orders f public app, ${p}_orders p splitdb_archive app",
		"$p: the archive is still there");

	# before the cleanup of the sibling: SIGKILL
	($holder, $caller, $pid) = start_rollback_paused($p, 'before_cleanup');
	sigkill($pid, "$p rollback before its cleanup");
	forget($_) for ($holder, $caller);
	is(job($p, 'state'), 'rolled_back', "$p: the source was restored before the kill");
	is(model('postgres', @tables), $expected, "$p: with the model's rows");
	# a new job now would make the sibling's tables again under the names
	# that the unfinished cleanup drops: refused, no job made
	my $jobs = src("SELECT count(*) FROM splitdb.job WHERE service = '$p'");
	($ret, $out, $err) = psql_verbose($node, 'postgres', "SELECT splitdb_migrate('$p')");
	like($err, qr/the rollback of service "$p" has not cleaned its sibling yet/,
		"$p: splitdb_migrate() waits for the rollback's cleanup");
	is(src("SELECT count(*) FROM splitdb.job WHERE service = '$p'"), $jobs, "$p: no job made");

	($ret, $out, $err) = psql_verbose($node, 'postgres', "SELECT splitdb_rollback('$p')");
	is($ret, 0, "$p: splitdb_rollback() called again completes") or diag($err);
	is( src("SELECT state || ' ' || coalesce(way_out, '-') FROM splitdb_status WHERE service = '$p'"),
		'rolled_back -', "$p: splitdb_status: rolled back, no way out left");
	is(src("SELECT r.step || ' ' || coalesce(r.last_error, '-') FROM splitdb.rollback r JOIN splitdb.job j USING (job_id)"
			  . " WHERE j.service = '$p'"),
		'done -', "$p: splitdb.rollback: done, no error");
	is(model('postgres', @tables), $expected,
		"$p: every table holds exactly the sibling's rows, each in its own partition");
	is( placed(@tables, "${p}_orders", "${p}_orders_eu"),
		join(', ', map { "$_ app" } sort(
			"${p}_orders p public", "${p}_orders_af r public", "${p}_orders_asia r public",
			"${p}_orders_eu p public", "${p}_orders_eu_high r public", "${p}_orders_eu_low r public",
			"${p}_orders_eu_mid r public", "${p}_orders_eu_rest r public", "${p}_orders_eu_top r public",
			"${p}_orders_us r public",
			"${p}_animal r public", "${p}_dog r public", "Kundenkonto Größe $p r public")),
		"$p: every table back in public, owned by the owner, none left in the archive");
	is(sib($p, "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p')"),
		'0', "$p: the sibling's tables are gone");
	is(sib($p, "SELECT count(*) FROM pg_namespace WHERE nspname = 'splitdb_capture'"),
		'0', "$p: and the sibling's capture");
	check_clean($p, "$p rolled back");
	is( monolith_writes($p, $p),
		"${p}_orders_eu_low 990, ${p}_orders_eu_low 992, ${p}_orders_eu_rest 9900, ${p}_orders_eu_rest 9901, ${p}_orders_us 991",
		"$p: each row in its partition");
}

# ---------------------------------------------------------------------------
# 2. splitdb_cancel() of an online job, stopped in its drops

# the source's writes of round $round (the tables are the source's own)
sub source_writes
{
	my ($p, $round, $what) = @_;
	my $base = 2000 + 100 * $round;
	app_ok('postgres', qq{
INSERT INTO ${p}_orders SELECT g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END, g, 'during $round'
  FROM generate_series($base + 1, $base + 30) g;
INSERT INTO ${p}_orders_eu VALUES ($base + 41, 'eu', 2, 'via eu $round'), (6000 + $round, 'eu', 1, 'default $round');
INSERT INTO ${p}_orders_eu_low VALUES ($round + 700, 'eu', 3, 'via leaf $round');
UPDATE ${p}_orders SET region = 'us' WHERE id IN ($round * 2 + 100) AND region = 'eu';
UPDATE ${p}_orders SET id = id + 7000 WHERE id IN ($round * 2 + 300) AND region = 'eu';
DELETE FROM ${p}_orders WHERE id % 25 = $round;
UPDATE ${p}_animal SET name = name || ' $round' WHERE id % 7 = $round;
DELETE FROM ${p}_animal WHERE id % 11 = $round;
INSERT INTO ${p}_dog VALUES (200 + $round, 'dog $round', 'pug');
INSERT INTO "Kundenkonto Größe $p" VALUES (300 + $round, 'neu $round');
UPDATE "Kundenkonto Größe $p" SET "Wert" = "Wert" || ' ä$round' WHERE "Nr" % 3 = $round;
}, "$p: $what");
	return;
}

# a background session of role app in database $db
sub app_session
{
	my ($db) = @_;
	local $ENV{PGPASSWORD} = $pw{app};
	return $node->background_psql($db, extra_params => [ '-U', 'app' ]);
}

# a splitdb session of database $db waits for a lock
sub splitdb_waits_in
{
	my ($db) = @_;
	return $node->safe_psql($db,
		"SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
		  . " AND application_name = 'splitdb' AND wait_event_type = 'Lock'") ne '0';
}

# start splitdb_cancel('$p') or splitdb_finalize('$p') in a session of its
# own; returns (session, its pid)
sub start_call
{
	my ($call) = @_;
	my $s = $node->background_psql('postgres', on_error_stop => 0);
	my $pid = $s->query_safe("SET splitdb.cutover_lock_timeout = '120s'; SELECT pg_backend_pid()");
	$s->{stdin} .= "\\set VERBOSITY verbose\nSELECT $call;\n\\echo call done\n";
	$s->{run}->pump_nb;
	return ($s, $pid);
}

my @cx_tables = leaves('cx');
{
	my $p = 'cx';
	make_service($p);
	my $holder = $node->background_psql('postgres');
	$holder->query_safe("SELECT pg_advisory_lock($migrate_key, 0)");
	src("SET splitdb.migrate_pause_at = 'catching_up'; SELECT splitdb_migrate('$p')");
	poll_until(
		sub {
			src("SELECT count(*) FROM pg_stat_activity a JOIN splitdb.job j ON j.worker_pid = a.pid"
				  . " WHERE j.service = '$p' AND a.query = 'paused at catching_up'") eq '1';
		},
		undef,
		"the job of $p to pause at catching_up");
	pass("$p: the online job waits at catching_up");
	source_writes($p, 1, 'the application writes in the source through each level while the job runs');
	my ($ret, $out, $err) = as_app('postgres',
		"CREATE TABLE ${p}_orders_latam PARTITION OF ${p}_orders FOR VALUES IN ('latam')");
	like($err, qr/ERROR:  55006: table "public.${p}_orders" belongs to a migration of service "$p"/,
		"$p: a partition made in the source while the job runs is refused");
	is(src("SELECT to_regclass('${p}_orders_latam') IS NULL"), 't', "$p: and not made");

	# its drops in the sibling wait for a session there: an immediate stop
	my $blocker = $node->background_psql($p);
	$blocker->query_safe("BEGIN; LOCK TABLE ${p}_orders_us IN ACCESS SHARE MODE");
	my ($call, $cpid) = start_call("splitdb_cancel('$p')");
	poll_until(sub { splitdb_waits_in($p) }, undef, "the cancel's drops in the sibling of $p to wait");
	pass("$p: the cancel's drops in the sibling wait for a session there");
	immediate_stop("$p cancel waiting in the sibling");
	forget($_) for ($holder, $blocker, $call);
	is(job($p, 'state'), 'failed', "$p: the stopped cancel left the job failed");
	is( src("SELECT count(*) > 0 FROM pg_trigger WHERE tgname LIKE 'splitdb\\_capture%'"),
		't', "$p: the source's capture still logs");
	source_writes($p, 2, 'the application writes in the source after the stop');
	my $expected = model('postgres', @cx_tables);

	# its drops in the source wait for a writer: SIGKILL
	my $writer = app_session('postgres');
	$writer->query_safe("BEGIN; INSERT INTO ${p}_orders_us VALUES (4999, 'us', 1, 'lost with the crash')");
	($call, $cpid) = start_call("splitdb_cancel('$p')");
	$node->poll_query_until('postgres',
		"SELECT count(*) FROM pg_locks WHERE pid = $cpid AND NOT granted AND locktype = 'relation'", '1')
	  or die 'the cancel does not wait in the source';
	pass("$p: the cancel's drops in the source wait for a writer");
	sigkill($cpid, "$p cancel waiting in the source");
	forget($_) for ($writer, $call);
	is(job($p, 'state'), 'failed', "$p: the killed cancel left the job failed");
	is(model('postgres', @cx_tables), $expected, "$p: the source's tables hold their rows");

	($ret, $out, $err) = psql_verbose($node, 'postgres', "SELECT splitdb_cancel('$p')");
	is($ret, 0, "$p: splitdb_cancel() called again completes") or diag($err);
	is( src("SELECT state || ' ' || coalesce(way_out, '-') FROM splitdb_status WHERE service = '$p'"),
		'cancelled -', "$p: splitdb_status: cancelled, no way out left");
	is(model('postgres', @cx_tables), $expected, "$p: every table holds exactly its rows");
	is( placed(@cx_tables, "${p}_orders", "${p}_orders_eu"),
		join(', ', map { "$_ app" } sort(
			"${p}_orders p public", "${p}_orders_eu p public", "${p}_orders_eu_low r public",
			"${p}_orders_eu_rest r public", "${p}_orders_us r public",
			"${p}_animal r public", "${p}_dog r public", "Kundenkonto Größe $p r public")),
		"$p: every table still in public, owned by the owner");
	is(sib($p, "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p')"),
		'0', "$p: the sibling's tables are gone");
	check_clean($p, "$p cancelled");
	is( monolith_writes($p, $p),
		"${p}_orders_eu_low 990, ${p}_orders_eu_low 992, ${p}_orders_eu_rest 9900, ${p}_orders_eu_rest 9901, ${p}_orders_us 991",
		"$p: each row in its partition");
}

# ---------------------------------------------------------------------------
# 3. splitdb_finalize(), killed before and between its commits

# the archived originals' rows of @tables, as the model reads them
sub archive_model
{
	my (@tables) = @_;
	return model('postgres', map { my $t = $_; $t =~ /^"/ ? "splitdb_archive.$t" : "splitdb_archive.$t" } @tables);
}

{
	my $p = 'cx';
	my ($ret, $out, $err) =
	  psql_verbose($node, 'postgres', "SELECT splitdb_migrate('$p', mode => 'offline', wait => true)");
	is($ret, 0, "$p: migrated again, offline") or diag($err);
	is(job($p, 'state'), 'done', "$p: the new job is done");
	sib($p, 'GRANT CREATE ON SCHEMA public TO app');
	sibling_writes($p, 5, 'writes in the sibling through each level');
	app_ok($p, qq{
CREATE TABLE ${p}_orders_asia PARTITION OF ${p}_orders FOR VALUES IN ('asia');
INSERT INTO ${p}_orders SELECT g, 'asia', g, 'asia' FROM generate_series(1, 15) g;
}, "$p: the owner makes a partition in the sibling");
	my @tables = (@cx_tables, "${p}_orders_asia");

	# a rollback killed after it made the sibling's new partition in the
	# archive: finalize goes on all the same
	my ($holder, $caller, $pid) = start_rollback_paused($p, 'partitions_made');
	sigkill($pid, "$p rollback after its partitions");
	forget($_) for ($holder, $caller);
	is(job($p, 'state'), 'done', "$p: the killed rollback left the job done");
	my $archived = archive_model(@cx_tables);

	# its rehearsal waits for a reader of an archived original: SIGKILL
	my $reader = $node->background_psql('postgres');
	$reader->query_safe("BEGIN; SELECT count(*) FROM splitdb_archive.${p}_orders_us");
	my ($call, $cpid) = start_call("splitdb_finalize('$p')");
	$node->poll_query_until('postgres', "SELECT wait_event_type FROM pg_stat_activity WHERE pid = $cpid", 'Lock')
	  or die 'the finalize does not wait for the lock';
	sigkill($cpid, "$p finalize waiting for a reader");
	forget($_) for ($reader, $call);
	is(job($p, 'state'), 'done', "$p: the killed finalize left the job done");
	is(archive_model(@cx_tables), $archived, "$p: the archived originals intact");
	is(sib($p, "SELECT count(*) > 0 FROM pg_trigger WHERE tgname LIKE 'splitdb\\_capture%'"),
		't', "$p: the sibling's capture intact");
	sibling_writes($p, 6, 'writes in the sibling after the kill');

	# between the sibling's commit and the source's: an immediate stop
	my $writer = app_session($p);
	$writer->query_safe("BEGIN; INSERT INTO ${p}_orders_us VALUES (4001, 'us', 1, 'written while finalizing')");
	($call, $cpid) = start_call("splitdb_finalize('$p')");
	poll_until(sub { splitdb_waits_in($p) }, undef, "the finalize's drops in the sibling of $p to wait");
	$reader = $node->background_psql('postgres');
	$reader->query_safe("BEGIN; SELECT count(*) FROM splitdb_archive.${p}_orders_us");
	$writer->query_safe('COMMIT');
	$node->poll_query_until('postgres',
		"SELECT count(*) FROM pg_locks WHERE pid = $cpid AND NOT granted AND locktype = 'relation'", '1')
	  or die 'the finalize does not wait in the source';
	pass("$p: the finalize's drops committed in the sibling, those in the source wait");
	immediate_stop("$p finalize between its commits");
	forget($_) for ($reader, $writer, $call);
	is(job($p, 'state'), 'done', "$p: the stopped finalize left the job done");
	is(archive_model(@cx_tables), $archived, "$p: the archived originals intact");
	my $expected = model($p, @tables);
	is(sib($p, "SELECT count(*) FROM ${p}_orders_us WHERE id = 4001"), '1', "$p: the writer's row is in the sibling, once");
	($ret, $out, $err) = psql_verbose($node, 'postgres', "SELECT splitdb_rollback('$p')");
	like($err, qr/ERROR:  55000: service "$p" cannot be rolled back: its sibling's capture of writes is incomplete/,
		"$p: a rollback now is refused: the capture is gone");
	is(job($p, 'state'), 'done', "$p: the refused rollback changed nothing");

	($ret, $out, $err) = psql_verbose($node, 'postgres', "SELECT splitdb_finalize('$p')");
	is($ret, 0, "$p: splitdb_finalize() called again completes") or diag($err);
	is( src("SELECT state || ' ' || coalesce(way_out, '-') FROM splitdb_status WHERE service = '$p'"),
		'finalized -', "$p: splitdb_status: finalized, no way out left");
	is(src("SELECT count(*) FROM pg_class WHERE relnamespace = 'splitdb_archive'::regnamespace"),
		'0', "$p: the archive is empty");
	is(model($p, @tables), $expected, "$p: the sibling kept every row");
	is(sib($p, "SELECT count(*) FROM pg_namespace WHERE nspname = 'splitdb_capture'"),
		'0', "$p: the sibling's capture is gone");
	check_clean($p, "$p finalized");
	($ret, $out, $err) = psql_verbose($node, 'postgres', "SELECT splitdb_rollback('$p')");
	like($err, qr/ERROR:  55000: service "$p" cannot be rolled back: finalized jobs cannot be rolled back/,
		"$p: the rollback is refused with its documented error");
	app_ok('postgres', qq{
INSERT INTO ${p}_orders VALUES (990, 'eu', 1, 'mono'), (991, 'us', 1, 'mono'), (9900, 'eu', 1, 'mono'),
	(990, 'asia', 1, 'mono');
INSERT INTO ${p}_dog VALUES (991, 'mono', 'mono');
INSERT INTO "Kundenkonto Größe $p" VALUES (990, 'mono');
}, "$p: the monolith's code writes through the shims");
	is( sib($p, "SELECT string_agg(tableoid::regclass || ' ' || id, ', ' ORDER BY tableoid::regclass::text, id)"
			  . " FROM ${p}_orders WHERE note = 'mono'"),
		"${p}_orders_asia 990, ${p}_orders_eu_low 990, ${p}_orders_eu_rest 9900, ${p}_orders_us 991",
		"$p: each row in its partition in the sibling");
}

done_testing();
