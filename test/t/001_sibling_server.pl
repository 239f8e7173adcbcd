# Copyright (c) 2026, splitdb developers

# A service whose sibling is a database on another server, reached through a
# postgres_fdw server the DBA made: splitdb_add_service(..., server => ...).
#
# Two clusters: "source" (splitdb installed in database postgres) and
# "sibling".  Checked here:
# - a service on the sibling is registered with the right catalog row, and
#   the check really reached the sibling (its connection log);
# - a server reaching another database than the caller named, or the source
#   database itself, is refused; the same database name on another server is
#   not mistaken for the source;
# - an unreachable sibling (stopped, or a wrong password) is refused with
#   SQLSTATE 08001 and libpq's message, and the password of the user mapping
#   appears neither in the error nor in the source's server log;
# - after the sibling is back, the same server works;
# - splitdb_drop_service() keeps a server it did not create;
# - a table of aclitem[] and regrole values migrates there, where the role
#   they name has another OID: the job's verification and splitdb_verify()
#   compare those values by their text, not by the OIDs they store.
# After every refusal the catalog is shown unchanged.
#
# The log checks read from an offset taken after the set-up: the test
# framework sets log_statement = all, so the CREATE USER MAPPING statements
# themselves (ours, not splitdb's) put the password in the log before that.

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# the password of the user mappings; it must never show up anywhere
my $password = 'SeCrEt-pw-123';
# the sibling's real password for database secure_db
my $right_password = 'Right-pw-456';

my $source  = PostgreSQL::Test::Cluster->new('source');
my $sibling = PostgreSQL::Test::Cluster->new('sibling');

$source->init;
$source->append_conf('postgresql.conf', "shared_preload_libraries = 'splitdb'");
$source->start;

$sibling->init;
$sibling->append_conf('postgresql.conf', 'log_connections = on');
$sibling->start;

# the superuser both clusters were made with (the OS user)
my $user = $source->safe_psql('postgres', 'SELECT current_user');

# the sibling's databases; secure_db asks for a password over the socket
$sibling->safe_psql('postgres', 'CREATE DATABASE billing');
$sibling->safe_psql('postgres', 'CREATE DATABASE lost_db');
$sibling->safe_psql('postgres', 'CREATE DATABASE secure_db');
$sibling->safe_psql('postgres',
	"SET password_encryption = 'scram-sha-256';"
	  . " ALTER ROLE CURRENT_USER PASSWORD '$right_password'");
{
	my $hba_file = $sibling->data_dir . '/pg_hba.conf';
	my $hba      = slurp_file($hba_file);

	# first line wins: password for secure_db, trust for the rest
	open(my $fh, '>', $hba_file) or die "could not write $hba_file: $!";
	print $fh "local secure_db all scram-sha-256\n", $hba;
	close($fh);
	$sibling->reload;
}

my $sib_host = $sibling->host;
my $sib_port = $sibling->port;
my $src_host = $source->host;
my $src_port = $source->port;

$source->safe_psql(
	'postgres', qq{
CREATE EXTENSION splitdb CASCADE;
CREATE SERVER sib FOREIGN DATA WRAPPER postgres_fdw
	OPTIONS (host '$sib_host', port '$sib_port', dbname 'billing');
CREATE USER MAPPING FOR CURRENT_USER SERVER sib OPTIONS (user '$user');
-- the sibling's database "postgres": same name as the source database
CREATE SERVER sib2 FOREIGN DATA WRAPPER postgres_fdw
	OPTIONS (host '$sib_host', port '$sib_port', dbname 'postgres');
CREATE USER MAPPING FOR CURRENT_USER SERVER sib2 OPTIONS (user '$user');
-- the source database itself
CREATE SERVER self_srv FOREIGN DATA WRAPPER postgres_fdw
	OPTIONS (host '$src_host', port '$src_port', dbname 'postgres');
CREATE USER MAPPING FOR CURRENT_USER SERVER self_srv OPTIONS (user '$user');
CREATE SERVER lost_srv FOREIGN DATA WRAPPER postgres_fdw
	OPTIONS (host '$sib_host', port '$sib_port', dbname 'lost_db');
CREATE USER MAPPING FOR CURRENT_USER SERVER lost_srv
	OPTIONS (user '$user', password '$password');
CREATE SERVER sec_srv FOREIGN DATA WRAPPER postgres_fdw
	OPTIONS (host '$sib_host', port '$sib_port', dbname 'secure_db');
CREATE USER MAPPING FOR CURRENT_USER SERVER sec_srv
	OPTIONS (user '$user', password '$password');
});

# the catalog as text, one line per service
my $catalog_sql =
  q{SELECT service, dbname, server, server_created, database_created,
		   mapping_role IS NULL
	  FROM splitdb.service ORDER BY service};

sub catalog
{
	return $source->safe_psql('postgres', $catalog_sql);
}

# Run $sql in the source with verbose errors; returns (exit code, stderr).
sub try_source
{
	my ($sql) = @_;
	my $ret = $source->psql(
		'postgres', "\\set VERBOSITY verbose\n$sql",
		stdout => \my $out,
		stderr => \my $err);
	note "stderr of [$sql]:\n$err" if $err ne '';
	return ($ret, $err);
}

