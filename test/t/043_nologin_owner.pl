# Copyright (c) 2026, splitdb developers
#
# Tables owned by a role that cannot log in (NOLOGIN), a common way to
# own an application's tables.  In the sibling, the checks of the writes
# of a role with no user mapping of its own on splitdb_source log in to
# the source as the owner of the moved table, through the owner's user
# mapping there: with a NOLOGIN owner the cutover succeeds, and then
# every such write fails with 08001.
#
# - splitdb_plan() warns of it before anything moves (object "role
#   tabowner", naming the databases and servers: the source's and the
#   sibling's), and gives no such warning for an owner that can log in;
# - the refused write (of clerk, who has no user mapping in the sibling)
#   names in its hint the user mapping that was used, the owner's, not
#   "the current user" (with the role its user option logs in as, when
#   another), and changes nothing; the superuser, who has a
#   mapping of its own there, writes; in the source, clerk (no mapping for
#   svcdb) deleting a parent fails the same way, the row kept;
# - once the owner can log in, the same write is accepted, an orphan is
#   refused (23503), and so is clerk's delete of a referenced parent.
#
# One cluster that asks every connection for its password (scram) and
# logs every statement.  parent stays, child (referencing it) moves to
# service svc (database svcdb, through a server of the test's own).

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SplitdbTest qw(start_scram_node psql_verbose);

my %pw = (super => 'Pw-super-43n', tabowner => 'Pw-tabowner-43n', other => 'Pw-other-43n',
	clerk => 'Pw-clerk-43n');

my ($node, $user) = start_scram_node('nologin', { map { ($_ => $pw{$_}) } qw(super other clerk) });
my $port = $node->port;

# tabowner cannot log in; other (LOGIN) owns a second pair of tables
$node->safe_psql('postgres',
	"SET log_statement = 'none'; CREATE ROLE tabowner NOLOGIN PASSWORD '$pw{tabowner}'");
$node->safe_psql('postgres', 'CREATE DATABASE mono');
$node->safe_psql('postgres', 'CREATE DATABASE svcdb');
$node->safe_psql(
	'mono', q{
CREATE TABLE parent (id integer PRIMARY KEY);
CREATE TABLE child (id integer PRIMARY KEY, parent_id integer REFERENCES parent);
CREATE TABLE other_parent (id integer PRIMARY KEY);
CREATE TABLE other_child (id integer PRIMARY KEY, parent_id integer REFERENCES other_parent);
INSERT INTO parent SELECT g FROM generate_series(1, 5) g;
INSERT INTO child SELECT g, g FROM generate_series(1, 5) g;
ALTER TABLE parent OWNER TO tabowner;
ALTER TABLE child OWNER TO tabowner;
ALTER TABLE other_parent OWNER TO other;
ALTER TABLE other_child OWNER TO other;
GRANT SELECT, INSERT ON child TO clerk;
GRANT SELECT, DELETE ON parent TO clerk;
});

sub mappings_sql
{
	my ($server) = @_;
	return "SET log_statement = 'none';\n"
	  . "CREATE USER MAPPING FOR CURRENT_USER SERVER $server OPTIONS (user '$user', password '$pw{super}');\n"
	  . join('',
		map { "CREATE USER MAPPING FOR $_ SERVER $server OPTIONS (user '$_', password '$pw{$_}');\n" }
		  qw(tabowner other));
}
$node->safe_psql(
	'mono', qq{
CREATE EXTENSION splitdb CASCADE;
CREATE SERVER svc_srv FOREIGN DATA WRAPPER postgres_fdw
	OPTIONS (host '127.0.0.1', port '$port', dbname 'svcdb');
} . mappings_sql('svc_srv') . q{
SELECT splitdb_add_service('svc', server => 'svc_srv');
SELECT splitdb_assign('svc', 'child', 'other_child');
});

# the plan warns of the owner that cannot log in, and of it only
my $warn = $node->safe_psql('mono',
	q{SELECT object || ': ' || detail FROM splitdb_plan('svc') WHERE action = 'warning' AND object LIKE 'role %'});
like($warn,
	qr/^role tabowner: role tabowner cannot log in \(NOLOGIN on this cluster\), .* for the writers with no user mapping of their own for that database; so after the cutover every write of theirs that such a check runs for fails \(08001, not permitted to log in\); before migrating, give the role LOGIN .*; where: database mono, the source \(server svc_srv\), database svcdb of service svc \(server splitdb_source\)$/,
	'the plan warns that the NOLOGIN owner\'s checks cannot log in, in the source and in the sibling');
