# Copyright (c) 2026, splitdb developers

# An application's session after the split, disturbed between and during its
# transactions, behaves as before the disturbance.
#
# "product" moves to service shop, a database of the same cluster; "line"
# stays and refers to it.  Role app writes with a user mapping of its own,
# so its checks run on splitdb's check connection for that mapping.
#
# 1. a check on splitdb's check connection waits for a lock in the sibling
#    and the insert's statement_timeout interrupts it (alone, and inside a
#    savepoint): 57014; what ran there is cancelled and read to its end, so
#    no session of splitdb is left waiting for the lock in the sibling (it
#    waited until the lock was released, then the sibling logged "could not
#    send data to client" and "connection to client lost"), the same session
#    serves the next checks, and the rows are right; the same when the
#    application's session is terminated during the wait (1b);
# 2. checks that fail in the sibling (42501, the mapped role lost EXECUTE
#    on splitdb.reference_lookup()) again and again leave the statements prepared in splitdb's
#    session there as they were: it prepared them all again after each
#    error, under new names, and kept the old ones for its life (a leak of
#    the sibling's memory).  Counted in the memory contexts the sibling logs
#    for that session;
# 3. splitdb's session in the sibling is terminated while it holds the lock
#    of a check, and a concurrent delete of the referenced row goes through
#    there before the commit: the commit checks the key again (23503); it
#    committed a line without its product;
# 4. a statement fails while its row's lookup, sent ahead, waits for a lock
#    in the sibling: the session's next checks do not wait for that lock;
# 5. the session's lock_timeout bounds a check's wait in the sibling (55P03);
# 6. a row's lookup sent ahead, proved a wrong guess by a later BEFORE
#    trigger, fails in the sibling: the statement does not fail with it.

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SplitdbTest qw(scram_hba poll_until);

my $node = PostgreSQL::Test::Cluster->new('source');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'splitdb'\nmax_worker_processes = 16");
$node->start;
my $super = $node->safe_psql('postgres', 'SELECT current_user');
$node->safe_psql('postgres',
	"SET log_statement = 'none'; CREATE ROLE app LOGIN PASSWORD 'app-pw'");
open(my $fh, '>', $node->data_dir . '/pg_hba.conf') or die $!;
print $fh scram_hba($node, $super);
close($fh);
$node->reload;

$node->safe_psql('postgres', 'CREATE DATABASE mono');
$node->safe_psql(
	'mono', q{
CREATE EXTENSION splitdb CASCADE;
CREATE TABLE product (id integer PRIMARY KEY);
CREATE TABLE line (id integer PRIMARY KEY, product_id integer REFERENCES product);
INSERT INTO product SELECT g FROM generate_series(1, 50) g;
GRANT SELECT, INSERT, UPDATE, DELETE ON product, line TO app;
SELECT splitdb_add_service('shop');
SELECT splitdb_assign('shop', 'product');
});
my ($rc, $out, $err) =
  $node->psql('mono', "SELECT splitdb_migrate('shop', wait => true) > 0");
is($rc, 0, 'the migration succeeds');
diag($err) if $rc;
$node->safe_psql('mono',
	"SET log_statement = 'none'; CREATE USER MAPPING FOR app SERVER splitdb_shop"
	  . " OPTIONS (user 'app', password 'app-pw')");
$node->safe_psql('shop', 'GRANT SELECT, INSERT, UPDATE, DELETE ON product TO app');

# splitdb's sessions in the sibling, and those waiting for a lock
my $splitdb_sessions = q{SELECT string_agg(pid::text, ',' ORDER BY pid) FROM pg_stat_activity
 WHERE datname = 'shop' AND application_name = 'splitdb'};
my $splitdb_waiting = q{SELECT count(*) FROM pg_stat_activity
 WHERE datname = 'shop' AND application_name = 'splitdb' AND wait_event_type = 'Lock'};

$ENV{PGPASSWORD} = 'app-pw';
my $app = $node->background_psql('mono', on_error_stop => 0, extra_params => [ '-U', 'app' ]);
$app->query_safe('\set VERBOSITY verbose');
$app->query_safe('INSERT INTO line VALUES (1, 1)');
my $session = $node->safe_psql('shop', $splitdb_sessions);
isnt($session, '', 'app\'s check ran in a session of splitdb in the sibling');

