# Copyright (c) 2026, splitdb developers
#
# DDL against the tables of an online migration held at its pauses.
#
# One cluster (splitdb preloaded, batches of 500 rows); two services,
# ddl_copy and ddl_catch, each with a schema of its own (SCH below) owned by
# the role owner, who logs in with a password (scram-sha-256), and three
# tables that move: SCH_t (a bigserial primary key, a UNIQUE NOT NULL
# column, a CHECK constraint NOT VALID, clustered on its key), SCH_u (no
# primary key: its capture key is the unique index SCH_u_k over a NOT NULL
# column; a second index; a default from a sequence it does not own) and
# SCH_p (partitioned, two partitions); and tables that stay: SCH_p3 (to
# attach), SCH_heir and SCH_base (to inherit), SCH_kid (the superuser's,
# referencing SCH_ref, the superuser's, which moves too) and SCH_kid2.
# Each job
# is held (splitdb.migrate_pause_at) at one point: copying (after its first
# batch) and catching_up (before a round).
#
# There, each command below runs as the bootstrap superuser and as owner:
#
# - refused (55006, the message names the table and the service, the
#   detail the job and its state, the hint says to wait for the job or
#   cancel it), and shown to change nothing (every relation of the schema:
#   columns, defaults, constraints and their validity, indexes and their
#   flags, persistence, replica identity, row security, inheritance and
#   partitions, rules, policies, triggers, comments, sequences and their
#   values and owners; every row; the capture intact; the job's state):
#   DROP INDEX (CONCURRENTLY too) of the capture key and of a secondary
#   index; ALTER TABLE ... DROP CONSTRAINT of the primary key and of a
#   UNIQUE constraint; ALTER INDEX ... RENAME; REPLICA IDENTITY; DROP NOT
#   NULL on a key column; ATTACH PARTITION, DETACH PARTITION (CONCURRENTLY
#   too), CREATE TABLE ... PARTITION OF; SET UNLOGGED, SET LOGGED; INHERIT
#   (either way); CREATE RULE; ENABLE and DISABLE ROW LEVEL SECURITY; CREATE
#   POLICY; ADD COLUMN with a volatile default; ALTER COLUMN ... SET
#   DEFAULT; ADD CONSTRAINT
#   ... CHECK ... NOT VALID; VALIDATE CONSTRAINT; SET SCHEMA; ALTER SEQUENCE
#   (RESTART, INCREMENT, OWNED BY NONE) of the owned sequence and of the
#   sequence a default uses; DROP SEQUENCE ... CASCADE of either (it drops
#   the default); CREATE INDEX (CONCURRENTLY too); COMMENT on a table, a
#   column, an index, a constraint; a foreign key from a table that stays
#   to a table that moves made (ALTER TABLE ... ADD FOREIGN KEY, CREATE
#   TABLE ... REFERENCES) or dropped (DROP CONSTRAINT, DROP TABLE of the
#   referencing table, as the superuser, its owner): the job recorded its
#   references when it prepared;
# - harmless, allowed: CLUSTER (on the index it is clustered on), VACUUM
#   FULL, REINDEX (CONCURRENTLY too, while the job goes on: it waits for the
#   held worker's snapshot).
#
# Writes go on between the commands.  Each job then ends done: every row of
# the sibling's tables equals the archived original's (compared row by
# row), the sibling's schema equals the archived original's (columns,
# defaults, constraints, indexes, comments, persistence, replica identity,
# row security), and SCH_kid's foreign key, no other, is a reference
# splitdb enforces.
#
# Routes that got through before the guard closed them: DROP INDEX of the
# capture key (CONCURRENTLY: left it invalid, the command failed after its
# first transactions had committed), CREATE INDEX CONCURRENTLY (the index
# stayed, the sibling never got it), DETACH PARTITION CONCURRENTLY, ALTER
# SEQUENCE, DROP SEQUENCE ... CASCADE, COMMENT, a foreign key made (it
# kept pointing at the archived original after the cutover) or dropped
# from a table that stays.  And SCH_u's capture key, a column named k,
# failed every round (22023) before the rounds read rows as alias.*.
#
# Not here: NO INHERIT (INHERIT is refused, and a moved table has no
# inheritance to undo), SECURITY LABEL (no label provider is installed).

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SplitdbTest qw(start_source psql_verbose poll_until JOB_SUMMARY);

my $pause_key = 1936747639;         # SPLITDB_MIGRATE_PAUSE_KEY
my $rows      = 2000;
my $owner_pw  = 'Owner-Pw-4c1e';

