# Copyright (c) 2026, splitdb developers

# A job whose connection to the sibling is no superuser there could never cut
# over (the cutover installs splitdb in the sibling): it is refused before
# anything changes.  splitdb_migrate() refuses such a mapping itself
# (regression test migrate_sibling_role); this is the other way in, a job
# that the launcher resumes after a restart, whose user mapping was changed
# while it ran.
#
# One cluster, the sibling a database of its own.  The worker of an offline
# job is held after the first batch of its copy (splitdb.migrate_pause_at);
# meanwhile the service's user mapping is made to name a role that is no
# superuser ("mover Ü", whose name needs quotes).  The server stops with
# -m immediate and starts again; the launcher resumes the job, and its
# worker:
# - fails the job with 42501, naming the role, in phase copying, without
#   running a step: the sibling's table holds the first batch only, the
#   source's table is still a table with every row, and takes writes;
# - after the mapping names the superuser again, one splitdb_migrate(wait
#   => true) brings the same job to done, with every row, the one written
#   while it was failed included.

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SplitdbTest qw(start_source job_sql poll_until);

my $batch     = 100;
my $rows      = 1000;
my $pause_key = 1936747639;    # SPLITDB_MIGRATE_PAUSE_KEY

my $node = start_source('source', $batch);
my $user = $node->safe_psql('postgres', 'SELECT current_user');

$node->safe_psql(
	'postgres', qq{
CREATE ROLE "mover Ü" LOGIN;
CREATE TABLE lager (id integer PRIMARY KEY, v text NOT NULL);
INSERT INTO lager SELECT g, 'v' || g FROM generate_series(1, $rows) g;
SELECT splitdb_add_service('sr');
SELECT splitdb_assign('sr', 'lager');
});

sub job
{
	my ($columns) = @_;
	return $node->safe_psql('postgres', job_sql('sr', $columns));
}

# the worker held after the copy's first batch
my $holder = $node->background_psql('postgres');
$holder->query_safe("SELECT pg_advisory_lock($pause_key, 0)");
my $id = $node->safe_psql('postgres',
	"SET splitdb.migrate_pause_at = 'copying'; SELECT splitdb_migrate('sr', mode => 'offline')");
poll_until(
	sub {
		$node->safe_psql('postgres',
			"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'splitdb worker'"
			  . " AND query = 'paused at copying'") eq '1';
	},
	undef,
	'the worker to pause at copying');
is($node->safe_psql('sr', 'SELECT count(*) FROM lager'),
	$batch, 'the sibling holds the first batch while the worker is held');

# the mapping changes under the running job; its open connection is the
# superuser's still
$node->safe_psql('postgres',
	q{ALTER USER MAPPING FOR CURRENT_USER SERVER splitdb_sr OPTIONS (SET user 'mover Ü')});
$node->stop('immediate');
eval { $holder->quit };    # its server is gone: the pause ends with it
$node->start;

poll_until(sub { job('state') eq 'failed' && job('runs') eq '2' },
	undef, 'the resumed run of the job to fail');
is(job('phase || \' \' || last_sqlstate'), 'copying 42501',
	'the resumed run fails with 42501, in the phase it was resumed in');
like(
	job('last_error'),
	qr/^role "mover Ü", which the user mapping of service "sr" connects as, is not a superuser in the sibling \(The cutover installs splitdb in the sibling/,
	'the error names the role and says why');
ok( $node->log_contains(
		qr/HINT:  Map the service's server to a superuser of the sibling's cluster with ALTER USER MAPPING, then call splitdb_migrate\(\) again\./
	),
	'the server log gives the hint');
is($node->safe_psql('sr', 'SELECT count(*) FROM lager'),
	$batch, 'the refused run copied nothing more');
is($node->safe_psql('sr', "SELECT count(*) FROM pg_extension WHERE extname = 'splitdb'"),
	'0', 'nor installed splitdb in the sibling');
is( $node->safe_psql('postgres',
		"SELECT relkind::text || ' ' || (SELECT count(*) FROM lager) FROM pg_class WHERE oid = 'lager'::regclass"),
	"r $rows",
	'the source\'s table is still a table with every row');
$node->safe_psql('postgres', "INSERT INTO lager VALUES (" . ($rows + 1) . ", 'dazwischen')");
pass('the source\'s table takes writes while the job is failed');

# the superuser again: the same job ends done
$node->safe_psql('postgres',
	"ALTER USER MAPPING FOR CURRENT_USER SERVER splitdb_sr OPTIONS (SET user '$user')");
is($node->safe_psql('postgres', "SELECT splitdb_migrate('sr', wait => true)"),
	$id, 'splitdb_migrate() resumes the same job');
is(job('state || \' \' || runs'), 'done 3', 'the job is done, after three runs');
is( $node->safe_psql('sr',
		"SELECT count(*) || ' ' || count(DISTINCT id) || ' ' || count(*) FILTER (WHERE v = 'dazwischen') FROM lager"),
	($rows + 1) . ' ' . ($rows + 1) . ' 1',
	'the sibling holds every row once, the one written in between included');
is($node->safe_psql('postgres', "SELECT relkind FROM pg_class WHERE oid = 'lager'::regclass"),
	'f', 'the source\'s table is a shim');

$node->stop;
done_testing();
