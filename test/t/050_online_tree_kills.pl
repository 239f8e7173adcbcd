# Copyright (c) 2026, splitdb developers

# Kills and immediate stops of an online job in every phase while the
# application writes through every level of a partition tree and of an
# inheritance pair, and into a table whose name needs quotes.
#
# Two clusters, each keeping passwords as SCRAM (every role logs in with
# its password): the source (restart_after_crash on, as in production) and
# the sibling, on a server of its own, so that a session of the test there
# outlives the source's crashes.  The service's tables are owned by
# tabowner, a role that is no superuser:
# - ev, partitioned by region: ev_nord, and ev_sued, partitioned again by
#   bucket, with ev_sued_lo and a default partition ev_sued_rest; the key
#   (id, region, bucket) holds the partition keys, so a row that an UPDATE
#   moves between partitions changes its key;
# - fz, with an inheritance child fz_lkw (a column of its own);
# - "Größe Konto", a composite key ("Land", "Nr").
# The writers are pgbench clients connecting as app, a role with only the
# rights it needs (SELECT, INSERT, UPDATE, DELETE on the tables, the
# mirrors and the audit, USAGE on the sequence, EXECUTE on w_write()).  Each
# transaction (REPEATABLE READ) calls w_write(), which writes through the
# root, the partitioned partition and the leaves (rows moved between
# partitions by an UPDATE of region, and of bucket, and by a MERGE through
# the root; an upsert through the partitioned partition), through fz, ONLY
# fz and fz_lkw (a key changed through the parent), and into "Größe Konto"
# (a key changed, an upsert), makes
# the same change to a mirror table that stays in the source (m_ev, m_fz,
# m_lkw, m_konto), and records its number and the net rows it added to each
# table in w_audit, all in the same transaction.  Once the tables are shims
# it writes nothing (a write through a shim commits in the sibling before
# the mirror's commits in the source: the two-database commit window).
#
# The job is held at each test hook point of its phases in turn (copying,
# indexing, catching_up, verifying, cutover, cutover_committing) while the
# writers write, then its worker is killed with SIGKILL (a crash-restart of
# the source) or the source is stopped immediately and started again (at
# verifying, the sibling first as well).  For
# every kill but the last, a session of the test holds the job's fence lock
# in the sibling, so that the launcher's resume after the restart fails at
# the fence (55P03, naming that session), and the DBA's splitdb_migrate()
# resumes it, held at the next point; the last is resumed by the launcher
# alone and ends done.  Then:
# - every table of the sibling, each partition and each inheritance table
#   alone (ONLY), equals its mirror row for row (an ordered digest of the
#   rows, their count and distinct keys), so no write was lost or doubled;
# - each table's count equals its rows at the start plus the net rows that
#   the committed transactions of w_audit added;
# - the writers committed transactions in every phase that was killed;
# - splitdb_verify() agrees, splitdb_doctor() finds nothing.
# The MERGE showed that the capture missed the old key of a row a MERGE
# moves between partitions (the sibling kept it twice; the verification
# failed): capturemerge.c.
# While the job is held at catching_up, the application truncates ev_sued
# and fz (their partitions and child with them), and the tables' owner
# tries the DDL that would change the trees under the job (CREATE TABLE
# ... PARTITION OF, ATTACH PARTITION, DETACH PARTITION of a partition, of
# the partitioned partition and of the default partition, CREATE TABLE ...
# INHERITS, ALTER TABLE ... INHERIT and NO INHERIT): each is refused with
# 55006, naming the table of the job (the root for an ATTACH or DETACH
# under the partitioned partition), and changes nothing.

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use SplitdbTest qw(set_passwords poll_until psql_verbose JOB_SUMMARY);

my %pw = (super => 'Pw-super-50o', tabowner => 'Pw-tabowner-50o', app => 'Pw-app-50o');
my $migrate_key = 1936747639;    # SPLITDB_MIGRATE_PAUSE_KEY
my $fence_key   = 1936747637;    # SPLITDB_JOB_LOCK_KEY
my $writer_name = 'splitdb_test_writer';
my $running     = qr/^(resuming|queued|preparing|copying|indexing|catching_up|verifying|cutting_over)$/;