# 1. a check interrupted while it waits for a lock in the sibling
my $log_offset = -s $node->logfile;
my $locker = $node->background_psql('shop', on_error_stop => 0);
$locker->query_safe('BEGIN');
$locker->query_safe('SELECT id FROM product WHERE id IN (2, 3) FOR UPDATE');
$app->query_safe("SET statement_timeout = '1s'");
$app->query('INSERT INTO line VALUES (2, 2)');
# the next query waits for psql's stderr too
$app->query('SELECT 1');
like($app->{stderr}, qr/ERROR:  57014: canceling statement due to statement timeout/,
	'a check waiting for a lock on splitdb\'s connection is interrupted: 57014');
is($node->safe_psql('shop', $splitdb_waiting),
	'0', 'no session of splitdb is left waiting for the lock in the sibling');
# inside a savepoint, the transaction going on
$app->query('BEGIN; INSERT INTO line VALUES (4, 4); SAVEPOINT s;'
	  . ' INSERT INTO line VALUES (3, 3); ROLLBACK TO SAVEPOINT s;'
	  . ' INSERT INTO line VALUES (5, 5); COMMIT');
is($node->safe_psql('shop', $splitdb_waiting),
	'0', 'nor after an interrupted check inside a savepoint');
is($node->safe_psql('mono', 'SELECT string_agg(id::text, \',\' ORDER BY id) FROM line'),
	'1,4,5', 'the rows before and after the savepoint committed, the interrupted ones not');
$locker->query_safe('ROLLBACK');
$locker->quit;
# psql's stderr keeps the errors: cleared before each look
$app->{stderr} = '';
$app->query('RESET statement_timeout');
$app->query('INSERT INTO line VALUES (2, 2)');
$app->query('DELETE FROM product WHERE id = 2');
$app->query('SELECT 1');
like($app->{stderr}, qr/ERROR:  23503: update or delete on table "product"/,
	'the session\'s next checks work: the delete is refused');
unlike($app->{stderr}, qr/ERROR:  (?!23503)/, 'with no other error');
is($node->safe_psql('mono', 'SELECT count(*) FROM line WHERE id = 2'), '1', 'the insert went in');
is($node->safe_psql('shop', $splitdb_sessions),
	$session, 'the same session of splitdb in the sibling served them');
# the session in the sibling got the locks once they were released, and
# found no client: give it the time to log that
sleep(1);
my $log = slurp_file($node->logfile, $log_offset);
unlike($log, qr/could not send data to client|connection to client lost|unexpected EOF/,
	'the sibling logged no lost client');

# 1b. the application's session is terminated while its check waits: the
# check is cancelled and read to its end before the backend exits (it left
# a session waiting for the lock, then the sibling logged "could not
# receive data from client: Connection reset by peer" or the lost client)
$log_offset = -s $node->logfile;
my $doomed = $node->background_psql('mono', on_error_stop => 0, extra_params => [ '-U', 'app' ]);
my $doomed_pid = $doomed->query_safe('SELECT pg_backend_pid()');
$locker = $node->background_psql('shop', on_error_stop => 0);
$locker->query_safe('BEGIN');
$locker->query_safe('SELECT id FROM product WHERE id = 6 FOR UPDATE');
$doomed->query_until(qr/insert starts/, "\\echo insert starts\nINSERT INTO line VALUES (6, 6);\n");
$node->poll_query_until('shop', "$splitdb_waiting AND usename = 'app'", '1')
  or die 'the check does not wait for the lock in the sibling';
$node->safe_psql('mono', "SELECT pg_terminate_backend($doomed_pid, 10000)");
is($node->safe_psql('shop', $splitdb_waiting),
	'0', 'a terminated session leaves no session of splitdb waiting for the lock in the sibling');
$locker->query_safe('ROLLBACK');
$locker->quit;
eval { $doomed->quit };
sleep(1);
$log = slurp_file($node->logfile, $log_offset);
unlike($log, qr/could not send data to client|connection to client lost|could not receive data from client|unexpected EOF/,
	'nor a lost client in the log');
