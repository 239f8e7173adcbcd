# Copyright (c) 2026, splitdb developers
#
# A table owner's own code in the definitions of the tables it moves, on
# two servers that ask every role but the bootstrap superuser for its
# password (scram-sha-256 over TCP; the superuser's user mapping holds its
# password) and log every statement, at log_min_messages = debug5.
#
# The sibling does not preload splitdb (a session there loads it when it
# calls one of its functions, or when splitdb opens it).
#
# Role owner (no superuser) owns schema acc and, in it, a function whose
# body makes owner a superuser when a superuser runs it (it calls another
# function of the schema, by name).  Each moved table calls it from a
# CHECK constraint, an index expression, a partial index's predicate, a
# stored generated column and the CHECK of its column's domain: PostgreSQL
# evaluates each of them, with the current user's rights, whenever a row
# is written or an index built.  splitdb's worker is a superuser, in the
# source and (through its user mapping) in the sibling, where the copies
# are the superuser's until the cutover, so that even an index build,
# which PostgreSQL runs as the table's owner, ran as a superuser there.
#
# 1. service oc_off moves acc.oc_off offline: the copy, the index builds
#    and the cutover's validations in the sibling;
# 2. service oc_on moves acc.oc_on online while owner writes to it (held
#    at catching_up): the rounds' COPY and DELETE in the sibling;
# 3. owner writes to its tables in the sibling after the cutover, tries to
#    switch off splitdb's capture of those writes there (DISABLE TRIGGER by
#    name, USER, ALL, ENABLE REPLICA, DROP TRIGGER, renaming the trigger or
#    the table, DETACH PARTITION of a partitioned table that moved with
#    oc_on; each refused with 42501), and oc_on is rolled back: the
#    rollback's replays into the archived original in the source;
# 4. once oc_off is done, owner tries a cast to text from the type of one
#    of its columns, which splitdb_verify() reads as text (refused, 55006,
#    while the archive is kept), a superuser verifies oc_off, and it is
#    finalized;
# 5. service oc_cx is held while it copies online, and cancelled; while it
#    is held, neither server's pg_stat_activity nor splitdb_status shows a
#    password;
# 6. service oc_lib's sibling cannot load splitdb's library (its
#    dynamic_library_path points nowhere): splitdb_migrate() refuses it
#    (58P01), since there the owners' functions would run as a superuser.
#
# Each ends as it should (done, rolled back, every row where it belongs)
# and owner is a superuser on neither server.  Before splitdb ran such
# functions as their owners (splitdb.owner_rights), the copy of section 1
# made owner a superuser in the sibling at its first row, and the rollback
# of section 3 in the source.  Before splitdb_guard_triggers kept the
# capture triggers of the sibling, owner there disabled one, wrote, enabled
# it ALWAYS again, and the rollback, which found the capture complete,
# left those writes behind.  No password used
# in the test is in either server's log.

use strict;
use warnings FATAL => 'all';
use FindBin;
use lib "$FindBin::RealBin/../perl";
use PostgreSQL::Test::Utils;
use Test::More;
use SplitdbTest qw(start_logged_pair scram_hba set_passwords psql_verbose poll_until
  fingerprint_sql JOB_SUMMARY);

my $super_pw  = 'Super-Pw-3c71';
my $owner_pw  = 'Owner-Pw-e08b';
my $pause_key = 1936747639;        # SPLITDB_MIGRATE_PAUSE_KEY

my ($source, $sibling, $user) = start_logged_pair(
	conf => q{
listen_addresses = '127.0.0.1'
log_min_messages = debug5
},
	hba => \&scram_hba);
set_passwords($_, $super_pw, [ owner => $owner_pw ]) for ($source, $sibling);
# the sibling does not preload splitdb: its sessions load it when they need it
$sibling->append_conf('postgresql.conf', "shared_preload_libraries = ''");
$sibling->restart;
my $sib_port = $sibling->port;
my $src_port = $source->port;

