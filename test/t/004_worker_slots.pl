# Copyright (c) 2026, splitdb developers

# splitdb_migrate() needs a free background worker slot.
#
# One cluster with max_worker_processes = 1, a slot the logical replication
# launcher already takes.  Checked here:
# - splitdb_migrate() is refused with SQLSTATE 53400 and a hint that names
#   max_worker_processes, and the refusal changes nothing: no job row, the
#   table still a plain table in the source, nothing in the sibling;
# - with a slot free (max_worker_processes raised, server restarted) the
#   same call runs the job to the end.

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('slots');
$node->init;
$node->append_conf('postgresql.conf', 'max_worker_processes = 1');
$node->start;

$node->safe_psql('postgres', 'CREATE EXTENSION splitdb CASCADE');
$node->safe_psql('postgres', "SELECT splitdb_add_service('slot_svc')");
$node->safe_psql('postgres', q{
	CREATE TABLE slot_t (id integer PRIMARY KEY, v text);
	INSERT INTO slot_t SELECT g, 'v' || g FROM generate_series(1, 500) g;
	SELECT splitdb_assign('slot_svc', 'slot_t');
});

# the one slot is taken
is( $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'logical replication launcher'"),
	'1',
	'the logical replication launcher holds the only worker slot');

my ($ret, $stdout, $stderr) = $node->psql('postgres',
	"\\set VERBOSITY verbose\nSELECT splitdb_migrate('slot_svc', wait => true)");
isnt($ret, 0, 'splitdb_migrate fails without a free worker slot');
like($stderr, qr/ERROR:  53400: could not start a background worker for service "slot_svc"/,
	'refused with SQLSTATE 53400 and the service named');
like($stderr, qr/DETAIL:  Every background worker slot is in use \(max_worker_processes = 1\)\./,
	'the detail gives max_worker_processes');
like($stderr, qr/HINT:  Wait for other background workers to finish, or raise max_worker_processes/,
	'the hint says what to do');

is($node->safe_psql('postgres', 'SELECT count(*) FROM splitdb.job'),
	'0', 'the refusal wrote no job');
is($node->safe_psql('postgres', "SELECT relkind FROM pg_class WHERE oid = 'slot_t'::regclass"),
	'r', 'the table is still a plain table in the source');
is($node->safe_psql('slot_svc', "SELECT to_regclass('public.slot_t') IS NULL"),
	't', 'nothing was created in the sibling');

# a free slot: the same call goes through
$node->append_conf('postgresql.conf', 'max_worker_processes = 4');
$node->restart;
is($node->safe_psql('postgres', "SELECT splitdb_migrate('slot_svc', wait => true) > 0"),
	't', 'with a free slot the job runs');
is( $node->safe_psql('postgres',
		"SELECT state || ' ' || rows_copied FROM splitdb_status WHERE service = 'slot_svc'"),
	'done 500', 'and ends done with every row copied');
is($node->safe_psql('slot_svc', 'SELECT count(*), sum(id) FROM slot_t'),
	'500|125250', 'the sibling holds the rows');

$node->stop;
done_testing();
