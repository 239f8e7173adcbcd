# Copyright (c) 2026, splitdb developers
#
# The differential oracle of cross-service references, with the sibling on a
# second server.
#
# One schema, loaded twice on the source server: database "oracle" keeps its
# local foreign keys; database "mono" is split, its tables "orders", "item"
# and "note" moving to service orders, whose sibling is a database of
# another server.  Every foreign key between a table that moved and one that
# stayed becomes a cross-service reference, one of each kind: NO ACTION,
# RESTRICT, CASCADE, SET NULL and SET DEFAULT actions, MATCH FULL on a
# composite key, referencing ends on both sides.
#
# A seeded random workload of 2,400 statements (single-row and multi-row
# inserts, updates of keys and of other columns, deletes) then runs against
# both: in blocks of 40, each block in "mono" (through the shims for the
# moved tables) or, when it only touches moved tables, directly in the
# sibling.  Every statement must be accepted or refused alike, with the same
# SQLSTATE, and the final rows must be the same.
#
# The schema has chains of actions across databases: deleting an order
# deletes its items in the sibling by a foreign key there, and the items'
# shipments in the source by a cross-service reference (CASCADE), unless a
# claim still refers to one of the items (NO ACTION at the end of the
# chain).  From "mono" the sibling hands the items' keys back to the source
# (splitdb.reference_relay); in the sibling its own ends act.

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SplitdbTest qw(start_pair sibling_service_sql);

my $seed       = 20261121;
my $statements = 2400;
my $block      = 40;

my ($source, $sibling, $user) = start_pair();
$sibling->safe_psql('postgres', 'CREATE DATABASE orders');

my $schema = q{
CREATE TABLE customer (id integer PRIMARY KEY, name text);
CREATE TABLE region (country text, code integer, PRIMARY KEY (country, code));
CREATE TABLE orders (
	id          integer PRIMARY KEY,
	customer_id integer REFERENCES customer ON UPDATE CASCADE,
	country     text,
	code        integer,
	FOREIGN KEY (country, code) REFERENCES region MATCH FULL
		ON DELETE SET NULL ON UPDATE RESTRICT);
CREATE TABLE item (
	id       integer PRIMARY KEY,
	order_id integer REFERENCES orders ON DELETE CASCADE,
	qty      integer);
CREATE TABLE note (
	id          integer PRIMARY KEY,
	customer_id integer DEFAULT 0 REFERENCES customer ON DELETE SET DEFAULT);
CREATE TABLE invoice (
	id          integer PRIMARY KEY,
	order_id    integer REFERENCES orders ON DELETE SET NULL ON UPDATE CASCADE,
	customer_id integer REFERENCES customer ON DELETE RESTRICT);
INSERT INTO customer SELECT g, 'customer ' || g FROM generate_series(0, 30) g;
INSERT INTO region SELECT c, g FROM unnest(ARRAY['a', 'b', 'c']) c, generate_series(1, 4) g;
INSERT INTO orders SELECT g, g % 31, (ARRAY['a', 'b', 'c'])[1 + g % 3], 1 + g % 4
  FROM generate_series(1, 60) g;
INSERT INTO item SELECT g, 1 + g % 60, g FROM generate_series(1, 80) g;
INSERT INTO note SELECT g, g % 31 FROM generate_series(1, 20) g;
INSERT INTO invoice SELECT g, 1 + g % 60, g % 31 FROM generate_series(1, 40) g;
CREATE TABLE shipment (
	id      integer PRIMARY KEY,
	item_id integer REFERENCES item ON DELETE CASCADE);
CREATE TABLE claim (
	id      integer PRIMARY KEY,
	item_id integer REFERENCES item);
INSERT INTO shipment SELECT g, 1 + g % 80 FROM generate_series(1, 50) g;
INSERT INTO claim SELECT g, 7 * g FROM generate_series(1, 6) g;
CREATE TABLE diff_result (n integer PRIMARY KEY, outcome text NOT NULL);
};

