# Copyright (c) 2026, splitdb developers
#
# The paths of a check's lookup in another database that 038 does not take
# on their own, against a database that keeps its foreign keys (the oracle):
#
# - postgres_fdw's connection, proved: a transaction that wrote the
#   referenced row through a shim checks its referencing row on that
#   connection, which sees the row; the lookup still runs as the owner of
#   the table it reads.  writer has INSERT only, on the shim and on the
#   referencing table; PostgreSQL accepts its transaction, and so must
#   splitdb, with splitdb.check_connection off too.  The other server logs
#   every statement with the application name and the login: the lookups
#   that postgres_fdw's connections (application "postgres_fdw") sent for
#   writer and clerk were requests of splitdb.reference_lookup();
# - no shared secret (a superuser deleted the source's row of
#   splitdb.origin_key): the lookup of today, with the mapped role's rights,
#   as docs/operations.md says: refused (42501) for clerk, who has INSERT
#   only, accepted for reader, who has SELECT and UPDATE on the referenced
#   table there; and a transaction of five statements that each check a key
#   on postgres_fdw's connection reads splitdb.origin_key once, not five
#   times (pg_stat_xact_all_tables); the secret back, the next transaction
#   proves its connections again;
# - the receiving end's kept definitions follow its row of
#   splitdb.reference_end: a session that keeps its connections (so the
#   same backend of the other database serves its lookups) sees the row
#   deleted (42704), put back (accepted), and its table renamed there
#   (23503: the lookup reads the table the row names), without any change
#   to the table itself.

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SplitdbTest qw(start_scram_node psql_verbose);

my %pw = map { $_ => "Pw-$_-41c" } qw(super towner sowner writer clerk reader);

my ($node, $user) = start_scram_node('paths', \%pw, q{
log_line_prefix = '%m [%p] app=%a login=%u db=%d '
});
my $port = $node->port;

# orders moves to service svc; shipment stays and refers to it
my $schema = q{
CREATE TABLE orders (id integer PRIMARY KEY, note text);
CREATE TABLE shipment (
	id       integer PRIMARY KEY,
	order_id integer REFERENCES orders);
INSERT INTO orders SELECT g, 'order ' || g FROM generate_series(1, 20) g;
ALTER TABLE orders OWNER TO sowner;
ALTER TABLE shipment OWNER TO towner;
GRANT REFERENCES ON orders TO towner;
-- writer: INSERT only, on orders (through the shim once it moved) and shipment
GRANT INSERT ON orders, shipment TO writer;
-- clerk: INSERT on shipment only; reader: what the lookup of today needs too
GRANT INSERT ON shipment TO clerk, reader;
GRANT SELECT, UPDATE ON orders TO reader;
};

$node->safe_psql('postgres', 'CREATE DATABASE localfk');
$node->safe_psql('postgres', 'CREATE DATABASE mono');
$node->safe_psql('postgres', 'CREATE DATABASE svcdb');
$node->safe_psql($_, $schema) for ('localfk', 'mono');

my @mapped = qw(towner sowner writer clerk reader);
sub mappings_sql
{
	my ($server) = @_;
	my $sql = "SET log_statement = 'none';\n";
	$sql .= "CREATE USER MAPPING FOR $_ SERVER $server OPTIONS (user '$_', password '$pw{$_}');\n"
	  for @mapped;
	return $sql;
}
$node->safe_psql(
	'mono', qq{
CREATE EXTENSION splitdb CASCADE;
CREATE SERVER svc_srv FOREIGN DATA WRAPPER postgres_fdw
	OPTIONS (host '127.0.0.1', port '$port', dbname 'svcdb');
GRANT USAGE ON FOREIGN SERVER svc_srv TO PUBLIC;
SET log_statement = 'none';
CREATE USER MAPPING FOR CURRENT_USER SERVER svc_srv OPTIONS (user '$user', password '$pw{super}');
} . mappings_sql('svc_srv') . q{
SELECT splitdb_add_service('svc', server => 'svc_srv');
SELECT splitdb_assign('svc', 'orders');
});

# the first run stops at the cutover for the sibling's mappings
my ($rc, $out, $err) = $node->psql('mono', "SELECT splitdb_migrate('svc', wait => true)");
if ($node->safe_psql('svcdb',
		"SELECT count(*) FROM pg_foreign_server WHERE srvname = 'splitdb_source'") eq '1')
{
	$node->safe_psql('svcdb',
		"GRANT USAGE ON FOREIGN SERVER splitdb_source TO PUBLIC;\n"
		  . mappings_sql('splitdb_source')
		  . "CREATE USER MAPPING FOR CURRENT_USER SERVER splitdb_source"
		  . " OPTIONS (user '$user', password '$pw{super}');\n");
	($rc, $out, $err) = $node->psql('mono', "SELECT splitdb_migrate('svc', wait => true)");
}
is($rc, 0, 'the service migrates');
diag($err) if $rc;
my $ref = $node->safe_psql('mono',
	q{SELECT reference_id FROM splitdb_references WHERE constraint_name = 'shipment_order_id_fkey'});
like($ref, qr/^\d+$/, 'shipment\'s foreign key is a cross-service reference');

