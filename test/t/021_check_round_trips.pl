# Copyright (c) 2026, splitdb developers
#
# What one single-row insert with two cross-service references costs the
# other server, counted in the statements it receives, and how a remote
# error in those pipelined checks ends the local transaction.
#
# "customer" and "product" move to service shop, whose sibling is a
# database of another server that logs every statement; "line" stays and
# refers to both.  After a first insert (which opens the connections):
#
# 1. one single-row insert sends the sibling exactly four statements, on
#    splitdb's own session and none on postgres_fdw's: START TRANSACTION,
#    the two lookups FOR KEY SHARE (each a request of
#    splitdb.reference_lookup(), which runs it as the owner of the table
#    there, on a session proved when it opened) and COMMIT; the COMMIT goes out, and the
#    locks go, while the writer's session sits idle and sends nothing more;
# 2. a commit followed, in the same query string, by a statement that waits
#    (no answer to the client in between): the COMMIT goes out before that
#    statement runs, so the locks do not wait for it;
# 3. a lookup sent ahead that fails in the sibling (a lock timeout on the
#    customer, then on the product: the first and the second statement of
#    the pipeline) fails the insert with the remote SQLSTATE, 55P03, and
#    the message of the statement that failed; nothing is written, an open
#    transaction is aborted (25P02), and the same session's next insert
#    works once the row is free, its sibling session left idle;
# 4. an update and a delete through a shim whose sibling leaves the source
#    no key to check send no request of splitdb.reference_relayed(): the
#    sibling reports splitdb.relay_waiting (off) with every change; when a
#    trigger there deletes, in turn, a product that a line refers to, the
#    sibling reports a key waiting, the source asks for it, and refuses
#    (23503).  Nor, at commit, a SET CONSTRAINTS ALL IMMEDIATE there: the
#    sibling reports splitdb.deferred_waiting off, no table with a
#    deferrable trigger having been written.

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SplitdbTest qw(start_pair sibling_service_sql);

my ($source, $sibling, $user) =
  start_pair(sibling_conf => "log_line_prefix = '%m [%p] %a %d '");
$sibling->safe_psql('postgres', 'CREATE DATABASE shop');
$source->safe_psql('postgres', 'CREATE DATABASE mono');
$source->safe_psql(
	'mono', q{
CREATE TABLE customer (id integer PRIMARY KEY, name text);
CREATE TABLE product (id integer PRIMARY KEY, name text);
CREATE TABLE line (
	id          integer PRIMARY KEY,
	customer_id integer NOT NULL REFERENCES customer,
	product_id  integer NOT NULL REFERENCES product);
INSERT INTO customer SELECT g, 'customer ' || g FROM generate_series(1, 100) g;
INSERT INTO product SELECT g, 'product ' || g FROM generate_series(1, 100) g;
});
$source->safe_psql('mono',
	"CREATE EXTENSION splitdb CASCADE;\n"
	  . sibling_service_sql($sibling, $user, 'shop', tables => ['customer', 'product']));
my ($rc, $out, $err) =
  $source->psql('mono', "SELECT splitdb_migrate('shop', wait => true) > 0");
is($rc, 0, 'customer and product move to a sibling on another server');
diag($err) if $rc;
$sibling->safe_psql('shop', "ALTER DATABASE shop SET log_statement = 'all'");

# the statements that splitdb and postgres_fdw sent database shop since a
# log offset, as "application: statement"
sub statements_since
{
	my ($offset) = @_;
	my $log = slurp_file($sibling->logfile);
	my @stmts;

	foreach my $line (split /\n/, substr($log, $offset))
	{
		push @stmts, "$1: $2"
		  if $line =~
		  /\] (splitdb|postgres_fdw) shop LOG:  (?:statement|execute [^:]*): (.*)$/;
	}
	return @stmts;
}

# run a query in a background session that must succeed
sub run_ok
{
	my ($session, $query) = @_;

	$session->{stderr} = '';
	return $session->query_safe($query);
}

# run a query in a background session that must fail: its stderr
sub run_error
{
	my ($session, $query) = @_;

	$session->{stderr} = '';
	my (undef, $rc) = $session->query($query);
	return $rc ? $session->{stderr} : '(no error)';
}

