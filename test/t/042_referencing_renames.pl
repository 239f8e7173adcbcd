# Copyright (c) 2026, splitdb developers
#
# What the cross-service references are installed on when the tables at
# their other ends change names during the job, and the owner of such a
# table renaming a key column while the cutover installs its end.
#
# One cluster (splitdb preloaded, trust authentication); services svc and
# svc2 (their sibling databases on the same cluster).  par and item move; outside
# the service, kid (id, pid REFERENCES par) and cat (id, referenced by
# item.cat_id) stay, and so does kid2 (pid REFERENCES par2), owned by the
# role towner, which is no superuser.
#
# 1. The job is held at copying (splitdb.migrate_pause_at), after it
#    recorded its references.  A foreign key follows its columns by number,
#    and those tables are not the job's to guard, so their owner may change
#    them: kid's key column pid is renamed par_ref and a new column pid
#    takes the old name (holding values no parent has), kid is renamed
#    kid_renamed (renaming or altering the constraint, which changes the
#    triggers on par, is refused); cat's key column id is renamed cat_key and a new column
#    id takes the old name.  The job then ends done, and the references
#    are on what the foreign keys are at the cutover, with their numbers
#    kept: a parent that a kid row still refers to (by par_ref) cannot be
#    deleted in the sibling, a kid row referring to no parent is refused,
#    the decoy column pid is no key; an item's
#    cat_id is checked against cat_key, not the decoy id.  Before, the
#    references were installed on the names recorded when the job
#    prepared: the decoys, so the parent's delete went through and left an
#    orphan.  Then the way to drop a table with an end: each reference
#    turned off (splitdb_reference_mode), cat and kid_renamed dropped, and
#    the sibling's writes no longer check them.
#
# 2. The job of svc2 moves par2, held where its cutover has installed
#    everything and is about to commit (cutover_committing), with kid2's
#    lock held, and tsch.kid3's (which refers to par2 too, in a schema that
#    towner owns).  towner renames kid2's key column meanwhile, and schema
#    tsch: each command waits for the cutover's lock, and is then refused
#    (42501), the names unchanged, the references enforced.  Before, the
#    guard of the reference triggers looked before the lock, found no end
#    yet, and the rename went through once the cutover committed (the
#    schema's rename took no lock at all).
#
# 3. What towner may not drop, as PostgreSQL refuses it: zone_a, a
#    partition of zone, which stays and which visit (moved by svc2 too)
#    refers to (its rows would leave zone unchecked, as a DETACH's would),
#    and without CASCADE the referenced zone, and in the sibling, owning
#    par2 there, par2.  Each is refused (2BP01), and drops nothing.
#
# 4. The reference goes with its table, as a foreign key does: towner
#    drops kid2 (a NOTICE names the reference; the source's end on par2's
#    shim, which read kid2, goes; kid2's own row stays, and the sibling's
#    deletes of a parent it referred to, and the shim's, then go through,
#    as without the key; the doctor reports nothing missing); the
#    reference is refused strict again (55000) and turned off (its
#    triggers in the sibling disabled).  towner drops zone with CASCADE:
#    the sibling and the shim then write a visit of any zone.  A superuser
#    drops par2 in the sibling: tsch.kid3 then takes any key; the doctor,
#    asking the sibling, warns of the reference, which is refused strict
#    again (55000) before and after it is turned off.  towner drops
#    schema tsch with CASCADE.  The rollback of svc then adds no foreign key
#    to cat and kid_renamed, dropped in part 1.  Before, a superuser's drop
#    left the other database's checks failing on every write (42704),
#    splitdb_reference_mode() too (55000), and the rollback failed (42P01);
#    and the owner of a referencing table could not drop it.

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SplitdbTest qw(start_source poll_until psql_verbose psql_as JOB_SUMMARY);

my $pause_key = 1936747639;    # SPLITDB_MIGRATE_PAUSE_KEY

my $node = start_source('renames', 500);

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