my $node = start_source('source', 500);
$node->safe_psql('postgres',
	"SET log_statement = 'none'; CREATE ROLE owner LOGIN PASSWORD '$owner_pw'");
{
	my $hba_file = $node->data_dir . '/pg_hba.conf';
	open(my $fh, '<', $hba_file) or die "could not read $hba_file: $!";
	my $hba = do { local $/; <$fh> };
	close($fh);
	open($fh, '>', $hba_file) or die "could not write $hba_file: $!";
	print $fh "local all owner scram-sha-256\n" . $hba;
	close($fh);
	$node->reload;
}

sub query
{
	my ($db, $sql) = @_;
	return $node->safe_psql($db, $sql);
}

sub job
{
	my ($id, $columns) = @_;
	return query('postgres', "SELECT $columns FROM splitdb.job WHERE job_id = $id");
}

# Run $sql in postgres as $role (superuser: the bootstrap superuser; owner:
# over the socket with its password), verbose errors, stopping at the first;
# returns (exit code, stdout, stderr).
sub run_as
{
	my ($role, $sql) = @_;
	return psql_verbose($node, 'postgres', "SET lock_timeout = '10s';\n$sql", on_error_stop => 1)
	  if $role eq 'superuser';
	local $ENV{PGPASSWORD} = $owner_pw;
	return psql_verbose(
		$node, 'postgres', "SET lock_timeout = '10s';\n$sql",
		connstr       => $node->connstr('postgres') . ' user=owner',
		on_error_stop => 1);
}

for my $s ('ddl_copy', 'ddl_catch')
{
	query(
		'postgres', qq{
CREATE SCHEMA $s AUTHORIZATION owner;
CREATE SCHEMA ${s}_x AUTHORIZATION owner;
SET ROLE owner;
CREATE TABLE $s.${s}_t (id bigserial PRIMARY KEY, code text NOT NULL UNIQUE, v integer NOT NULL DEFAULT 0);
ALTER TABLE $s.${s}_t ADD CONSTRAINT ${s}_t_v_small CHECK (v < 1000000) NOT VALID;
ALTER TABLE $s.${s}_t CLUSTER ON ${s}_t_pkey;
CREATE SEQUENCE $s.${s}_w_seq;
CREATE TABLE $s.${s}_u (k integer NOT NULL, v integer NOT NULL DEFAULT 0,
	w bigint NOT NULL DEFAULT nextval('$s.${s}_w_seq'));
CREATE UNIQUE INDEX ${s}_u_k ON $s.${s}_u (k);
CREATE INDEX ${s}_u_v ON $s.${s}_u (v);
CREATE TABLE $s.${s}_p (id integer PRIMARY KEY, v integer NOT NULL DEFAULT 0) PARTITION BY RANGE (id);
CREATE TABLE $s.${s}_p1 PARTITION OF $s.${s}_p FOR VALUES FROM (0) TO (1000);
CREATE TABLE $s.${s}_p2 PARTITION OF $s.${s}_p FOR VALUES FROM (1000) TO (1000000);
CREATE TABLE $s.${s}_p3 (id integer NOT NULL, v integer NOT NULL DEFAULT 0);
CREATE TABLE $s.${s}_heir (id bigint NOT NULL, code text NOT NULL, v integer NOT NULL,
	CONSTRAINT ${s}_t_v_small CHECK (v < 1000000));
CREATE TABLE $s.${s}_base ();
CREATE TABLE $s.${s}_kid2 (id integer PRIMARY KEY, tid bigint NOT NULL);
INSERT INTO $s.${s}_t (code, v) SELECT 'c' || g, g % 7 FROM generate_series(1, $rows) g;
INSERT INTO $s.${s}_u (k, v) SELECT g, g % 5 FROM generate_series(1, $rows) g;
INSERT INTO $s.${s}_p SELECT g, g % 3 FROM generate_series(1, $rows) g;
INSERT INTO $s.${s}_kid2 SELECT g, g FROM generate_series(1, 5) g;
RESET ROLE;
CREATE TABLE $s.${s}_ref (id bigint PRIMARY KEY);
INSERT INTO $s.${s}_ref SELECT g FROM generate_series(1, 5) g;
CREATE TABLE $s.${s}_kid (id integer PRIMARY KEY, rid bigint NOT NULL REFERENCES $s.${s}_ref);
INSERT INTO $s.${s}_kid SELECT g, g FROM generate_series(1, 5) g;
SELECT splitdb_add_service('$s');
SELECT splitdb_assign('$s', '$s.${s}_t', '$s.${s}_u', '$s.${s}_p', '$s.${s}_ref');
});
}

