# Copyright (c) 2026, splitdb developers

# splitdb_rollback() checks the sibling twice: when it is called, and again
# in its worker under the switch's locks, after the replay rounds that run
# without locks.  DDL in the sibling between the two can make a lossless
# rollback impossible: a partition dropped (its rows go without a capture
# entry, so the archived original would keep them), a column added (its
# values have nowhere to go), a table made that inherits from a moved one
# (its rows are captured nowhere), a view made over a moved table (the
# rollback's last step drops the tables there).  Before the second check the rollback
# went on and resurrected the dropped rows, or dropped the column's values,
# without a word.
#
# One cluster, a sibling database on it.  For each kind of DDL: a service
# migrated, written to in the sibling, its rollback held at 'replayed'
# (splitdb.rollback_pause_at), the DDL made in the sibling by the tables'
# owner (a role with a password, no superuser; a superuser where the
# sibling's guard refuses the owner), the rollback let go.  It
# fails with 55000 naming what changed; the job is still done, the shims
# still read the sibling, whose rows are as the application left them, and
# the archived originals are still archived.  After the DDL is undone
# where it can be (the column dropped again, the table dropped), the
# rollback completes with every row.

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SplitdbTest qw(start_source psql_as);

my $node = start_source('rbre', 1000);
my $pause_key = 1936747638;    # SPLITDB_ROLLBACK_PAUSE_KEY

$node->safe_psql('postgres', q{
CREATE ROLE "Eigentümer" LOGIN PASSWORD 'secret-e';
GRANT CREATE ON SCHEMA public TO "Eigentümer";
});

sub src { return $node->safe_psql('postgres', $_[0]); }

# make_service($svc): a partitioned table and a plain one, owned by the
# role, migrated; returns the job id
sub make_service
{
	my ($svc) = @_;
	src(qq{
SET ROLE "Eigentümer";
CREATE TABLE "${svc} Messung" (id integer, tag date, wert integer NOT NULL,
	PRIMARY KEY (id, tag)) PARTITION BY RANGE (tag);
CREATE TABLE "${svc} Messung 1" PARTITION OF "${svc} Messung" FOR VALUES FROM ('2026-01-01') TO ('2026-07-01');
CREATE TABLE "${svc} Messung 2" PARTITION OF "${svc} Messung" FOR VALUES FROM ('2026-07-01') TO ('2027-01-01');
CREATE TABLE "${svc} Gerät" (id integer PRIMARY KEY, name text NOT NULL);
INSERT INTO "${svc} Messung" SELECT g, date '2026-01-01' + g, g FROM generate_series(1, 300) g;
INSERT INTO "${svc} Gerät" SELECT g, 'gerät ' || g FROM generate_series(1, 50) g;
RESET ROLE;
SELECT splitdb_add_service('$svc');
SELECT splitdb_assign('$svc', '"${svc} Messung"', '"${svc} Gerät"');
});
	src("SELECT splitdb_migrate('$svc', mode => 'offline', wait => true)");
	is(src("SELECT state FROM splitdb.job WHERE service = '$svc'"), 'done', "$svc: migrated");
	$node->safe_psql($svc, qq{GRANT CREATE ON SCHEMA public TO "Eigentümer"});
	return src("SELECT job_id FROM splitdb.job WHERE service = '$svc'");
}

# the rows of both tables of $svc in database $db, as a fingerprint
sub rows_in
{
	my ($n, $db, $svc) = @_;
	return $n->safe_psql($db,
		qq{SELECT (SELECT count(*) || ' ' || coalesce(sum(hashtext(t::text)), 0) FROM "${svc} Messung" t)
		   || ' / ' || (SELECT count(*) || ' ' || coalesce(sum(hashtext(t::text)), 0) FROM "${svc} Gerät" t)});
}

# the same in the sibling
sub sibling_rows { return rows_in($node, $_[0], $_[0]); }

