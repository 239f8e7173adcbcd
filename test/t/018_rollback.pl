# Copyright (c) 2026, splitdb developers

# splitdb_rollback() with the sibling on another cluster: rows written after
# the cutover through the shims, directly in the sibling and through a
# cross-database cascade come back, as do rows a writer commits through the
# shim while the rollback runs; the worker stopped at each step (killed, or
# the source's server stopped with -m immediate), then one more call.
#
# Each case has a service of its own: NAME_ord (a bigserial key, a foreign
# key to the source's NAME_cust with ON DELETE CASCADE) and NAME_line (a
# foreign key to NAME_ord).  After the cutover: an INSERT and an UPDATE
# through the shims, an INSERT, an UPDATE and a DELETE in the sibling, a
# DELETE in the source that cascades into the sibling.
#
# 1. live: a background session inserts through the shim, one statement
#    at a time, while splitdb_rollback() runs: every INSERT it reports done
#    is in the source afterwards, none twice; then a second splitdb_migrate
#    of the service builds the same sibling (pg_dump --schema-only equal,
#    the capture logs and the reference triggers' numbers, both named by
#    job, aside).
# 2. stops: the worker waits at a step (splitdb.rollback_pause_at, held by
#    an advisory lock) and is stopped there: killed before the sibling's
#    commit (locked; first a splitdb_finalize() is refused at once, 55P03,
#    changing nothing), the source's server stopped with -m immediate between
#    the two commits (between_commits), killed before the sibling's cleanup
#    (before_cleanup).  Between the commits a write through the shim and a
#    write in the sibling both fail.  One more splitdb_rollback() then ends
#    it: the source's rows are the sibling's last ones (fingerprints), the
#    job is rolled_back, the sibling's tables are gone.
# 3. wait: a write through the shim while the worker holds the switch
#    between its commits waits for the shim's lock; once the source
#    commits, the name leads to the original table and the row lands
#    there, once.

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SplitdbTest qw(start_source fingerprint_sql psql_verbose sibling_service_sql);

my $node = start_source('source', 1000);
my $sib  = PostgreSQL::Test::Cluster->new('sibling');
$sib->init;
$sib->start;
my $user = $node->safe_psql('postgres', 'SELECT current_user');
my $pause_key = 1936747638;    # SPLITDB_ROLLBACK_PAUSE_KEY

sub src { return $node->safe_psql('postgres', $_[0]); }

# a service of two tables, migrated; returns its job id
sub make_service
{
	my ($svc) = @_;

	$sib->safe_psql('postgres', "CREATE DATABASE $svc");
	src(qq{
CREATE TABLE ${svc}_cust (id integer PRIMARY KEY, name text NOT NULL);
INSERT INTO ${svc}_cust SELECT g, 'customer ' || g FROM generate_series(1, 50) g;
CREATE TABLE ${svc}_ord (
	id      bigserial PRIMARY KEY,
	cust_id integer NOT NULL REFERENCES ${svc}_cust ON DELETE CASCADE,
	qty     integer NOT NULL,
	note    text
);
INSERT INTO ${svc}_ord (cust_id, qty, note)
	SELECT 1 + g % 50, g % 7, 'order ' || g FROM generate_series(1, 2000) g;
CREATE TABLE ${svc}_line (
	id     bigserial PRIMARY KEY,
	ord_id bigint NOT NULL REFERENCES ${svc}_ord ON DELETE CASCADE,
	item   text NOT NULL
);
INSERT INTO ${svc}_line (ord_id, item) SELECT 1 + g % 2000, 'item ' || g FROM generate_series(1, 3000) g;
}
	  . sibling_service_sql($sib, $user, $svc, tables => ["${svc}_ord", "${svc}_line"]));
	return src("SELECT splitdb_migrate('$svc', wait => true)");
}