is(scalar(() = $warn =~ /^role /mg), 1, 'one such warning, none for the owner that can log in');
is($node->safe_psql('mono', q{SELECT count(*) FROM splitdb_plan('svc') WHERE action = 'blocker'}),
	'0', 'no blocker: the migration may start');

# the first run stops at the cutover for the sibling's mappings
my ($rc, $out, $err) = $node->psql('mono', "SELECT splitdb_migrate('svc', wait => true)");
$node->safe_psql('svcdb', mappings_sql('splitdb_source'));
($rc, $out, $err) = $node->psql('mono', "SELECT splitdb_migrate('svc', wait => true)");
is($rc, 0, 'the service migrates');
diag($err) if $rc;
is($node->safe_psql('mono', q{SELECT state FROM splitdb_status WHERE service = 'svc'}),
	'done', 'the job is done');

# a write in the sibling by clerk, who has no user mapping there: its
# check logs in as tabowner
sub as_clerk
{
	my ($sql) = @_;
	local $ENV{PGPASSWORD} = $pw{clerk};
	return psql_verbose($node, 'svcdb', $sql,
		connstr => "host=127.0.0.1 port=$port dbname=svcdb user=clerk");
}
($rc, $out, $err) = as_clerk('INSERT INTO child VALUES (101, 1);');
like($err, qr/ERROR:  08001: could not connect to server "splitdb_source"/,
	'a checked write in the sibling fails: the owner cannot log in');
like($err, qr/DETAIL:  .*role "tabowner" is not permitted to log in/, 'the detail says why');
like($err,
	qr/HINT:  .* and of its user mapping for role "tabowner" are right\./,
	'the hint names the user mapping that was used, the owner\'s');
unlike($err, qr/for the current user/, 'not the current user\'s');
is($node->safe_psql('svcdb', 'SELECT count(*) FROM child WHERE id = 101'), '0',
	'the refused write changed nothing');
# a mapping whose user option names another role: the hint says so
$node->safe_psql('svcdb',
	"ALTER USER MAPPING FOR tabowner SERVER splitdb_source OPTIONS (SET user 'no_such_role_43')");
($rc, $out, $err) = as_clerk('INSERT INTO child VALUES (101, 1);');
like($err,
	qr/HINT:  .* and of its user mapping for role "tabowner" \(which logs in as "no_such_role_43"\) are right\./,
	'the hint names the mapping and the role its user option logs in as');
$node->safe_psql('svcdb',
	"ALTER USER MAPPING FOR tabowner SERVER splitdb_source OPTIONS (SET user 'tabowner')");

# in the source too: clerk, with no user mapping for svcdb, deletes a
# parent; the check of the reference logs in to svcdb as tabowner
{
	local $ENV{PGPASSWORD} = $pw{clerk};
	($rc, $out, $err) = psql_verbose($node, 'mono', 'DELETE FROM parent WHERE id = 2;',
		connstr => "host=127.0.0.1 port=$port dbname=mono user=clerk");
}
like($err, qr/ERROR:  08001: .*\n.*role "tabowner" is not permitted to log in/,
	'in the source, the check of clerk\'s delete cannot log in either');
is($node->safe_psql('mono', 'SELECT count(*) FROM parent WHERE id = 2'), '1',
	'the parent is still there');
($rc, $out, $err) = psql_verbose($node, 'svcdb', 'INSERT INTO child VALUES (100, 1);');
is($rc, 0, 'the superuser, with a mapping of its own there, writes');
unlike(slurp_file($node->logfile), qr/\Q$pw{tabowner}\E/, 'no password in the log');

# the way out the warning gives: the owner may log in
$node->safe_psql('postgres', 'ALTER ROLE tabowner LOGIN');
($rc, $out, $err) = as_clerk('INSERT INTO child VALUES (101, 1);');
is($rc, 0, 'once the owner can log in, clerk\'s write is accepted');
($rc, $out, $err) = as_clerk('INSERT INTO child VALUES (102, 99);');
like($err, qr/ERROR:  23503:/, 'and an orphan is refused');
{
	local $ENV{PGPASSWORD} = $pw{clerk};
	($rc, $out, $err) = psql_verbose($node, 'mono', 'DELETE FROM parent WHERE id = 2;',
		connstr => "host=127.0.0.1 port=$port dbname=mono user=clerk");
}
like($err, qr/ERROR:  23503:/, 'in the source, the delete of a referenced parent is refused (23503)');
is($node->safe_psql('svcdb', 'SELECT string_agg(id::text, \',\' ORDER BY id) FROM child WHERE id > 99'),
	'100,101', 'the sibling holds the accepted rows only');

$node->stop;
done_testing();