# A cluster that preloads splitdb, UTF8, every role with its password
# (SCRAM, over the socket and over TCP from 127.0.0.1).
sub scram_cluster
{
	my ($name, $conf) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
	$node->append_conf(
		'postgresql.conf', q{
shared_preload_libraries = 'splitdb'
max_worker_processes = 16
listen_addresses = '127.0.0.1'
password_encryption = 'scram-sha-256'
} . ($conf // ''));
	$node->start;
	set_passwords($node, $pw{super},
		[ tabowner => $pw{tabowner}, app => $pw{app} ]);
	my $hba = $node->data_dir . '/pg_hba.conf';
	open(my $fh, '>', $hba) or die "could not write $hba: $!";
	print $fh "local all all scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\n";
	close($fh);
	$ENV{PGPASSWORD} = $pw{super};
	$node->reload;
	return $node;
}

my $node = scram_cluster('source', "restart_after_crash = on\n");
my $sib  = scram_cluster('sibling');
my $user = $node->safe_psql('postgres', 'SELECT current_user');

sub src { return $node->safe_psql('postgres', $_[0]); }
sub sib { return $sib->safe_psql('shop', $_[0]); }

# small batches, so that the copy has many; a short fence wait, so that a
# launcher's resume held at the fence fails soon
src(q{ALTER SYSTEM SET splitdb.batch_rows = 100;
ALTER SYSTEM SET splitdb.copy_readers = 1;
ALTER SYSTEM SET splitdb.fence_timeout = '1s';
SELECT pg_reload_conf()});
$node->poll_query_until('postgres', "SELECT current_setting('splitdb.fence_timeout')", '1s')
  or die 'the postmaster did not reload the settings';

# ---------------------------------------------------------------------------
# the tables, the mirrors, the writers' function

$sib->safe_psql('postgres', 'CREATE DATABASE shop');
src(q{
GRANT CREATE ON SCHEMA public TO tabowner;
SET ROLE tabowner;
CREATE TABLE ev (
	id     integer NOT NULL,
	region text    NOT NULL,
	bucket integer NOT NULL,
	val    integer NOT NULL,
	PRIMARY KEY (id, region, bucket)
) PARTITION BY LIST (region);
CREATE TABLE ev_nord PARTITION OF ev FOR VALUES IN ('nord');
CREATE TABLE ev_sued PARTITION OF ev FOR VALUES IN ('süd') PARTITION BY RANGE (bucket);
CREATE TABLE ev_sued_lo PARTITION OF ev_sued FOR VALUES FROM (0) TO (50);
CREATE TABLE ev_sued_rest PARTITION OF ev_sued DEFAULT;
CREATE TABLE fz (id integer PRIMARY KEY, name text NOT NULL);
CREATE TABLE fz_lkw (achsen integer NOT NULL) INHERITS (fz);
ALTER TABLE fz_lkw ADD PRIMARY KEY (id);
CREATE TABLE "Größe Konto" (
	"Land"  text          NOT NULL,
	"Nr"    integer       NOT NULL,
	betrag  numeric(12,2) NOT NULL,
	PRIMARY KEY ("Land", "Nr")
);
INSERT INTO ev SELECT g, CASE WHEN g % 2 = 0 THEN 'nord' ELSE 'süd' END, g % 100, g
  FROM generate_series(1, 3000) g;
INSERT INTO fz SELECT g, 'auto ' || g FROM generate_series(1, 1000) g;
INSERT INTO fz_lkw SELECT g, 'lkw ' || g, 2 + g % 3 FROM generate_series(10001, 11000) g;
INSERT INTO "Größe Konto" SELECT CASE WHEN g % 3 = 0 THEN 'AT' ELSE 'DE' END, g, g * 1.25
  FROM generate_series(1, 2000) g;
-- the mirrors, which stay
CREATE TABLE m_ev (id integer, region text, bucket integer, val integer, PRIMARY KEY (id, region, bucket));
CREATE TABLE m_fz (id integer PRIMARY KEY, name text NOT NULL);
CREATE TABLE m_lkw (id integer PRIMARY KEY, name text NOT NULL, achsen integer NOT NULL);
CREATE TABLE m_konto ("Land" text, "Nr" integer, betrag numeric(12,2) NOT NULL, PRIMARY KEY ("Land", "Nr"));
INSERT INTO m_ev SELECT * FROM ev;
INSERT INTO m_fz SELECT * FROM ONLY fz;
INSERT INTO m_lkw SELECT * FROM fz_lkw;
INSERT INTO m_konto SELECT * FROM "Größe Konto";
CREATE TABLE w_audit (
	n        bigint PRIMARY KEY,
	client   integer NOT NULL,
	ev_net   integer NOT NULL,
	fz_net   integer NOT NULL,
	lkw_net  integer NOT NULL,
	konto_net integer NOT NULL
);
CREATE SEQUENCE w_seq;

-- One transaction of a writer, in REPEATABLE READ (an upsert of a row
-- that another transaction inserted after the snapshot fails, and is
-- retried, so what the snapshot shows is what the upsert finds): client c
-- (0 or 1) touches only the
-- existing keys k with k % 2 = c, so that two writers never update the
-- same row (a row moved to another partition by one would fail the other's
-- update of it).  Every change to a service's table is made to its mirror
-- too, and the net rows each statement added are recorded in w_audit.
CREATE FUNCTION w_write(c integer) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	n    bigint;
	k    integer;
	r    integer;
	ins  boolean;
	ev_net integer := 0;
	fz_net integer := 0;
	lkw_net integer := 0;
	konto_net integer := 0;
BEGIN
	IF (SELECT relkind FROM pg_catalog.pg_class WHERE oid = 'public.ev'::regclass) = 'f' THEN
		RETURN 'shims';
	END IF;
	n := nextval('w_seq');
	k := ((n * 37) % 1400)::integer * 2 + c + 1;

	-- the partition tree: through the root, the partitioned partition, a leaf
	INSERT INTO ev VALUES (100000 + n, CASE WHEN n % 2 = 0 THEN 'nord' ELSE 'süd' END, n % 100, n::integer);
	INSERT INTO m_ev VALUES (100000 + n, CASE WHEN n % 2 = 0 THEN 'nord' ELSE 'süd' END, n % 100, n::integer);
	INSERT INTO ev_sued VALUES (200000 + n, 'süd', (n * 7) % 100, n::integer);
	INSERT INTO m_ev VALUES (200000 + n, 'süd', (n * 7) % 100, n::integer);
	INSERT INTO ev_sued_lo VALUES (300000 + n, 'süd', n % 50, n::integer);
	INSERT INTO m_ev VALUES (300000 + n, 'süd', n % 50, n::integer);
	ev_net := 3;
	-- moved between ev_nord and ev_sued by the root
	UPDATE ev SET region = CASE region WHEN 'nord' THEN 'süd' ELSE 'nord' END, val = val + 1 WHERE id = k;
	UPDATE m_ev SET region = CASE region WHEN 'nord' THEN 'süd' ELSE 'nord' END, val = val + 1 WHERE id = k;
	-- moved between ev_sued_lo and the default partition by ev_sued
	UPDATE ev_sued SET bucket = (bucket + 50) % 100 WHERE id = k + 2;
	UPDATE m_ev SET bucket = (bucket + 50) % 100 WHERE id = k + 2 AND region = 'süd';
	-- a leaf's row changed in place
	UPDATE ev_sued_rest SET val = val + 1000 WHERE id = k + 4;
	UPDATE m_ev SET val = val + 1000 WHERE id = k + 4 AND region = 'süd' AND bucket >= 50;
	-- an upsert through the partitioned partition (a key that two
	-- transactions share: the first inserts it, the second updates it),
	-- and a MERGE through the root that inserts a row and moves another
	-- between partitions
	ins := NOT EXISTS (SELECT FROM ev_sued WHERE (id, region, bucket) = (500000 + n / 2, 'süd', ((n / 2) * 7) % 100));
	INSERT INTO ev_sued VALUES (500000 + n / 2, 'süd', ((n / 2) * 7) % 100, 0)
		ON CONFLICT (id, region, bucket) DO UPDATE SET val = ev_sued.val + 1;
	INSERT INTO m_ev VALUES (500000 + n / 2, 'süd', ((n / 2) * 7) % 100, 0)
		ON CONFLICT (id, region, bucket) DO UPDATE SET val = m_ev.val + 1;
	IF ins THEN
		ev_net := ev_net + 1;
	END IF;
	MERGE INTO ev t USING (VALUES (400000 + n, 'nord', (n % 100)::integer), (k + 8, NULL, NULL)) s(id, region, bucket)
		ON t.id = s.id
		WHEN MATCHED THEN UPDATE SET region = CASE t.region WHEN 'nord' THEN 'süd' ELSE 'nord' END, val = t.val + 7
		WHEN NOT MATCHED AND s.id >= 400000 THEN INSERT VALUES (s.id, s.region, s.bucket, 0);
	MERGE INTO m_ev t USING (VALUES (400000 + n, 'nord', (n % 100)::integer), (k + 8, NULL, NULL)) s(id, region, bucket)
		ON t.id = s.id
		WHEN MATCHED THEN UPDATE SET region = CASE t.region WHEN 'nord' THEN 'süd' ELSE 'nord' END, val = t.val + 7
		WHEN NOT MATCHED AND s.id >= 400000 THEN INSERT VALUES (s.id, s.region, s.bucket, 0);
	ev_net := ev_net + 1;
	IF n % 5 = 0 THEN
		DELETE FROM ev WHERE id = k + 6;
		GET DIAGNOSTICS r = ROW_COUNT;
		ev_net := ev_net - r;
		DELETE FROM m_ev WHERE id = k + 6;
		DELETE FROM ev_nord WHERE id = 100000 + n - 10;
		GET DIAGNOSTICS r = ROW_COUNT;
		ev_net := ev_net - r;
		DELETE FROM m_ev WHERE id = 100000 + n - 10 AND region = 'nord';
	END IF;

	-- the inheritance pair: through the parent (its child's rows too),
	-- through ONLY the parent, into the child
	k := ((n * 13) % 450)::integer * 2 + c + 1;
	UPDATE fz SET name = name || '+' WHERE id IN (k, 10000 + k);
	UPDATE m_fz SET name = name || '+' WHERE id IN (k, 10000 + k);
	UPDATE m_lkw SET name = name || '+' WHERE id IN (k, 10000 + k);
	UPDATE ONLY fz SET name = name || '*' WHERE id IN (k + 2, 10000 + k + 2);
	UPDATE m_fz SET name = name || '*' WHERE id = k + 2;
	UPDATE fz_lkw SET achsen = achsen + 1 WHERE id = 10000 + k + 4;
	UPDATE m_lkw SET achsen = achsen + 1 WHERE id = 10000 + k + 4;
	INSERT INTO fz VALUES (100000 + n, 'neu ' || n);
	INSERT INTO m_fz VALUES (100000 + n, 'neu ' || n);
	INSERT INTO fz_lkw VALUES (200000 + n, 'lkw neu ' || n, 4);
	INSERT INTO m_lkw VALUES (200000 + n, 'lkw neu ' || n, 4);
	fz_net := 1;
	lkw_net := 1;
	IF n % 4 = 0 THEN
		-- a child's key changed through the parent
		UPDATE fz SET id = id + 1000000 WHERE id = 200000 + n - 4;
		UPDATE m_lkw SET id = id + 1000000 WHERE id = 200000 + n - 4;
		-- deletes through the parent (a row of each), and ONLY
		DELETE FROM fz WHERE id IN (100000 + n - 8, 200000 + n - 8);
		DELETE FROM m_fz WHERE id = 100000 + n - 8;
		GET DIAGNOSTICS r = ROW_COUNT;
		fz_net := fz_net - r;
		DELETE FROM m_lkw WHERE id = 200000 + n - 8;
		GET DIAGNOSTICS r = ROW_COUNT;
		lkw_net := lkw_net - r;
		DELETE FROM ONLY fz WHERE id = 100000 + n - 12;
		DELETE FROM m_fz WHERE id = 100000 + n - 12;
		GET DIAGNOSTICS r = ROW_COUNT;
		fz_net := fz_net - r;
	END IF;

	-- the quoted table with a composite key
	k := ((n * 11) % 950)::integer * 2 + c + 1;
	INSERT INTO "Größe Konto" VALUES ('CH', n::integer, n * 0.5);
	INSERT INTO m_konto VALUES ('CH', n::integer, n * 0.5);
	konto_net := 1;
	UPDATE "Größe Konto" SET betrag = betrag + 1 WHERE ("Land", "Nr") IN (('DE', k), ('AT', k));
	UPDATE m_konto SET betrag = betrag + 1 WHERE ("Land", "Nr") IN (('DE', k), ('AT', k));
	-- an upsert of a key that two transactions share
	ins := NOT EXISTS (SELECT FROM "Größe Konto" WHERE ("Land", "Nr") = ('FL', n / 2));
	INSERT INTO "Größe Konto" VALUES ('FL', n::integer / 2, 1)
		ON CONFLICT ("Land", "Nr") DO UPDATE SET betrag = "Größe Konto".betrag + 0.25;
	INSERT INTO m_konto VALUES ('FL', n::integer / 2, 1)
		ON CONFLICT ("Land", "Nr") DO UPDATE SET betrag = m_konto.betrag + 0.25;
	IF ins THEN
		konto_net := konto_net + 1;
	END IF;
	IF n % 3 = 0 THEN
		UPDATE "Größe Konto" SET "Land" = 'LI', "Nr" = n::integer WHERE "Land" = 'CH' AND "Nr" = n - 3;
		UPDATE m_konto SET "Land" = 'LI', "Nr" = n::integer WHERE "Land" = 'CH' AND "Nr" = n - 3;
		DELETE FROM "Größe Konto" WHERE "Land" = 'CH' AND "Nr" = n - 6;
		GET DIAGNOSTICS r = ROW_COUNT;
		konto_net := konto_net - r;
		DELETE FROM m_konto WHERE "Land" = 'CH' AND "Nr" = n - 6;
	END IF;

	INSERT INTO w_audit VALUES (n, c, ev_net, fz_net, lkw_net, konto_net);
	RETURN 'wrote';
END
$$;
RESET ROLE;
GRANT SELECT, INSERT, UPDATE, DELETE ON ev, ev_nord, ev_sued, ev_sued_lo, ev_sued_rest, fz, fz_lkw,
	"Größe Konto", m_ev, m_fz, m_lkw, m_konto, w_audit TO app;
GRANT TRUNCATE ON ev_sued, ev_sued_lo, ev_sued_rest, fz, fz_lkw TO app;
GRANT USAGE ON SEQUENCE w_seq TO app;
GRANT EXECUTE ON FUNCTION w_write(integer) TO app;
});

my %start = (
	ev    => src('SELECT count(*) FROM ev'),
	fz    => src('SELECT count(*) FROM ONLY fz'),
	lkw   => src('SELECT count(*) FROM fz_lkw'),
	konto => src('SELECT count(*) FROM "Größe Konto"'));

my ($sport) = $sib->port;
src(qq{
SET log_statement = 'none';
CREATE EXTENSION splitdb CASCADE;
CREATE SERVER shop_srv FOREIGN DATA WRAPPER postgres_fdw
	OPTIONS (host '127.0.0.1', port '$sport', dbname 'shop');
CREATE USER MAPPING FOR CURRENT_USER SERVER shop_srv OPTIONS (user '$user', password '$pw{super}');
SELECT splitdb_add_service('shop', server => 'shop_srv');
SELECT splitdb_assign('shop', 'ev', 'fz', 'fz_lkw', '"Größe Konto"');
});

# ---------------------------------------------------------------------------
# the writers

my $w;    # the writers running now
my $script = PostgreSQL::Test::Utils::tempdir() . '/w_write.sql';
PostgreSQL::Test::Utils::append_to_file($script,
	"BEGIN ISOLATION LEVEL REPEATABLE READ;\nSELECT w_write(:client_id);\nEND;\n");

# pgbench writers as app: 2 clients, 80 transactions a second in all,
# each in REPEATABLE READ (a statement on a table and the same on its
# mirror see the same rows), retrying a serialization failure or a deadlock
sub start_writers
{
	my ($out, $err) = ('', '');
	local $ENV{PGAPPNAME}  = $writer_name;
	local $ENV{PGPASSWORD} = $pw{app};
	my $h = IPC::Run::start(
		[
			'pgbench', '-n', '-c', '2', '-j', '1', '-R', '80', '-T', '600', '--max-tries=50',
			'-f', $script, '-h', '127.0.0.1', '-p', $node->port, '-U', 'app', 'postgres'
		],
		'>', \$out, '2>', \$err);
	return { h => $h, err => \$err };
}

# stop the writers (they may have ended with the server) and wait until
# none of their sessions is left; returns what they wrote on stderr
sub stop_writers
{
	my ($w) = @_;
	$w->{h}->kill_kill(grace => 5);
	poll_until(
		sub { src("SELECT count(*) FROM pg_stat_activity WHERE application_name = '$writer_name'") eq '0' },
		undef, 'the end of the writers\' sessions');
	return ${ $w->{err} };
}

sub audit_count { return src('SELECT count(*) FROM w_audit'); }

# wait until the writers have committed $n more transactions
sub more_writes
{
	my ($n, $what) = @_;
	my $from = audit_count();
	poll_until(sub { audit_count() >= $from + $n }, sub { !$w->{h}->pumpable }, "$n writes $what")
	  or BAIL_OUT("the writers ended $what: " . stop_writers($w));
	return audit_count() - $from;
}

# ---------------------------------------------------------------------------
# the job

sub job
{
	my ($columns) = @_;
	return src("SELECT $columns FROM splitdb.job WHERE service = 'shop' ORDER BY job_id DESC LIMIT 1");
}

sub summary
{
	return 'job of shop: '
	  . src("SELECT string_agg(" . JOB_SUMMARY . ", '; ' ORDER BY job_id) FROM splitdb.job WHERE service = 'shop'");
}

# wait until the job no longer runs (a job that the launcher has marked
# failed after a restart is about to run again); returns its state
sub wait_job_end
{
	my $state;
	poll_until(
		sub {
			$state = job("CASE WHEN state = 'failed' AND last_error = 'the server restarted while the job was running'"
				  . " THEN 'resuming' ELSE state END");
			$state !~ $running;
		},
		undef,
		'the job of shop to end');
	return $state;
}

# the launcher has looked for interrupted jobs since $offset
sub wait_launcher
{
	my ($offset) = @_;
	$node->wait_for_log(qr/the launcher looked for interrupted jobs in (\d+) of \1 databases/, $offset);
	return;
}

# Start (or resume) the job held at $point while the returned session holds
# the hook's lock; returns (holder, worker's pid).
sub run_paused
{
	my ($point) = @_;
	my $holder = $node->background_psql('postgres');
	$holder->query_safe("SELECT pg_advisory_lock($migrate_key, 0)");
	src("SET splitdb.migrate_pause_at = '$point'; SELECT splitdb_migrate('shop')");
	my $paused = qq{SELECT a.pid FROM pg_stat_activity a JOIN splitdb.job j ON j.worker_pid = a.pid
		WHERE j.service = 'shop' AND a.query = 'paused at $point'};
	poll_until(sub { src($paused) ne '' || job('state') !~ $running }, undef, "the job to pause at $point");
	my $pid = src($paused);
	ok($pid ne '', "the worker waits at $point") or diag(summary());
	return ($holder, $pid);
}

# a session in the sibling that holds the job's fence lock: the next run's
# fence waits for it (splitdb ends only its own sessions)
sub hold_fence
{
	my $job_id = job('job_id');
	my $fence = $sib->background_psql('shop');
	$fence->query_safe("SELECT pg_advisory_lock_shared($fence_key, ${job_id}::integer)");
	return ($fence, $fence->query_safe('SELECT pg_backend_pid()'));
}

# SIGKILL of the worker $pid: the crash-restart of the source
sub sigkill
{
	my ($pid, $what) = @_;
	my $offset = -s $node->logfile;
	ok(kill('KILL', $pid), "$what: SIGKILL of the worker");
	$node->wait_for_log(qr/\(PID $pid\) was terminated by signal 9/, $offset);
	$node->wait_for_log(qr/all server processes terminated; reinitializing/, $offset);
	$node->poll_query_until('postgres', 'SELECT true') or die "$what: the source does not come back";
	wait_launcher($offset);
	return $offset;
}

# an immediate stop of the source and a start
sub immediate_stop
{
	my ($what) = @_;
	my $offset = -s $node->logfile;
	$node->stop('immediate');
	$node->start;
	wait_launcher($offset);
	pass("$what: the source stopped immediately and started again");
	return $offset;
}

sub forget
{
	my ($bg) = @_;
	eval { $bg->quit; };
	return;
}

# ---------------------------------------------------------------------------
# what the checks read

# the ordered digest of rows, with their count and distinct keys
sub digest_sql
{
	my ($from, $cols, $key, $where) = @_;
	return "SELECT count(*) || ' rows, ' || count(DISTINCT ($key)) || ' keys, '"
	  . " || coalesce(md5(string_agg(ROW($cols)::text, E'\\n' ORDER BY $key)), 'empty')"
	  . " FROM $from" . (defined $where ? " WHERE $where" : '');
}

my $ev_cols = 'id, region, bucket, val';
my $ev_key  = 'id, region, bucket';
my @tables  = (
	[ 'ONLY ev_nord',      'm_ev', $ev_cols, $ev_key, "region = 'nord'" ],
	[ 'ONLY ev_sued_lo',   'm_ev', $ev_cols, $ev_key, "region = 'süd' AND bucket >= 0 AND bucket < 50" ],
	[ 'ONLY ev_sued_rest', 'm_ev', $ev_cols, $ev_key, "region = 'süd' AND NOT (bucket >= 0 AND bucket < 50)" ],
	[ 'ev',                'm_ev', $ev_cols, $ev_key, undef ],
	[ 'ONLY fz',     'm_fz',  'id, name',         'id', undef ],
	[ 'ONLY fz_lkw', 'm_lkw', 'id, name, achsen', 'id', undef ],
	[ '"Größe Konto"', 'm_konto', '"Land", "Nr", betrag', '"Land", "Nr"', undef ]);

# every table of the sibling (each partition and inheritance table alone)
# against its mirror's rows
sub compare_mirrors
{
	my ($what) = @_;
	for my $t (@tables)
	{
		my ($from, $mirror, $cols, $key, $where) = @$t;
		is( sib(digest_sql($from, $cols, $key)),
			src(digest_sql($mirror, $cols, $key, $where)),
			"$what: $from in the sibling equals its mirror row for row");
	}
	return;
}

# ---------------------------------------------------------------------------
# 1. the phases, each killed while the writers write

$w = start_writers();
more_writes(20, 'before the job');

my @kills = (
	[ 'copying',            'sigkill' ],
	[ 'indexing',           'stop' ],
	[ 'catching_up',        'sigkill' ],
	[ 'verifying',          'stop' ],
	[ 'cutover',            'sigkill' ],
	[ 'cutover_committing', 'stop' ]);
my %during;
my $runs = 0;

for my $i (0 .. $#kills)
{
	my ($point, $how) = @{ $kills[$i] };
	my $last = $i == $#kills;
	my ($holder, $pid) = run_paused($point);
	$runs++;
	is(job('state'), $point eq 'cutover_committing' || $point eq 'cutover' ? 'cutting_over' : $point,
		"$point: the job is in that phase");
	if ($point eq 'cutover_committing')
	{
		# the worker holds the tables' locks: the writers wait for them
		poll_until(
			sub {
				src("SELECT count(*) FROM pg_stat_activity WHERE application_name = '$writer_name'"
					  . " AND wait_event_type = 'Lock'") eq '2';
			},
			sub { !$w->{h}->pumpable }, 'the writers to wait for the cutover\'s locks')
		  or BAIL_OUT('the writers ended: ' . stop_writers($w));
		pass("$point: both writers wait for the cutover's locks");
	}
	else
	{
		$during{$point} = more_writes(15, "while the job is held at $point");
	}

	if ($point eq 'catching_up')
	{
		ddl_refused();
		truncate_through_parents();
		$during{"$point (after the DDL)"} = more_writes(10, "after the DDL at $point");
	}

	if ($point eq 'verifying')
	{
		# the sibling goes first: its sessions of the held run die with it
		$sib->stop('immediate');
		$sib->start;
		pass("$point: the sibling stopped immediately and started again");
	}

	my ($fence, $fence_pid) = $last ? () : hold_fence();
	my $offset = $how eq 'sigkill' ? sigkill($pid, $point) : immediate_stop($point);
	forget($holder);
	stop_writers($w);
	$w = start_writers();
	$runs++;    # the launcher's resume

	if ($last)
	{
		$node->wait_for_log(qr/resuming job \d+ of service "shop" after a restart/, $offset);
		pass("$point: the launcher resumes the job");
		last;
	}

	# the launcher's resume meets the test's session at the fence
	is(wait_job_end(), 'failed', "$point: the launcher's resume fails at the fence");
	like(
		job("last_sqlstate || ' ' || last_error"),
		qr/^55P03 sessions of an earlier run of job \d+ are still open in the sibling of service "shop" \(Process\(es\) $fence_pid of the sibling's server still hold the job's advisory lock after 1000 ms; /,
		"$point: it says that the test's session in the sibling holds the job's lock, naming it")
	  or diag(summary());
	is(src("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'splitdb worker'"), '0',
		"$point: no worker runs");
	$fence->query_safe("SELECT pg_advisory_unlock_shared($fence_key, " . job('job_id') . '::integer)');
	$fence->quit;
	more_writes(10, "while the job is failed after $point");
}

is(wait_job_end(), 'done', 'the job resumed by the launcher ends done') or diag(summary());
my $err = stop_writers($w);
is(job("state || '|' || phase || '|' || coalesce(last_sqlstate || ' ' || last_error, 'no error')"),
	'done|done|no error', 'the job is done, no error left');
is(job('runs'), $runs, "after $runs runs");
is(src("SELECT string_agg(n.nspname || '.' || c.relname || ' ' || c.relkind::text, ', ' ORDER BY n.nspname, c.relname)"
		  . " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('public', 'splitdb_archive')"
		  . " AND c.relname IN ('ev', 'ev_nord', 'ev_sued', 'ev_sued_lo', 'ev_sued_rest', 'fz', 'fz_lkw', 'Größe Konto')"),
	'public.Größe Konto f, public.ev f, public.fz f, public.fz_lkw f, splitdb_archive.Größe Konto r, '
	  . 'splitdb_archive.ev p, splitdb_archive.ev_nord r, splitdb_archive.ev_sued p, splitdb_archive.ev_sued_lo r, '
	  . 'splitdb_archive.ev_sued_rest r, splitdb_archive.fz r, splitdb_archive.fz_lkw r',
	'the source\'s tables are shims, the originals archived with their partitions');
is(src(q{SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'splitdb\_capture\_%'}), '0',
	'no capture trigger is left in the source');
is(src(q{SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'splitdb_capture'}), '0',
	'no capture log is left in the source');

# ---------------------------------------------------------------------------
# 2. row for row, and the writers' committed transactions

compare_mirrors('after the kills');
for my $p (sort keys %during)
{
	cmp_ok($during{$p}, '>', 0, "the writers committed transactions while the job was held at $p");
}
my %net = map { $_ => src("SELECT coalesce(sum(${_}_net), 0) FROM w_audit") } qw(ev fz lkw konto);
is(sib('SELECT count(*) FROM ev'), $start{ev} + $net{ev},
	'ev: its rows at the start and those the committed writes added');
is(sib('SELECT count(*) FROM ONLY fz'), $start{fz} + $net{fz},
	'fz: its rows at the start and those the committed writes added');
is(sib('SELECT count(*) FROM fz_lkw'), $start{lkw} + $net{lkw},
	'fz_lkw: its rows at the start and those the committed writes added');
is(sib('SELECT count(*) FROM "Größe Konto"'), $start{konto} + $net{konto},
	'"Größe Konto": its rows at the start and those the committed writes added');
is(src("SELECT string_agg(table_name || ' ' || ok, ', ' ORDER BY table_name) FROM splitdb_verify('shop')"),
	'public."Größe Konto" true, public.ev_nord true, public.ev_sued_lo true, public.ev_sued_rest true, '
	  . 'public.fz true, public.fz_lkw true',
	'splitdb_verify() agrees on every table (each leaf, each inheritance table alone)');
# the writers that waited for the cutover's locks went on against the
# shims, with no user mapping: nothing of theirs committed, so the archived
# originals hold what the mirrors hold
for my $t (@tables)
{
	my ($from, $mirror, $cols, $key, $where) = @$t;
	my $archived = $from =~ s/^(ONLY )?/($1 \/\/ '') . 'splitdb_archive.'/er;
	is( src(digest_sql($archived, $cols, $key)),
		src(digest_sql($mirror, $cols, $key, $where)),
		"$archived equals its mirror row for row");
}
is( src(q{SELECT coalesce(string_agg(severity || ' ' || coalesce(service::text, '-') || ' ' || location
	          || ' ' || object || ': ' || problem, '; '), '') FROM splitdb_doctor()}),
	'', 'splitdb_doctor() finds nothing');
is(sib("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'splitdb' AND state <> 'idle'"),
	'0', 'no session of splitdb works in the sibling');

# ---------------------------------------------------------------------------
# the application's TRUNCATE through the partitioned partition and the
# inheritance parent (their partitions and child with them), and the same
# on the mirrors, in one transaction that first locks the tables so that
# the rows it counts for w_audit are those it removes; retried when the
# writers' locks make it a deadlock's victim

sub truncate_through_parents
{
	my $sql = q{BEGIN ISOLATION LEVEL REPEATABLE READ;
LOCK TABLE ev, fz, m_ev, m_fz, m_lkw IN ACCESS EXCLUSIVE MODE;
INSERT INTO w_audit SELECT nextval('w_seq'), -1, -(SELECT count(*) FROM ev_sued)::integer,
	-(SELECT count(*) FROM ONLY fz)::integer, -(SELECT count(*) FROM fz_lkw)::integer, 0;
TRUNCATE ev_sued;
DELETE FROM m_ev WHERE region = 'süd';
TRUNCATE fz;
DELETE FROM m_fz;
DELETE FROM m_lkw;
COMMIT;
SELECT (SELECT count(*) FROM ev_sued) + (SELECT count(*) FROM fz);};
	my ($ret, $out, $stderr);
	local $ENV{PGPASSWORD} = $pw{app};
	for my $try (1 .. 5)
	{
		($ret, $out, $stderr) = psql_verbose($node, 'postgres', $sql,
			connstr => $node->connstr('postgres') . ' user=app', on_error_stop => 1);
		last if $ret == 0 || $stderr !~ /40P01/;
	}
	is($ret, 0, 'the application truncated ev_sued and fz') or diag($stderr);
	return;
}

# ---------------------------------------------------------------------------
# the DDL that would change the trees under the job, as the tables' owner

sub ddl_refused
{
	# what, the statements, the table the refusal names
	my @ddl = (
		[ 'CREATE TABLE ... PARTITION OF the root',
			q{CREATE TABLE ev_west PARTITION OF ev FOR VALUES IN ('west')}, 'ev' ],
		[ 'CREATE TABLE ... PARTITION OF the partitioned partition',
			q{CREATE TABLE ev_sued_x PARTITION OF ev_sued FOR VALUES FROM (100) TO (200)}, 'ev_sued' ],
		[ 'ATTACH PARTITION',
			q{CREATE TABLE ev_ost (id integer NOT NULL, region text NOT NULL, bucket integer NOT NULL, val integer NOT NULL);
ALTER TABLE ev ATTACH PARTITION ev_ost FOR VALUES IN ('ost')}, 'ev' ],
		[ 'ATTACH PARTITION to the partitioned partition',
			q{CREATE TABLE ev_ost (id integer NOT NULL, region text NOT NULL, bucket integer NOT NULL, val integer NOT NULL);
ALTER TABLE ev_sued ATTACH PARTITION ev_ost FOR VALUES FROM (100) TO (200)}, 'ev' ],
		[ 'DETACH PARTITION of a leaf', q{ALTER TABLE ev DETACH PARTITION ev_nord}, 'ev' ],
		[ 'DETACH PARTITION of the partitioned partition', q{ALTER TABLE ev DETACH PARTITION ev_sued}, 'ev' ],
		[ 'DETACH PARTITION of the default partition',
			q{ALTER TABLE ev_sued DETACH PARTITION ev_sued_rest}, 'ev' ],
		[ 'CREATE TABLE ... INHERITS', q{CREATE TABLE fz_bus (sitze integer) INHERITS (fz)}, 'fz' ],
		[ 'ALTER TABLE ... INHERIT a moved parent',
			q{CREATE TABLE fz_rad (id integer PRIMARY KEY, name text NOT NULL);
ALTER TABLE fz_rad INHERIT fz}, 'fz' ],
		[ 'ALTER TABLE ... NO INHERIT', q{ALTER TABLE fz_lkw NO INHERIT fz}, 'fz_lkw' ],
		[ 'ALTER TABLE ... INHERIT of a moved table', q{ALTER TABLE "Größe Konto" INHERIT m_konto},
			'Größe Konto' ]);
	my $shape = q{SELECT string_agg(c.relname || '<' || p.relname, ', ' ORDER BY c.relname)
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent};
	my $before = src($shape);
	local $ENV{PGPASSWORD} = $pw{tabowner};
	for my $d (@ddl)
	{
		my ($what, $sql, $table) = @$d;
		my ($ret, $out, $stderr) = psql_verbose($node, 'postgres', "BEGIN;\n$sql;\nCOMMIT;",
			connstr => $node->connstr('postgres') . ' user=tabowner', on_error_stop => 1);
		isnt($ret, 0, "$what: refused");
		like($stderr, qr/ERROR:  55006: table "public\.\Q$table\E" belongs to a migration of service "shop"\n/,
			"$what: with 55006, naming $table") or diag($stderr);
		like($stderr, qr/HINT:  /, "$what: with a hint");
	}
	local $ENV{PGPASSWORD} = $pw{super};
	is(src($shape), $before, 'the trees are as they were');
	is(src(q{SELECT count(*) FROM pg_class WHERE relname IN ('ev_west', 'ev_sued_x', 'ev_ost', 'fz_bus', 'fz_rad')}),
		'0', 'no table was made');
	is(job('state'), 'catching_up', 'the job is still held at catching_up');
	return;
}

$node->stop;
$sib->stop;
done_testing();