# writes of every kind after the cutover
sub write_after_cutover
{
	my ($svc) = @_;
	src(qq{
INSERT INTO ${svc}_ord (cust_id, qty, note) VALUES (1, 9, 'through the shim');
UPDATE ${svc}_line SET item = 'changed through the shim' WHERE id <= 10;
DELETE FROM ${svc}_cust WHERE id = 7;
});
	$sib->safe_psql($svc, qq{
INSERT INTO ${svc}_ord (cust_id, qty, note) VALUES (2, 8, 'in the sibling');
UPDATE ${svc}_ord SET qty = qty + 100 WHERE id BETWEEN 100 AND 150;
DELETE FROM ${svc}_line WHERE id BETWEEN 500 AND 520;
});
	is($sib->safe_psql($svc, "SELECT count(*) FROM ${svc}_ord WHERE cust_id = 7"),
		'0', "$svc: the cascade from the source reached the sibling");
	return;
}

# fingerprints of the two tables in $db of $on
sub prints
{
	my ($on, $db, $svc) = @_;
	return join("\n",
		map { $on->safe_psql($db, fingerprint_sql($_, 'id')) } ("${svc}_ord", "${svc}_line"));
}

# the source after a rollback: rows, tables, keys, no shim, no sibling table
sub check_rolled_back
{
	my ($svc, $expected) = @_;
	is(prints($node, 'postgres', $svc), $expected, "$svc: the source holds the sibling's last rows");
	is(src("SELECT state FROM splitdb.job WHERE service = '$svc'"), 'rolled_back',
		"$svc: the job is rolled_back");
	is( src(qq{SELECT string_agg(c.relname || ':' || c.relkind::text, ' ' ORDER BY c.relname)
	   FROM pg_class c WHERE c.relname IN ('${svc}_ord', '${svc}_line')
		 AND c.relnamespace = 'public'::regnamespace}),
		"${svc}_line:r ${svc}_ord:r", "$svc: the originals are back, no shim");
	is( src(qq{SELECT string_agg(conname || ':' || convalidated, ' ' ORDER BY conname)
	   FROM pg_constraint WHERE conrelid = '${svc}_ord'::regclass AND contype = 'f'}),
		"${svc}_ord_cust_id_fkey:true", "$svc: the crossing foreign key is back and valid");
	is($sib->safe_psql($svc, "SELECT count(*) FROM pg_class WHERE relname LIKE '${svc}%'"),
		'0', "$svc: the sibling's tables are gone");
	is( $sib->safe_psql($svc,
			"SELECT count(*) FROM pg_namespace WHERE nspname IN ('splitdb', 'splitdb_capture')"),
		'0', "$svc: so are the capture and the splitdb the job installed there");
	src("INSERT INTO ${svc}_ord (cust_id, qty) VALUES (3, 1)");
	is(src("SELECT count(*) - count(DISTINCT id) FROM ${svc}_ord"), '0',
		"$svc: a new row takes a fresh id");
	return;
}

# ---------------------------------------------------------------------------
# 1. a writer through the shim while the rollback runs

