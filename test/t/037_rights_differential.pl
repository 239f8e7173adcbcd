# Copyright (c) 2026, splitdb developers
#
# The differential oracle of rights: a role gets exactly the rights it would
# have without splitdb, and the references hold as PostgreSQL's own foreign
# keys would, whichever role writes.
#
# One cluster that asks every connection for its password (scram-sha-256,
# the bootstrap superuser included) and logs every statement.  One schema,
# loaded twice: database "localfk" keeps its foreign keys (the oracle);
# database "mono" is split, its tables orders, payment, pnote and ptag
# moving to service svc (database svcdb of the same cluster, reached through
# a server of the test's own, every user mapping with a password).  The
# tables that stay are owned by towner, the moved ones by sowner, neither a
# superuser.  References cross the split both ways, with NO ACTION,
# RESTRICT, CASCADE, SET NULL and SET DEFAULT, deferred ones included.
#
# Roles that write: app (INSERT without SELECT on some tables, column-level
# SELECT and UPDATE grants, no right at all on the tables its keys refer
# to), clerk (INSERT only), rls_app (row-level security policies apply to
# it; region forces row-level security on its owner), noschema (no USAGE on
# schema ref, which holds region), and definer, which owns SECURITY
# DEFINER functions that write and a view over orders that app writes
# through.  app is a member of app_reader, which has no user mapping, and of
# clerk, and switches to them with SET ROLE between its writes and COMMIT.
#
# The same script of actions then runs as each role against both: in
# "mono" through the shims, or, for actions that only name moved tables,
# directly in svcdb, where the application writes after the split.  Action
# by action, the outcome (accepted, or the SQLSTATE) and the rows of every
# table afterwards must be the same.  The checks' lookups in the other
# database run there as the owner of the table they read, as PostgreSQL's
# own do, so a role with no right on that table (clerk, app_reader,
# noschema), or whose policies there would hide the row (rls_app), gets the
# oracle's outcome.  The actions that meet a documented limit
# (docs/operations.md, "Limits known today": a shim's whole rows, a new
# foreign key to a shim) must be refused with the limit's SQLSTATE, and
# are then run again as the superuser where the oracle accepted them, so
# that both databases go on alike.
#
# Before the fix, a check that ran later than its statement (a deferred
# reference at COMMIT) went through the user mapping of the role current at
# COMMIT, not of the role that wrote: after SET ROLE, or for rows that a
# SECURITY DEFINER function wrote, it ran in another remote transaction,
# which did not see what the writer had written through the shims.  An
# order deleted through its shim, then SET ROLE app_reader, then COMMIT:
# the deferred NO ACTION check found the order still there and let the
# delete commit, its claim left pointing at nothing; an order and its claim
# written together were refused (23503, or 42501 as the other role).  And a
# check ran through the writing role's mapping even when the transaction
# had written the other database through another one: an order inserted
# through definer's view (postgres_fdw takes the view owner's mapping), or
# through the shim by the caller of a SECURITY DEFINER function that then
# inserts its shipment, was not seen, and the shipment was refused (23503).

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SplitdbTest qw(start_scram_node psql_verbose);

my %pw = map { $_ => "Pw-$_-7c1e" } qw(super towner sowner app clerk rls_app noschema definer app_reader);

my ($node, $user) = start_scram_node('rights', \%pw);
my $port = $node->port;

