# Copyright (c) 2026, splitdb developers
#
# Checks of referenced keys on splitdb's own connection, with the sibling on
# a second server.
#
# "product" moves to service shop, whose sibling is a database of another
# server; "line" stays and refers to it.  An insert into line checks its key
# on splitdb's connection to the sibling (splitdb.check_connection):
#
# 1. the check's lock is held in the sibling, by a session of splitdb's own
#    that is idle in transaction, until the local commit;
# 2. a delete of the product through the shim, in another session, waits
#    for that lock in the sibling; once the insert has committed, it finds
#    the new line and is refused (23503): no line is left without its
#    product;
# 2b. a check on postgres_fdw's connection (after a write through the shim;
#    in one pipeline with its row_security setting) is interrupted while it
#    waits for a lock in the sibling: 57014, nothing written, and
#    postgres_fdw's session in the sibling is kept and works;
# 3. in one transaction, a check and then a delete of the product through
#    the shim: the lock moves to postgres_fdw's remote transaction first,
#    so the delete does not wait for its own transaction, and is refused;
# 4. the sibling restarts between two transactions: the next check opens a
#    new connection and succeeds;
# 5. the sibling is down: the check fails with the connection error, and
#    nothing is written.

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SplitdbTest qw(start_pair sibling_service_sql);

my ($source, $sibling, $user) = start_pair();
$sibling->safe_psql('postgres', 'CREATE DATABASE shop');
$source->safe_psql('postgres', 'CREATE DATABASE mono');
$source->safe_psql(
	'mono', q{
CREATE TABLE product (id integer PRIMARY KEY, name text);
CREATE TABLE line (id integer PRIMARY KEY, product_id integer REFERENCES product);
INSERT INTO product SELECT g, 'product ' || g FROM generate_series(1, 10) g;
});
$source->safe_psql('mono',
	"CREATE EXTENSION splitdb CASCADE;\n"
	  . sibling_service_sql($sibling, $user, 'shop', tables => ['product']));
my ($rc, $out, $err) =
  $source->psql('mono', "SELECT splitdb_migrate('shop', wait => true) > 0");
is($rc, 0, 'the migration to a sibling on another server succeeds');
diag($err) if $rc;

# splitdb's sessions in the sibling that hold a lock on product
sub check_locks
{
	return $sibling->safe_psql(
		'shop', q{
SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
 WHERE a.application_name = 'splitdb' AND a.state = 'idle in transaction'
   AND l.relation = 'product'::regclass AND l.mode = 'RowShareLock'});
}

# 1. the lock is held by splitdb's own session until the local commit
my $writer = $source->background_psql('mono', on_error_stop => 0);
$writer->query_safe('BEGIN');
$writer->query_safe('INSERT INTO line VALUES (1, 1)');
is(check_locks(), '1',
	'a check holds its lock in the sibling, in a session of splitdb idle in transaction');

# 2. a delete through the shim in another session waits for it, then is refused
my $deleter = $source->background_psql('mono', on_error_stop => 0);
$deleter->query_safe('\set VERBOSITY verbose');
$deleter->query_until(qr/deleter starts/,
	"\\echo deleter starts\nDELETE FROM product WHERE id = 1;\n\\echo deleter done\n");
$sibling->poll_query_until(
	'shop', q{
SELECT count(*) > 0 FROM pg_stat_activity
 WHERE datname = 'shop' AND application_name = 'postgres_fdw' AND wait_event_type = 'Lock'})
  or die 'the delete does not wait for the lock in the sibling';
pass('a delete of the product through the shim waits for the lock in the sibling');
$writer->query_safe('COMMIT');
$deleter->query_until(qr/deleter done/, '');
# the next query waits for psql's stderr too
my (undef, $deleter_failed) = $deleter->query('SELECT 1');
is($deleter_failed, 1, 'the delete failed');
like($deleter->{stderr}, qr/ERROR:  23503: update or delete on table "product" violates foreign key constraint "line_product_id_fkey"/,
	'once the insert committed, the delete finds the line: 23503');
is($sibling->safe_psql('shop', 'SELECT count(*) FROM product WHERE id = 1'),
	'1', 'the product is still in the sibling');
is($source->safe_psql('mono', 'SELECT product_id FROM line WHERE id = 1'),
	'1', 'the line committed');
$deleter->quit;

# 2b. a check on postgres_fdw's connection is interrupted while it waits:
# once a transaction has written to the sibling through the shim, its checks
# there run on postgres_fdw's connection, with row_security off and back in
# one pipeline (between.c).  The lookup waits for a lock on the product in
# the sibling; the insert's statement_timeout interrupts the wait, the
# pipeline is cancelled and read to its end, and the connection is kept:
# the session's next check runs on the same session of the sibling.
my $fdw_sessions = q{SELECT string_agg(pid::text, ',' ORDER BY pid) FROM pg_stat_activity
 WHERE datname = 'shop' AND application_name = 'postgres_fdw'};
