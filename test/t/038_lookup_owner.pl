# Copyright (c) 2026, splitdb developers
#
# The checks' lookups in the other database run there as the owner of the
# table they read, as PostgreSQL's foreign keys run theirs
# (ri_PerformCheck): a role with no right on the table read gets the same
# outcome as under a local foreign key, and row-level security on that
# table, forced or not, never hides a row from the check.
#
# One cluster that asks every connection for its password (scram-sha-256)
# and logs every statement.  One schema, loaded twice: "localfk" keeps its
# foreign keys (the oracle); "mono" is split, orders and claim moving to
# service svc (database svcdb, reached through a server of the test's own,
# every user mapping with a password, each role mapped to itself).
# ref.customer stays and is referenced from orders (moved); shipment stays
# and refers to orders.  The writers have no right on the tables their keys
# refer to: clerk only INSERT on the referencing tables, nousage no USAGE
# on schema ref, deleter DELETE on customer and nothing on orders.  Policies
# on customer (not forced) and on orders (forced on its owner) hide every
# row.  Each action runs as its role in both; the outcome (accepted, or the
# SQLSTATE, and whether the DETAIL shows the key) and the rows afterwards
# must be the same.  Then:
#
# - the fallback: a transaction that read a plain foreign table of the
#   server first, its check on postgres_fdw's connection, proves nothing
#   there, and the lookup runs with the mapped role's rights (42501);
# - the refusals of splitdb.reference_lookup(): called directly by any
#   role, from a trigger that a shim write fires in a proved session (a
#   forged MAC, and a request copied from the log, its parameters exactly),
#   with another reference's id; each 42501, and none takes a lock (a
#   concurrent DELETE of the row is not blocked);
# - the lookups went out as requests of splitdb.reference_lookup(), and no
#   secret is in the server's log.

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SplitdbTest qw(start_scram_node psql_verbose);

my %pw = map { $_ => "Pw-$_-38b" } qw(super towner sowner clerk nousage deleter app);

my ($node, $user) = start_scram_node('lookup', \%pw);
my $port = $node->port;

my $schema = q{
CREATE SCHEMA ref AUTHORIZATION towner;
CREATE TABLE ref.customer (id integer PRIMARY KEY, name text);
CREATE TABLE orders (
	id          integer PRIMARY KEY,
	customer_id integer REFERENCES ref.customer,
	amount      integer);
CREATE TABLE claim (
	id          integer PRIMARY KEY,
	customer_id integer REFERENCES ref.customer DEFERRABLE INITIALLY DEFERRED);
CREATE TABLE shipment (
	id       integer PRIMARY KEY,
	order_id integer REFERENCES orders);
CREATE TABLE parcel (
	id       integer PRIMARY KEY,
	order_id integer REFERENCES orders DEFERRABLE INITIALLY DEFERRED);
INSERT INTO ref.customer SELECT g, 'customer ' || g FROM generate_series(1, 20) g;
INSERT INTO orders SELECT g, g, g * 10 FROM generate_series(1, 20) g;
INSERT INTO shipment SELECT g, g FROM generate_series(1, 5) g;

ALTER TABLE ref.customer OWNER TO towner;
ALTER TABLE shipment OWNER TO towner;
ALTER TABLE parcel OWNER TO towner;
ALTER TABLE orders OWNER TO sowner;
ALTER TABLE claim OWNER TO sowner;
GRANT USAGE ON SCHEMA ref TO sowner, clerk, deleter, app;
GRANT REFERENCES ON ref.customer TO sowner;
GRANT REFERENCES ON orders TO towner;

-- policies that hide the rows: on customer (not forced) from the writers,
-- on orders from its owner too (forced); the writers may insert
ALTER TABLE ref.customer ENABLE ROW LEVEL SECURITY;
CREATE POLICY customer_hidden ON ref.customer FOR SELECT TO clerk, nousage, app USING (false);
CREATE POLICY customer_deleter ON ref.customer TO deleter USING (true);
ALTER TABLE orders ENABLE ROW LEVEL SECURITY;
ALTER TABLE orders FORCE ROW LEVEL SECURITY;
CREATE POLICY orders_hidden ON orders FOR SELECT TO sowner, clerk, deleter USING (false);
CREATE POLICY orders_insert ON orders FOR INSERT TO clerk, nousage WITH CHECK (true);
CREATE POLICY orders_app ON orders TO app USING (true) WITH CHECK (true);

-- clerk: INSERT only; nousage: no USAGE on ref; deleter: DELETE on customer
GRANT INSERT ON orders, claim, shipment, parcel TO clerk;
GRANT INSERT ON orders TO nousage;
GRANT DELETE ON ref.customer TO deleter;
GRANT SELECT (id) ON ref.customer TO deleter;
-- app writes through the shim (postgres_fdw reads the rows it writes)
GRANT SELECT, INSERT ON orders TO app;
GRANT INSERT ON shipment TO app;
};