$source->safe_psql('postgres', 'CREATE DATABASE mono');
$source->safe_psql(
	'mono', q{
CREATE SCHEMA acc AUTHORIZATION owner;
SET ROLE owner;
CREATE FUNCTION acc.escalate_now() RETURNS void LANGUAGE plpgsql VOLATILE AS $$
BEGIN
	IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) THEN
		EXECUTE 'ALTER ROLE owner SUPERUSER';
	END IF;
END $$;
-- declared immutable, for the index; the call by name needs USAGE on acc
CREATE FUNCTION acc.fine(i bigint) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN PERFORM acc.escalate_now(); RETURN i IS NOT NULL; END $$;
CREATE DOMAIN acc.checked AS bigint CHECK (acc.fine(VALUE));
CREATE TYPE acc.mood AS ENUM ('calm', 'busy');
CREATE FUNCTION acc.mood_text(m acc.mood) RETURNS text LANGUAGE plpgsql AS $$
BEGIN PERFORM acc.escalate_now(); RETURN pg_catalog.format('%s', m); END $$;
RESET ROLE;
SET log_statement = 'none';
CREATE EXTENSION splitdb CASCADE;
});

for my $svc ('oc_off', 'oc_on', 'oc_cx')
{
	$sibling->safe_psql('postgres', "CREATE DATABASE $svc");
	$source->safe_psql(
		'mono', qq{
SET ROLE owner;
CREATE TABLE acc.$svc (id bigint PRIMARY KEY CHECK (acc.fine(id)), v acc.checked NOT NULL,
	w bigint GENERATED ALWAYS AS (CASE WHEN acc.fine(v) THEN v * 2 END) STORED,
	m acc.mood NOT NULL DEFAULT 'calm');
CREATE INDEX ${svc}_fine ON acc.$svc (acc.fine(v));
CREATE INDEX ${svc}_part ON acc.$svc (v) WHERE acc.fine(id);
INSERT INTO acc.$svc (id, v) SELECT g, g FROM generate_series(1, 200) g;
RESET ROLE;
SET log_statement = 'none';
CREATE SERVER ${svc}_srv FOREIGN DATA WRAPPER postgres_fdw
	OPTIONS (host '127.0.0.1', port '$sib_port', dbname '$svc');
CREATE USER MAPPING FOR CURRENT_USER SERVER ${svc}_srv
	OPTIONS (user '$user', password '$super_pw');
RESET log_statement;
SELECT splitdb_add_service('$svc', server => '${svc}_srv');
SELECT splitdb_assign('$svc', 'acc.$svc');
});
}

# owner's rolsuper on the source and on the sibling; then takes it back,
# so that each section shows its own paths
# a partitioned table moves with oc_on too
$source->safe_psql(
	'mono', q{
SET ROLE owner;
CREATE TABLE acc.oc_part (id bigint PRIMARY KEY, v bigint NOT NULL) PARTITION BY RANGE (id);
CREATE TABLE acc.oc_part_1 PARTITION OF acc.oc_part FOR VALUES FROM (0) TO (100);
CREATE TABLE acc.oc_part_2 PARTITION OF acc.oc_part FOR VALUES FROM (100) TO (1000);
INSERT INTO acc.oc_part SELECT g, g FROM generate_series(1, 300) g;
RESET ROLE;
SELECT splitdb_assign('oc_on', 'acc.oc_part');
});

sub superusers
{
	my $seen = join(' ',
		map { $_->safe_psql('postgres', "SELECT rolsuper FROM pg_roles WHERE rolname = 'owner'") }
		  ($source, $sibling));
	$_->safe_psql('postgres', 'ALTER ROLE owner NOSUPERUSER') for ($source, $sibling);
	return $seen;
}

sub job
{
	my ($svc, $columns) = @_;
	return $source->safe_psql('mono',
		"SELECT $columns FROM splitdb.job WHERE service = '$svc' ORDER BY job_id DESC LIMIT 1");
}

# Run $sql in $db of $node as owner over TCP with its password
sub as_owner
{
	my ($node, $db, $sql) = @_;
	local $ENV{PGPASSWORD} = $owner_pw;
	return psql_verbose(
		$node, $db, $sql,
		connstr       => 'host=127.0.0.1 port=' . $node->port . " dbname=$db user=owner",
		on_error_stop => 1);
}