my ($ret, $err, $offset);

# ===== a service on the sibling server
$offset = -s $sibling->logfile;
($ret, $err) = try_source(q{SELECT splitdb_add_service('billing', server => 'sib')});
is($ret, 0, 'add_service through server sib succeeds');
is($err, '', 'add_service through server sib: no error, no warning');
is(catalog(), 'billing|billing|sib|f|f|t',
	'service billing: dbname billing, server sib, nothing created by splitdb, no mapping of its own');
ok( $sibling->log_contains(
		qr/connection authorized: user=\Q$user\E database=billing application_name=splitdb/,
		$offset),
	'the reachability check reached database billing on the sibling, as splitdb');
is( $sibling->safe_psql(
		'postgres',
		q{SELECT count(*) FROM pg_stat_activity
		   WHERE application_name = 'splitdb'}),
	'0',
	'the check left no connection open on the sibling');

# ===== the server reaches another database than the caller named
($ret, $err) = try_source(
	q{SELECT splitdb_add_service('b2', dbname => 'other', server => 'sib2')});
isnt($ret, 0, 'dbname that the server does not reach: refused');
like(
	$err,
	qr/ERROR:  22023: server "sib2" reaches database "postgres", not "other"/,
	'dbname mismatch: SQLSTATE 22023 and the database the server reaches');
is(catalog(), 'billing|billing|sib|f|f|t', 'dbname mismatch: catalog unchanged');

# ===== a server reaching the source database itself
($ret, $err) = try_source(q{SELECT splitdb_add_service('self', server => 'self_srv')});
isnt($ret, 0, 'server reaching the source database: refused');
like(
	$err,
	qr/ERROR:  22023: server "self_srv" reaches the source database "postgres" itself/,
	'source database as sibling: SQLSTATE 22023 and message');
is(catalog(), 'billing|billing|sib|f|f|t', 'source database as sibling: catalog unchanged');

# the sibling's database "postgres" has the source database's name, but it is
# another server: accepted
($ret, $err) = try_source(q{SELECT splitdb_add_service('b2', server => 'sib2')});
is($ret, 0, 'database "postgres" of the other server is a valid sibling');
is( catalog(),
	"b2|postgres|sib2|f|f|t\nbilling|billing|sib|f|f|t",
	'service b2: dbname postgres, server sib2');
($ret, $err) = try_source(q{SELECT splitdb_drop_service('b2')});
is($ret, 0, 'service b2 dropped again');
is(catalog(), 'billing|billing|sib|f|f|t', 'only billing is left');

# ===== the sibling is down
$sibling->stop;
$offset = -s $source->logfile;
($ret, $err) = try_source(q{SELECT splitdb_add_service('lost', server => 'lost_srv')});
isnt($ret, 0, 'sibling stopped: add_service refused');
like(
	$err,
	qr/ERROR:  08001: could not connect to server "lost_srv" of service "lost"/,
	'sibling stopped: SQLSTATE 08001, the server and the service named');
like(
	$err,
	qr/DETAIL:  connection to server .*failed: (No such file or directory|Connection refused)/,
	'sibling stopped: libpq\'s reason in the detail');
like($err, qr/HINT:  Check that the sibling is running/,
	'sibling stopped: a hint says what to check');
unlike($err, qr/\Q$password\E/, 'sibling stopped: the error does not show the password');
unlike($err, qr/password/i, 'sibling stopped: the error does not even mention a password');
$source->wait_for_log(qr/could not connect to server "lost_srv" of service "lost"/, $offset);
unlike(
	slurp_file($source->logfile, $offset),
	qr/\Q$password\E/,
	'sibling stopped: the source\'s server log does not show the password');
is(catalog(), 'billing|billing|sib|f|f|t', 'sibling stopped: no row for service lost');
is( $source->safe_psql(
		'postgres', q{SELECT count(*) FROM pg_foreign_server WHERE srvname = 'lost_srv'}),
	'1',
	'sibling stopped: the DBA\'s server lost_srv is left alone');

# ===== wrong password: the sibling refuses the login
$sibling->start;
$offset = -s $source->logfile;
my $sib_offset = -s $sibling->logfile;
($ret, $err) = try_source(q{SELECT splitdb_add_service('sec', server => 'sec_srv')});
isnt($ret, 0, 'wrong password: add_service refused');
like(
	$err,
	qr/ERROR:  08001: could not connect to server "sec_srv" of service "sec"/,
	'wrong password: SQLSTATE 08001');
like(
	$err,
	qr/DETAIL:  .*password authentication failed for user "\Q$user\E"/,
	'wrong password: libpq\'s reason in the detail');
unlike($err, qr/\Q$password\E/, 'wrong password: the error does not show the password');
$source->wait_for_log(qr/could not connect to server "sec_srv" of service "sec"/, $offset);
unlike(
	slurp_file($source->logfile, $offset),
	qr/\Q$password\E/,
	'wrong password: the source\'s server log does not show the password');
$sibling->wait_for_log(qr/password authentication failed for user "\Q$user\E"/,
	$sib_offset);