my $schema = q{
GRANT app_reader, clerk TO app;
CREATE SCHEMA ref AUTHORIZATION towner;
CREATE TABLE customer (id integer PRIMARY KEY, name text, secret text);
CREATE TABLE ref.region (code text PRIMARY KEY, label text);
CREATE TABLE orders (
	id          integer PRIMARY KEY,
	customer_id integer REFERENCES customer ON UPDATE CASCADE,
	region      text REFERENCES ref.region ON DELETE RESTRICT ON UPDATE CASCADE,
	amount      integer);
CREATE TABLE payment (
	id          integer PRIMARY KEY,
	customer_id integer REFERENCES customer ON DELETE CASCADE);
CREATE TABLE pnote (
	id          integer PRIMARY KEY,
	customer_id integer REFERENCES customer ON DELETE SET NULL
		DEFERRABLE INITIALLY DEFERRED);
CREATE TABLE ptag (
	id          integer PRIMARY KEY,
	customer_id integer DEFAULT 0 REFERENCES customer ON DELETE SET DEFAULT);
CREATE TABLE shipment (
	id       integer PRIMARY KEY,
	order_id integer REFERENCES orders ON DELETE CASCADE ON UPDATE CASCADE);
CREATE TABLE invoice (
	id       integer PRIMARY KEY,
	order_id integer REFERENCES orders ON DELETE SET NULL);
CREATE TABLE label (
	id       integer PRIMARY KEY,
	order_id integer DEFAULT 0 REFERENCES orders ON DELETE SET DEFAULT);
CREATE TABLE batch (id integer PRIMARY KEY);
CREATE TABLE claim (
	id       integer PRIMARY KEY,
	order_id integer REFERENCES orders DEFERRABLE INITIALLY DEFERRED,
	batch_id integer REFERENCES batch ON DELETE SET NULL);
CREATE TABLE hold (
	id       integer PRIMARY KEY,
	order_id integer REFERENCES orders ON DELETE RESTRICT ON UPDATE RESTRICT);

INSERT INTO customer SELECT g, 'customer ' || g, 'secret ' || g FROM generate_series(0, 20) g;
INSERT INTO ref.region VALUES ('eu', 'Europe'), ('us', 'Americas'), ('ap', 'Asia'), ('xx', 'spare');
INSERT INTO orders SELECT g, g % 10, (ARRAY['eu', 'us', 'ap'])[1 + g % 3], g * 10
  FROM generate_series(0, 30) g;
INSERT INTO payment SELECT g, 10 + g % 5 FROM generate_series(1, 10) g;
INSERT INTO pnote SELECT g, 10 + g % 5 FROM generate_series(1, 10) g;
INSERT INTO ptag SELECT g, 10 + g % 5 FROM generate_series(1, 10) g;
INSERT INTO shipment SELECT g, 10 + g % 10 FROM generate_series(1, 10) g;
INSERT INTO invoice SELECT g, 10 + g % 10 FROM generate_series(1, 10) g;
INSERT INTO label SELECT g, 10 + g % 10 FROM generate_series(1, 10) g;
INSERT INTO batch SELECT generate_series(1, 5);
INSERT INTO claim SELECT g, 20 + g % 5, g FROM generate_series(1, 5) g;
INSERT INTO hold SELECT g, 25 + g FROM generate_series(1, 3) g;

ALTER TABLE customer OWNER TO towner;
ALTER TABLE ref.region OWNER TO towner;
ALTER TABLE shipment OWNER TO towner;
ALTER TABLE invoice OWNER TO towner;
ALTER TABLE label OWNER TO towner;
ALTER TABLE claim OWNER TO towner;
ALTER TABLE batch OWNER TO towner;
ALTER TABLE hold OWNER TO towner;
ALTER TABLE orders OWNER TO sowner;
ALTER TABLE payment OWNER TO sowner;
ALTER TABLE pnote OWNER TO sowner;
ALTER TABLE ptag OWNER TO sowner;
GRANT USAGE ON SCHEMA ref TO sowner, app, clerk, rls_app, definer;
GRANT REFERENCES ON customer, ref.region TO sowner;
GRANT REFERENCES ON orders TO towner;

-- row-level security on hold, forced on its owner
ALTER TABLE hold ENABLE ROW LEVEL SECURITY;
ALTER TABLE hold FORCE ROW LEVEL SECURITY;
CREATE POLICY hold_owner ON hold TO towner USING (true);
CREATE POLICY hold_rls ON hold TO rls_app USING (id < 200) WITH CHECK (id < 200);
GRANT SELECT, INSERT, UPDATE, DELETE ON hold TO rls_app;

-- app: column-level rights on customer, INSERT without SELECT on the
-- tables that stay, what the shims need on the moved ones
GRANT INSERT, DELETE ON customer TO app;
GRANT SELECT (id, name), UPDATE (name) ON customer TO app;
GRANT SELECT, UPDATE (label) ON ref.region TO app;
GRANT SELECT, INSERT, DELETE ON orders, payment, pnote, ptag TO app;
GRANT UPDATE (customer_id, region, amount) ON orders TO app;
GRANT UPDATE ON payment, pnote, ptag TO app;
GRANT INSERT, SELECT, UPDATE, DELETE ON shipment TO app;
GRANT INSERT, SELECT (id), UPDATE (order_id) ON invoice TO app;
GRANT INSERT ON label, claim TO app;
GRANT SELECT, DELETE ON batch TO app;

GRANT INSERT ON payment TO app_reader;

-- clerk: INSERT only
GRANT INSERT ON orders, payment, shipment, claim TO clerk;

-- rls_app: every right on orders, customer and hold, policies on hold
GRANT SELECT, INSERT, UPDATE, DELETE ON orders, customer TO rls_app;

-- noschema: no USAGE on ref
GRANT SELECT, INSERT, UPDATE, DELETE ON orders TO noschema;

-- definer's function writes orders and shipment for its callers
GRANT INSERT, SELECT ON orders, shipment, claim TO definer;
GRANT UPDATE (amount) ON orders TO definer;
CREATE FUNCTION public.place_order(o integer, c integer, s integer) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
	INSERT INTO orders (id, customer_id, region, amount) VALUES (o, c, 'eu', 1);
	INSERT INTO shipment (id, order_id) VALUES (s, o);
	INSERT INTO claim (id, order_id) VALUES (s, o);
END
$$;
ALTER FUNCTION public.place_order(integer, integer, integer) OWNER TO definer;
REVOKE EXECUTE ON FUNCTION public.place_order(integer, integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.place_order(integer, integer, integer) TO app, clerk;
GRANT DELETE ON orders TO definer;
CREATE FUNCTION public.drop_order(o integer) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
	DELETE FROM orders WHERE id = o;
END
$$;
ALTER FUNCTION public.drop_order(integer) OWNER TO definer;
CREATE FUNCTION public.ship_order(s integer, o integer) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
	INSERT INTO shipment (id, order_id) VALUES (s, o);
END
$$;
ALTER FUNCTION public.ship_order(integer, integer) OWNER TO definer;
REVOKE EXECUTE ON FUNCTION public.ship_order(integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.ship_order(integer, integer) TO app;
REVOKE EXECUTE ON FUNCTION public.drop_order(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.drop_order(integer) TO app, clerk;

-- a view of definer's over orders, which app writes through
CREATE VIEW public.order_entry AS SELECT id, customer_id, region, amount FROM orders;
ALTER VIEW public.order_entry OWNER TO definer;
GRANT SELECT, INSERT ON public.order_entry TO app;
};

$node->safe_psql('postgres', 'CREATE DATABASE localfk');
$node->safe_psql('postgres', 'CREATE DATABASE mono');
$node->safe_psql('postgres', 'CREATE DATABASE svcdb');
$node->safe_psql($_, $schema) for ('localfk', 'mono');

# the service, through a server of the test's own: every mapping has a password
my @mapped = qw(towner sowner app clerk rls_app noschema definer);
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
SELECT splitdb_assign('svc', 'orders', 'payment', 'pnote', 'ptag');
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
is($node->safe_psql('mono', "SELECT state FROM splitdb.job WHERE service = 'svc'"),
	'done', 'the job is done');
note($node->safe_psql('mono',
	q{SELECT string_agg(format('%s %s->%s %s/%s', constraint_name, child_location, parent_location,
		on_delete, on_update), E'\n' ORDER BY constraint_name) FROM splitdb_references}));

# the actions: [name, role, where, sql, limit]; where is "mono" (the
# source) or "sib" (the sibling, for actions that only name moved tables);
# limit, when given, is the SQLSTATE of a documented limit (docs/operations.md,
# "Limits known today") that the split answers where the oracle accepts
my @actions = (
	# app: column-level rights on customer, none on what claim and hold refer to
	[ 'app inserts an order', 'app', 'mono', q{INSERT INTO orders VALUES (101, 1, 'eu', 5)} ],
	[ 'app inserts an order in the sibling', 'app', 'sib',
		q{INSERT INTO orders VALUES (102, 2, 'us', 5)} ],
	[ 'app inserts an order of a missing customer', 'app', 'mono',
		q{INSERT INTO orders VALUES (103, 99, 'eu', 5)} ],
	[ 'app inserts an order of a missing customer in the sibling', 'app', 'sib',
		q{INSERT INTO orders VALUES (104, 99, 'eu', 5)} ],
	[ 'app inserts an order of a missing region', 'app', 'mono',
		q{INSERT INTO orders VALUES (105, 1, 'zz', 5)} ],
	[ 'app inserts an order of a missing region in the sibling', 'app', 'sib',
		q{INSERT INTO orders VALUES (106, 1, 'zz', 5)} ],
	[ 'app inserts a customer, RETURNING a column it may not read', 'app', 'mono',
		q{INSERT INTO customer (id, name) VALUES (107, 'n') RETURNING secret} ],
	[ 'app sets an amount', 'app', 'mono', q{UPDATE orders SET amount = 7 WHERE id = 1} ],
	[ 'app sets an amount in the sibling', 'app', 'sib', q{UPDATE orders SET amount = 8 WHERE id = 2} ],
	[ 'app changes an order customer', 'app', 'mono',
		q{UPDATE orders SET customer_id = 3 WHERE id = 3} ],
	[ 'app changes an order customer to a missing one', 'app', 'mono',
		q{UPDATE orders SET customer_id = 98 WHERE id = 4} ],
	[ 'app changes an order customer in the sibling', 'app', 'sib',
		q{UPDATE orders SET customer_id = 4 WHERE id = 5} ],
	[ 'app changes an order customer to a missing one in the sibling', 'app', 'sib',
		q{UPDATE orders SET customer_id = 97 WHERE id = 6} ],
	[ 'app inserts a payment', 'app', 'mono', q{INSERT INTO payment VALUES (101, 5)} ],
	[ 'app inserts a payment in the sibling', 'app', 'sib', q{INSERT INTO payment VALUES (102, 5)} ],
	[ 'app inserts a note of a missing customer (deferred)', 'app', 'mono',
		q{INSERT INTO pnote VALUES (101, 96)} ],
	[ 'app inserts a note of a missing customer in the sibling (deferred)', 'app', 'sib',
		q{INSERT INTO pnote VALUES (102, 96)} ],
	[ 'app inserts a tag in the sibling', 'app', 'sib', q{INSERT INTO ptag VALUES (101, 6)} ],
	[ 'app inserts a shipment', 'app', 'mono', q{INSERT INTO shipment VALUES (101, 7)} ],
	[ 'app inserts a shipment of a missing order', 'app', 'mono',
		q{INSERT INTO shipment VALUES (102, 999)} ],
	[ 'app inserts an invoice', 'app', 'mono', q{INSERT INTO invoice VALUES (101, 8)} ],
	[ 'app changes an invoice order to a missing one', 'app', 'mono',
		q{UPDATE invoice SET order_id = 995 WHERE id = 1} ],
	[ 'app inserts a label', 'app', 'mono', q{INSERT INTO label VALUES (101, 9)} ],
	[ 'app inserts a claim of a missing order', 'app', 'mono', q{INSERT INTO claim VALUES (101, 994)} ],
	[ 'app inserts a customer', 'app', 'mono', q{INSERT INTO customer (id, name) VALUES (50, 'n')} ],
	[ 'app renames a customer', 'app', 'mono', q{UPDATE customer SET name = 'x' WHERE id = 1} ],
	[ 'app changes a customer key', 'app', 'mono', q{UPDATE customer SET id = 51 WHERE id = 1} ],
	[ 'app deletes a referenced customer (NO ACTION)', 'app', 'mono',
		q{DELETE FROM customer WHERE id = 1} ],
	[ 'app deletes a customer with payments (CASCADE)', 'app', 'mono',
		q{DELETE FROM customer WHERE id = 10} ],
	[ 'app deletes a shipped order (CASCADE) through the shim', 'app', 'mono',
		q{DELETE FROM orders WHERE id = 11} ],
	[ 'app deletes a held order (RESTRICT) through the shim', 'app', 'mono',
		q{DELETE FROM orders WHERE id = 26} ],
	[ 'app deletes a claimed order (deferred NO ACTION) through the shim', 'app', 'mono',
		q{DELETE FROM orders WHERE id = 21} ],
	[ 'app deletes a claimed order (deferred NO ACTION) in the sibling', 'app', 'sib',
		q{DELETE FROM orders WHERE id = 22} ],
	[ 'app deletes an order and puts it back (deferred NO ACTION)', 'app', 'mono',
		q{BEGIN; DELETE FROM orders WHERE id = 23; INSERT INTO orders VALUES (23, 3, 'ap', 1); COMMIT} ],

	# SET ROLE between the writes and COMMIT
	[ 'app writes an order and its claim, then SET ROLE app_reader before COMMIT', 'app', 'mono',
		q{BEGIN; INSERT INTO orders VALUES (110, 1, 'eu', 1); INSERT INTO claim VALUES (110, 110);
		  SET ROLE app_reader; COMMIT} ],
	[ 'app writes an order and its claim, then SET ROLE clerk before COMMIT', 'app', 'mono',
		q{BEGIN; INSERT INTO orders VALUES (111, 1, 'eu', 1); INSERT INTO claim VALUES (111, 111);
		  SET ROLE clerk; COMMIT} ],
	[ 'app writes a claim of a missing order, then SET ROLE app_reader before COMMIT', 'app', 'mono',
		q{BEGIN; INSERT INTO claim VALUES (112, 994); SET ROLE app_reader; COMMIT} ],
	[ 'app writes a note and its customer, then SET ROLE app_reader before COMMIT', 'app', 'mono',
		q{BEGIN; INSERT INTO pnote VALUES (110, 60); INSERT INTO customer (id, name) VALUES (60, 'c');
		  SET ROLE app_reader; COMMIT} ],
	[ 'app deletes a claimed order, then SET ROLE app_reader before COMMIT', 'app', 'mono',
		q{BEGIN; DELETE FROM orders WHERE id = 24; SET ROLE app_reader; COMMIT} ],
	[ 'app deletes a claimed order, then SET ROLE clerk before COMMIT', 'app', 'mono',
		q{BEGIN; DELETE FROM orders WHERE id = 22; SET ROLE clerk; COMMIT} ],
	[ 'app writes an order and its claim, then SET ROLE app_reader and SET CONSTRAINTS ALL IMMEDIATE',
		'app', 'mono',
		q{BEGIN; INSERT INTO orders VALUES (113, 1, 'eu', 1); INSERT INTO claim VALUES (113, 113);
		  SET ROLE app_reader; SET CONSTRAINTS ALL IMMEDIATE; COMMIT} ],
	[ 'app deletes a claimed order, then SET ROLE app_reader and SET CONSTRAINTS ALL IMMEDIATE',
		'app', 'mono',
		q{BEGIN; DELETE FROM orders WHERE id = 20; SET ROLE app_reader; SET CONSTRAINTS ALL IMMEDIATE;
		  COMMIT} ],
	[ 'app writes an order and its claim, then deletes a batch (SET NULL on claim, as its owner)',
		'app', 'mono',
		q{BEGIN; INSERT INTO orders VALUES (114, 1, 'eu', 1); INSERT INTO claim VALUES (114, 114);
		  DELETE FROM batch WHERE id = 1; COMMIT} ],
	[ 'app writes a note of a missing customer in the sibling, then SET ROLE app_reader before COMMIT',
		'app', 'sib', q{BEGIN; INSERT INTO pnote VALUES (111, 95); SET ROLE app_reader; COMMIT} ],
	[ 'app writes a note in the sibling, then SET ROLE app_reader before COMMIT', 'app', 'sib',
		q{BEGIN; INSERT INTO pnote VALUES (112, 2); SET ROLE app_reader; COMMIT} ],

	# definer's function writes an order, its shipment and its claim (deferred)
	[ 'app places an order through the definer', 'app', 'mono', q{SELECT place_order(120, 2, 120)} ],
	[ 'clerk places an order through the definer', 'clerk', 'mono', q{SELECT place_order(121, 2, 121)} ],
	[ 'clerk places an order of a missing customer through the definer', 'clerk', 'mono',
		q{SELECT place_order(122, 92, 122)} ],
	[ 'clerk drops a claimed order through the definer', 'clerk', 'mono', q{SELECT drop_order(21)} ],
	[ 'clerk drops an order through the definer', 'clerk', 'mono', q{SELECT drop_order(29)} ],
	[ 'app inserts an order through the shim and has the definer ship it', 'app', 'mono',
		q{BEGIN; INSERT INTO orders VALUES (126, 1, 'eu', 1); SELECT ship_order(126, 126); COMMIT} ],
	[ 'app inserts an order through a view of the definer and its shipment', 'app', 'mono',
		q{BEGIN; INSERT INTO order_entry VALUES (125, 1, 'eu', 1); INSERT INTO shipment VALUES (125, 125);
		  COMMIT} ],

	# clerk: INSERT only, a user mapping of its own
	[ 'clerk inserts an order through the shim', 'clerk', 'mono',
		q{INSERT INTO orders VALUES (130, 1, 'eu', 1)}, '42501' ],
	[ 'clerk inserts an order in the sibling', 'clerk', 'sib',
		q{INSERT INTO orders VALUES (131, 1, 'eu', 1)} ],
	[ 'clerk inserts a shipment', 'clerk', 'mono', q{INSERT INTO shipment VALUES (130, 14)} ],

	# a new foreign key to a moved table, in the source
	[ 'towner creates a table referencing orders, on which it has REFERENCES', 'towner', 'mono',
		q{CREATE TABLE ref.extra (id integer PRIMARY KEY, order_id integer REFERENCES public.orders)},
		'42809' ],

	# app_reader: no user mapping, so the moved tables' owner's checks
	[ 'app_reader inserts a payment in the sibling', 'app_reader', 'sib',
		q{INSERT INTO payment VALUES (140, 2)} ],

	# rls_app: policies on hold, which forces them on its owner
	[ 'rls_app inserts a hold', 'rls_app', 'mono', q{INSERT INTO hold VALUES (150, 9)} ],
	[ 'rls_app inserts a hold its policy refuses', 'rls_app', 'mono', q{INSERT INTO hold VALUES (250, 9)} ],
	[ 'rls_app deletes a held order (RESTRICT) through the shim', 'rls_app', 'mono',
		q{DELETE FROM orders WHERE id = 9} ],
	[ 'rls_app deletes a held order (RESTRICT) in the sibling', 'rls_app', 'sib',
		q{DELETE FROM orders WHERE id = 27} ],
	[ 'rls_app deletes an order held by nothing in the sibling', 'rls_app', 'sib',
		q{DELETE FROM orders WHERE id = 30} ],

	# noschema: no USAGE on ref
	[ 'noschema inserts an order', 'noschema', 'mono', q{INSERT INTO orders VALUES (140, 1, 'eu', 1)} ],
	[ 'noschema inserts an order in the sibling', 'noschema', 'sib',
		q{INSERT INTO orders VALUES (141, 1, 'eu', 1)} ],
);

my @tables = qw(customer ref.region orders payment pnote ptag shipment invoice label batch claim hold);

# every table's rows, as the superuser
sub rows
{
	my ($db) = @_;
	return $node->safe_psql($db,
		join("\nUNION ALL ",
			map { "SELECT '$_: ' || coalesce(string_agg(t::text, ' ' ORDER BY t::text), '') FROM $_ t" }
			  @tables));
}

# run an action as its role; returns "ok" or the SQLSTATE, and the error
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

my $n = 0;
for my $a (@actions)
{
	my ($name, $role, $where, $sql, $limit) = @$a;
	my $db = $where eq 'sib' ? 'svcdb' : 'mono';
	$n++;
	my ($want, $werr) = act('localfk', $role, $sql);
	my ($got,  $gerr) = act($db, $role, $sql);
	my $keys_want = $werr =~ /Key \(/ ? 'key shown' : 'no key';
	my $keys_got  = $gerr =~ /Key \(/ ? 'key shown' : 'no key';
	if (defined $limit)
	{
		is($got, $limit, "$n. $name: $want, $limit after the split (a limit)");
		# the same write as the superuser, so that both go on alike
		# (a refused DDL statement changes no row)
		if ($want eq 'ok' && $sql !~ /^CREATE /)
		{
			my ($s, $e) = act($db, 'super', $sql);
			is($s, 'ok', "$n. $name: the superuser's write goes through") or diag($e);
		}
	}
	else
	{
		is("$got", "$want", "$n. $name: same outcome");
		# the key's values only where PostgreSQL shows them to this role
		is($keys_got, $keys_want, "$n. $name: the key shown alike")
		  if $want eq '23503' && $got eq '23503';
	}
	if ($got ne $want)
	{
		diag("oracle: $werr") if $werr;
		diag("split: $gerr") if $gerr;
	}
	note("$n. $name: $want ($keys_want), split $got ($keys_got)");
	my @want = split /\n/, rows('localfk');
	my @got  = split /\n/, rows('mono');
	my @differ = grep { $want[$_] ne $got[$_] } 0 .. $#want;
	is(scalar(@differ), 0, "$n. $name: same rows after");
	diag("oracle $want[$_]\nsplit  $got[$_]") for @differ;
}

is($node->safe_psql('mono', q{SELECT count(*) FROM splitdb_orphans('svc')}), '0',
	'splitdb_orphans finds nothing');

my $log = slurp_file($node->logfile);
my @leaked = grep { index($log, $pw{$_}) >= 0 } sort keys %pw;
is("@leaked", '', 'no password is in the server log');

done_testing();