{
	my $svc = 'rb_live';
	make_service($svc);
	my @dump = ('pg_dump', '--schema-only', '--no-owner', '--exclude-schema=splitdb_capture',
		'-h', $sib->host, '-p', $sib->port, '-d', $svc);
	my $dump1 = run_dump(@dump);
	write_after_cutover($svc);

	my $writer = $node->background_psql('postgres', on_error_stop => 0);
	my $script = join('', map { "INSERT INTO ${svc}_ord (cust_id, qty, note) VALUES (4, 1, 'live $_');\n" } 1 .. 400);
	$writer->{stdin} .= $script . "\\echo writer done\n";
	$writer->{run}->pump_nb;
	src("SELECT splitdb_rollback('$svc')");
	$writer->query_until(qr/writer done/, '');
	$writer->quit;
	my $expected = src("SELECT count(*) FROM ${svc}_ord WHERE note LIKE 'live %'");
	is($expected, 400, "$svc: all 400 INSERTs of the writer are in the source");
	is(src("SELECT count(DISTINCT note) FROM ${svc}_ord WHERE note LIKE 'live %'"), 400,
		"$svc: none twice");
	is(src("SELECT count(*) FROM ${svc}_ord WHERE note IN ('through the shim', 'in the sibling')"), 2,
		"$svc: the rows written after the cutover are back");
	is(src("SELECT count(*) FROM ${svc}_ord WHERE cust_id = 7"), 0, "$svc: the cascade's deletes too");
	is(src("SELECT count(*) FROM ${svc}_ord WHERE id BETWEEN 100 AND 150 AND qty < 100"), 0,
		"$svc: the sibling's updates too");

	# the same sibling, once more
	src("SELECT splitdb_migrate('$svc', wait => true)");
	my $dump2 = run_dump(@dump);
	is($dump2, $dump1, "$svc: a second migration builds the same sibling (pg_dump --schema-only)")
	  or do
	{
		PostgreSQL::Test::Utils::append_to_file("$PostgreSQL::Test::Utils::tmp_check/dump1.sql", $dump1);
		PostgreSQL::Test::Utils::append_to_file("$PostgreSQL::Test::Utils::tmp_check/dump2.sql", $dump2);
	};
}

