# Copyright (c) 2026, splitdb developers
#
# Credentials of cross-service references: a table owner that is not a
# superuser, with the sibling on a second server, password authentication
# (scram-sha-256) for that owner on both servers, and both servers logging
# every statement (log_statement = all, log_min_messages = debug1,
# log_min_error_statement = debug1).
#
# "parent" stays, "child" moves to service svc and refers to it; both are
# owned by app_owner.  The superuser that runs the migration reaches the
# sibling with a user mapping that holds its own password.  Checked here:
#
# 1. the plan reports the owner's missing user mapping in the source as a
#    blocker, and the one in the sibling as a warning, each with the
#    statement to run; splitdb_migrate() is refused (55000) and nothing
#    changes in either database;
# 2. with the source's mapping made as the hint says, the plan has no
#    blocker; the cutover stops on the sibling's missing mapping (42704)
#    before it changes the source, leaving only the server there;
# 3. with that mapping made too, the job resumes and is done; the owner's
#    inserts in the sibling and through the shim, and its deletes in the
#    source, are checked as the owner (23503 for a missing key), and the
#    checks log in to the other server as the owner;
# 4. no user mapping on either server holds another role's user name or
#    password;
# 5. no password used in the test appears in either server's log.
#
# The test's own statements that carry a password run with log_statement
# set to none in their session, so that any password in a log is splitdb's.

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SplitdbTest qw(start_logged_pair set_passwords psql_verbose);

# the superuser's password (on both servers, and in its own user mapping)
my $super_pw = 'Super-Pw-7f3a';
# the table owner's password
my $owner_pw = 'Owner-Pw-91c2';

# first line wins: app_owner logs in with its password, the rest trust
my ($source, $sibling, $user) = start_logged_pair(
	hba => sub {
		my ($node) = @_;
		return "local all app_owner scram-sha-256\n"
		  . "host all app_owner 127.0.0.1/32 scram-sha-256\n"
		  . slurp_file($node->data_dir . '/pg_hba.conf');
	});
set_passwords($_, $super_pw, [ app_owner => $owner_pw ]) for ($source, $sibling);
$sibling->safe_psql('postgres', 'CREATE DATABASE svcdb');
$source->safe_psql('postgres', 'CREATE DATABASE mono');
$source->safe_psql(
	'mono', q{
CREATE TABLE parent (id integer PRIMARY KEY);
CREATE TABLE child (id integer PRIMARY KEY, parent_id integer REFERENCES parent);
INSERT INTO parent SELECT generate_series(1, 5);
INSERT INTO child VALUES (1, 1);
ALTER TABLE parent OWNER TO app_owner;
ALTER TABLE child OWNER TO app_owner;
});
my ($sib_host, $sib_port) = ($sibling->host, $sibling->port);
$source->safe_psql(
	'mono', qq{
SET log_statement = 'none';
CREATE EXTENSION splitdb CASCADE;
CREATE SERVER sib_srv FOREIGN DATA WRAPPER postgres_fdw
	OPTIONS (host '$sib_host', port '$sib_port', dbname 'svcdb');
CREATE USER MAPPING FOR CURRENT_USER SERVER sib_srv
	OPTIONS (user '$user', password '$super_pw');
SELECT splitdb_add_service('svc', server => 'sib_srv');
SELECT splitdb_assign('svc', 'child');
});

# Run $sql in $db of $node with verbose errors; returns (exit code, stderr).
sub try_sql
{
	my ($ret, $out, $err) = psql_verbose(@_);
	return ($ret, $err);
}

# what the migration could have changed, in the source and in the sibling
sub state
{
	return join(
		"\n",
		$source->safe_psql(
			'mono', q{
SELECT format('jobs %s; child %s in %s; keys %s; mappings %s',
			  (SELECT count(*) FROM splitdb.job),
			  c.relkind, c.relnamespace::regnamespace,
			  (SELECT string_agg(conname, ',' ORDER BY conname) FROM pg_constraint
				WHERE contype = 'f' AND conrelid = 'child'::regclass),
			  (SELECT string_agg(srvname || '/' || usename, ',' ORDER BY (srvname || '/' || usename) COLLATE "C")
				 FROM pg_user_mappings))
  FROM pg_class c WHERE c.oid = 'child'::regclass}),
		$sibling->safe_psql(
			'svcdb', q{
SELECT format('sibling: child %s; servers %s; mappings %s; triggers %s',
			  to_regclass('public.child') IS NOT NULL,
			  (SELECT string_agg(srvname, ',' ORDER BY srvname) FROM pg_foreign_server),
			  (SELECT string_agg(srvname || '/' || usename, ',' ORDER BY srvname, usename)
				 FROM pg_user_mappings),
			  (SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'splitdb%'))}));
}