# Everything of schema $s in the source that a refused command must leave
# as it was, one line each, and every table's rows, the capture of job $id
# and the job's state.
sub shape
{
	my ($s, $id) = @_;
	return query(
		'postgres', qq{
WITH rel AS (SELECT c.oid, c.relname, c.relkind FROM pg_class c
              WHERE c.relnamespace = '$s'::regnamespace
                 OR c.oid IN (SELECT relid FROM splitdb.job_table WHERE job_id = $id))
SELECT string_agg(x, E'\\n' ORDER BY x) FROM (
 SELECT format('rel %s %s %s %s %s %s %s %s %s', c.oid::regclass, c.relkind, c.relpersistence, c.relreplident,
        c.relrowsecurity, c.relforcerowsecurity, c.relispartition, c.relhasrules, obj_description(c.oid, 'pg_class'))
   FROM rel r JOIN pg_class c ON c.oid = r.oid
 UNION ALL
 SELECT format('column %s.%s %s %s %s %s', a.attrelid::regclass, a.attname, format_type(a.atttypid, a.atttypmod),
        a.attnotnull, pg_get_expr(d.adbin, d.adrelid), col_description(a.attrelid, a.attnum))
   FROM rel r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
   LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
  WHERE r.relkind IN ('r', 'p')
 UNION ALL
 SELECT format('constraint %s.%s %s %s %s', k.conrelid::regclass, k.conname, pg_get_constraintdef(k.oid),
        k.convalidated, obj_description(k.oid, 'pg_constraint'))
   FROM rel r JOIN pg_constraint k ON k.conrelid = r.oid
 UNION ALL
 SELECT format('index %s %s %s %s %s %s', i.indexrelid::regclass, pg_get_indexdef(i.indexrelid), i.indisvalid,
        i.indisready, i.indisclustered, i.indisreplident)
   FROM rel r JOIN pg_index i ON i.indrelid = r.oid
 UNION ALL
 SELECT format('inherits %s %s %s', h.inhrelid::regclass, h.inhparent::regclass, h.inhdetachpending)
   FROM pg_inherits h WHERE h.inhrelid IN (SELECT oid FROM rel) OR h.inhparent IN (SELECT oid FROM rel)
 UNION ALL
 SELECT format('trigger %s.%s %s', g.tgrelid::regclass, g.tgname, g.tgenabled)
   FROM rel r JOIN pg_trigger g ON g.tgrelid = r.oid
 UNION ALL
 SELECT format('rule %s.%s', w.ev_class::regclass, w.rulename) FROM rel r JOIN pg_rewrite w ON w.ev_class = r.oid
 UNION ALL
 SELECT format('policy %s.%s', p.polrelid::regclass, p.polname) FROM rel r JOIN pg_policy p ON p.polrelid = r.oid
 UNION ALL
 SELECT format('sequence %s %s %s %s %s %s %s', q.seqrelid::regclass, q.seqtypid::regtype, q.seqincrement,
        q.seqmin, q.seqmax, q.seqcycle, pg_sequence_last_value(q.seqrelid))
   FROM rel r JOIN pg_sequence q ON q.seqrelid = r.oid
 UNION ALL
 SELECT format('owned %s %s.%s', d.objid::regclass, d.refobjid::regclass, d.refobjsubid)
   FROM rel r JOIN pg_depend d ON d.objid = r.oid AND d.classid = 'pg_class'::regclass
  WHERE r.relkind = 'S' AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
 UNION ALL
 SELECT 'rows t ' || count(*) || ' ' || coalesce(sum(hashtext(x::text)), 0) FROM ONLY $s.${s}_t x
 UNION ALL
 SELECT 'rows u ' || count(*) || ' ' || coalesce(sum(hashtext(x::text)), 0) FROM ONLY $s.${s}_u x
 UNION ALL
 SELECT 'rows p ' || count(*) || ' ' || coalesce(sum(hashtext(x::text)), 0) FROM $s.${s}_p x
 UNION ALL
 SELECT 'capture ' || coalesce(splitdb.capture_problem($id,
        ARRAY['$s.${s}_t', '$s.${s}_u', '$s.${s}_p']), 'intact')
 UNION ALL
 SELECT 'job ' || state FROM splitdb.job WHERE job_id = $id) s(x)});
}