for my $db ('oracle', 'mono')
{
	$source->safe_psql('postgres', "CREATE DATABASE $db");
	$source->safe_psql($db, $schema);
}
$sibling->safe_psql('orders',
	'CREATE TABLE diff_result (n integer PRIMARY KEY, outcome text NOT NULL)');

$source->safe_psql('mono',
	"CREATE EXTENSION splitdb CASCADE;\n"
	  . sibling_service_sql($sibling, $user, 'orders', tables => ['orders', 'item', 'note']));
my ($rc, $out, $err) =
  $source->psql('mono', "SELECT splitdb_migrate('orders', wait => true) > 0");
is($rc, 0, 'the migration to a sibling on another server succeeds');
diag($err) if $rc;

is( $source->safe_psql(
		'mono', q{
SELECT string_agg(format('%s %s->%s %s/%s', constraint_name, child_location, parent_location,
						 on_delete, on_update), E'\n' ORDER BY constraint_name)
  FROM splitdb_references WHERE enforced}),
	join("\n",
		'claim_item_id_fkey source->orders NO ACTION/NO ACTION',
		'invoice_order_id_fkey source->orders SET NULL/CASCADE',
		'note_customer_id_fkey orders->source SET DEFAULT/NO ACTION',
		'orders_country_code_fkey orders->source SET NULL/RESTRICT',
		'orders_customer_id_fkey orders->source NO ACTION/CASCADE',
		'shipment_item_id_fkey source->orders CASCADE/NO ACTION'),
	'every key between a moved and a staying table is a cross-service reference');

is( $sibling->safe_psql(
		'orders', q{
SELECT string_agg(DISTINCT e.other_server || ' ' || s.srvoptions::text, ', ')
  FROM splitdb.reference_end e JOIN pg_foreign_server s ON s.srvname = e.other_server}),
	'splitdb_source {host=' . $source->host . ',port=' . $source->port
	  . ',dbname=mono,"options=-c splitdb.origin=orders"}',
	'the sibling reaches the source through splitdb_source, marked with its origin');

# the workload: [target, sql] where target is "mono" or "any" (moved tables only)
srand($seed);
sub pick { return $_[ int(rand(@_)) ]; }
sub cid  { return rand() < 0.1 ? 'NULL' : int(rand(36)); }
sub oid_ { return rand() < 0.1 ? 'NULL' : 1 + int(rand(90)); }

