# Copyright (c) 2026, splitdb developers
#
# What pg_dump carries of splitdb's catalog.  splitdb registers every
# catalog table with pg_extension_config_dump(), the migration jobs
# included (sql/splitdb--0.1.sql says why): after a migration of service
# ord, pg_dump of the source holds every row of splitdb.job (worker_pid
# included), splitdb.job_table and splitdb.reference, and the sequence's
# value; pg_dump of the sibling holds its splitdb.reference_end.  The dump
# of the source restored into a new database gives the same rows, and
# splitdb_status there reads the job as done; a job that the dump caught
# while its worker ran reads as failed there, since no splitdb worker has
# its pid.

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SplitdbTest qw(start_source);

my $node = start_source('main', 1000);
$node->safe_psql(
	'postgres', q{
CREATE TABLE customer (id integer PRIMARY KEY);
CREATE TABLE orders (id integer PRIMARY KEY, customer_id integer REFERENCES customer);
INSERT INTO customer SELECT generate_series(1, 5);
INSERT INTO orders SELECT g, g FROM generate_series(1, 5) g;
SELECT splitdb_add_service('ord');
SELECT splitdb_assign('ord', 'orders');
});
is($node->safe_psql('postgres', "SELECT splitdb_migrate('ord', wait => true) > 0"),
	't', 'the migration of ord ends');
is( $node->safe_psql(
		'postgres', q{
SELECT state || ', pid ' || (worker_pid IS NOT NULL) || ', '
	   || (SELECT count(*) FROM splitdb.job_table) || ' job tables, '
	   || (SELECT count(*) FROM splitdb.reference) || ' references'
  FROM splitdb.job}),
	'done, pid true, 1 job tables, 1 references',
	'the source holds a done job with its worker\'s pid, a job table and a reference');

# pg_dump of $db, plain text
sub dump_of
{
	my ($db) = @_;
	my ($out, $err);
	IPC::Run::run([ 'pg_dump', '-d', $node->connstr($db) ], '>', \$out, '2>', \$err)
	  or die "pg_dump of $db failed: $err";
	return $out;
}

# the data lines of the dump's COPY of $table, or undef when it has none
sub dumped_rows
{
	my ($dump, $table) = @_;
	return $dump =~ /^COPY \Q$table\E \([^\n]*\) FROM stdin;\n(.*?)^\\\.$/ms ? $1 : undef;
}

# the rows of $table in $db, as COPY writes them, with pg_dump's empty
# search_path (a regclass reads schema-qualified)
sub table_rows
{
	my ($db, $table, $order) = @_;
	return $node->safe_psql($db,
		"SET search_path = pg_catalog; COPY (SELECT * FROM $table ORDER BY $order) TO STDOUT")
	  . "\n";
}

my $dump = dump_of('postgres');
for my $t (
	[ 'splitdb.job',       'job_id' ],
	[ 'splitdb.job_table', 'job_id, relid' ],
	[ 'splitdb.reference', 'job_id, child_relid, constraint_name' ])
{
	my ($table, $order) = @$t;
	my $rows = dumped_rows($dump, $table);
	is(join("\n", sort split /\n/, $rows // '') . "\n",
		join("\n", sort split /\n/, table_rows('postgres', $table, $order)) . "\n",
		"pg_dump of the source carries every row of $table");
}
like(
	dumped_rows($dump, 'splitdb.job'),
	qr/^1\tord\tonline\tdone\tdone\t.*\t\\N\t\\N\t\d+\t\d+\t\d+\t/m,
	'the dumped job row: online, done, no error, its worker\'s pid, its replay rounds and lag');
like($dump, qr/^SELECT pg_catalog\.setval\('splitdb\.job_id_seq', 1, true\);$/m,
	'pg_dump of the source carries splitdb.job_id_seq');

my $sibling_dump = dump_of('ord');
is(dumped_rows($sibling_dump, 'splitdb.reference_end'),
	table_rows('ord', 'splitdb.reference_end', 'reference_id, side'),
	'pg_dump of the sibling carries its splitdb.reference_end');

# the dump restored into a new database
$node->safe_psql('postgres', 'CREATE DATABASE restored');
my ($ret, $out, $err) =
  $node->psql('restored', $dump, on_error_stop => 1, extra_params => [ '-q' ]);
is($ret, 0, 'the dump of the source restores into a new database') or diag($err);
for my $t (
	[ 'splitdb.job',       'job_id' ],
	[ 'splitdb.job_table', 'job_id, relid' ],
	[ 'splitdb.service',   'service' ])
{
	my ($table, $order) = @$t;
	is(table_rows('restored', $table, $order), table_rows('postgres', $table, $order),
		"the restored $table holds the source's rows");
}
is($node->safe_psql('restored', "SELECT state || ', ' || phase FROM splitdb_status"),
	'done, done', 'the restored database reads the job as done');
$node->safe_psql('restored',
	"UPDATE splitdb.job SET state = 'copying', phase = 'copying', finished_at = NULL");
is( $node->safe_psql(
		'restored',
		"SELECT state || ', ' || (worker_pid IS NULL) || ', ' || (last_error LIKE '%ended without recording a result%') FROM splitdb_status"
	),
	'failed, true, true',
	'a restored job whose row says its worker runs reads as failed: no splitdb worker has its pid');

done_testing();