# the commands that must be refused; SVC stands for the service (and schema)
my @refused = (
	'DROP INDEX SVC.SVC_u_k',
	'DROP INDEX CONCURRENTLY SVC.SVC_u_k',
	'DROP INDEX SVC.SVC_u_v',
	'ALTER TABLE SVC.SVC_t DROP CONSTRAINT SVC_t_pkey CASCADE',
	'ALTER TABLE SVC.SVC_t DROP CONSTRAINT SVC_t_code_key',
	'ALTER INDEX SVC.SVC_u_k RENAME TO SVC_u_k2',
	'ALTER INDEX SVC.SVC_t_pkey RENAME TO SVC_t_key2',
	'ALTER TABLE SVC.SVC_t REPLICA IDENTITY FULL',
	'ALTER TABLE SVC.SVC_u REPLICA IDENTITY USING INDEX SVC_u_k',
	'ALTER TABLE SVC.SVC_u ALTER COLUMN k DROP NOT NULL',
	'ALTER TABLE SVC.SVC_p ATTACH PARTITION SVC.SVC_p3 FOR VALUES FROM (1000000) TO (2000000)',
	'ALTER TABLE SVC.SVC_p DETACH PARTITION SVC.SVC_p2',
	'ALTER TABLE SVC.SVC_p DETACH PARTITION SVC.SVC_p2 CONCURRENTLY',
	'CREATE TABLE SVC.SVC_p4 PARTITION OF SVC.SVC_p FOR VALUES FROM (2000000) TO (3000000)',
	'ALTER TABLE SVC.SVC_u SET UNLOGGED',
	'ALTER TABLE SVC.SVC_u SET LOGGED',
	'ALTER TABLE SVC.SVC_heir INHERIT SVC.SVC_t',
	'ALTER TABLE SVC.SVC_t INHERIT SVC.SVC_base',
	'CREATE RULE SVC_t_quiet AS ON INSERT TO SVC.SVC_t DO INSTEAD NOTHING',
	'ALTER TABLE SVC.SVC_t ENABLE ROW LEVEL SECURITY',
	'ALTER TABLE SVC.SVC_t DISABLE ROW LEVEL SECURITY',
	'CREATE POLICY SVC_t_none ON SVC.SVC_t USING (false)',
	'ALTER TABLE SVC.SVC_t ADD COLUMN r double precision DEFAULT random()',
	'ALTER TABLE SVC.SVC_t ALTER COLUMN v SET DEFAULT 5',
	'ALTER TABLE SVC.SVC_t ADD CONSTRAINT SVC_t_v_pos CHECK (v >= 0) NOT VALID',
	'ALTER TABLE SVC.SVC_t VALIDATE CONSTRAINT SVC_t_v_small',
	'ALTER TABLE SVC.SVC_t SET SCHEMA SVC_x',
	'ALTER SEQUENCE SVC.SVC_t_id_seq RESTART WITH 100000',
	'ALTER SEQUENCE SVC.SVC_t_id_seq INCREMENT BY 10',
	'ALTER SEQUENCE SVC.SVC_t_id_seq OWNED BY NONE',
	'ALTER SEQUENCE SVC.SVC_w_seq RESTART WITH 100000',
	'ALTER SEQUENCE SVC.SVC_w_seq AS integer',
	'DROP SEQUENCE SVC.SVC_t_id_seq CASCADE',
	'DROP SEQUENCE SVC.SVC_w_seq CASCADE',
	'CREATE INDEX ON SVC.SVC_t (v)',
	'CREATE INDEX CONCURRENTLY SVC_t_v ON SVC.SVC_t (v)',
	"COMMENT ON TABLE SVC.SVC_t IS 'moving'",
	"COMMENT ON COLUMN SVC.SVC_u.k IS 'the key'",
	"COMMENT ON INDEX SVC.SVC_u_k IS 'the key'",
	"COMMENT ON CONSTRAINT SVC_t_v_small ON SVC.SVC_t IS 'small'",
	'ALTER TABLE SVC.SVC_kid2 ADD FOREIGN KEY (tid) REFERENCES SVC.SVC_t (id)',
	'CREATE TABLE SVC.SVC_kid3 (id integer PRIMARY KEY, tid bigint REFERENCES SVC.SVC_t)');

# the same, for the superuser alone: SVC_kid, whose foreign key to SVC_ref
# the job records, and SVC_ref belong to it (the roles that own the ends of
# a cross-service reference need user mappings, which owner has not)
my @refused_super = (
	'ALTER TABLE SVC.SVC_kid DROP CONSTRAINT SVC_kid_rid_fkey',
	'DROP TABLE SVC.SVC_kid');