# $sql in $db as $role: (exit code, stdout, stderr)
sub as_role { return psql_as($node, @_); }

# Start job of service $svc held at $point; returns (job id, the session
# that holds the pause).
sub start_held
{
	my ($svc, $point) = @_;
	my $holder = $node->background_psql('postgres');
	$holder->query_safe("SELECT pg_advisory_lock($pause_key, 0)");
	my $id = query('postgres', "SET splitdb.migrate_pause_at = '$point'; SELECT splitdb_migrate('$svc')");
	poll_until(
		sub {
			query('postgres',
				"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'splitdb worker'"
				  . " AND query = 'paused at $point'") eq '1';
		},
		sub { job($id, 'state') =~ /^(failed|cancelled|done)$/ },
		"the worker of $svc to pause at $point")
	  or BAIL_OUT("the job of $svc ended before pausing at $point: " . job($id, JOB_SUMMARY));
	return ($id, $holder);
}

sub release_and_wait
{
	my ($id, $holder) = @_;
	$holder->query_safe("SELECT pg_advisory_unlock($pause_key, 0)");
	$holder->quit;
	poll_until(sub { job($id, 'state') =~ /^(done|failed|cancelled)$/ }, undef, "the end of job $id");
	return job($id, JOB_SUMMARY);
}

my $refs_sql = q{SELECT string_agg(format('%s %s %s %s -> %s %s %s %s', reference_id, constraint_name,
	child_table, child_columns, parent_table, parent_columns, is_deferrable, initially_deferred), E'\n'
	ORDER BY reference_id) FROM splitdb_references};

query(
	'postgres', q{
CREATE ROLE towner LOGIN;
CREATE TABLE par (id bigint PRIMARY KEY);
INSERT INTO par SELECT g FROM generate_series(1, 3000) g;
CREATE TABLE kid (id integer PRIMARY KEY, pid bigint NOT NULL REFERENCES par);
INSERT INTO kid SELECT g, g FROM generate_series(1, 5) g;
CREATE TABLE cat (id integer PRIMARY KEY);
INSERT INTO cat SELECT g FROM generate_series(1, 10) g;
CREATE TABLE item (id integer PRIMARY KEY, cat_id integer REFERENCES cat);
INSERT INTO item SELECT g, g FROM generate_series(1, 10) g;
CREATE TABLE par2 (id bigint PRIMARY KEY);
INSERT INTO par2 SELECT g FROM generate_series(1, 1000) g;
CREATE TABLE kid2 (id integer PRIMARY KEY, pid bigint REFERENCES par2);
INSERT INTO kid2 SELECT g, g FROM generate_series(1, 5) g;
ALTER TABLE kid2 OWNER TO towner;
CREATE SCHEMA tsch AUTHORIZATION towner;
CREATE TABLE tsch.kid3 (id integer PRIMARY KEY, pid bigint REFERENCES par2);
INSERT INTO tsch.kid3 SELECT g, g FROM generate_series(1, 5) g;
ALTER TABLE tsch.kid3 OWNER TO towner;
CREATE TABLE zone (id integer PRIMARY KEY) PARTITION BY RANGE (id);
CREATE TABLE zone_a PARTITION OF zone FOR VALUES FROM (0) TO (100);
CREATE TABLE zone_b PARTITION OF zone FOR VALUES FROM (100) TO (200);
INSERT INTO zone SELECT g FROM generate_series(1, 150) g;
CREATE TABLE visit (id integer PRIMARY KEY, zone_id integer REFERENCES zone);
INSERT INTO visit VALUES (1, 50), (2, 150);
ALTER TABLE zone OWNER TO towner;
ALTER TABLE zone_a OWNER TO towner;
ALTER TABLE zone_b OWNER TO towner;
GRANT REFERENCES ON par2 TO towner;
SELECT splitdb_add_service('svc');
SELECT splitdb_assign('svc', 'par', 'item');
SELECT splitdb_add_service('svc2');
SELECT splitdb_assign('svc2', 'par2', 'visit');
});