# 1. offline: the copy, the index builds, the cutover
my ($ret, $out, $err) = psql_verbose($source, 'mono',
	"SELECT splitdb_migrate('oc_off', mode => 'offline', wait => true)");
is($ret, 0, 'oc_off: the offline migration succeeds') or diag($err);
is(job('oc_off', 'state'), 'done', 'oc_off: done') or diag(job('oc_off', JOB_SUMMARY));
is(superusers(), 'f f', 'oc_off: owner is a superuser on neither server');
is( $sibling->safe_psql('oc_off', fingerprint_sql('acc.oc_off', 'id')),
	$source->safe_psql('mono', fingerprint_sql('splitdb_archive.oc_off', 'id')),
	'oc_off: the sibling holds the original\'s rows');

# 2. online, held at catching_up while owner writes
my $holder = $source->background_psql('mono');
$holder->query_safe("SELECT pg_advisory_lock($pause_key, 0)");
$source->safe_psql('mono',
	"SET splitdb.migrate_pause_at = 'catching_up'; SELECT splitdb_migrate('oc_on', mode => 'online')");
poll_until(
	sub {
		$source->safe_psql('mono',
			"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'splitdb worker'"
			  . " AND query = 'paused at catching_up'") eq '1';
	},
	sub { job('oc_on', 'state') =~ /^(failed|cancelled|done)$/ },
	'the worker of oc_on to pause at catching_up')
  or diag('oc_on ended before its pause: ' . job('oc_on', JOB_SUMMARY));
($ret, $out, $err) = as_owner($source, 'mono',
	'INSERT INTO acc.oc_on (id, v) SELECT g, g FROM generate_series(201, 220) g;'
	  . ' UPDATE acc.oc_on SET v = v + 1000 WHERE id <= 10; DELETE FROM acc.oc_on WHERE id BETWEEN 11 AND 15');
is($ret, 0, 'oc_on: owner writes while the job catches up') or diag($err);
$holder->query_safe("SELECT pg_advisory_unlock($pause_key, 0)");
$holder->quit;
poll_until(sub { job('oc_on', 'state') =~ /^(done|failed|cancelled)$/ }, undef, 'the end of oc_on');
is(job('oc_on', "state || ' ' || mode"), 'done online', 'oc_on: done online')
  or diag(job('oc_on', JOB_SUMMARY));
is(superusers(), 'f f', 'oc_on: owner is a superuser on neither server');
is( $sibling->safe_psql('oc_on', fingerprint_sql('acc.oc_on', 'id')),
	$source->safe_psql('mono', fingerprint_sql('splitdb_archive.oc_on', 'id')),
	'oc_on: the sibling holds the original\'s rows, owner\'s writes included');

# 3. owner writes in the sibling, then the rollback replays into the archive
($ret, $out, $err) = as_owner($sibling, 'oc_on',
	'INSERT INTO acc.oc_on (id, v) SELECT g, g FROM generate_series(301, 310) g;'
	  . ' UPDATE acc.oc_on SET v = v + 5000 WHERE id BETWEEN 20 AND 30;'
	  . ' INSERT INTO acc.oc_part_2 VALUES (500, 500); DELETE FROM acc.oc_part WHERE id IN (1, 150)');