# the commands that change neither rows nor schema
my @harmless = (
	'CLUSTER SVC.SVC_t',
	'VACUUM FULL SVC.SVC_u',
	'VACUUM FULL SVC.SVC_p',
	'REINDEX TABLE SVC.SVC_p1');

# writes of round $n to every table of $s, as owner
sub write_round
{
	my ($s, $n) = @_;
	my ($ret, $out, $err) = run_as(
		'owner', qq{
INSERT INTO $s.${s}_t (code, v) VALUES ('w$n', $n);
UPDATE $s.${s}_t SET v = v + 1 WHERE id % 97 = $n % 97;
DELETE FROM $s.${s}_t WHERE id = 10 + $n;
INSERT INTO $s.${s}_u (k, v) VALUES ($rows + 1 + $n, $n);
UPDATE $s.${s}_u SET v = v + 1 WHERE k % 89 = $n % 89;
DELETE FROM $s.${s}_u WHERE k = 20 + $n;
INSERT INTO $s.${s}_p VALUES ($rows + 1 + $n, $n);
UPDATE $s.${s}_p SET v = v + 1 WHERE id % 83 = $n % 83;
DELETE FROM $s.${s}_p WHERE id IN (30 + $n, 1500 + $n);
});
	is($ret, 0, "$s: write round $n") or diag($err);
	return;
}

# The shape of relations $rels (an SQL list of their OIDs) in database
# $db, one line each, keyed by relation name, schema names taken out:
# what the sibling's copy must have of the original.
sub copy_shape
{
	my ($db, $rels) = @_;
	my $strip = q{'\m(ddl_copy|ddl_catch|splitdb_archive)\.'};
	return query(
		$db, qq{
WITH rel AS (SELECT c.oid, c.relname FROM pg_class c WHERE c.oid IN ($rels))
SELECT string_agg(regexp_replace(x, $strip, '', 'g'), E'\\n' ORDER BY regexp_replace(x, $strip, '', 'g')) FROM (
 SELECT format('rel %s %s %s %s %s %s %s', c.relname, c.relkind, c.relpersistence, c.relreplident,
        c.relrowsecurity, c.relforcerowsecurity, obj_description(c.oid, 'pg_class'))
   FROM rel r JOIN pg_class c ON c.oid = r.oid
 UNION ALL
 SELECT format('column %s.%s %s %s %s %s', r.relname, a.attname, format_type(a.atttypid, a.atttypmod),
        a.attnotnull, pg_get_expr(d.adbin, d.adrelid), col_description(a.attrelid, a.attnum))
   FROM rel r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
   LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 UNION ALL
 SELECT format('constraint %s.%s %s %s %s', r.relname, k.conname, pg_get_constraintdef(k.oid),
        k.convalidated, obj_description(k.oid, 'pg_constraint'))
   FROM rel r JOIN pg_constraint k ON k.conrelid = r.oid
 UNION ALL
 SELECT format('index %s %s %s %s %s %s', ic.relname, pg_get_indexdef(i.indexrelid), i.indisvalid,
        i.indisclustered, i.indisreplident, obj_description(i.indexrelid, 'pg_class'))
   FROM rel r JOIN pg_index i ON i.indrelid = r.oid JOIN pg_class ic ON ic.oid = i.indexrelid
 UNION ALL
 SELECT format('policy %s.%s', r.relname, p.polname) FROM rel r JOIN pg_policy p ON p.polrelid = r.oid) s(x)});
}

