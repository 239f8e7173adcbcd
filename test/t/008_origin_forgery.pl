# Copyright (c) 2026, splitdb developers
#
# No client can make a database skip the checks of a cross-service
# reference by claiming that its writes come from another database.
#
# One cluster holds the source (mono) and the sibling of service ord, with
# password authentication over TCP.  "orders" moves to ord; it refers to
# "customer" (NO ACTION) and "rep" (ON DELETE SET NULL), which stay;
# "shipment" stays and refers to orders (ON DELETE CASCADE).  The role app
# has rights on the shim and the tables that stay, and INSERT on the
# sibling's orders; it connects with its password and tries every way of
# setting splitdb.origin (SET, SET LOCAL, set_config(), ALTER ROLE ... SET,
# PGOPTIONS), in the source and directly in the sibling, calls
# splitdb.origin_prove() with a made-up MAC and again without a nonce,
# and writes through a foreign table of its own on a connection that a shim
# write proved.  Each attempt ends in 23503 (28000 for the proofs) and
# leaves no row without its parent.  The legitimate paths still work: a
# parent and its child in one transaction through the shim, a SET NULL
# action from the source and a CASCADE from the sibling.  The shared secret
# is in no server log, with log_statement = 'all'.

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('main');
$node->init;
$node->append_conf('postgresql.conf',
	    "shared_preload_libraries = 'splitdb'\nmax_worker_processes = 16\n"
	  . "listen_addresses = '127.0.0.1'\nlog_statement = 'all'\n"
	  . "password_encryption = 'scram-sha-256'");
my $super = 'postgres';
$node->start;
$super = $node->safe_psql('postgres', 'SELECT current_user');
# the superuser keeps trust; everyone else gives a password over TCP
open(my $hba, '>', $node->data_dir . '/pg_hba.conf') or die $!;
print $hba "local all all trust\n";
print $hba "host all $super 127.0.0.1/32 trust\n";
print $hba "host all all 127.0.0.1/32 scram-sha-256\n";
close($hba);
$node->reload;

my $port = $node->port;
$node->safe_psql('postgres', q{
CREATE ROLE app LOGIN PASSWORD 'app_pw';
CREATE DATABASE mono;
CREATE DATABASE ord;
});
$node->safe_psql(
	'mono', qq{
CREATE TABLE customer (id integer PRIMARY KEY);
CREATE TABLE rep (id integer PRIMARY KEY);
CREATE TABLE orders (id integer PRIMARY KEY,
	customer_id integer REFERENCES customer,
	rep_id integer REFERENCES rep ON DELETE SET NULL);
CREATE TABLE shipment (id integer PRIMARY KEY,
	order_id integer NOT NULL REFERENCES orders ON DELETE CASCADE);
INSERT INTO customer SELECT g FROM generate_series(1, 5) g;
INSERT INTO rep VALUES (1), (2);
INSERT INTO orders VALUES (1, 1, 1), (2, 2, 2), (3, 3, NULL);
INSERT INTO shipment VALUES (1, 1), (2, 3);
GRANT SELECT, INSERT, DELETE ON customer TO app;
GRANT SELECT ON rep TO app;
GRANT SELECT, INSERT, UPDATE, DELETE ON orders TO app;
GRANT SELECT, INSERT ON shipment TO app;
CREATE SCHEMA app AUTHORIZATION app;
CREATE EXTENSION splitdb CASCADE;
CREATE SERVER ord_srv FOREIGN DATA WRAPPER postgres_fdw
	OPTIONS (host '127.0.0.1', port '$port', dbname 'ord');
CREATE USER MAPPING FOR CURRENT_USER SERVER ord_srv OPTIONS (user '$super');
CREATE USER MAPPING FOR app SERVER ord_srv OPTIONS (user 'app', password 'app_pw');
GRANT USAGE ON FOREIGN SERVER ord_srv TO app;
SELECT splitdb_add_service('ord', server => 'ord_srv');
SELECT splitdb_assign('ord', 'orders');
});
my ($rc, $out, $err) =
  $node->psql('mono', "SELECT splitdb_migrate('ord', wait => true) > 0");
is($rc, 0, 'the migration succeeds');
diag($err) if $rc;
$node->safe_psql('ord', 'GRANT SELECT, INSERT ON orders TO app');

is( $node->safe_psql(
		'mono', q{
SELECT k.location || ' ' || k.server || ' ' || k.here || ' ' || length(k.secret)
  FROM splitdb.origin_key k}),
	'ord ord_srv source 32',
	'the source keeps a secret for the sibling, as the secret of its server');
my $secret = $node->safe_psql('mono',
	"SELECT encode(secret, 'hex') FROM splitdb.origin_key");
