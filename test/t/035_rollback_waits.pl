# Copyright (c) 2026, splitdb developers

# splitdb_rollback() while writers hold the tables: each attempt at the
# switch's locks that times out in the source, before the sibling's
# transaction has begun, must leave the sibling's connection as it found
# it.  Before the fix the worker sent ROLLBACK there all the same, and the
# sibling logged "WARNING:  there is no transaction in progress" at every
# attempt: noise in the server log of a rollback that works as documented.
#
# One cluster, a sibling database on it: a table moves; a session holds
# ROW EXCLUSIVE on its shim (an open insert) for a while, so the rollback's first attempts
# wait (logged "the rollback of service ... waits"); the rollback then ends
# rolled_back with the rows, and the log holds no such warning.  Migrated
# again, the service is rolled back once more, held before its cleanup: a
# write in the sibling then gets the refusal of a rolled-back service.

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SplitdbTest qw(start_source);

my $node = start_source('rbw', 1000);
my $svc  = 'rbw_svc';

$node->safe_psql('postgres', q{
CREATE TABLE rbw_item (id integer PRIMARY KEY, note text);
INSERT INTO rbw_item SELECT g, 'item ' || g FROM generate_series(1, 50) g;
});
$node->safe_psql('postgres', "SELECT splitdb_add_service('$svc')");
$node->safe_psql('postgres', "SELECT splitdb_assign('$svc', 'rbw_item')");
$node->safe_psql('postgres', "SELECT splitdb_migrate('$svc', wait => true)");
is($node->safe_psql('postgres', "SELECT state FROM splitdb.job WHERE service = '$svc'"),
	'done', 'the service is migrated');

# a writer holds the shim (ROW EXCLUSIVE): the switch's EXCLUSIVE lock waits
my $log_offset = -s $node->logfile;
my $holder = $node->background_psql('postgres');
$holder->query_safe("BEGIN; INSERT INTO rbw_item VALUES (51, 'held')");

my $caller = $node->background_psql('postgres', on_error_stop => 0);
$caller->query_until(qr/caller starts/, "\\echo caller starts\nSELECT splitdb_rollback('$svc');\n\\echo caller done\n");
$node->wait_for_log(qr/the rollback of service "$svc" waits/, $log_offset);
$holder->query_safe('COMMIT');
$holder->quit;
$caller->query_until(qr/caller done/, '');
$caller->quit;

is($node->safe_psql('postgres', "SELECT state FROM splitdb.job WHERE service = '$svc'"),
	'rolled_back', 'the rollback ends once the writer commits');
is($node->safe_psql('postgres', "SELECT count(*) || ' ' || max(id) FROM rbw_item"),
	'51 51', 'the source holds every row, the writer\'s included');
is($node->safe_psql('postgres', "SELECT relkind FROM pg_class WHERE oid = 'rbw_item'::regclass"),
	'r', 'the table is the original again');

my $log = slurp_file($node->logfile, $log_offset);
unlike($log, qr/there is no transaction in progress/,
	'the attempts that waited sent no ROLLBACK to an idle sibling connection');

# Between the sibling's commit and its cleanup, its tables refuse writes
# with a message that names the service and the table as PostgreSQL's
# messages name objects (it read "service rbw_svc was rolled back:
# rbw_item no longer takes writes").
my $pause_key = 1936747638;    # SPLITDB_ROLLBACK_PAUSE_KEY
$node->safe_psql('postgres', "SELECT splitdb_migrate('$svc', wait => true)");
my $job = $node->safe_psql('postgres',
	"SELECT max(job_id) FROM splitdb.job WHERE service = '$svc'");
my $lock = $node->background_psql('postgres');
$lock->query_safe("SELECT pg_advisory_lock($pause_key, $job)");
$caller = $node->background_psql('postgres', on_error_stop => 0);
$caller->query_safe("SET splitdb.rollback_pause_at = 'before_cleanup'");
$caller->query_until(qr/caller starts/, "\\echo caller starts\nSELECT splitdb_rollback('$svc');\n\\echo caller done\n");
$node->poll_query_until('postgres',
	"SELECT count(*) FROM pg_stat_activity WHERE query = 'paused at before_cleanup'", '1')
  or die "the rollback of $svc does not pause before its cleanup";
my ($ret, $out, $err) = $node->psql($svc, "INSERT INTO rbw_item VALUES (52, 'late')");
like($err, qr/ERROR:  service "$svc" was rolled back: table "public\.rbw_item" no longer takes writes/,
	'a write in the sibling after the switch names the service and the table');
$lock->query_safe("SELECT pg_advisory_unlock($pause_key, $job)");
$lock->quit;
$caller->query_until(qr/caller done/, '');
$caller->quit;
is($node->safe_psql('postgres', "SELECT state FROM splitdb.job WHERE job_id = $job"),
	'rolled_back', 'the second rollback ends');

$node->stop;
done_testing();