# run sql as a role; returns "ok" or the SQLSTATE, and the error
sub act
{
	my ($db, $role, $sql) = @_;
	local $ENV{PGPASSWORD} = $pw{$role};
	my $login = $role eq 'super' ? $user : $role;
	my ($ret, $o, $e) = psql_verbose($node, $db, "$sql;\n",
		connstr => "host=127.0.0.1 port=$port dbname=$db user=$login",
		on_error_stop => 1);
	my ($state) = $e =~ /ERROR:  ([0-9A-Z]{5}):/;
	return (($ret == 0 ? 'ok' : $state // "rc $ret"), $e);
}

sub rows
{
	my ($db) = @_;
	return $node->safe_psql($db,
		q{SELECT (SELECT string_agg(id::text, ' ' ORDER BY id) FROM orders WHERE id > 20)
		  || ' / ' || coalesce((SELECT string_agg(id || ':' || order_id, ' ' ORDER BY id) FROM shipment), '')});
}

# the log from here on
sub log_from
{
	my ($offset) = @_;
	my $log = slurp_file($node->logfile);
	return substr($log, $offset);
}

# ----------------------------------------------------------------
# postgres_fdw's connection, proved
# ----------------------------------------------------------------
my $mark = -s $node->logfile;
my @actions = (
	[ 'writer inserts an order through the shim and its shipment', 'writer',
		q{BEGIN; INSERT INTO orders VALUES (201, 'new'); INSERT INTO shipment VALUES (201, 201); COMMIT} ],
	[ 'writer inserts an order through the shim and a shipment of a missing order', 'writer',
		q{BEGIN; INSERT INTO orders VALUES (202, 'new'); INSERT INTO shipment VALUES (202, 999); COMMIT} ],
	[ 'writer, check_connection off: an order through the shim and its shipment', 'writer',
		q{BEGIN; SET LOCAL splitdb.check_connection = off; INSERT INTO orders VALUES (203, 'new');
		  INSERT INTO shipment VALUES (203, 203); INSERT INTO shipment VALUES (204, 3); COMMIT} ],
	[ 'clerk, check_connection off: a shipment', 'clerk',
		q{BEGIN; SET LOCAL splitdb.check_connection = off; INSERT INTO shipment VALUES (205, 4); COMMIT} ],
);
my $n = 0;
for my $a (@actions)
{
	my ($name, $role, $sql) = @$a;
	$n++;
	my $oracle_sql = $sql =~ s/SET LOCAL splitdb\.check_connection = off; //r;
	my ($want, $werr) = act('localfk', $role, $oracle_sql);
	my ($got,  $gerr) = act('mono', $role, $sql);
	is($got, $want, "$n. $name: $want, as under PostgreSQL's foreign key");
	if ($got ne $want)
	{
		diag("oracle: $werr") if $werr;
		diag("split: $gerr") if $gerr;
	}
	is(rows('mono'), rows('localfk'), "$n. $name: the same rows after");
}
my $log = log_from($mark);
for my $role (qw(writer clerk))
{
	like($log,
		qr/app=postgres_fdw login=$role db=svcdb LOG:  execute [^:]*: SELECT l\.p FROM splitdb\.reference_lookup\(/,
		"$role\'s lookups on postgres_fdw's connection were requests of splitdb.reference_lookup()");
}
unlike($log, qr/app=postgres_fdw login=(writer|clerk) db=svcdb LOG:  execute [^:]*: SELECT (?!l\.p FROM splitdb\.reference_lookup)[^\n]*FOR KEY SHARE/,
	'and none of them was a lookup of today');

# ----------------------------------------------------------------
# no shared secret
# ----------------------------------------------------------------
$node->safe_psql('mono', q{
SET log_statement = 'none';
CREATE TABLE public.kept_key AS SELECT * FROM splitdb.origin_key;
DELETE FROM splitdb.origin_key;
});
is($node->safe_psql('mono', 'SELECT count(*) FROM splitdb.origin_key'), '0',
	'the source shares no secret with the service any more');
$mark = -s $node->logfile;
my ($st, $e) = act('mono', 'clerk', q{INSERT INTO shipment VALUES (301, 5)});
is($st, '42501', 'no secret: clerk\'s insert is refused, the lookup of today runs with its rights');
like($e, qr/permission denied for table orders/, 'the other database refuses clerk the read of orders');
is($node->safe_psql('mono', 'SELECT count(*) FROM shipment WHERE id = 301'), '0',
	'the refused insert wrote nothing');
($st, $e) = act('mono', 'reader', q{INSERT INTO shipment VALUES (302, 5)});
is($st, 'ok', 'no secret: reader, with SELECT and UPDATE on orders there, is accepted');
diag($e) if $st ne 'ok';
($st, $e) = act('mono', 'reader', q{INSERT INTO shipment VALUES (303, 998)});
is($st, '23503', 'no secret: a missing order is still found missing');
$log = log_from($mark);
unlike($log, qr/reference_lookup\(/, 'no secret: no request of splitdb.reference_lookup() went out');
like($log, qr/login=reader db=svcdb LOG:  execute [^:]*: SELECT [^\n]*FOR KEY SHARE/,
	'the lookups of today went out with reader\'s login');

# five statements, each a lookup on postgres_fdw's connection: one read of
# splitdb.origin_key in the transaction
($st, $e) = act('mono', 'reader', q{BEGIN; SET LOCAL splitdb.check_connection = off;
INSERT INTO shipment VALUES (316, 16); INSERT INTO shipment VALUES (317, 17);
INSERT INTO shipment VALUES (318, 18); INSERT INTO shipment VALUES (319, 19);
INSERT INTO shipment VALUES (320, 20);
DO $$BEGIN RAISE NOTICE 'reads of origin_key: %', (SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0)
	FROM pg_stat_xact_all_tables WHERE schemaname = 'splitdb' AND relname = 'origin_key'); END$$;
COMMIT});
is($st, 'ok', 'no secret: five checked inserts in one transaction');
my ($reads) = $e =~ /reads of origin_key: (\d+)/;
is($reads, '1', 'the transaction read splitdb.origin_key once for its five lookups');
is($node->safe_psql('mono', 'SELECT count(*) FROM shipment WHERE id BETWEEN 316 AND 320'), '5',
	'the five rows are in');

# the secret back: the next transaction proves its connections
$node->safe_psql('mono', q{
SET log_statement = 'none';
INSERT INTO splitdb.origin_key SELECT * FROM public.kept_key;
DROP TABLE public.kept_key;
});
$mark = -s $node->logfile;
($st, $e) = act('mono', 'clerk', q{BEGIN; SET LOCAL splitdb.check_connection = off; INSERT INTO shipment VALUES (321, 6); COMMIT});
is($st, 'ok', 'the secret back: clerk\'s insert is accepted again');
diag($e) if $st ne 'ok';
like(log_from($mark), qr/app=postgres_fdw login=clerk db=svcdb LOG:  execute [^:]*: SELECT l\.p FROM splitdb\.reference_lookup\(/,
	'as a request of splitdb.reference_lookup()');

# ----------------------------------------------------------------
# the receiving end follows its row of splitdb.reference_end
# ----------------------------------------------------------------
my $bg = $node->background_psql('mono', on_error_stop => 0);
$bg->query_safe('\set VERBOSITY verbose');
sub bg_insert
{
	my ($id, $order) = @_;
	$bg->{stderr} = '';
	$bg->query("INSERT INTO shipment VALUES ($id, $order)");
	my ($state) = $bg->{stderr} =~ /ERROR:  ([0-9A-Z]{5}):/;
	my $msg = $bg->{stderr};
	$bg->{stderr} = '';
	return ($state // 'ok', $msg);
}
sub bg_pid
{
	return $node->safe_psql('svcdb',
		q{SELECT string_agg(pid::text, ' ' ORDER BY pid) FROM pg_stat_activity
		  WHERE datname = 'svcdb' AND backend_type = 'client backend' AND pid <> pg_backend_pid()
		    AND usename = current_user AND application_name <> 'psql'});
}
($st) = bg_insert(401, 7);
is($st, 'ok', 'a long-lived session: a checked insert');
my $served = bg_pid();

my $end = "reference_id = $ref AND side = 'p'";
$node->safe_psql('svcdb', qq{
CREATE TABLE public.kept_end AS SELECT * FROM splitdb.reference_end WHERE $end;
DELETE FROM splitdb.reference_end WHERE $end;
});
($st, $e) = bg_insert(402, 8);
is($st, '42704', 'its end deleted in the other database: the next lookup finds no end there');
like($e, qr/cross-service reference $ref has no referenced table in database "svcdb"/, 'the message');
is($node->safe_psql('mono', 'SELECT count(*) FROM shipment WHERE id = 402'), '0', 'nothing written');

$node->safe_psql('svcdb', qq{INSERT INTO splitdb.reference_end SELECT * FROM public.kept_end});
($st, $e) = bg_insert(403, 9);
is($st, 'ok', 'its end back: accepted');
diag($e) if $st ne 'ok';

$node->safe_psql('svcdb', qq{
CREATE TABLE public.orders_moved (LIKE orders INCLUDING ALL);
ALTER TABLE public.orders_moved OWNER TO sowner;
UPDATE splitdb.reference_end SET own_table = replace(own_table, 'orders', 'orders_moved') WHERE $end;
});
($st, $e) = bg_insert(404, 10);
is($st, '23503', 'its table renamed in its row: the lookup reads the empty table the row names');
$node->safe_psql('svcdb', qq{
UPDATE splitdb.reference_end e SET own_table = k.own_table FROM public.kept_end k
 WHERE e.reference_id = k.reference_id AND e.side = k.side;
});
($st, $e) = bg_insert(405, 10);
is($st, 'ok', 'the row as it was: accepted');
diag($e) if $st ne 'ok';
is(bg_pid(), $served, 'the same backends of the other database served every lookup');
$bg->quit;
is($node->safe_psql('mono', 'SELECT string_agg(id::text, \' \' ORDER BY id) FROM shipment WHERE id > 400'),
	'401 403 405', 'the accepted rows, and only those');

done_testing();