is( $node->safe_psql(
		'ord', q{
SELECT k.location || ' ' || k.server || ' ' || k.here || ' ' || encode(k.secret, 'hex')
  FROM splitdb.origin_key k}),
	"source splitdb_source ord $secret",
	'the sibling keeps the same secret for the source');
is( $node->safe_psql(
		'mono', q{
SELECT has_table_privilege('app', 'splitdb.origin_key', 'SELECT')::text
	   || has_function_privilege('app', 'splitdb.origin_key_make(text, name, text)', 'EXECUTE')::text}),
	'falsefalse',
	'the application role can neither read the secrets nor make one');

# rows whose parent is missing, in both directions
sub orphans
{
	return $node->safe_psql(
		'mono', q{
SELECT (SELECT count(*) FROM orders o
		 WHERE o.customer_id IS NOT NULL
		   AND NOT EXISTS (SELECT FROM customer c WHERE c.id = o.customer_id))
	 + (SELECT count(*) FROM orders o
		 WHERE o.rep_id IS NOT NULL AND NOT EXISTS (SELECT FROM rep r WHERE r.id = o.rep_id))
	 + (SELECT count(*) FROM shipment s
		 WHERE NOT EXISTS (SELECT FROM orders o WHERE o.id = s.order_id))});
}

my %app_conn = (
	mono => "host=127.0.0.1 port=$port dbname=mono user=app",
	ord  => "host=127.0.0.1 port=$port dbname=ord user=app");

# run sql as app over TCP with its password; expect SQLSTATE $state
sub attempt
{
	my ($db, $sql, $state, $name) = @_;
	local $ENV{PGPASSWORD} = 'app_pw';
	my ($rc, $out, $err) =
	  $node->psql($db, "\\set VERBOSITY verbose\n$sql",
		connstr => $app_conn{$db}, on_error_stop => 0);
	like($err, qr/ERROR:  $state:/, "$name: refused with $state");
	is(orphans(), '0', "$name: no row is left without its parent");
}

my $rows_before = $node->safe_psql('mono',
	'SELECT (SELECT count(*) FROM customer) || \'/\' || (SELECT count(*) FROM orders)');

# in the source: delete a referenced customer, insert an orphan through the shim
foreach my $origin ('ord', 'source')
{
	attempt('mono', "SET splitdb.origin = '$origin'; DELETE FROM customer WHERE id = 1",
		'23503', "SET splitdb.origin = '$origin', delete of a referenced customer");
	attempt('mono', "SET splitdb.origin = '$origin'; INSERT INTO orders VALUES (100, 99, NULL)",
		'23503', "SET splitdb.origin = '$origin', insert through the shim");
	attempt('mono',
		"BEGIN; SET LOCAL splitdb.origin = '$origin'; INSERT INTO orders VALUES (101, 99, NULL); COMMIT",
		'23503', "SET LOCAL splitdb.origin = '$origin', insert through the shim");
	attempt('mono',
		"SELECT set_config('splitdb.origin', '$origin', false); DELETE FROM customer WHERE id = 2",
		'23503', "set_config('splitdb.origin', '$origin'), delete of a referenced customer");
	{
		local $ENV{PGOPTIONS} = "-c splitdb.origin=$origin";
		attempt('mono', 'INSERT INTO orders VALUES (102, 99, NULL)',
			'23503', "PGOPTIONS splitdb.origin=$origin, insert through the shim");
		attempt('mono', 'DELETE FROM customer WHERE id = 3',
			'23503', "PGOPTIONS splitdb.origin=$origin, delete of a referenced customer");
		attempt('ord', 'INSERT INTO orders VALUES (103, 99, NULL)',
			'23503', "PGOPTIONS splitdb.origin=$origin, insert in the sibling");
	}

	# directly in the sibling
	attempt('ord', "SET splitdb.origin = '$origin'; INSERT INTO orders VALUES (104, 99, NULL)",
		'23503', "SET splitdb.origin = '$origin', insert in the sibling");
	attempt('ord',
		"BEGIN; SET LOCAL splitdb.origin = '$origin'; INSERT INTO orders VALUES (105, 99, NULL); COMMIT",
		'23503', "SET LOCAL splitdb.origin = '$origin', insert in the sibling");
	attempt('ord',
		"SELECT set_config('splitdb.origin', '$origin', false); INSERT INTO orders VALUES (106, 99, NULL)",
		'23503', "set_config('splitdb.origin', '$origin'), insert in the sibling");
}

# ALTER ROLE app SET, by app itself, then new sessions in both databases
{
	local $ENV{PGPASSWORD} = 'app_pw';
	$node->safe_psql('mono', "ALTER ROLE app SET splitdb.origin = 'source'",
		connstr => $app_conn{mono});
}
attempt('mono', 'INSERT INTO orders VALUES (107, 99, NULL)',
	'23503', 'ALTER ROLE app SET splitdb.origin, insert through the shim');