my $writer = $source->background_psql('mono', on_error_stop => 0);
run_ok($writer, '\set VERBOSITY verbose');
run_ok($writer, 'INSERT INTO line VALUES (1, 1, 1)');
$sibling->poll_query_until('shop',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'splitdb' AND state = 'idle'")
  or die 'the first insert left no idle session of splitdb in the sibling';

# 1. one single-row insert: four statements, the COMMIT while the writer idles
my $offset = -s $sibling->logfile;
$writer->query_safe('INSERT INTO line VALUES (2, 2, 2)');
ok( $sibling->poll_query_until(
		'shop', q{
SELECT count(*) = 1 FROM pg_stat_activity a
 WHERE a.application_name = 'splitdb' AND a.state = 'idle'
   AND NOT EXISTS (SELECT FROM pg_locks l WHERE l.pid = a.pid)}),
	'after the insert, with the writer idle, splitdb\'s session in the sibling is idle and holds no lock');
my @stmts = statements_since($offset);
is(scalar(@stmts), 4, 'one single-row insert with two references sends the sibling four statements')
  or diag(join("\n", @stmts));
like($stmts[0] // '', qr/^splitdb: START TRANSACTION ISOLATION LEVEL READ COMMITTED$/,
	'first the remote transaction starts');
like($stmts[1] // '', qr/^splitdb: SELECT l\.p FROM splitdb\.reference_lookup\(/,
	'then the customer is looked up and locked, as the owner of the table there');
like($stmts[2] // '', qr/^splitdb: SELECT l\.p FROM splitdb\.reference_lookup\(/,
	'then the product');
is($stmts[3] // '', 'splitdb: COMMIT', 'and the remote transaction commits');
is($source->safe_psql('mono', 'SELECT customer_id || \'/\' || product_id FROM line WHERE id = 2'),
	'2/2', 'the line is there');

# 2. a commit, then in the same query string a statement that waits
my $holder = $source->background_psql('mono', on_error_stop => 0);
$holder->query_safe('SELECT pg_advisory_lock(20)');
$offset = -s $sibling->logfile;
$writer->query_until(qr/multi starts/,
	"\\echo multi starts\nBEGIN \\; INSERT INTO line VALUES (3, 3, 3) \\; COMMIT \\; SELECT pg_advisory_lock(20) \\; SELECT pg_advisory_unlock(20);\n\\echo multi done\n");
$source->poll_query_until('mono',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'")
  or die 'the statement after the commit does not wait';
ok( $sibling->poll_query_until(
		'shop', q{
SELECT count(*) = 1 FROM pg_stat_activity a
 WHERE a.application_name = 'splitdb' AND a.state = 'idle'
   AND NOT EXISTS (SELECT FROM pg_locks l WHERE l.pid = a.pid)}),
	'while the statement after the commit waits, splitdb\'s session in the sibling is idle and holds no lock');
@stmts = statements_since($offset);
is($stmts[-1] // '', 'splitdb: COMMIT', 'its last statement was the COMMIT');
$holder->query_safe('SELECT pg_advisory_unlock(20)');
$writer->query_until(qr/multi done/, '');
is($source->safe_psql('mono', 'SELECT count(*) FROM line WHERE id = 3'),
	'1', 'the line of that transaction is there');

# 3. a lookup sent ahead fails in the sibling: a lock timeout there
$sibling->safe_psql('shop', "ALTER DATABASE shop SET lock_timeout = '300ms'");
$writer->quit;
$writer = $source->background_psql('mono', on_error_stop => 0);
$writer->query_safe('\set VERBOSITY verbose');
my $blocker = $sibling->background_psql('shop', on_error_stop => 0);

foreach my $case (['customer', 'INSERT INTO line VALUES (10, 7, 8)'],
	['product', 'INSERT INTO line VALUES (10, 8, 7)'])
{
	my ($table, $insert) = @$case;

	run_ok($blocker, "BEGIN; SELECT id FROM $table WHERE id = 7 FOR UPDATE");
	$err = run_error($writer, $insert);
	like($err, qr/ERROR:  55P03: canceling statement due to lock timeout/,
		"a lookup of the $table that times out in the sibling fails the insert with the remote SQLSTATE 55P03 and message");
	like($err, qr/CONTEXT:  remote statement: SELECT l\.p FROM splitdb\.reference_lookup\(/,
		"its context names the lookup, the statement that failed") or diag($err);
	is($source->safe_psql('mono', 'SELECT count(*) FROM line WHERE id = 10'),
		'0', "nothing is written ($table)");

	# in an open transaction: the transaction is aborted
	run_ok($writer, 'BEGIN');
	like(run_error($writer, $insert), qr/ERROR:  55P03: /,
		"inside a transaction block too ($table)");
	like(run_error($writer, 'SELECT 1'), qr/ERROR:  25P02: /,
		"the local transaction is aborted ($table)");
	run_ok($writer, 'ROLLBACK');

	# the row free again: the same session's connection is clean
	run_ok($blocker, 'ROLLBACK');
	run_ok($writer, $insert);
	is($source->safe_psql('mono', 'SELECT customer_id || \'/\' || product_id FROM line WHERE id = 10'),
		$table eq 'customer' ? '7/8' : '8/7',
		"once the $table is free, the same session's insert works");
	ok( $sibling->poll_query_until(
			'shop', q{
SELECT count(*) >= 1 AND bool_and(a.state = 'idle'
       AND NOT EXISTS (SELECT FROM pg_locks l WHERE l.pid = a.pid))
  FROM pg_stat_activity a WHERE a.application_name = 'splitdb'}),
		"and splitdb's sessions in the sibling are idle, without locks ($table)");
	$source->safe_psql('mono', 'DELETE FROM line WHERE id = 10');
}

# 4. writes through a shim: the sibling reports splitdb.relay_waiting with
#    every change, so the source asks it for the keys it left only when
#    some wait.  An update and a delete of customers that nothing in the
#    sibling changes in turn send no request of splitdb.reference_relayed().
run_ok($writer, 'INSERT INTO customer VALUES (500, \'new\')');
$offset = -s $sibling->logfile;
run_ok($writer, 'UPDATE customer SET name = \'renamed\' WHERE id = 500');
run_ok($writer, 'DELETE FROM customer WHERE id = 500');
@stmts = statements_since($offset);
my @fdw = grep { /^postgres_fdw: / } @stmts;
ok(scalar(grep { /^postgres_fdw: UPDATE / } @fdw) == 1 && scalar(grep { /^postgres_fdw: DELETE / } @fdw) == 1,
	'the update and the delete go through the shim') or diag(join("\n", @stmts));
is(scalar(grep { /reference_relayed/ } @fdw), 0,
	'and no request for keys left to the source follows them: the sibling reported none waiting')
  or diag(join("\n", @stmts));
is(scalar(grep { /SET CONSTRAINTS/ } @fdw), 0,
	'nor, at their commits, a SET CONSTRAINTS ALL IMMEDIATE: customer has no deferrable trigger there')
  or diag(join("\n", @stmts));
is($source->safe_psql('mono', 'SELECT count(*) FROM customer WHERE id = 500'), '0', 'the customer is gone');

# ... and when a trigger in the sibling deletes a product that a line
# refers to, in turn of an update through the shim, the sibling reports a
# key waiting (its splitdb loaded on demand there), and the source asks for
# it and refuses the delete as its foreign key would
$sibling->safe_psql(
	'shop', q{
CREATE FUNCTION drop_product() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM public.product WHERE id = NEW.id;
	RETURN NEW;
END $$;
CREATE TRIGGER customer_drops_product AFTER UPDATE ON customer
	FOR EACH ROW EXECUTE FUNCTION drop_product();
});
$offset = -s $sibling->logfile;
like(run_error($writer, 'UPDATE customer SET name = \'renamed\' WHERE id = 2'),
	qr/ERROR:  23503: update or delete on table "product" violates foreign key constraint "line_product_id_fkey" on table "line"/,
	'a product deleted in turn, which a line refers to, is refused');
@stmts = statements_since($offset);
is(scalar(grep { /^postgres_fdw: .*reference_relayed/ } @stmts), 1,
	'the source asked for the key the sibling reported waiting') or diag(join("\n", @stmts));
is($sibling->safe_psql('shop', 'SELECT count(*) FROM product WHERE id = 2'), '1', 'the product is still there');
run_ok($writer, 'UPDATE customer SET name = \'renamed\' WHERE id = 99');
is($sibling->safe_psql('shop', 'SELECT count(*) FROM product WHERE id = 99'), '0',
	'a product no line refers to goes, as without the split');

$blocker->quit;
$writer->quit;
$holder->quit;

done_testing();