my $victim = $source->background_psql('mono', on_error_stop => 0);
$victim->query_safe('\set VERBOSITY verbose');
$victim->query_safe("UPDATE product SET name = name WHERE id = 3");
my $fdw_before = $sibling->safe_psql('shop', $fdw_sessions);
isnt($fdw_before, '', 'the writer has a session of postgres_fdw in the sibling');
my $locker = $sibling->background_psql('shop', on_error_stop => 0);
$locker->query_safe('BEGIN');
$locker->query_safe('SELECT id FROM product WHERE id = 2 FOR UPDATE');
$victim->query_safe("SET statement_timeout = '1s'");
$victim->query_safe('BEGIN');
$victim->query_safe("UPDATE product SET name = name WHERE id = 3");
$victim->query('INSERT INTO line VALUES (20, 2)');
# the next query waits for psql's stderr too
$victim->query('ROLLBACK');
like($victim->{stderr}, qr/ERROR:  57014: canceling statement due to statement timeout/,
	'a check waiting for a lock on postgres_fdw\'s connection is cancelled: 57014');
$locker->query_safe('ROLLBACK');
$locker->quit;
is($source->safe_psql('mono', 'SELECT count(*) FROM line WHERE id = 20'),
	'0', 'the cancelled insert left nothing');
# psql's stderr keeps the error: the statements' effects are checked instead
$victim->query("RESET statement_timeout; BEGIN; UPDATE product SET name = name WHERE id = 3;"
	  . " INSERT INTO line VALUES (20, 2); COMMIT;");
is($source->safe_psql('mono', 'SELECT product_id FROM line WHERE id = 20'),
	'2', 'the next check on postgres_fdw\'s connection works');
is($sibling->safe_psql('shop', $fdw_sessions), $fdw_before,
	'on the same session of the sibling: the interrupted pipeline was read to its end');
$victim->quit;
$source->safe_psql('mono', 'DELETE FROM line WHERE id = 20');

# 3. a check, then a delete through the shim in the same transaction
($rc, $out, $err) = $source->psql(
	'mono', q{
\set VERBOSITY verbose
SET statement_timeout = '30s';
BEGIN;
INSERT INTO line VALUES (2, 2);
DELETE FROM product WHERE id = 2;
COMMIT;
});
like($err, qr/ERROR:  23503: update or delete on table "product"/,
	'a delete after a check in the same transaction does not wait for its own lock: 23503');
is( $source->safe_psql(
		'mono', 'SELECT (SELECT count(*) FROM line WHERE id = 2) || \'/\' || (SELECT count(*) FROM product WHERE id = 2)'),
	'0/1', 'nothing of that transaction stays');

# 3b. sessions that made checks end: their connections of splitdb close
# once the sibling answered the COMMIT sent without a wait, and the sibling
# logs no reset (it logged one for every such session)
my $splitdb_sessions = q{SELECT count(*) FROM pg_stat_activity
 WHERE datname = 'shop' AND application_name = 'splitdb'};
my $sessions_before = $sibling->safe_psql('shop', $splitdb_sessions);
my $log_offset = -s $sibling->logfile;
$source->safe_psql('mono', "INSERT INTO line VALUES ($_, $_)") for (6, 7);
$sibling->poll_query_until('shop', "SELECT ($splitdb_sessions) <= $sessions_before")
  or die 'the sessions of splitdb in the sibling do not end';
unlike(slurp_file($sibling->logfile, $log_offset), qr/could not receive data from client/,
	'sessions that made checks leave no reset in the sibling\'s log');
$source->safe_psql('mono', 'DELETE FROM line WHERE id IN (6, 7)');

# 4. the sibling restarts between two transactions of the writer
$writer->query_safe('INSERT INTO line VALUES (3, 3)');
$sibling->restart;
($out, $rc) = $writer->query('INSERT INTO line VALUES (4, 4)');
is($rc, 0, 'after a restart of the sibling, the next check opens a new connection');
is($source->safe_psql('mono', 'SELECT count(*) FROM line WHERE id IN (3, 4)'),
	'2', 'both lines are there');

# 5. the sibling is down
$sibling->stop;
$writer->query_safe('\set VERBOSITY verbose');
($out, $rc) = $writer->query('INSERT INTO line VALUES (5, 5)');
isnt($rc, 0, 'with the sibling down, the check fails');
like($writer->{stderr}, qr/ERROR:  (08006|08001): /,
	'with a connection error (08001 or 08006)');
$writer->quit;
is($source->safe_psql('mono', 'SELECT count(*) FROM line WHERE id = 5'),
	'0', 'and nothing is written');

done_testing();