is($node->safe_psql('mono', 'SELECT count(*) FROM line WHERE id = 6'), '0',
	'the terminated session\'s insert left nothing');

# 2. checks failing in the sibling leave its prepared statements as they were
$app->query('INSERT INTO line VALUES (11, 11)');
$session = $node->safe_psql('shop', $splitdb_sessions);
$node->safe_psql('shop', 'REVOKE EXECUTE ON FUNCTION splitdb.reference_lookup(bigint, "char", integer, text[], text[], bigint, text) FROM PUBLIC');
$app->{stderr} = '';
$app->query('INSERT INTO line VALUES (10, 10)') for 1 .. 20;
$app->query('SELECT 1');
like($app->{stderr}, qr/ERROR:  42501: permission denied for function reference_lookup/,
	'a check that the sibling refuses fails: 42501');
$node->safe_psql('shop', 'GRANT EXECUTE ON FUNCTION splitdb.reference_lookup(bigint, "char", integer, text[], text[], bigint, text) TO PUBLIC');
$app->{stderr} = '';
$app->query('INSERT INTO line VALUES (10, 10)');
$app->query('SELECT 1');
is($app->{stderr}, '', 'then, with the right given back, the session\'s next check works');
is($node->safe_psql('shop', $splitdb_sessions),
	$session, 'the same session of splitdb in the sibling served them all');
$log_offset = -s $node->logfile;
$node->safe_psql('shop', "SELECT pg_log_backend_memory_contexts($session)");
poll_until(sub { slurp_file($node->logfile, $log_offset) =~ /\[$session\].*Grand total/ },
	undef, 'the memory contexts of splitdb\'s session');
my @lookups = (slurp_file($node->logfile, $log_offset) =~
	  /\[$session\][^\n]*CachedPlanSource[^\n]*FOR KEY SHARE/g);
cmp_ok(scalar(@lookups), '<=', 2,
	'splitdb\'s session in the sibling holds its lookup prepared once, not once per failed check');

# 3. splitdb's session in the sibling is terminated while it holds the lock
# of a check, and a concurrent delete of the product goes through there (it
# cannot see the uncommitted line): the commit checks the key again and is
# refused, instead of committing a line without its product
$app->{stderr} = '';
$app->query('BEGIN; INSERT INTO line VALUES (40, 40);');
$node->safe_psql('shop',
	"SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity"
	  . " WHERE datname = 'shop' AND application_name = 'splitdb' AND usename = 'app'");
$node->safe_psql('shop', 'DELETE FROM product WHERE id = 40');
$app->query('COMMIT');
$app->query('SELECT 1');
like($app->{stderr}, qr/ERROR:  23503: insert or update on table "line" violates foreign key constraint "line_product_id_fkey"/,
	'the commit after splitdb\'s session was terminated checks the key again: 23503');
is($node->safe_psql('mono', 'SELECT count(*) FROM line WHERE id = 40'), '0',
	'no line without its product');
$app->{stderr} = '';
$app->query('INSERT INTO line VALUES (41, 41)');
$app->query('SELECT 1');
is($app->{stderr}, '', 'the session\'s next check works');

# 4. a statement fails after its row's lookup went ahead and while that
# lookup waits for a lock in the sibling (a duplicate key here): the lookup
# is cancelled there, and the session's next checks, of other keys, do not
# wait for that lock (they waited until it was released, or until their
# statement_timeout); at the end of a transaction and of a subtransaction
$locker = $node->background_psql('shop', on_error_stop => 0);
$locker->query_safe('BEGIN');
$locker->query_safe('SELECT id FROM product WHERE id = 45 FOR UPDATE');
$app->{stderr} = '';
$app->query("SET statement_timeout = '3s'");
$app->query('INSERT INTO line VALUES (1, 45)');
$app->query('INSERT INTO line VALUES (46, 46)');
$app->query(q{DO $$
BEGIN
	BEGIN
		INSERT INTO line VALUES (1, 45);
	EXCEPTION WHEN unique_violation THEN
		NULL;
	END;
	INSERT INTO line VALUES (47, 47);
END
$$});
$app->query('RESET statement_timeout');
$app->query('SELECT 1');
like($app->{stderr}, qr/ERROR:  23505: duplicate key value violates unique constraint "line_pkey"/,
	'the insert whose lookup waits in the sibling fails on its duplicate key: 23505');