# ===== 1. names changed between the job's prepare and its cutover =====
my ($id, $holder) = start_held('svc', 'copying');
my $recorded = query('postgres', $refs_sql);
is( $recorded,
	"1 item_cat_id_fkey public.item {cat_id} -> public.cat {id} f f\n"
	  . '2 kid_pid_fkey public.kid {pid} -> public.par {id} f f',
	'the job recorded its references when it prepared');
query(
	'postgres', q{
ALTER TABLE kid RENAME COLUMN pid TO par_ref;
ALTER TABLE kid ADD COLUMN pid bigint;
UPDATE kid SET pid = 424242;
ALTER TABLE kid RENAME TO kid_renamed;
ALTER TABLE cat RENAME COLUMN id TO cat_key;
ALTER TABLE cat ADD COLUMN id integer;
UPDATE cat SET id = 999;
});
is(release_and_wait($id, $holder), 'done, phase done, run 1: no error', 'the job ends done');
is( query('postgres', $refs_sql),
	"1 item_cat_id_fkey public.item {cat_id} -> public.cat {cat_key} f f\n"
	  . '2 kid_pid_fkey public.kid_renamed {par_ref} -> public.par {id} f f',
	'the references are what the foreign keys were at the cutover, with their numbers');
is( query('postgres',
		q{SELECT string_agg(relid::regclass || ' ' || side::text || ' ' || own_columns::text, ', ' ORDER BY side)
		    FROM splitdb.reference_end WHERE relid IN ('kid_renamed'::regclass, 'cat'::regclass)}),
	'kid_renamed c {par_ref}, cat p {cat_key}',
	"the source's ends read the key columns by their names at the cutover");

my ($rc, $out, $err) = psql_verbose($node, 'svc', 'DELETE FROM par WHERE id = 1');
like($err, qr/ERROR:  23503: update or delete on table "par" violates foreign key constraint "kid_pid_fkey" on table "kid_renamed"/,
	'a parent that kid_renamed.par_ref refers to cannot be deleted in the sibling');
is(query('svc', 'SELECT count(*) FROM par WHERE id = 1'), '1', 'the parent is still there');
($rc, $out, $err) = psql_verbose($node, 'svc', 'DELETE FROM par WHERE id = 3000');
is($rc, 0, 'a parent nothing refers to can be deleted') or diag($err);

($rc, $out, $err) = psql_verbose($node, 'postgres', 'INSERT INTO kid_renamed (id, par_ref) VALUES (100, 999999)');
like($err, qr/ERROR:  23503: insert or update on table "kid_renamed" violates foreign key constraint "kid_pid_fkey"\nDETAIL:  Key \(par_ref\)=\(999999\) is not present in table "par"/,
	'a kid row that refers to no parent is refused');
($rc, $out, $err) = psql_verbose($node, 'postgres', 'INSERT INTO kid_renamed (id, par_ref, pid) VALUES (101, 2, 777777)');
is($rc, 0, 'the decoy column pid is no key') or diag($err);
is(query('postgres', 'SELECT count(*) FROM kid_renamed WHERE id >= 100'), '1', 'only the valid kid row went in');

($rc, $out, $err) = psql_verbose($node, 'svc', 'INSERT INTO item VALUES (100, 999)');
like($err, qr/ERROR:  23503: insert or update on table "item" violates foreign key constraint "item_cat_id_fkey"\nDETAIL:  Key \(cat_id\)=\(999\) is not present in table "cat"/,
	"an item is checked against cat's key column, not the decoy that took its name");
($rc, $out, $err) = psql_verbose($node, 'svc', 'INSERT INTO item VALUES (101, 3)');
is($rc, 0, 'an item whose category exists goes in') or diag($err);
($rc, $out, $err) = psql_verbose($node, 'postgres', 'DELETE FROM cat WHERE cat_key = 3');
like($err, qr/ERROR:  23503: update or delete on table "cat" violates foreign key constraint "item_cat_id_fkey" on table "item"/,
	'a category that an item refers to cannot be deleted');