is($ret, 0, 'oc_on: owner writes to its table in the sibling') or diag($err);
# the reverse capture in the sibling, which the rollback replays, is
# splitdb's: its table's owner there may not switch it off, not even for
# a moment
for my $cmd (
	'ALTER TABLE acc.oc_on DISABLE TRIGGER ALL',
	'ALTER TABLE acc.oc_on DISABLE TRIGGER USER',
	'ALTER TABLE acc.oc_on DISABLE TRIGGER splitdb_capture_insert',
	'ALTER TABLE acc.oc_on ENABLE REPLICA TRIGGER splitdb_capture_update',
	'ALTER TABLE acc.oc_on ENABLE TRIGGER splitdb_capture_delete',
	'DROP TRIGGER splitdb_capture_truncate ON acc.oc_on',
	'ALTER TRIGGER splitdb_capture_insert ON acc.oc_on RENAME TO x',
	'ALTER TABLE acc.oc_on RENAME TO oc_on_old',
	'ALTER TABLE acc.oc_part DETACH PARTITION acc.oc_part_2',
	'BEGIN; ALTER TABLE acc.oc_on DISABLE TRIGGER splitdb_capture_insert;'
	  . ' INSERT INTO acc.oc_on (id, v) VALUES (401, 401);'
	  . ' ALTER TABLE acc.oc_on ENABLE ALWAYS TRIGGER splitdb_capture_insert; COMMIT')
{
	($ret, $out, $err) = as_owner($sibling, 'oc_on', $cmd);
	like($err, qr/ERROR:  42501: permission denied: .*splitdb/, "oc_on: in the sibling, owner's $cmd: refused")
	  or diag($err);
}
is( $sibling->safe_psql('oc_on',
		"SELECT string_agg(tgname || ':' || tgenabled::text, ',' ORDER BY tgname) FROM pg_trigger"
		  . " WHERE tgrelid = 'acc.oc_on'::regclass AND tgname LIKE 'splitdb_capture_%'"),
	'splitdb_capture_delete:A,splitdb_capture_insert:A,splitdb_capture_truncate:A,splitdb_capture_update:A',
	'oc_on: the sibling\'s capture triggers are as the cutover made them');
my $expected = $sibling->safe_psql('oc_on', fingerprint_sql('acc.oc_on', 'id'));
my $part_sql = "SELECT count(*) || ' rows, checksum ' || sum(hashtext(t::text)) FROM acc.oc_part t";
my $expected_part = $sibling->safe_psql('oc_on', $part_sql);
($ret, $out, $err) = psql_verbose($source, 'mono', "SELECT splitdb_rollback('oc_on')");
is($ret, 0, 'oc_on: the rollback succeeds') or diag($err);
is(job('oc_on', 'state'), 'rolled_back', 'oc_on: rolled back') or diag(job('oc_on', JOB_SUMMARY));
is($source->safe_psql('mono', fingerprint_sql('acc.oc_on', 'id')),
	$expected, 'oc_on: the restored table holds the rows written in the sibling');
is($source->safe_psql('mono', $part_sql),
	$expected_part, 'oc_on: the restored partitioned table holds the rows of the sibling\'s');
is(superusers(), 'f f', 'after the rollback, owner is a superuser on neither server');

# 4. once oc_off is done, owner tries a cast of the type of one of its
# columns to text (splitdb's verification reads such a column as text) and
# a superuser verifies the service; then oc_off is finalized
($ret, $out, $err) = as_owner($source, 'mono',
	'CREATE CAST (acc.mood AS text) WITH FUNCTION acc.mood_text(acc.mood)');
like($err, qr/ERROR:  55006: table "splitdb_archive\.oc_off" is the archived original/,
	'oc_off: owner\'s cast of its column\'s type is refused while the archive is kept');
($ret, $out, $err) = psql_verbose($source, 'mono', "SELECT count(*) FROM splitdb_verify('oc_off')");
is($ret, 0, 'oc_off: splitdb_verify() runs') or diag($err);
is(superusers(), 'f f', 'oc_off: after splitdb_verify(), owner is a superuser on neither server');

($ret, $out, $err) = psql_verbose($source, 'mono', "SELECT splitdb_finalize('oc_off')");
is($ret, 0, 'oc_off: finalized') or diag($err);
is(job('oc_off', 'state'), 'finalized', 'oc_off: its job is finalized');

# 5. oc_cx, held while copying, with what both servers show of splitdb's
# sessions meanwhile; then cancelled
$holder = $source->background_psql('mono');
$holder->query_safe("SELECT pg_advisory_lock($pause_key, 0)");
$source->safe_psql('mono',
	"SET splitdb.migrate_pause_at = 'copying'; SET splitdb.batch_rows = 50;"
	  . " SELECT splitdb_migrate('oc_cx', mode => 'online')");