unlike($app->{stderr}, qr/57014/, 'the next checks do not wait for that lock');
is($node->safe_psql('mono', 'SELECT string_agg(id::text, \',\' ORDER BY id) FROM line WHERE id IN (46, 47)'),
	'46,47', 'they went in, after the end of a transaction and of a subtransaction');
$locker->query_safe('ROLLBACK');
$locker->quit;

# 5. the session's lock_timeout bounds a check's wait for a lock in the
# sibling, as it bounds a local foreign key's: 55P03 (the check waited
# until the lock was released, or until statement_timeout); and a
# transaction that sets it back to 0 waits as before
$locker = $node->background_psql('shop', on_error_stop => 0);
$locker->query_safe('BEGIN');
$locker->query_safe('SELECT id FROM product WHERE id = 48 FOR UPDATE');
$app->{stderr} = '';
$app->query("SET statement_timeout = '3s'");
$app->query("SET lock_timeout = '200ms'");
$app->query('INSERT INTO line VALUES (48, 48)');
$app->query('SELECT 1');
like($app->{stderr}, qr/ERROR:  55P03: canceling statement due to lock timeout/,
	'a check that waits longer than lock_timeout in the sibling fails: 55P03');
$app->{stderr} = '';
$app->query('INSERT INTO line VALUES (49, 49)');
$app->query('BEGIN; SET LOCAL lock_timeout = 0; INSERT INTO line VALUES (48, 48); COMMIT');
$app->query('RESET lock_timeout; RESET statement_timeout');
like($app->{stderr}, qr/ERROR:  57014: canceling statement due to statement timeout/,
	'with lock_timeout set back to 0 in a transaction, the check waits until statement_timeout');
is($node->safe_psql('mono', 'SELECT string_agg(id::text, \',\' ORDER BY id) FROM line WHERE id IN (48, 49)'),
	'49', 'the session\'s next check, of another key, works');
$locker->query_safe('ROLLBACK');
$locker->quit;

# 6. a row's lookup sent ahead is a guess that a later BEFORE trigger
# proves wrong, and it fails in the sibling (55P03: its key is locked there
# longer than lock_timeout): the statement checks the key the row has, in
# a new remote transaction, or the usual way inside a transaction that
# holds locks there (it failed with 25P02, "current transaction is
# aborted", about the lookup of that other key)
$node->safe_psql(
	'mono', q{
CREATE FUNCTION line_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.id IN (60, 62) THEN NEW.product_id := NEW.product_id + 1; END IF;
	RETURN NEW;
END
$$;
CREATE TRIGGER zz_rewrite BEFORE INSERT ON line FOR EACH ROW EXECUTE FUNCTION line_rewrite();
});
$locker = $node->background_psql('shop', on_error_stop => 0);
$locker->query_safe('BEGIN');
$locker->query_safe('SELECT id FROM product WHERE id IN (20, 22) FOR UPDATE');
$app->{stderr} = '';
$app->query("SET lock_timeout = '200ms'");
$app->query('INSERT INTO line VALUES (60, 20)');
$app->query('BEGIN; INSERT INTO line VALUES (61, 21); INSERT INTO line VALUES (62, 22); COMMIT');
$app->query('RESET lock_timeout');
$app->query('SELECT 1');
is($app->{stderr}, '', 'a wrong guess that fails in the sibling fails nothing here');
is($node->safe_psql('mono',
	'SELECT string_agg(id || \':\' || product_id, \',\' ORDER BY id) FROM line WHERE id BETWEEN 60 AND 62'),
	'60:21,61:21,62:23', 'the rows went in with the keys their trigger gave them');
$locker->query_safe('ROLLBACK');
$locker->quit;

$app->quit;
$node->stop;
done_testing();
