# Copyright (c) 2026, splitdb developers

# An offline job counts and hashes the rows its copy sends, and its
# verification then reads the sibling alone; only when no write can have
# reached the table between the copy and the verification.
#
# One cluster, splitdb preloaded, batches of 500 rows, one reader.
#
# 1. Service "Sum ä" (a name to quote) owns, in schema "Sum Schema":
#    "Wert Tab" (3000 rows, a bigint key; text, numeric, jsonb, an enum,
#    an array of the enum, a column of a nondeterministic collation,
#    timestamptz, NULLs, a generated column), a table without any key (in
#    one pass), and a list-partitioned table with two partitions.  Migrated
#    offline: the job is done; the worker logs, for each table that holds
#    rows, that it was counted and hashed as it was copied; the count and
#    checksum the job recorded equal what splitdb_verify() reads from the
#    archived originals and from the sibling (the enum and the collation
#    make text terms); the sibling's rows equal the source's.
# 2. Service resume owns resume_t (4000 rows).  Its offline job is held
#    after its first batch (splitdb.migrate_pause_at) and its worker
#    terminated; with the worker's SHARE lock gone, a row the first batch
#    copied is changed in the source.  Resumed offline, the copy goes on
#    from its checkpoint, and the verification reads the source again (no
#    such log line for the table in that run): it finds the sibling's old
#    row and fails with 22000, sending the table back.  Called again, the
#    job copies the table from its start, hashes it, and ends done with the
#    sibling equal to the source, the changed row included.
# 3. An online job (service onl) never takes the copy's hash: the writes go
#    on during the copy.

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SplitdbTest qw(start_source job_sql fingerprint_sql poll_until JOB_SUMMARY);

my $pause_key = 1936747639;    # SPLITDB_MIGRATE_PAUSE_KEY
my $node      = start_source('main', 500);

sub query
{
	my ($sql) = @_;
	return $node->safe_psql('postgres', $sql);
}

# the worker's log lines of a table counted and hashed by its copy, after
# log offset $from
sub hashed_lines
{
	my ($from) = @_;
	my $log = slurp_file($node->logfile, $from);
	my @tables = ($log =~ /: table (.+) was counted and hashed as it was copied; its verification reads the sibling alone/g);
	return join("\n", sort @tables);
}