poll_until(
	sub {
		$source->safe_psql('mono',
			"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'splitdb worker'"
			  . " AND query = 'paused at copying'") eq '1';
	},
	sub { job('oc_cx', 'state') =~ /^(failed|cancelled|done)$/ },
	'the worker of oc_cx to pause at copying')
  or diag('oc_cx ended before its pause: ' . job('oc_cx', JOB_SUMMARY));
my $activity = 'SELECT string_agg(concat_ws(\' | \', application_name, backend_type, query), E\'\\n\')'
  . ' FROM pg_stat_activity WHERE pid <> pg_backend_pid()';
my $seen = $source->safe_psql('mono', $activity) . "\n" . $sibling->safe_psql('oc_cx', $activity)
  . "\n" . $source->safe_psql('mono', 'SELECT s::text FROM splitdb_status s');
like($seen, qr/paused at copying/, 'oc_cx: the worker shows its pause');
unlike($seen, qr/\Q$super_pw\E|\Q$owner_pw\E|password\s*'[^.]/i,
	'oc_cx: no password in pg_stat_activity of either server or in splitdb_status');
($ret, $out, $err) = as_owner($source, 'mono', 'INSERT INTO acc.oc_cx (id, v) VALUES (500, 500)');
is($ret, 0, 'oc_cx: owner writes while the job copies') or diag($err);
($ret, $out, $err) = psql_verbose($source, 'mono', "SELECT splitdb_cancel('oc_cx')");
is($ret, 0, 'oc_cx: cancelled') or diag($err);
$holder->query_safe("SELECT pg_advisory_unlock($pause_key, 0)");
$holder->quit;
is(job('oc_cx', 'state'), 'cancelled', 'oc_cx: its job is cancelled');
is(superusers(), 'f f', 'after the finalize and the cancel, owner is a superuser on neither server');

# 6. a sibling whose server cannot load splitdb's library (here its
# dynamic_library_path points nowhere): the owners' functions would run
# with the superuser's rights there, so splitdb_migrate() refuses it
# (58P01) before it makes a job
$sibling->safe_psql('postgres', 'CREATE DATABASE oc_lib');
$sibling->safe_psql('postgres', q{ALTER DATABASE oc_lib SET dynamic_library_path = '/nonexistent'});
$source->safe_psql(
	'mono', qq{
CREATE TABLE public.oc_lib (id bigint PRIMARY KEY);
SET log_statement = 'none';
CREATE SERVER oc_lib_srv FOREIGN DATA WRAPPER postgres_fdw
	OPTIONS (host '127.0.0.1', port '$sib_port', dbname 'oc_lib');
CREATE USER MAPPING FOR CURRENT_USER SERVER oc_lib_srv
	OPTIONS (user '$user', password '$super_pw');
RESET log_statement;
SELECT splitdb_add_service('oc_lib', server => 'oc_lib_srv');
SELECT splitdb_assign('oc_lib', 'public.oc_lib');
});
($ret, $out, $err) = psql_verbose($source, 'mono', "SELECT splitdb_migrate('oc_lib', mode => 'offline')");
like($err, qr/splitdb's library is not installed on the server of database "oc_lib" of service "oc_lib"/,
	'oc_lib: a sibling without splitdb\'s library is refused');
is($source->safe_psql('mono', q{SELECT count(*) FROM splitdb.job WHERE service = 'oc_lib'}),
	'0', 'oc_lib: no job is made');

# no password in either log, nor a user mapping's password option
for my $node ($source, $sibling)
{
	my $log = slurp_file($node->logfile);
	like($log, qr/DEBUG:  StartTransaction/, $node->name . ' logged at debug5');
	for my $pw ([ $super_pw, "the superuser's" ], [ $owner_pw, "owner's" ])
	{
		unlike($log, qr/\Q$pw->[0]\E/, $node->name . "'s log does not hold $pw->[1] password");
	}
	is(join("\n", grep { /password\s*'(?!\.\.\.')[^']/i } split /\n/, $log),
		'', $node->name . "'s log holds no password option");
}

done_testing();