$node->safe_psql('postgres', 'CREATE DATABASE localfk');
$node->safe_psql('postgres', 'CREATE DATABASE mono');
$node->safe_psql('postgres', 'CREATE DATABASE svcdb');
$node->safe_psql($_, $schema) for ('localfk', 'mono');

my @mapped = qw(towner sowner clerk nousage deleter app);
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
SELECT splitdb_assign('svc', 'orders', 'claim');
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
is( $node->safe_psql('svcdb',
		q{SELECT relrowsecurity AND relforcerowsecurity FROM pg_class WHERE oid = 'orders'::regclass}),
	't', 'orders forces its policies in the sibling');

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

my @tables = qw(ref.customer orders claim shipment parcel);
sub rows
{
	my ($db) = @_;
	local $ENV{PGPASSWORD} = $pw{super};
	return $node->safe_psql($db,
		join("\nUNION ALL ",
			map { "SELECT '$_: ' || coalesce(string_agg(t::text, ' ' ORDER BY t::text), '') FROM $_ t" }
			  @tables));
}

# [name, role, where, sql]: where is "mono" or "sib" (svcdb, for the moved tables)
my @actions = (
	[ 'clerk inserts an order in the sibling (the referencing table moved)', 'clerk', 'sib',
		q{INSERT INTO orders VALUES (101, 1, 5)} ],
	[ 'clerk inserts an order of a missing customer in the sibling', 'clerk', 'sib',
		q{INSERT INTO orders VALUES (102, 99, 5)} ],
	[ 'clerk inserts a shipment (the referencing table stays)', 'clerk', 'mono',
		q{INSERT INTO shipment VALUES (101, 2)} ],
	[ 'clerk inserts a shipment of a missing order', 'clerk', 'mono',
		q{INSERT INTO shipment VALUES (102, 999)} ],
	[ 'clerk inserts a parcel (deferred)', 'clerk', 'mono',
		q{BEGIN; INSERT INTO parcel VALUES (101, 3); COMMIT} ],
	[ 'clerk inserts a parcel of a missing order (deferred)', 'clerk', 'mono',
		q{BEGIN; INSERT INTO parcel VALUES (102, 998); COMMIT} ],
	[ 'clerk inserts a claim in the sibling (deferred)', 'clerk', 'sib',
		q{BEGIN; INSERT INTO claim VALUES (101, 4); COMMIT} ],
	[ 'clerk inserts a claim of a missing customer in the sibling (deferred)', 'clerk', 'sib',
		q{BEGIN; INSERT INTO claim VALUES (102, 97); COMMIT} ],
	[ 'nousage inserts an order in the sibling (no USAGE on schema ref)', 'nousage', 'sib',
		q{INSERT INTO orders VALUES (103, 6, 5)} ],
	[ 'app inserts an order through the shim and its shipment', 'app', 'mono',
		q{BEGIN; INSERT INTO orders VALUES (104, 7, 5); INSERT INTO shipment VALUES (104, 104);
		  INSERT INTO shipment VALUES (105, 8); COMMIT} ],
	[ 'app inserts an order through the shim and a shipment of a missing order', 'app', 'mono',
		q{BEGIN; INSERT INTO orders VALUES (106, 7, 5); INSERT INTO shipment VALUES (106, 996); COMMIT} ],
	[ 'deleter deletes a customer that orders refer to (NO ACTION)', 'deleter', 'mono',
		q{DELETE FROM ref.customer WHERE id = 9} ],
	[ 'deleter deletes every customer (NO ACTION), without SELECT on the key', 'deleter', 'mono',
		q{DELETE FROM ref.customer} ],
	[ 'deleter deletes a customer nothing refers to', 'deleter', 'mono',
		q{DELETE FROM ref.customer WHERE id = 20} ],
);
$node->safe_psql($_, 'DELETE FROM orders WHERE id = 20') for ('localfk', 'svcdb');