my @ops = (
	sub { [ 'mono', sprintf('INSERT INTO customer VALUES (%d, %s)', int(rand(40)), "'c'") ] },
	sub { [ 'mono', sprintf('DELETE FROM customer WHERE id = %d', int(rand(36))) ] },
	sub {
		[ 'mono', sprintf('UPDATE customer SET id = %d WHERE id = %d', int(rand(45)), int(rand(36))) ]
	},
	sub { [ 'mono', sprintf('UPDATE customer SET name = %s WHERE id < %d', "'x'", int(rand(10))) ] },
	sub {
		[ 'mono', sprintf("INSERT INTO region VALUES ('%s', %d)", pick(qw(a b c d)), 1 + int(rand(6))) ]
	},
	sub {
		[ 'mono', sprintf("DELETE FROM region WHERE country = '%s' AND code = %d",
				pick(qw(a b c)), 1 + int(rand(5))) ]
	},
	sub {
		[ 'mono', sprintf("UPDATE region SET code = %d WHERE country = '%s' AND code = %d",
				1 + int(rand(8)), pick(qw(a b c)), 1 + int(rand(5))) ]
	},
	sub {
		my $c = pick(qw('a' 'b' 'c' 'd' NULL));
		my $k = rand() < 0.15 ? 'NULL' : 1 + int(rand(6));
		[ 'any', sprintf('INSERT INTO orders VALUES (%d, %s, %s, %s)', 1 + int(rand(90)), cid(), $c, $k) ]
	},
	sub {
		[ 'any', sprintf('UPDATE orders SET customer_id = %s WHERE id = %d', cid(), 1 + int(rand(90))) ]
	},
	sub {
		[ 'any', sprintf('UPDATE orders SET id = %d WHERE id = %d', 1 + int(rand(100)), 1 + int(rand(90))) ]
	},
	sub {
		[ 'any', sprintf("UPDATE orders SET country = '%s', code = %d WHERE id %% 9 = %d",
				pick(qw(a b c d)), 1 + int(rand(5)), int(rand(9))) ]
	},
	sub { [ 'any', sprintf('DELETE FROM orders WHERE id = %d', 1 + int(rand(90))) ] },
	sub {
		my $from = int(rand(40));
		[ 'any', sprintf('INSERT INTO orders SELECT 100 + g, g %% %d, NULL, NULL FROM generate_series(%d, %d) g',
				30 + int(rand(8)), $from, $from + int(rand(6))) ]
	},
	sub { [ 'any', sprintf('DELETE FROM orders WHERE id > 100 AND id %% 3 = %d', int(rand(3))) ] },
	sub {
		[ 'any', sprintf('INSERT INTO item VALUES (%d, %s, 1)', 100 + int(rand(200)), oid_()) ]
	},
	sub {
		[ 'any', sprintf('INSERT INTO note VALUES (%d, %s)', 1 + int(rand(40)), cid()) ]
	},
	sub { [ 'any', sprintf('UPDATE note SET customer_id = %s WHERE id = %d', cid(), 1 + int(rand(40))) ] },
	sub { [ 'any', sprintf('DELETE FROM note WHERE id = %d', 1 + int(rand(40))) ] },
	sub {
		[ 'mono', sprintf('INSERT INTO invoice VALUES (%d, %s, %s)', 1 + int(rand(80)), oid_(), cid()) ]
	},
	sub {
		[ 'mono', sprintf('UPDATE invoice SET order_id = %s WHERE id = %d', oid_(), 1 + int(rand(80))) ]
	},
	sub {
		[ 'mono', sprintf('UPDATE invoice SET customer_id = %s WHERE id %% 7 = %d', cid(), int(rand(7))) ]
	},
	sub { [ 'mono', sprintf('DELETE FROM invoice WHERE id = %d', 1 + int(rand(80))) ] },
	sub {
		[ 'mono', sprintf('DELETE FROM customer WHERE id BETWEEN %d AND %d', int(rand(36)), int(rand(40))) ]
	},
	sub { [ 'any', sprintf('DELETE FROM item WHERE id = %d', 1 + int(rand(90))) ] },
	sub {
		[ 'mono', sprintf('INSERT INTO shipment VALUES (%d, %s)', 1 + int(rand(90)), rand() < 0.1 ? 'NULL' : 1 + int(rand(100))) ]
	},
	sub { [ 'mono', sprintf('DELETE FROM shipment WHERE id = %d', 1 + int(rand(90))) ] },
	sub {
		[ 'mono', sprintf('INSERT INTO claim VALUES (%d, %d)', 1 + int(rand(20)), 1 + int(rand(90))) ]
	},
	sub { [ 'mono', sprintf('DELETE FROM claim WHERE id = %d', 1 + int(rand(20))) ] },
);

my @work;
push @work, $ops[ int(rand(@ops)) ]->() for 1 .. $statements;

# a statement, wrapped so that its outcome is recorded where it runs
sub wrapped
{
	my ($n, $sql) = @_;
	return qq{DO \$d\$ BEGIN EXECUTE \$q\$$sql\$q\$; INSERT INTO diff_result VALUES ($n, 'ok');
EXCEPTION WHEN OTHERS THEN INSERT INTO diff_result VALUES ($n, SQLSTATE); END \$d\$;\n};
}