# held_rollback($svc, $job, $ddl, $role): the rollback held at 'replayed',
# $ddl run in the sibling as $role (the bootstrap superuser when undef), the
# rollback let go; returns its stderr
sub held_rollback
{
	my ($svc, $job, $ddl, $role) = @_;
	my $holder = $node->background_psql('postgres');
	$holder->query_safe("SELECT pg_advisory_lock($pause_key, $job)");
	my $caller = $node->background_psql('postgres', on_error_stop => 0);
	$caller->query_safe("SET splitdb.rollback_pause_at = 'replayed'");
	$caller->{stdin} .= "\\set VERBOSITY verbose\nSELECT splitdb_rollback('$svc');\n\\echo caller done\n";
	$caller->{run}->pump_nb;
	$node->poll_query_until('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE query = 'paused at replayed'", '1')
	  or die "the rollback of $svc does not pause at replayed";
	my ($ret, $out, $err) =
	  defined $role
	  ? psql_as($node, $role, $svc, $ddl)
	  : $node->psql($svc, $ddl, on_error_stop => 1);
	is($ret, 0, "$svc: the DDL in the sibling while the rollback is held") or diag $err;
	$holder->query_safe("SELECT pg_advisory_unlock($pause_key, $job)");
	$holder->quit;
	$caller->query_until(qr/caller done/, '');
	my $stderr = $caller->{stderr};
	$caller->quit;
	return $stderr;
}

# nothing switched: the job done, the shims in place, the originals archived
sub unchanged
{
	my ($svc, $before) = @_;
	is(src("SELECT state FROM splitdb.job WHERE service = '$svc'"), 'done', "$svc: the job is still done");
	is( src(qq{SELECT string_agg(c.relkind::text || ' ' || n.nspname, ', ' ORDER BY c.relname)
				 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
				WHERE c.relname IN ('${svc} Messung', '${svc} Gerät')}),
		'f public, r splitdb_archive, f public, p splitdb_archive',
		"$svc: the shims are in place and the originals archived");
	is(sibling_rows($svc), $before, "$svc: the sibling holds the application's rows as they were");
	is(src(qq{INSERT INTO "${svc} Gerät" VALUES (1000, 'neu') RETURNING id}), '1000',
		"$svc: writes through the shim go on");
}

# writes after the cutover, in the sibling and through the shims
sub write_after
{
	my ($svc) = @_;
	$node->safe_psql($svc, qq{
INSERT INTO "${svc} Messung" VALUES (301, '2026-08-01', 301), (302, '2026-02-01', 302);
UPDATE "${svc} Messung" SET wert = wert + 1000 WHERE id % 7 = 0;
DELETE FROM "${svc} Gerät" WHERE id > 45;
});
	src(qq{UPDATE "${svc} Gerät" SET name = name || ' (shim)' WHERE id < 5});
}

# ---------------------------------------------------------------------------
# 1. a partition dropped in the sibling

{
	my $svc = 'rbre_drop';
	my $job = make_service($svc);
	write_after($svc);
	my $err = held_rollback($svc, $job, qq{DROP TABLE "${svc} Messung 2"}, 'Eigentümer');
	like($err,
		qr/55000: rollback of service "$svc" failed: service "$svc" cannot be rolled back: its tables in the sibling no longer have the columns of their archived originals/,
		"$svc: the rollback refuses under its locks (55000)");
	like($err, qr/Table public\."$svc Messung 2" is missing in the sibling/,
		"$svc: the message names the partition that went missing");
	unchanged($svc, sibling_rows($svc));
}

# ---------------------------------------------------------------------------
# 2. a column added in the sibling, then dropped again

{
	my $svc = 'rbre_column';
	my $job = make_service($svc);
	write_after($svc);
	my $err = held_rollback($svc, $job,
		qq{ALTER TABLE "${svc} Gerät" ADD COLUMN farbe text DEFAULT 'rot'}, 'Eigentümer');
	like($err,
		qr/55000: rollback of service "$svc" failed: service "$svc" cannot be rolled back: its tables in the sibling no longer have the columns of their archived originals/,
		"$svc: the rollback refuses under its locks (55000)");
	like($err, qr/farbe/, "$svc: the detail names the column");
	my $before = sibling_rows($svc);
	unchanged($svc, $before);

	$node->safe_psql($svc, qq{ALTER TABLE "${svc} Gerät" DROP COLUMN farbe});
	my $expected = sibling_rows($svc);
	src("SELECT splitdb_rollback('$svc')");
	is(src("SELECT state FROM splitdb.job WHERE service = '$svc'"), 'rolled_back',
		"$svc: with the column gone again, the rollback completes");
	is( rows_in($node, 'postgres', $svc),
		$expected, "$svc: the source holds the sibling's rows, each once");
}

# ---------------------------------------------------------------------------
# 3. a table made in the sibling that inherits from a moved one (by a
#    superuser: the guard refuses it to the owner, as for a reference's end)

{
	my $svc = 'rbre_inherit';
	my $job = make_service($svc);
	write_after($svc);
	my $err = held_rollback($svc, $job,
		qq{CREATE TABLE "${svc} Gerät alt" () INHERITS ("${svc} Gerät");
		   INSERT INTO "${svc} Gerät alt" VALUES (500, 'alt')});
	like($err,
		qr/55000: rollback of service "$svc" failed: service "$svc" cannot be rolled back: its sibling's capture of writes is incomplete/,
		"$svc: the rollback refuses under its locks (55000)");
	like($err, qr/Gerät alt" inherits from public\."$svc Gerät" and has no capture row/,
		"$svc: the message names the new table");
	unchanged($svc, sibling_rows($svc));
}

# ---------------------------------------------------------------------------
# 4. a view made in the sibling over a moved table, then dropped again

{
	my $svc = 'rbre_view';
	my $job = make_service($svc);
	write_after($svc);
	my $err = held_rollback($svc, $job,
		qq{CREATE VIEW "${svc} Geräte" AS SELECT name FROM "${svc} Gerät"}, 'Eigentümer');
	like($err,
		qr/55000: rollback of service "$svc" failed: service "$svc" cannot be rolled back: objects in its sibling depend on its tables there/,
		"$svc: the rollback refuses under its locks (55000)");
	like($err, qr/view public\."$svc Geräte"/, "$svc: the message names the view");
	my $before = sibling_rows($svc);
	unchanged($svc, $before);

	$node->safe_psql($svc, qq{DROP VIEW "${svc} Geräte"});
	my $expected = sibling_rows($svc);
	src("SELECT splitdb_rollback('$svc')");
	is(src("SELECT state FROM splitdb.job WHERE service = '$svc'"), 'rolled_back',
		"$svc: with the view gone, the rollback completes");
	is( rows_in($node, 'postgres', $svc),
		$expected, "$svc: the source holds the sibling's rows, each once");
}

# ---------------------------------------------------------------------------
# 5. a partition the owner makes in the sibling: captured as its parent is,
#    made in the archive by the rollback, and back in the source with its rows

{
	my $svc = 'rbre_partition';
	my $job = make_service($svc);
	write_after($svc);
	my ($ret, $out, $err) = psql_as($node, 'Eigentümer', $svc, qq{
CREATE TABLE "${svc} Messung 3" PARTITION OF "${svc} Messung" FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
INSERT INTO "${svc} Messung" SELECT g, date '2027-01-01' + (g - 400), g FROM generate_series(401, 420) g;
INSERT INTO "${svc} Messung 3" VALUES (500, '2027-12-12', 5);
UPDATE "${svc} Messung" SET tag = '2027-06-06' WHERE id = 7;
DELETE FROM "${svc} Messung 3" WHERE id = 405;
SELECT count(*) FROM pg_trigger
 WHERE tgrelid = '"${svc} Messung 3"'::regclass AND tgname LIKE 'splitdb\_capture\_%'});
	is($ret, 0, "$svc: the owner makes a partition in the sibling and writes to it") or diag $err;
	is($out, '4', "$svc: the new partition has the four capture triggers");
	my $expected = sibling_rows($svc);
	my $per_partition = $node->safe_psql($svc,
		qq{SELECT string_agg(tableoid::regclass || ' ' || n, ', ' ORDER BY tableoid::regclass::text)
		     FROM (SELECT tableoid, count(*) AS n FROM "${svc} Messung" GROUP BY 1) c});
	src("SELECT splitdb_rollback('$svc')");
	is(src("SELECT state FROM splitdb.job WHERE service = '$svc'"), 'rolled_back',
		"$svc: the rollback completes");
	is( rows_in($node, 'postgres', $svc),
		$expected, "$svc: the source holds the sibling's rows, each once");
	is( src(qq{SELECT string_agg(tableoid::regclass || ' ' || n, ', ' ORDER BY tableoid::regclass::text)
		     FROM (SELECT tableoid, count(*) AS n FROM "${svc} Messung" GROUP BY 1) c}),
		$per_partition, "$svc: each row in the same partition as in the sibling");
	is(src(qq{SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = '"${svc} Messung 3"'::regclass}),
		'Eigentümer', "$svc: the new partition is the table owner's in the source");
}

done_testing();