my $n = 0;
for my $a (@actions)
{
	my ($name, $role, $where, $sql) = @$a;
	my $db = $where eq 'sib' ? 'svcdb' : 'mono';
	$n++;
	my ($want, $werr) = act('localfk', $role, $sql);
	my ($got,  $gerr) = act($db, $role, $sql);
	is($got, $want, "$n. $name: $want, as under PostgreSQL's foreign key");
	if ($got ne $want)
	{
		diag("oracle: $werr") if $werr;
		diag("split: $gerr") if $gerr;
	}
	if ($want eq '23503' && $got eq '23503')
	{
		is(($gerr =~ /Key \(/ ? 'key shown' : 'no key'), ($werr =~ /Key \(/ ? 'key shown' : 'no key'),
			"$n. $name: the DETAIL shows the key where PostgreSQL's does");
	}
	my @want = split /\n/, rows('localfk');
	my @got  = split /\n/, rows('mono');
	my @differ = grep { $want[$_] ne $got[$_] } 0 .. $#want;
	is(scalar(@differ), 0, "$n. $name: same rows after");
	diag("oracle $want[$_]\nsplit  $got[$_]") for @differ;
}

# the lookups went to svcdb as requests of splitdb.reference_lookup()
my $log = slurp_file($node->logfile);
like($log, qr/execute [^:]*: SELECT l\.p FROM splitdb\.reference_lookup\(/,
	'the lookups were requests of splitdb.reference_lookup()');

# the fallback: a read of a plain foreign table of the server first proves
# nothing on postgres_fdw's connection, which the check takes without
# splitdb's own: the lookup runs with clerk's rights there
$node->safe_psql('mono', q{
CREATE FOREIGN TABLE svc_databases (datname name) SERVER svc_srv
	OPTIONS (schema_name 'pg_catalog', table_name 'pg_database');
GRANT SELECT ON svc_databases TO clerk;
});
my ($fb, $fberr) = act('mono', 'clerk',
	q{BEGIN; SET LOCAL splitdb.check_connection = off; SELECT count(*) FROM svc_databases;
	  INSERT INTO shipment VALUES (110, 2); COMMIT});
is($fb, '42501', 'on a connection that proved nothing, the lookup has the mapped role\'s rights');
like($fberr, qr/ERROR:  42501: (permission denied for table orders|query would be affected by row-level security policy for table "orders")/,
	'and the other database refuses it: clerk may not lock the row, and orders\' policies apply to it');
my ($fb2) = act('mono', 'clerk',
	q{BEGIN; SET LOCAL splitdb.check_connection = off; INSERT INTO shipment VALUES (110, 2); COMMIT});
is($fb2, 'ok', 'the same insert on a proved connection is accepted');

# ----------------------------------------------------------------
# the refusals of splitdb.reference_lookup()
# ----------------------------------------------------------------
my $ref = $node->safe_psql('mono',
	q{SELECT reference_id FROM splitdb_references WHERE constraint_name = 'shipment_order_id_fkey'});
my $other = $node->safe_psql('mono',
	q{SELECT reference_id FROM splitdb_references WHERE constraint_name = 'parcel_order_id_fkey'});
my $call = "SELECT * FROM splitdb.reference_lookup($ref, 'p', 1, '{}', '{\"{11}\"}', 1, repeat('0', 64))";

for my $role (qw(super clerk sowner))
{
	my ($s, $e) = act('svcdb', $role, $call);
	is($s, '42501', "$role calls splitdb.reference_lookup() directly: refused");
	like($e, qr/permission denied to look up keys for another database/, "$role: the message");
	like($e, qr/This session did not prove which database it comes from/, "$role: the detail");
}

# a request splitdb sent, copied from the log with its parameters
my ($params) = $log =~ /execute [^:]*: SELECT l\.p FROM splitdb\.reference_lookup\([^\n]*\n[^\n]*DETAIL:  parameters: ([^\n]*)/;
ok(defined $params, 'a request of splitdb is in the log, with its parameters');
my @p = ($params // '') =~ /\$\d+ = '((?:[^']|'')*)'/g;
is(scalar(@p), 7, 'seven parameters');
my $replay = sprintf("SELECT * FROM splitdb.reference_lookup('%s'::bigint, '%s', '%s'::integer,"
	  . " '%s'::text[], '%s'::text[], '%s'::bigint, '%s')", @p);
my ($ls, $le) = act('svcdb', 'super', $replay);
is($ls, '42501', 'a logged request replayed by a client: refused');

# code inside a proved session: a trigger that a write through the shim
# fires in the sibling tries a forged request, the logged one, and one
# with another reference's id; each refusal is recorded, none lets it on
$node->safe_psql('svcdb', qq{
CREATE TABLE probe (what text, sqlstate text, detail text);
GRANT INSERT ON probe TO PUBLIC;
CREATE FUNCTION probe_lookup() RETURNS trigger LANGUAGE plpgsql AS \$\$
DECLARE
	d text;
BEGIN
	BEGIN
		PERFORM splitdb.reference_lookup($ref, 'p', 1, '{}', '{"{11}"}', 1000, repeat('0', 64));
		INSERT INTO public.probe VALUES ('forged', 'accepted', NULL);
	EXCEPTION WHEN OTHERS THEN
		GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
		INSERT INTO public.probe VALUES ('forged', SQLSTATE, d);
	END;
	BEGIN
		PERFORM splitdb.reference_lookup('$p[0]', '$p[1]', '$p[2]', '$p[3]', '$p[4]', '$p[5]', '$p[6]');
		INSERT INTO public.probe VALUES ('logged', 'accepted', NULL);
	EXCEPTION WHEN OTHERS THEN
		GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
		INSERT INTO public.probe VALUES ('logged', SQLSTATE, d);
	END;
	BEGIN
		PERFORM splitdb.reference_lookup($other, '$p[1]', '$p[2]', '$p[3]', '$p[4]', '$p[5]'::bigint + 1000000, '$p[6]');
		INSERT INTO public.probe VALUES ('other reference', 'accepted', NULL);
	EXCEPTION WHEN OTHERS THEN
		GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
		INSERT INTO public.probe VALUES ('other reference', SQLSTATE, d);
	END;
	RETURN NEW;
END
\$\$;
CREATE TRIGGER probe_lookup AFTER INSERT ON orders FOR EACH ROW EXECUTE FUNCTION probe_lookup();
});
my ($ps, $pe) = act('mono', 'app', q{INSERT INTO orders VALUES (120, 1, 5)});
is($ps, 'ok', 'a write through the shim fires the probe in a proved session');
diag($pe) if $ps ne 'ok';
is( $node->safe_psql('svcdb', q{SELECT string_agg(what || ' ' || sqlstate, ', ' ORDER BY what) FROM probe}),
	'forged 42501, logged 42501, other reference 42501',
	'inside the proved session: a forged request, a logged one and one for another reference are refused (42501)');
like( $node->safe_psql('svcdb', q{SELECT detail FROM probe WHERE what = 'forged'}),
	qr/does not carry the MAC/, 'the session was proved: the MAC is what fails');

# a refused request takes no lock: a concurrent delete is not blocked
my $held = $node->background_psql('svcdb', on_error_stop => 0);
$held->query_safe('BEGIN');
$held->query_safe('SAVEPOINT s');
$held->query($call =~ s/'\{"\{11\}"\}'/'{"{12}"}'/r);
like($held->{stderr}, qr/permission denied to look up keys for another database/,
	'a session of its own: refused');
$held->{stderr} = '';
$held->query_safe('ROLLBACK TO SAVEPOINT s');
$held->query_safe(q{SELECT 1 FROM probe LIMIT 1});
my ($ds, $de) = act('svcdb', 'super', q{SET lock_timeout = '2s'; DELETE FROM orders WHERE id = 12});
is($ds, 'ok', 'a concurrent DELETE of the row the refused request named is not blocked');
diag($de) if $ds ne 'ok';
$held->query_safe('COMMIT');
$held->quit;

# no secret in the log
my $secret = $node->safe_psql('mono',
	q{SELECT string_agg(encode(secret, 'hex'), ' ') FROM splitdb.origin_key});
ok(length($secret) >= 64, 'the databases share a secret');
$log = slurp_file($node->logfile);
my @leaked = grep { index($log, $_) >= 0 } split / /, $secret;
is(scalar(@leaked), 0, 'no secret is in the server log');
@leaked = grep { index($log, $pw{$_}) >= 0 } sort keys %pw;
is("@leaked", '', 'no password is in the server log');

done_testing();
