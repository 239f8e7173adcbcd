# Copyright (c) 2026, splitdb developers

# What the application's sessions do around splitdb's background work.
#
# 1. The launcher's resumer, which fails and resumes in each database the jobs
# that a restart interrupted, reads that database's settings when it
# connects.  A search_path set on the database (ALTER DATABASE ... SET)
# that puts the application's schema before pg_catalog must not capture
# its statement's operators.  One cluster, splitdb preloaded, one service
# whose job is held mid-copy (splitdb.migrate_pause_at) while the database
# gets a search_path whose first schema shadows = on text and on bigint
# with functions that raise; then a fast restart.  Checked:
# - the launcher logs that it resumes the job after the restart, and no
#   operator of that schema is called;
# - the job ends done without another splitdb_migrate(), the sibling
#   holding the source's rows.
#
# 2. Steady inserts of referencing rows into a table that stays, while the
# referenced table moves online: each insert locks the referencing table,
# then checks the referenced row, which the cutover holds; the cutover then
# waits for the referencing table, whose foreign key it turns into a
# reference.  Three pgbench clients insert without pause; the job may try
# its cutover 4 times (splitdb.cutover_attempts).  Checked:
# - the job ends done (an attempt that locks the referencing table first
#   gets through), while the writers go on;
# - no referencing row lacks its referenced row, and no writer failed.
#
# 3. Writes through a shim into a sibling's partition with three referencing
# ends (three BEFORE triggers that send the rows' lookups ahead) while the relation's
# cache entry is invalidated over and over (ANALYZE) and the user mappings
# there change (which makes the triggers' definitions load again): the
# lookups read the relation's triggers and then the catalog, which may
# rebuild the relation's trigger descriptor and free the one read.
# Checked: no writer fails (a freed descriptor read as garbage gave
# "trigger ... has invalid arguments", with a hint to drop splitdb's own
# trigger).

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use SplitdbTest qw(start_source job_sql RUNNING JOB_SUMMARY);

my $svc  = 'sp_resume';
my $node = start_source('main', 10);

sub query
{
	my ($db, $sql) = @_;
	return $node->safe_psql($db, $sql);
}

query(
	'postgres', qq{
CREATE TABLE sp_item (id bigint PRIMARY KEY, note text);
INSERT INTO sp_item SELECT g, 'note ' || g FROM generate_series(1, 500) g;
SELECT splitdb_add_service('$svc');
SELECT splitdb_assign('$svc', 'sp_item');
});

# the job waits at its copy while this session holds the pause lock
my $holder = $node->background_psql('postgres');
$holder->query_safe('SELECT pg_advisory_lock(1936747639, 0)');
$holder->query_safe("SET splitdb.migrate_pause_at = 'copying'");
my $id = $holder->query_safe("SELECT splitdb_migrate('$svc')");
like($id, qr/^\d+$/, 'splitdb_migrate returns a job id');
$node->poll_query_until(
	'postgres', qq{
SELECT EXISTS (SELECT FROM splitdb.job j JOIN pg_stat_activity a ON a.pid = j.worker_pid
				WHERE j.service = '$svc' AND a.query = 'paused at copying')})
  or die 'the job does not pause at its copy: '
  . query('postgres', job_sql($svc, JOB_SUMMARY));

# the database's search_path now starts with a schema that shadows =
query(
	'postgres', q{
CREATE SCHEMA sp_app;
CREATE FUNCTION sp_app.captured_text(a text, b text) RETURNS boolean LANGUAGE plpgsql AS
$$BEGIN RAISE EXCEPTION 'operator =(text, text) of schema sp_app called'; END$$;
CREATE FUNCTION sp_app.captured_bigint(a bigint, b bigint) RETURNS boolean LANGUAGE plpgsql AS
$$BEGIN RAISE EXCEPTION 'operator =(bigint, bigint) of schema sp_app called'; END$$;
CREATE OPERATOR sp_app.= (LEFTARG = text, RIGHTARG = text, FUNCTION = sp_app.captured_text);
CREATE OPERATOR sp_app.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = sp_app.captured_bigint);
ALTER DATABASE postgres SET search_path = sp_app, pg_catalog, public;
});

my $offset = -s $node->logfile;
$holder->quit;
$node->restart(fail_ok => 0);
$node->wait_for_log(
	qr/the launcher looked for interrupted jobs in (\d+) of \1 databases/,
	$offset);
my $log = slurp_file($node->logfile, $offset);
like($log, qr/resuming job $id of service "$svc" after a restart/,
	'the launcher resumes the job after the restart');
unlike($log, qr/of schema sp_app called/,
	'no operator of the database search_path\'s schema runs');

my $running = RUNNING;
$node->poll_query_until('postgres',
	"SELECT state NOT IN $running FROM splitdb.job WHERE service = '$svc'")
  or die 'the resumed job does not end: ' . query('postgres', job_sql($svc, JOB_SUMMARY));
is(query('postgres', "SELECT state FROM splitdb.job WHERE service = '$svc'"),
	'done', 'the resumed job is done without another splitdb_migrate()')
  or diag(query('postgres', job_sql($svc, JOB_SUMMARY)));