attempt('mono', 'DELETE FROM customer WHERE id = 1',
	'23503', 'ALTER ROLE app SET splitdb.origin, delete of a referenced customer');
attempt('ord', 'INSERT INTO orders VALUES (108, 99, NULL)',
	'23503', 'ALTER ROLE app SET splitdb.origin, insert in the sibling');
$node->safe_psql('postgres', 'ALTER ROLE app RESET splitdb.origin');

# a made-up proof, and a nonce used twice
attempt('ord',
	"SELECT splitdb.origin_challenge() IS NOT NULL; SELECT splitdb.origin_prove('source', repeat('ab', 32))",
	'28000', 'origin_prove() with a made-up MAC');
attempt('ord',
	"SELECT splitdb.origin_challenge() IS NOT NULL;\n"
	  . "SELECT splitdb.origin_prove('source', repeat('ab', 32));\n"
	  . "SELECT splitdb.origin_prove('source', repeat('cd', 32));\n"
	  . "INSERT INTO orders VALUES (109, 99, NULL)",
	'23503', 'origin_prove() again on a used nonce, then an insert in the sibling');
{
	local $ENV{PGPASSWORD} = 'app_pw';
	my ($rc, $out, $err) = $node->psql(
		'ord',
		"\\set VERBOSITY verbose\nSELECT splitdb.origin_challenge() IS NOT NULL;\n"
		  . "SELECT splitdb.origin_prove('source', repeat('ab', 32));\n"
		  . "SELECT splitdb.origin_prove('source', repeat('cd', 32));",
		connstr => $app_conn{ord}, on_error_stop => 0);
	like($err, qr/ERROR:  28000: .*\n.*DETAIL:  No challenge is pending/,
		'a nonce serves one attempt');
}

# a foreign table of app's own over the sibling's table, on the connection
# that a shim write proved, in one statement and from a nested one
{
	local $ENV{PGPASSWORD} = 'app_pw';
	$node->safe_psql(
		'mono', q{
CREATE FOREIGN TABLE app.my_orders (id integer, customer_id integer, rep_id integer)
	SERVER ord_srv OPTIONS (schema_name 'public', table_name 'orders');
CREATE FUNCTION app.shim_insert(i integer) RETURNS integer LANGUAGE plpgsql AS
$$BEGIN INSERT INTO public.orders VALUES (i, 4, NULL); RETURN 5; END$$;
}, connstr => $app_conn{mono});
}
attempt('mono',
	"BEGIN; INSERT INTO orders VALUES (110, 4, NULL); INSERT INTO app.my_orders VALUES (111, 99, NULL); COMMIT",
	'23503', 'a write through a foreign table of its own after a shim write');
attempt('mono',
	"INSERT INTO orders VALUES (112, 4, NULL); INSERT INTO app.my_orders VALUES (113, 99, NULL);"
	  . " DELETE FROM orders WHERE id = 112",
	'23503', 'a write through a foreign table of its own after a shim write, next transaction');
attempt('mono',
	"INSERT INTO app.my_orders SELECT 114 + g, CASE WHEN g = 0 THEN app.shim_insert(120) ELSE 99 END, NULL"
	  . " FROM generate_series(0, 1) g",
	'23503', 'a write through a foreign table of its own around a nested shim write');

is( $node->safe_psql('mono',
		'SELECT (SELECT count(*) FROM customer) || \'/\' || (SELECT count(*) FROM orders)'),
	$rows_before, 'no attempt changed a row');

# the legitimate paths
{
	local $ENV{PGPASSWORD} = 'app_pw';
	$node->safe_psql('mono',
		'BEGIN; INSERT INTO customer VALUES (10); INSERT INTO orders VALUES (10, 10, 1); COMMIT',
		connstr => $app_conn{mono});
}
is($node->safe_psql('ord', 'SELECT customer_id FROM orders WHERE id = 10'),
	'10', 'a customer and its order in one transaction through the shim');
$node->safe_psql('mono', 'DELETE FROM rep WHERE id = 1');
is($node->safe_psql('ord', 'SELECT count(*) FROM orders WHERE rep_id = 1'),
	'0', 'ON DELETE SET NULL from the source reaches the sibling');
$node->safe_psql('ord', 'DELETE FROM orders WHERE id = 3');
is($node->safe_psql('mono', 'SELECT string_agg(id::text, \',\') FROM shipment'),
	'1', 'ON DELETE CASCADE from the sibling reaches the source');
is(orphans(), '0', 'the legitimate paths leave no row without its parent');

# the secret is in no log, though every statement is logged
my $log = slurp_file($node->logfile);
like($log, qr/origin_challenge/, 'the proofs are in the log');
unlike($log, qr/$secret/i, 'the shared secret is not');

done_testing();