sub run_dump
{
	my @cmd = @_;
	my ($out, $err);
	IPC::Run::run(\@cmd, '>', \$out, '2>', \$err) or die "pg_dump failed: $err";
	# comments, and the random keys of \restrict that pg_dump adds
	$out =~ s/^--.*\n//mg;
	$out =~ s/^\\(un)?restrict .*\n//mg;
	# the references' numbers: each migration records its references anew
	$out =~ s/splitdb_ref_\d+_/splitdb_ref_N_/g;
	$out =~ s/reference_row\('\d+'/reference_row('N'/g;
	return $out;
}

# ---------------------------------------------------------------------------
# 2. the worker stopped at each step, then one more call

for my $point ('locked', 'between_commits', 'before_cleanup')
{
	my $svc = "rb_$point";
	my $job = make_service($svc);
	write_after_cutover($svc);
	my $expected = prints($sib, $svc, $svc);

	my $holder = $node->background_psql('postgres');
	$holder->query_safe("SELECT pg_advisory_lock($pause_key, $job)");
	my $caller = $node->background_psql('postgres', on_error_stop => 0);
	$caller->query_safe("SET splitdb.rollback_pause_at = '$point'");
	$caller->{stdin} .= "SELECT splitdb_rollback('$svc');\n\\echo caller done\n";
	$caller->{run}->pump_nb;
	$node->poll_query_until('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE query = 'paused at $point'", '1')
	  or die "the rollback of $svc does not pause at $point";
	my $pid = src("SELECT pid FROM pg_stat_activity WHERE query = 'paused at $point'");

	if ($point eq 'locked')
	{
		# the worker holds the job's lock: a finalize is refused at once
		# (it waited for the whole rollback, on the service's lock), and
		# changes nothing
		my ($ret, $out, $err) = psql_verbose($node, 'postgres',
			"SET lock_timeout = '5s';\nSELECT splitdb_finalize('$svc');");
		like(
			$err,
			qr/55P03: cannot finalize the migration of service "$svc" while another session works on job $job/,
			"$svc: a finalize while the rollback holds the job is refused");
		is( src("SELECT j.state || ' ' || (SELECT count(*) FROM pg_class c WHERE c.relnamespace = 'splitdb_archive'::regnamespace AND c.relname = '${svc}_ord') FROM splitdb.job j WHERE j.job_id = $job"),
			'done 1', "$svc: the refused finalize changed nothing");
	}

	if ($point eq 'between_commits')
	{
		my ($ret, $out, $err) = psql_verbose($node, 'postgres',
			"SET lock_timeout = '200ms';\nINSERT INTO ${svc}_ord (cust_id, qty) VALUES (5, 1);");
		like($err, qr/55P03/, "$svc: between the commits a write through the shim fails");
		($ret, $out, $err) = psql_verbose($sib, $svc,
			"INSERT INTO ${svc}_ord (cust_id, qty) VALUES (5, 1);");
		like($err, qr/55000: service "$svc" was rolled back/,
			"$svc: and a write in the sibling is refused");
		$node->stop('immediate');
		$node->start;
		eval { $holder->quit; $caller->quit; };
		is(prints($sib, $svc, $svc), $expected, "$svc: the sibling kept its rows");
		my ($r2, $o2, $e2) = psql_verbose($sib, $svc,
			"INSERT INTO ${svc}_ord (cust_id, qty) VALUES (5, 1);");
		like($e2, qr/was rolled back/, "$svc: after the crash the sibling still refuses writes");
		is(src("SELECT relkind FROM pg_class WHERE oid = '${svc}_ord'::regclass"), 'f',
			"$svc: and the source still has its shim");
	}
	else
	{
		src("SELECT pg_terminate_backend($pid)");
		$caller->query_until(qr/caller done/, '');
		like($caller->{stderr}, qr/rollback of service "$svc" failed/,
			"$svc: the call reports the stopped worker");
		$holder->quit;
		$caller->quit;
	}
	src("SELECT splitdb_rollback('$svc')");
	check_rolled_back($svc, $expected);
	is(src("SELECT step || ', ' || runs FROM splitdb.rollback WHERE job_id = $job"), 'done, 2',
		"$svc: the second run finished the rollback");
}

# ---------------------------------------------------------------------------
# 3. a writer that comes while the switch holds the shim waits, then its
#    row lands in the original table

{
	my $svc = 'rb_wait';
	my $job = make_service($svc);
	my $holder = $node->background_psql('postgres');
	$holder->query_safe("SELECT pg_advisory_lock($pause_key, $job)");
	my $caller = $node->background_psql('postgres', on_error_stop => 0);
	$caller->query_safe("SET splitdb.rollback_pause_at = 'between_commits'");
	$caller->{stdin} .= "SELECT splitdb_rollback('$svc');\n\\echo caller done\n";
	$caller->{run}->pump_nb;
	$node->poll_query_until('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE query = 'paused at between_commits'", '1')
	  or die "the rollback of $svc does not pause";

	my $writer = $node->background_psql('postgres', on_error_stop => 0);
	my $wpid = $writer->query_safe('SELECT pg_backend_pid()');
	$writer->{stdin} .= "INSERT INTO ${svc}_ord (cust_id, qty, note) VALUES (6, 1, 'waited');\n\\echo writer done\n";
	$writer->{run}->pump_nb;
	$node->poll_query_until('postgres',
		"SELECT wait_event_type FROM pg_stat_activity WHERE pid = $wpid", 'Lock')
	  or die 'the writer does not wait for a lock';
	pass("$svc: a write through the shim waits while the switch holds it");

	$holder->query_safe("SELECT pg_advisory_unlock($pause_key, $job)");
	$caller->query_until(qr/caller done/, '');
	$writer->query_until(qr/writer done/, '');
	unlike($writer->{stderr}, qr/ERROR/, "$svc: the waiting write went through");
	$writer->quit;
	$caller->quit;
	$holder->quit;
	is(src("SELECT relkind FROM pg_class WHERE oid = '${svc}_ord'::regclass"), 'r',
		"$svc: the table is the original again");
	is(src("SELECT count(*) FROM ${svc}_ord WHERE note = 'waited'"), '1',
		"$svc: the row landed in it, once");
	is(src("SELECT state FROM splitdb.job WHERE service = '$svc'"), 'rolled_back',
		"$svc: the job is rolled_back");
}

done_testing();