is( query('postgres',
		'SELECT count(*) FROM kid_renamed k WHERE NOT EXISTS (SELECT FROM par_check p WHERE p.id = k.par_ref)'
		  =~ s/par_check/par/r),
	'0', 'no kid row is an orphan');

# ===== the way to drop a table with an end (operations.md, Limits known
# today): the reference off first, then the table; the other database's
# writes no longer check it
for my $ref ([ 1, 'cat' ], [ 2, 'kid_renamed' ])
{
	my ($n, $table) = @$ref;
	is(query('postgres', "SELECT splitdb_reference_mode($n, 'off')"), 'strict', "reference $n was strict");
	is(query('postgres', "SELECT mode FROM splitdb_references WHERE reference_id = $n"), 'off',
		"reference $n is turned off");
	query('postgres', "DROP TABLE $table");
}
($rc, $out, $err) = psql_verbose($node, 'svc', 'DELETE FROM par WHERE id = 1');
is($rc, 0, "with kid_renamed dropped after its reference was turned off, the sibling deletes a parent it referred to")
  or diag($err);
($rc, $out, $err) = psql_verbose($node, 'svc', 'INSERT INTO item VALUES (102, 999)');
is($rc, 0, 'with cat dropped after its reference was turned off, the sibling writes any category') or diag($err);

# ===== 2. the owner of a referencing table renames its key column while the cutover installs its end =====
query('postgres',
	"CREATE USER MAPPING FOR towner SERVER splitdb_svc2 OPTIONS (user 'towner', password_required 'false')");
($id, $holder) = start_held('svc2', 'cutover_committing');
my %rename = (
	column => 'ALTER TABLE kid2 RENAME COLUMN pid TO y',
	schema => 'ALTER SCHEMA tsch RENAME TO tsch2');
my %session;
for my $what (sort keys %rename)
{
	$session{$what} =
	  $node->background_psql('postgres', extra_params => [ '-U', 'towner' ], on_error_stop => 0);
	$session{$what}->query_until(qr/started/, "\\echo started\n$rename{$what};\n");
}
poll_until(
	sub {
		query('postgres',
			"SELECT count(*) FROM pg_stat_activity WHERE usename = 'towner' AND wait_event_type = 'Lock'") eq '2';
	},
	undef,
	"towner's renames to wait for the cutover's locks");
is(release_and_wait($id, $holder), 'done, phase done, run 1: no error', 'the job of svc2 ends done');
for my $what (sort keys %rename)
{
	$session{$what}->query('SELECT 1');
	$session{$what}->quit;
}
like($session{column}->{stderr},
	qr/permission denied: column "pid" of table "kid2" is a key of a cross-service reference/,
	"towner's column rename, which waited for the cutover, is refused once the reference is in place");
like($session{schema}->{stderr},
	qr/permission denied: table "kid3" holds an end of a cross-service reference/,
	"towner's schema rename, which waited for the cutover, is refused once the reference is in place");
is(query('postgres', "SELECT count(*) FROM pg_namespace WHERE nspname = 'tsch'"), '1', 'the schema keeps its name');
($rc, $out, $err) = as_role('towner', 'postgres', 'INSERT INTO tsch.kid3 VALUES (100, 999999)');
like($err, qr/ERROR:  23503: insert or update on table "kid3" violates foreign key constraint "kid3_pid_fkey"/,
	'the reference to par2 is enforced on tsch.kid3');

# ===== 3. what the owner of a table with an end may not drop =====
# PostgreSQL refuses to drop a referenced table without CASCADE, and the
# partition of a referenced partitioned table
my %drop = (
	'DROP TABLE zone_a' => [ 'postgres', 'table public.zone_a', 'partition' ],
	'DROP TABLE zone'   => [ 'postgres', 'table public.zone',   'referenced' ],
	'DROP TABLE par2'   => [ 'svc2',     'table public.par2',   'referenced' ]);