# 1. every kind of column, three kinds of table
query(q{
CREATE SCHEMA "Sum Schema";
CREATE TYPE "Sum Schema".mood AS ENUM ('calm', 'busy', 'Ünruhig');
CREATE COLLATION "Sum Schema".nocase (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE TABLE "Sum Schema"."Wert Tab" (
	id       bigint PRIMARY KEY,
	label    text,
	amount   numeric(12, 2),
	doc      jsonb,
	mood     "Sum Schema".mood,
	moods    "Sum Schema".mood[],
	name_ci  text COLLATE "Sum Schema".nocase,
	at       timestamptz,
	doubled  bigint GENERATED ALWAYS AS (id * 2) STORED
);
INSERT INTO "Sum Schema"."Wert Tab" (id, label, amount, doc, mood, moods, name_ci, at)
SELECT g, CASE WHEN g % 7 = 0 THEN NULL ELSE 'Zeile ' || g || E'\t"quoted"' END,
       g * 1.25, jsonb_build_object('g', g, 'ä', repeat('x', g % 50)),
       (ARRAY['calm', 'busy', 'Ünruhig'])[1 + g % 3]::"Sum Schema".mood,
       ARRAY['busy', 'calm']::"Sum Schema".mood[],
       CASE WHEN g % 2 = 0 THEN 'ABC' ELSE 'abc' END,
       timestamptz '2026-01-01 00:00+00' + g * interval '1 minute'
  FROM generate_series(1, 3000) g;
CREATE TABLE "Sum Schema".loose (n integer, note text);
INSERT INTO "Sum Schema".loose SELECT g % 10, 'n' || g FROM generate_series(1, 700) g;
CREATE TABLE "Sum Schema".parts (id integer, k integer, v text, PRIMARY KEY (id, k)) PARTITION BY LIST (k);
CREATE TABLE "Sum Schema".parts_1 PARTITION OF "Sum Schema".parts FOR VALUES IN (1);
CREATE TABLE "Sum Schema".parts_2 PARTITION OF "Sum Schema".parts FOR VALUES IN (2);
INSERT INTO "Sum Schema".parts SELECT g, 1 + g % 2, 'p' || g FROM generate_series(1, 1200) g;
SELECT splitdb_add_service('Sum ä', dbname => 'sum_sibling');
SELECT splitdb_assign('Sum ä', '"Sum Schema"."Wert Tab"', '"Sum Schema".loose', '"Sum Schema".parts');
});

my $from = -s $node->logfile;
query(q{SELECT splitdb_migrate('Sum ä', mode => 'offline', wait => true)});
is(query(job_sql('Sum ä', 'state')), 'done', 'offline job done') or diag(query(job_sql('Sum ä', JOB_SUMMARY)));
is( hashed_lines($from),
	join("\n",
		sort { $a cmp $b } '"Sum Schema"."Wert Tab"', '"Sum Schema".loose', '"Sum Schema".parts_1',
		'"Sum Schema".parts_2'),
	'each table that holds rows was counted and hashed by its copy');

# what the job recorded is what a full read of both sides gives
is( query(q{
SELECT string_agg(format('%s %s %s', t.table_name, t.source_rows, t.source_checksum = v.source_checksum
                         AND v.source_checksum = v.target_checksum AND t.source_rows = v.target_rows),
                  ', ' ORDER BY t.table_name)
  FROM splitdb.job_table t JOIN splitdb.job j ON j.job_id = t.job_id AND j.service = 'Sum ä'
  JOIN splitdb_verify('Sum ä') v ON v.table_name = t.table_name
}),
	'"Sum Schema"."Wert Tab" 3000 t, "Sum Schema".loose 700 t, "Sum Schema".parts_1 600 t, "Sum Schema".parts_2 600 t',
	'the recorded counts and checksums equal a full read of the source and of the sibling');
for my $table ('"Wert Tab"', 'loose', 'parts_1', 'parts_2')
{
	is( $node->safe_psql('sum_sibling', fingerprint_sql(qq{"Sum Schema".$table}, 't::text')),
		query(fingerprint_sql(qq{splitdb_archive.$table}, 't::text')),
		"$table: the sibling holds the source's rows");
}

# 2. a copy resumed after its lock was let go is verified by reading the source
query(q{
CREATE TABLE resume_t (id integer PRIMARY KEY, v text NOT NULL);
INSERT INTO resume_t SELECT g, 'v' || g FROM generate_series(1, 4000) g;
SELECT splitdb_add_service('resume');
SELECT splitdb_assign('resume', 'resume_t');
});
my $holder = $node->background_psql('postgres');
$holder->query_safe("SELECT pg_advisory_lock($pause_key, 0)");
query(q{SET splitdb.migrate_pause_at = 'copying'; SELECT splitdb_migrate('resume', mode => 'offline')});
poll_until(
	sub {
		query("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'splitdb worker'"
			  . " AND query = 'paused at copying'") eq '1';
	},
	undef, 'the worker of resume to pause after its first batch')
  or BAIL_OUT('the job of resume did not pause: ' . query(job_sql('resume', JOB_SUMMARY)));
is(query(q{SELECT rows_copied FROM splitdb.job_table WHERE table_name = 'public.resume_t'}),
	'500', 'one batch copied');
query(q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'splitdb worker'});
poll_until(sub { query(job_sql('resume', 'state')) eq 'failed' }, undef, 'the job of resume to fail');
$holder->query_safe("SELECT pg_advisory_unlock($pause_key, 0)");
$holder->quit;

# the worker's lock is gone: a copied row changes in the source
query(q{UPDATE resume_t SET v = 'changed while no worker ran' WHERE id = 7});

$from = -s $node->logfile;
my ($ret, $out, $err) = $node->psql('postgres',
	q{SELECT splitdb_migrate('resume', mode => 'offline', wait => true)}, on_error_stop => 0);
like($err, qr/verification failed for 1 table of service "resume": public\.resume_t/,
	'resumed: the verification reads the source and finds the sibling behind');
is(query(job_sql('resume', 'last_sqlstate')), '22000', 'the job failed with 22000');
is(hashed_lines($from), '', 'resumed: the copy that went on from its checkpoint did not stand in for the source');

$from = -s $node->logfile;
query(q{SELECT splitdb_migrate('resume', mode => 'offline', wait => true)});
is(query(job_sql('resume', 'state')), 'done', 'called again: done') or diag(query(job_sql('resume', JOB_SUMMARY)));
is(hashed_lines($from), 'public.resume_t', 'copied again from its start: hashed by its copy');
is( $node->safe_psql('resume', fingerprint_sql('public.resume_t', 't::text')),
	query(fingerprint_sql('splitdb_archive.resume_t', 't::text')),
	'the sibling holds the source rows, the changed one included');
is($node->safe_psql('resume', q{SELECT v FROM public.resume_t WHERE id = 7}),
	'changed while no worker ran', 'the changed row is in the sibling');

# 3. online: the copy never stands in for the source
query(q{
CREATE TABLE onl_t (id integer PRIMARY KEY, v text);
INSERT INTO onl_t SELECT g, 'o' || g FROM generate_series(1, 1500) g;
SELECT splitdb_add_service('onl');
SELECT splitdb_assign('onl', 'onl_t');
});
$from = -s $node->logfile;
query(q{SELECT splitdb_migrate('onl', mode => 'online', wait => true)});
is(query(job_sql('onl', 'state')), 'done', 'online job done');
is(hashed_lines($from), '', 'online: the verification read both sides');

done_testing();