# ===== 1. the plan says what is missing; the migration is refused

my $before = state();
is( $before,
	"jobs 0; child r in public; keys child_parent_id_fkey; mappings sib_srv/$user\n"
	  . 'sibling: child f; servers ; mappings ; triggers 0',
	'before: nothing has moved');

is( $source->safe_psql(
		'mono', q{
SELECT action || ' | ' || object || ' | ' || detail FROM splitdb_plan('svc')
 WHERE object LIKE 'user mapping %' ORDER BY step}),
	join("\n",
		'warning | user mapping for app_owner on server splitdb_source | in database svcdb of service svc, role app_owner needs a user mapping on server splitdb_source for the cross-service reference checks of the tables it owns, and splitdb creates none that needs a password or another role\'s credentials; the server may not exist there yet: a cutover that finds the mapping missing creates the server, if missing, and stops before it changes the source; create the mapping there then, and call splitdb_migrate() again (or, where the server exists, before migrating): CREATE USER MAPPING FOR app_owner SERVER splitdb_source OPTIONS (user \'app_owner\', password \'...\')',
		'blocker | user mapping for app_owner on server sib_srv | user mapping for role app_owner on server sib_srv in database mono is missing; the cross-service reference checks of the tables that role owns log in through it, and splitdb creates none that needs a password or another role\'s credentials; create it before migrating: CREATE USER MAPPING FOR app_owner SERVER sib_srv OPTIONS (user \'app_owner\', password \'...\')'
	),
	'the plan: a blocker for the owner\'s mapping in the source, a warning for the one in the sibling');

my ($ret, $err) =
  try_sql($source, 'mono', "SELECT splitdb_migrate('svc', wait => true)");
isnt($ret, 0, 'the migration is refused');
like($err, qr/ERROR:  55000: the plan of service "svc" has 1 blocker/,
	'refused with 55000 for the blocker');
like($err, qr/user mapping for role app_owner on server sib_srv in database mono is missing/,
	'the refusal names the missing user mapping');
is(state(), $before, 'the refused migration changed nothing on either server');

# ===== 2. the source's mapping made as the hint says; the cutover stops on the sibling's

$source->safe_psql(
	'mono', qq{
SET log_statement = 'none';
CREATE USER MAPPING FOR app_owner SERVER sib_srv OPTIONS (user 'app_owner', password '$owner_pw');
});
is( $source->safe_psql(
		'mono', q{SELECT string_agg(action || ' ' || object, ', ' ORDER BY step)
				    FROM splitdb_plan('svc') WHERE action IN ('blocker', 'warning')}),
	'warning user mapping for app_owner on server splitdb_source',
	'with the mapping in the source, only the warning about the sibling is left');

($ret, $err) = try_sql($source, 'mono', "SELECT splitdb_migrate('svc', wait => true)");
isnt($ret, 0, 'the migration fails at the cutover');
like(
	$err,
	qr/ERROR:  42704: .*user mapping for role "app_owner" on server "splitdb_source" in database "svcdb" is missing/,
	'the cutover names the mapping missing in the sibling (42704)');
like(
	$err,
	qr/in database "svcdb", run CREATE USER MAPPING FOR app_owner SERVER splitdb_source OPTIONS \(user 'app_owner', password '\.\.\.'\)\./,
	'the error gives the statement to run there');
is( state(),
	"jobs 1; child r in public; keys child_parent_id_fkey; mappings "
	  . join(',', sort ('sib_srv/app_owner', "sib_srv/$user")) . "\n"
	  . 'sibling: child t; servers splitdb_source; mappings ; triggers 0',
	'the source is unchanged; the sibling has the server for the mapping, and no end');

# ===== 3. with the sibling's mapping the job resumes; checks run as the owner

$sibling->safe_psql(
	'svcdb', qq{
SET log_statement = 'none';
CREATE USER MAPPING FOR app_owner SERVER splitdb_source OPTIONS (user 'app_owner', password '$owner_pw');
});
($ret, $err) = try_sql($source, 'mono', "SELECT splitdb_migrate('svc', wait => true) > 0");
is($ret, 0, 'the resumed migration succeeds') or diag($err);
is($source->safe_psql('mono', "SELECT state FROM splitdb_status WHERE service = 'svc'"),
	'done', 'the job is done');

my $src_offset = -s $source->logfile;
my $sib_offset = -s $sibling->logfile;

($ret, $err) = try_sql($sibling, 'svcdb',
	"SET ROLE app_owner;\nINSERT INTO child VALUES (10, 99);");