query('svc2', 'ALTER TABLE par2 OWNER TO towner');
for my $sql (sort keys %drop)
{
	my ($db, $what, $why) = @{ $drop{$sql} };
	my $before = query($db, q{SELECT count(*) FROM pg_class WHERE relname IN ('kid2', 'kid3', 'par2', 'zone', 'zone_a')});
	($rc, $out, $err) = as_role('towner', $db, $sql);
	if ($why eq 'partition')
	{
		like(
			$err,
			qr/ERROR:  2BP01: cannot drop \Q$what\E because cross-service reference \d+ depends on it\nDETAIL:  Reference \d+ \("\w+"\) is on the partitioned table above it, whose other end, in another database, refers to the partition's rows\.\nHINT:  Ask a superuser to turn the reference off with splitdb_reference_mode\(\d+, 'off'\) and to drop the table\./,
			"$db: towner's $sql is refused (2BP01), naming the reference");
	}
	else
	{
		like(
			$err,
			qr/ERROR:  2BP01: cannot drop \Q$what\E because other objects depend on it\nDETAIL:  Cross-service reference \d+ \("\w+"\) on table [\w.]+ in database "\w+" depends on \Q$what\E\.\nHINT:  Use DROP \.\.\. CASCADE to drop the dependent objects too\./,
			"$db: towner's $sql is refused (2BP01), as PostgreSQL refuses it without CASCADE");
	}
	is(query($db, q{SELECT count(*) FROM pg_class WHERE relname IN ('kid2', 'kid3', 'par2', 'zone', 'zone_a')}),
		$before, "$db: $sql dropped nothing");
}
($rc, $out, $err) = psql_verbose($node, 'svc2', 'DELETE FROM par2 WHERE id = 2');
like($err, qr/ERROR:  23503: update or delete on table "par2" violates foreign key constraint "kid2_pid_fkey" on table "kid2"/,
	'the sibling still checks kid2 before deleting a parent it refers to');
is( query('postgres', q{SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute
	WHERE attrelid = 'kid2'::regclass AND attnum > 0 AND NOT attisdropped}),
	'id,pid', "kid2's key column keeps its name");
($rc, $out, $err) = as_role('towner', 'postgres', 'INSERT INTO kid2 VALUES (100, 999999)');
like($err, qr/ERROR:  23503: insert or update on table "kid2" violates foreign key constraint "kid2_pid_fkey"/,
	'the reference to par2 is enforced on kid2.pid');

# ===== 4. the reference goes with a table that holds an end, as a foreign key goes with its table =====
sub ref_of
{
	my ($conname) = @_;
	return query('postgres', "SELECT reference_id FROM splitdb_references WHERE constraint_name = '$conname'");
}
my $kid2_ref = ref_of('kid2_pid_fkey');
query('postgres', 'INSERT INTO kid2 VALUES (20, 10), (21, 11)');
($rc, $out, $err) = psql_verbose($node, 'svc2', 'DELETE FROM par2 WHERE id = 10');
like($err, qr/ERROR:  23503: update or delete on table "par2" violates foreign key constraint "kid2_pid_fkey" on table "kid2"/,
	'before the drop, a parent that only kid2 refers to cannot be deleted');
($rc, $out, $err) = as_role('towner', 'postgres', 'DROP TABLE kid2');
like(
	$err,
	qr/NOTICE:  00000: cross-service reference $kid2_ref \("kid2_pid_fkey"\) checks nothing any more: its referencing table public\.kid2 was dropped\nDETAIL:  Its other end, table public\.par2 in database "svc2", finds from now on what it would find if the foreign key had gone with the table\.\nHINT:  splitdb_reference_mode\($kid2_ref, 'off'\) takes its triggers off there\./,
	"kid2's owner drops it, as PostgreSQL lets the owner of a referencing table, and is told what became of the reference");