for my $case ([ 'ddl_copy', 'copying' ], [ 'ddl_catch', 'catching_up' ])
{
	my ($s, $point) = @$case;
	my $holder = $node->background_psql('postgres');
	$holder->query_safe("SELECT pg_advisory_lock($pause_key, 0)");
	my $id = query('postgres', "SET splitdb.migrate_pause_at = '$point'; SELECT splitdb_migrate('$s')");
	poll_until(
		sub {
			query('postgres',
				"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'splitdb worker'"
				  . " AND query = 'paused at $point'") eq '1';
		},
		sub { job($id, 'state') =~ /^(failed|cancelled|done)$/ },
		"the worker of $s to pause at $point")
	  or BAIL_OUT("the job of $s ended before pausing at $point: " . job($id, JOB_SUMMARY));
	is(job($id, 'state'), $point, "$s: the job is held at $point");

	my $n = 0;
	write_round($s, $n++);
	for my $role ('superuser', 'owner')
	{
		for my $template (@refused, $role eq 'superuser' ? @refused_super : ())
		{
			(my $sql = $template) =~ s/SVC/$s/g;
			my $before = shape($s, $id);
			my ($ret, $out, $err) = run_as($role, $sql);
			isnt($ret, 0, "$s, $role: $sql is refused");
			like(
				$err,
				qr/ERROR:  55006: table "$s\.${s}_(t|u|p|p1|p2|ref)" belongs to a migration of service "$s"\nDETAIL:  Job $id is $point; [A-Z ]+ on the table would make its copy in the sibling differ from it\.\nHINT:  Wait for the job to end, or cancel it with splitdb_cancel\('$s'\)\./,
				"$s, $role: $sql: 55006 naming the table, the service and the job, a hint")
			  or diag($err);
			is(shape($s, $id), $before, "$s, $role: $sql changed nothing");
		}
		for my $template (@harmless)
		{
			(my $sql = $template) =~ s/SVC/$s/g;
			my ($ret, $out, $err) = run_as($role, $sql);
			is($ret, 0, "$s, $role: $sql is allowed") or diag($err);
			write_round($s, $n++);
		}
	}
	# REINDEX ... CONCURRENTLY waits for every snapshot older than its
	# own, the held worker's among them: it runs while the job goes on
	my ($rout, $rerr) = ('', '');
	my $reindex;
	{
		local $ENV{PGPASSWORD} = $owner_pw;
		$reindex = IPC::Run::start(
			[
				'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres') . ' user=owner',
				'-c', "REINDEX INDEX CONCURRENTLY $s.${s}_u_k",
				'-c', "REINDEX TABLE CONCURRENTLY $s.${s}_t"
			],
			'>', \$rout, '2>', \$rerr);
	}
	poll_until(
		sub {
			query('postgres',
				"SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'REINDEX INDEX CONCURRENTLY%'") eq '1';
		},
		undef,
		"the REINDEX of $s to start");

	$holder->query_safe("SELECT pg_advisory_unlock($pause_key, 0)");
	$holder->quit;
	ok($reindex->finish, "$s: REINDEX ... CONCURRENTLY of the capture key and of ${s}_t runs while the job goes on")
	  or diag($rerr);
	poll_until(sub { job($id, 'state') =~ /^(done|failed|cancelled)$/ }, undef, "the end of job $id");
	is(job($id, "state || ' ' || mode || ' ' || runs"), 'done online 1', "$s: the job ends done in one run")
	  or diag(job($id, JOB_SUMMARY));

	for my $table ('t', 'u', 'p', 'ref')
	{
		my $archived = query('postgres',
			"SELECT relid::regclass FROM splitdb.job_table WHERE job_id = $id AND table_name = '$s.${s}_$table'");
		like($archived, qr/^splitdb_archive\./, "$s: ${s}_$table is archived");
		my $rows_sql = "SELECT count(*) || E'\\n' || string_agg(x::text, E'\\n' ORDER BY x::text) FROM %s x";
		my $expected = query('postgres', sprintf($rows_sql, $archived));
		like($expected, qr/^(5|19[5-9]\d|20\d\d)\n/, "$s: ${s}_$table holds its rows and the writes");
		is(query($s, sprintf($rows_sql, "$s.${s}_$table")),
			$expected, "$s: the sibling's ${s}_$table holds exactly the original's rows, row by row");
	}
	my $source_shape = copy_shape('postgres',
		"SELECT relid FROM splitdb.job_table WHERE job_id = $id");
	like($source_shape, qr/index ${s}_u_k CREATE UNIQUE INDEX ${s}_u_k ON ${s}_u USING btree \(k\) t f f /,
		"$s: the original keeps its capture key");
	is( copy_shape($s,
			"SELECT c.oid FROM pg_class c WHERE c.relnamespace = '$s'::regnamespace AND c.relkind IN ('r', 'p')"
		),
		$source_shape,
		"$s: the sibling's tables have the original's columns, defaults, constraints, indexes and comments");
	is( query('postgres',
			"SELECT string_agg(child_table || ' ' || parent_table, ', ') FROM splitdb_references"
			  . " WHERE child_table LIKE '$s.%'"),
		"$s.${s}_kid $s.${s}_ref", "$s: the foreign key of ${s}_kid, and no other, is a cross-service reference")
	  or diag(query('postgres', 'SELECT * FROM splitdb_references'));
}

done_testing();