my ($in_sibling, $in_mono) = (0, 0);
for (my $first = 0; $first < @work; $first += $block)
{
	my @b = @work[ $first .. ($first + $block - 1 < $#work ? $first + $block - 1 : $#work) ];
	my $moved_only = !grep { $_->[0] eq 'mono' } @b;
	my $to_sibling = $moved_only;
	my ($oracle_sql, $split_sql) = ('', '');
	for my $i (0 .. $#b)
	{
		my $n = $first + $i + 1;
		$oracle_sql .= wrapped($n, $b[$i][1]);
		$split_sql  .= wrapped($n, $b[$i][1]);
	}
	$source->safe_psql('oracle', $oracle_sql);
	if ($to_sibling)
	{
		$sibling->safe_psql('orders', $split_sql);
		$in_sibling += @b;
	}
	else
	{
		$source->safe_psql('mono', $split_sql);
		$in_mono += @b;
	}
}

# blocks of moved tables only are rare at random: run a dedicated stretch
# of such statements in the sibling, and the same in the oracle
{
	my @moved = grep { $_->[0] eq 'any' } @work;
	my ($oracle_sql, $split_sql) = ('', '');
	my $n = $statements;
	for my $w (@moved[ 0 .. 399 ])
	{
		$n++;
		$oracle_sql .= wrapped($n, $w->[1]);
		$split_sql  .= wrapped($n, $w->[1]);
	}
	$source->safe_psql('oracle', $oracle_sql);
	$sibling->safe_psql('orders', $split_sql);
	$in_sibling += 400;
}

my $oracle = $source->safe_psql('oracle',
	q{SELECT string_agg(n || ' ' || outcome, E'\n' ORDER BY n) FROM diff_result});
my $split = join("\n",
	sort { (split / /, $a)[0] <=> (split / /, $b)[0] }
	  grep { length } split(/\n/,
		$source->safe_psql('mono', q{SELECT string_agg(n || ' ' || outcome, E'\n') FROM diff_result})
		  . "\n"
		  . $sibling->safe_psql('orders', q{SELECT string_agg(n || ' ' || outcome, E'\n') FROM diff_result})));

my @o = split /\n/, $oracle;
my @s = split /\n/, $split;
is(scalar(@o), $statements + 400, 'the oracle answered every statement');
is(scalar(@s), $statements + 400, 'the split databases answered every statement');
my @differ = grep { $o[$_] ne ($s[$_] // '') } 0 .. $#o;
is(scalar(@differ), 0, 'every statement is accepted or refused alike, with the same SQLSTATE');
for my $i (@differ[ 0 .. ($#differ < 9 ? $#differ : 9) ])
{
	my ($n) = split / /, $o[$i];
	my $sql = $n <= $statements ? $work[ $n - 1 ][1] : '(sibling stretch)';
	diag("statement $n: oracle '$o[$i]', split '" . ($s[$i] // 'none') . "': $sql");
}
my %count;
$count{ (split / /, $_)[1] }++ for @o;
my $refused = grep { !/ ok$/ } @o;
cmp_ok($refused, '>=', 300, "the workload is refused often enough to matter ($refused refusals)");
cmp_ok($count{'23503'} // 0, '>=', 200,
	'most refusals are foreign-key violations (' . ($count{'23503'} // 0) . ')');
cmp_ok($in_sibling, '>=', 400, "statements ran in the sibling too ($in_sibling)");
note("outcomes: " . join(', ', map { "$_ $count{$_}" } sort keys %count));
note("statements in mono: $in_mono, in the sibling: $in_sibling");

for my $t (qw(customer region orders item note invoice shipment claim))
{
	my $q = "SELECT coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '') FROM $t t";
	is($source->safe_psql('mono', $q), $source->safe_psql('oracle', $q),
		"final rows of $t are the same");
}

is($source->safe_psql('mono', 'SELECT count(*) FROM splitdb_orphans(\'orders\')'),
	'0', 'splitdb_orphans finds nothing');

done_testing();