is(query('postgres', "SELECT count(*) FROM pg_class WHERE relname = 'kid2'"), '0', 'kid2 is gone');
is( query('postgres',
		"SELECT string_agg(side::text || ' ' || EXISTS (SELECT FROM pg_class c WHERE c.oid = relid)::text, ','"
		  . " ORDER BY side) FROM splitdb.reference_end WHERE reference_id = $kid2_ref"),
	'c false',
	"the source keeps the dropped table's end, and drops the end on par2's shim that read kid2");
($rc, $out, $err) = psql_verbose($node, 'svc2', 'DELETE FROM par2 WHERE id = 10');
is($rc, 0, 'the sibling deletes a parent that kid2 referred to, as without the foreign key') or diag($err);
($rc, $out, $err) = psql_verbose($node, 'postgres', 'DELETE FROM par2 WHERE id = 11');
is($rc, 0, 'and so does the source, through the shim') or diag($err);
($rc, $out, $err) = psql_verbose($node, 'postgres', 'DELETE FROM par2 WHERE id = 4');
like($err, qr/ERROR:  23503: update or delete on table "par2" violates foreign key constraint "kid3_pid_fkey" on table "kid3"/,
	'the other reference to par2 still holds');
is( query('postgres',
		"SELECT string_agg(severity || ': ' || object || ': ' || problem || ': ' || action, E'\\n')"
		  . " FROM splitdb_doctor() WHERE object LIKE '%kid2%'"),
	"warning: reference $kid2_ref (kid2_pid_fkey): its referencing table public.kid2 was dropped: the reference"
	  . " checks nothing, and its triggers in the other database still cost a round trip for each write they check:"
	  . " none: turn it off with SELECT splitdb_reference_mode($kid2_ref, 'off')",
	"the doctor does not report kid2's triggers missing, and says to turn the reference off");

($rc, $out, $err) = psql_verbose($node, 'postgres', "SELECT splitdb_reference_mode($kid2_ref, 'strict')");
like(
	$err,
	qr/ERROR:  55000: cross-service reference $kid2_ref cannot be enforced again\nDETAIL:  Its referencing table public\.kid2 was dropped; PostgreSQL drops a foreign key along with its table\.\nHINT:  Turn it off with splitdb_reference_mode\($kid2_ref, 'off'\)\./,
	'the reference cannot be enforced again');
is(query('postgres', "SELECT splitdb_reference_mode($kid2_ref, 'off')"), 'strict', 'but it can be turned off');
is(query('postgres', "SELECT count(*) FROM splitdb_doctor() WHERE object LIKE '%kid2%'"), '0',
	'and the doctor then reports nothing of it');
is( query('svc2',
		"SELECT string_agg(DISTINCT tgenabled::text, ',') FROM pg_trigger"
		  . " WHERE tgname LIKE 'splitdb\\_ref\\_${kid2_ref}\\_%'"),
	'D', "its triggers in the sibling are disabled");

my $visit_ref = ref_of('visit_zone_id_fkey');
($rc, $out, $err) = as_role('towner', 'postgres', 'DROP TABLE zone CASCADE');
like($err, qr/NOTICE:  00000: cross-service reference $visit_ref \("visit_zone_id_fkey"\) checks nothing any more: its referenced table public\.zone was dropped/,
	"zone's owner drops it with CASCADE, as PostgreSQL lets it, and is told what became of the reference");
is(query('postgres', "SELECT count(*) FROM pg_class WHERE relname IN ('zone', 'zone_a', 'zone_b')"), '0',
	'zone and its partitions are gone');
($rc, $out, $err) = psql_verbose($node, 'svc2', 'INSERT INTO visit VALUES (10, 999)');
is($rc, 0, 'the sibling then writes a visit of any zone, as without the foreign key') or diag($err);
($rc, $out, $err) = psql_verbose($node, 'postgres', 'INSERT INTO visit VALUES (11, 998)');
is($rc, 0, 'and so does the source, through the shim') or diag($err);