unlike(
	slurp_file($sibling->logfile, $sib_offset),
	qr/\Q$password\E/,
	'wrong password: the sibling\'s server log does not show it either');
is(catalog(), 'billing|billing|sib|f|f|t', 'wrong password: no row for service sec');

# with the right password in the user mapping, the same server works
$source->safe_psql('postgres',
	"ALTER USER MAPPING FOR CURRENT_USER SERVER sec_srv OPTIONS (SET password '$right_password')"
);
($ret, $err) = try_source(q{SELECT splitdb_add_service('sec', server => 'sec_srv')});
is($ret, 0, 'right password: add_service succeeds');
is( catalog(),
	"billing|billing|sib|f|f|t\nsec|secure_db|sec_srv|f|f|t",
	'service sec: dbname secure_db, server sec_srv');

# ===== the sibling is back: the server that failed works now
($ret, $err) = try_source(q{SELECT splitdb_add_service('lost', server => 'lost_srv')});
is($ret, 0, 'sibling restarted: add_service through lost_srv succeeds');
is($err, '', 'sibling restarted: no error');
is( catalog(),
	"billing|billing|sib|f|f|t\nlost|lost_db|lost_srv|f|f|t\nsec|secure_db|sec_srv|f|f|t",
	'sibling restarted: service lost registered with dbname lost_db');

# ===== dropping a service keeps the server the DBA made
($ret, $err) = try_source(q{SELECT splitdb_drop_service('billing')});
is($ret, 0, 'drop_service billing succeeds');
is($err, '', 'drop_service billing: no notice (splitdb created no database)');
is( catalog(),
	"lost|lost_db|lost_srv|f|f|t\nsec|secure_db|sec_srv|f|f|t",
	'service billing is gone from the catalog');
is( $source->safe_psql(
		'postgres',
		q{SELECT s.srvname, s.srvoptions::text, count(m.umid)
			FROM pg_foreign_server s
			LEFT JOIN pg_user_mappings m ON m.srvid = s.oid
		   WHERE s.srvname = 'sib' GROUP BY 1, 2}),
	"sib|{host=$sib_host,port=$sib_port,dbname=billing}|1",
	'server sib and its user mapping are still there, unchanged');
is( $sibling->safe_psql('postgres',
		q{SELECT count(*) FROM pg_database WHERE datname = 'billing'}),
	'1',
	'the sibling database billing is still there');

# the kept server can serve the service again
($ret, $err) = try_source(q{SELECT splitdb_add_service('billing', server => 'sib')});
is($ret, 0, 'the kept server sib can be used again');
is( catalog(),
	"billing|billing|sib|f|f|t\nlost|lost_db|lost_srv|f|f|t\nsec|secure_db|sec_srv|f|f|t",
	'service billing registered again');

# ===== values that name roles, moved to a server whose roles have other OIDs
# aclitem and regrole store a role's OID; the sibling's role of the same name
# has another one (a role made before it there), so the values cross as text
# and the verification compares their text, not their bytes.
$sibling->safe_psql('postgres',
	'CREATE ROLE acl_pad_1; CREATE ROLE acl_pad_2; CREATE ROLE acl_reader');
$source->safe_psql(
	'postgres', q{
CREATE ROLE acl_reader;
CREATE TABLE grants (id int PRIMARY KEY, acl aclitem[], who regrole);
INSERT INTO grants
SELECT i, ARRAY[makeaclitem('acl_reader'::regrole, current_user::regrole,
							'SELECT', i % 2 = 0)],
	   'acl_reader'::regrole
  FROM generate_series(1, 20) i;
SELECT splitdb_assign('billing', 'grants');
});
isnt(
	$source->safe_psql('postgres',
		q{SELECT oid FROM pg_roles WHERE rolname = 'acl_reader'}),
	$sibling->safe_psql('postgres',
		q{SELECT oid FROM pg_roles WHERE rolname = 'acl_reader'}),
	'role acl_reader has another OID on the sibling');
($ret, $err) = try_source(
	q{SELECT splitdb_migrate('billing', mode => 'offline', wait => true) > 0});
is($ret, 0, 'a table of aclitem[] and regrole columns migrates to the other server');
is( $source->safe_psql(
		'postgres',
		q{SELECT j.state, t.verified
			FROM splitdb.job j JOIN splitdb.job_table t USING (job_id)
		   WHERE j.service = 'billing'}),
	'done|t',
	'the job is done and its verification matched');
is( $sibling->safe_psql(
		'billing',
		q{SELECT count(*), count(*) FILTER (WHERE who = 'acl_reader'::regrole
						AND acl[1]::text LIKE 'acl_reader=r%')
			FROM public.grants}),
	'20|20',
	'the sibling holds the 20 rows, naming its own role acl_reader');
is( $source->safe_psql(
		'postgres',
		q{SELECT string_agg(table_name || ' ' || source_rows || ' '
							|| target_rows || ' ' || ok, ',')
			FROM splitdb_verify('billing')}),
	'public.grants 20 20 true',
	'splitdb_verify() after the cutover: same rows, checksums equal');

$source->stop;
$sibling->stop;

done_testing();