like($err, qr/ERROR:  23503: /, 'in the sibling, the owner\'s insert of a missing key: 23503');
unlike($err, qr/2F003|password/, 'in the sibling, no password error');
($ret, $err) = try_sql($sibling, 'svcdb', "SET ROLE app_owner;\nINSERT INTO child VALUES (11, 2);");
is($ret, 0, 'in the sibling, the owner\'s insert of a present key succeeds') or diag($err);

($ret, $err) =
  try_sql($source, 'mono', "SET ROLE app_owner;\nINSERT INTO child VALUES (20, 99);");
like($err, qr/ERROR:  23503: /, 'through the shim, the owner\'s insert of a missing key: 23503');
($ret, $err) =
  try_sql($source, 'mono', "SET ROLE app_owner;\nINSERT INTO child VALUES (21, 3);");
is($ret, 0, 'through the shim, the owner\'s insert of a present key succeeds') or diag($err);
($ret, $err) = try_sql($source, 'mono', "SET ROLE app_owner;\nDELETE FROM parent WHERE id = 2;");
like($err, qr/ERROR:  23503: /,
	'in the source, the owner\'s delete of a key the sibling refers to: 23503');
is($sibling->safe_psql('svcdb', 'SELECT string_agg(id::text, \',\' ORDER BY id) FROM child'),
	'1,11,21', 'the sibling holds exactly the accepted rows');

# the checks' connections, as the servers logged them
sub check_logins
{
	my ($node, $offset, $db) = @_;
	my $log = slurp_file($node->logfile, $offset);
	my %users;
	$users{$1} = 1
	  while $log =~
	  /connection authorized: user=(\S+) database=\Q$db\E application_name=(?:splitdb|postgres_fdw)/g;
	return join(',', sort keys %users);
}
is(check_logins($source, $src_offset, 'mono'),
	'app_owner', 'the sibling\'s checks logged in to the source as the owner, and only as it');
is(check_logins($sibling, $sib_offset, 'svcdb'),
	'app_owner', 'the source\'s checks and shim writes logged in to the sibling as the owner');

# ===== 4. no mapping holds another role's credentials

# Each mapping as "server role user=... password-of=...", where password-of
# names whose password the mapping holds (compared here, not in SQL, so
# that no password is sent in a statement).
sub mappings
{
	my ($node, $db) = @_;
	my %owner_of = ($super_pw => $user, $owner_pw => 'app_owner');
	my @lines;
	for my $row (
		split /\n/,
		$node->safe_psql(
			$db, q{
SELECT srvname, usename,
	   coalesce((SELECT substr(o, 6) FROM unnest(umoptions) o WHERE o LIKE 'user=%'), '-'),
	   coalesce((SELECT substr(o, 10) FROM unnest(umoptions) o WHERE o LIKE 'password=%'), '')
  FROM pg_user_mappings ORDER BY 1, 2}))
	{
		my ($srv, $role, $login, $pw) = split /\|/, $row, 4;
		my $whose = $pw eq '' ? 'none' : $owner_of{$pw} // 'unknown';
		push @lines, "$srv $role user=$login password-of=$whose";
	}
	return join("\n", @lines);
}
is( mappings($source, 'mono'),
	"sib_srv app_owner user=app_owner password-of=app_owner\n"
	  . "sib_srv $user user=$user password-of=$user",
	'source: each mapping holds its own role\'s login and password, and splitdb made none');
is(mappings($sibling, 'svcdb'),
	'splitdb_source app_owner user=app_owner password-of=app_owner',
	'sibling: only the owner\'s own mapping, none with the superuser\'s credentials');

# ===== 5. no password in any log

my $src_log = slurp_file($source->logfile);
my $sib_log = slurp_file($sibling->logfile);
like(
	$sib_log,
	qr/execute <unnamed>: SELECT splitdb\.ensure_user_mapping[^\n]*\n[^\n]*DETAIL:  parameters: \$1 = 'app_owner'/,
	'the sibling logged splitdb\'s statements with their parameters');
like($src_log, qr/DEBUG:  /, 'the source logged at debug1');
like($sib_log, qr/DEBUG:  /, 'the sibling logged at debug1');
for my $pw ([ $super_pw, 'the superuser\'s' ], [ $owner_pw, 'the owner\'s' ])
{
	unlike($src_log, qr/\Q$pw->[0]\E/, "the source's log does not hold $pw->[1] password");
	unlike($sib_log, qr/\Q$pw->[0]\E/, "the sibling's log does not hold $pw->[1] password");
}

done_testing();