my $kid3_ref = ref_of('kid3_pid_fkey');
($rc, $out, $err) = psql_verbose($node, 'svc2', 'DROP TABLE par2');
like($err, qr/NOTICE:  00000: cross-service reference $kid3_ref \("kid3_pid_fkey"\) checks nothing any more: its referenced table public\.par2 was dropped\nDETAIL:  Its other end, table tsch\.kid3 in database "postgres"/,
	"a superuser's DROP TABLE of a moved table in its sibling says what became of its references");
($rc, $out, $err) = as_role('towner', 'postgres', 'INSERT INTO tsch.kid3 VALUES (101, 999999)');
is($rc, 0, 'kid3 then takes any key, as without the foreign key') or diag($err);
is( query('postgres',
		"SELECT string_agg(severity || ': ' || location || ': ' || object || ': ' || problem || ': ' || action, E'\\n')"
		  . " FROM splitdb_doctor() WHERE object LIKE '%kid3%'"),
	"warning: svc2: reference $kid3_ref (kid3_pid_fkey): its referenced table public.par2 in the sibling of service svc2"
	  . " was dropped: the reference checks nothing, and its triggers in the other database still cost a round trip"
	  . " for each write they check: none: turn it off with SELECT splitdb_reference_mode($kid3_ref, 'off')",
	"the doctor asks the sibling, and warns that the reference checks nothing");
my $strict_again = qr/ERROR:  55000: cross-service reference $kid3_ref cannot be enforced again\nDETAIL:  Its referenced table public\.par2 in the database of service "svc2" was dropped; PostgreSQL drops a foreign key along with its table\.\nHINT:  Turn it off with splitdb_reference_mode\($kid3_ref, 'off'\)\./;
($rc, $out, $err) = psql_verbose($node, 'postgres', "SELECT splitdb_reference_mode($kid3_ref, 'strict')");
like($err, $strict_again, 'the reference cannot be set strict: the call asks the sibling');
is(query('postgres', "SELECT splitdb_reference_mode($kid3_ref, 'off')"), 'strict',
	'a reference whose table in a sibling was dropped can be turned off');
($rc, $out, $err) = psql_verbose($node, 'postgres', "SELECT splitdb_reference_mode($kid3_ref, 'strict')");
like($err, $strict_again, 'nor enforced again once off');
is(query('postgres', "SELECT mode FROM splitdb_references WHERE reference_id = $kid3_ref"), 'off',
	'the refused call left it off');
is(query('postgres', "SELECT count(*) FROM splitdb_doctor() WHERE object LIKE '%kid3%'"), '0',
	'and the doctor then reports nothing of it');
is(query('postgres', "SELECT string_agg(DISTINCT tgenabled::text, ',') FROM pg_trigger WHERE tgrelid = 'tsch.kid3'::regclass"
	  . " AND tgname LIKE 'splitdb\\_ref\\_%'"), 'D', "and kid3's triggers are off");
($rc, $out, $err) = as_role('towner', 'postgres', 'DROP SCHEMA tsch CASCADE');
is($rc, 0, "kid3's owner drops its schema with it") or diag($err);
is(query('postgres', "SELECT count(*) FROM pg_namespace WHERE nspname = 'tsch'"), '0', 'the schema is gone');

# the way back: no foreign key is restored to a table that was dropped
is(query('postgres', "SELECT splitdb_rollback('svc')"), '', 'service svc rolls back');
is(query('postgres', "SELECT state FROM splitdb.job WHERE service = 'svc'"), 'rolled_back', 'its job is rolled back');
is( query('postgres',
		"SELECT count(*) FROM pg_constraint WHERE conrelid IN ('par'::regclass, 'item'::regclass) AND contype = 'f'"),
	'0', 'no foreign key is restored to cat or kid_renamed, which were dropped');

done_testing();