is(query($svc, 'SELECT count(*), sum(id) FROM public.sp_item'),
	'500|125250', "the sibling holds the source's rows");

# 2. an online cutover under steady inserts of referencing rows
query('postgres', 'ALTER DATABASE postgres RESET search_path');
query(
	'postgres', q{
CREATE TABLE ap_parent (id int PRIMARY KEY, name text);
INSERT INTO ap_parent SELECT g, 'parent ' || g FROM generate_series(1, 200) g;
CREATE TABLE ap_child (id bigserial PRIMARY KEY, parent_id int NOT NULL REFERENCES ap_parent);
SELECT splitdb_add_service('ap_svc');
SELECT splitdb_assign('ap_svc', 'ap_parent');
});
my $script = "$PostgreSQL::Test::Utils::tmp_check/ap_writer.sql";
PostgreSQL::Test::Utils::append_to_file($script,
	"\\set p random(1, 200)\nINSERT INTO ap_child (parent_id) VALUES (:p);\n");
my ($out, $err) = ('', '');
my $writers = IPC::Run::start(
	[
		'pgbench', '-n', '--verbose-errors', '-c', '3', '-j', '1', '-T', '120', '-f', $script,
		'-h', $node->host, '-p', $node->port, 'postgres'
	],
	'>', \$out, '2>', \$err);
$node->poll_query_until('postgres', 'SELECT count(*) > 100 FROM ap_child')
  or die "the writers do not write: $err";
my ($rc, $stdout, $stderr) = $node->psql('postgres',
	"SET splitdb.cutover_attempts = 4; SELECT splitdb_migrate('ap_svc', wait => true)");
is(query('postgres', "SELECT state FROM splitdb.job WHERE service = 'ap_svc'"),
	'done', 'the online job cuts over while the referencing rows keep coming')
  or diag($stderr . ' ' . query('postgres', job_sql('ap_svc', JOB_SUMMARY)));
my $before = query('postgres', 'SELECT count(*) FROM ap_child');
$node->poll_query_until('postgres', "SELECT count(*) > $before FROM ap_child")
  or die "the writers stopped: $err";
$writers->kill_kill(grace => 5);
unlike($err, qr/ERROR/, 'no writer failed') or diag($err);
is(query('postgres', "SELECT count(*) FROM splitdb_orphans('ap_svc')"),
	'0', 'every referencing row has its referenced row');

# 3. writes through a shim into a sibling while its caches are invalidated
query(
	'postgres', q{
CREATE TABLE iv_a (id int PRIMARY KEY);
CREATE TABLE iv_b (id int PRIMARY KEY);
CREATE TABLE iv_c (id int PRIMARY KEY);
INSERT INTO iv_a SELECT generate_series(1, 100);
INSERT INTO iv_b SELECT generate_series(1, 100);
INSERT INTO iv_c SELECT generate_series(1, 100);
CREATE TABLE iv_child (day int, id bigint, a int, b int, c int, PRIMARY KEY (day, id))
	PARTITION BY RANGE (day);
CREATE TABLE iv_child_1 PARTITION OF iv_child FOR VALUES FROM (1) TO (50);
CREATE TABLE iv_child_2 PARTITION OF iv_child FOR VALUES FROM (50) TO (101);
ALTER TABLE iv_child_1 ADD FOREIGN KEY (a) REFERENCES iv_a, ADD FOREIGN KEY (b) REFERENCES iv_b,
	ADD FOREIGN KEY (c) REFERENCES iv_c;
CREATE SEQUENCE iv_ids;
SELECT splitdb_add_service('iv_svc');
SELECT splitdb_assign('iv_svc', 'iv_child');
SELECT splitdb_migrate('iv_svc', mode => 'offline', wait => true);
});
my $script_iv = "$PostgreSQL::Test::Utils::tmp_check/iv_writer.sql";
PostgreSQL::Test::Utils::append_to_file($script_iv,
	"\\set p random(1, 49)\nINSERT INTO iv_child VALUES (:p, nextval('iv_ids'), :p, :p, :p);\n");
($out, $err) = ('', '');
$writers = IPC::Run::start(
	[
		'pgbench', '-n', '--verbose-errors', '-c', '3', '-j', '1', '-T', '120', '-f', $script_iv,
		'-h', $node->host, '-p', $node->port, 'postgres'
	],
	'>', \$out, '2>', \$err);
$node->poll_query_until('iv_svc', 'SELECT count(*) > 100 FROM iv_child')
  or die "the writers do not write: $err";
for my $i (1 .. 150)
{
	query('iv_svc', "ANALYZE iv_child_1; CREATE ROLE iv_r$i;"
		  . " CREATE USER MAPPING FOR iv_r$i SERVER splitdb_source;"
		  . " DROP USER MAPPING FOR iv_r$i SERVER splitdb_source; DROP ROLE iv_r$i");
}
$writers->kill_kill(grace => 5);
unlike($err, qr/ERROR/, 'no write into the sibling failed while its caches were invalidated')
  or diag($err);

$node->stop;
done_testing();
