# Copyright (c) 2026, splitdb developers
#
# Races between a write of a referencing row and a delete of the row it
# refers to, in two databases, with random interleavings.
#
# PostgreSQL's own foreign key never leaves a referencing row without its
# referenced row, whatever the interleaving: the referencing side locks the
# referenced row FOR KEY SHARE until it commits, and the delete, which waits
# for that lock, then sees the new row.  A cross-service reference must hold
# the same way, so each race here runs a writer and a deleter in two
# sessions, each starting after a random pause of 0 to 12 ms, many times,
# and then counts the referencing rows whose referenced row is gone: there
# must be none.  The races cover:
#
# - a referencing table that moved (service "ord", a database of this
#   cluster), its referenced table staying: inserts directly in the sibling
#   and through the shim, of one row and of one statement carrying 80 keys
#   (more than splitdb checks on its own connection), with
#   splitdb.check_connection on and off, READ COMMITTED and REPEATABLE READ,
#   a deferred reference, and the referenced side's NO ACTION, CASCADE and
#   SET NULL;
# - a referenced table that moved, its referencing table staying: inserts in
#   the source, deletes through the shim and directly in the sibling;
# - a writer, and a deleter, that already used the other database earlier
#   in the transaction (postgres_fdw's remote snapshot is then older than
#   the race);
# - keys that change instead of rows that go: the writer updates a
#   referencing row to point at the raced key, the deleter updates the
#   referenced key (NO ACTION, which must refuse while a row points at it,
#   and ON UPDATE CASCADE, whose referencing rows must follow it), in both
#   directions of the split;
# - shapes of key and action: ON DELETE SET DEFAULT, a two-column MATCH
#   FULL key with a row whose key is all NULL, a key that is a UNIQUE column
#   rather than the primary key, a chain that crosses databases twice
#   (root <- link, moved <- leaf, each ON DELETE CASCADE), a writer at
#   SERIALIZABLE, and a deferred reference made IMMEDIATE after the write;
# - splitdb's session that holds the writer's lock on the referenced row,
#   terminated by the deleter just before its delete;
# - the referenced table moving to a service of its own (an online cutover)
#   while a transaction in the referencing table's sibling is open.
#
# Which side wins each race is printed, not asserted: timing decides it.
# Each refusal must be one PostgreSQL's foreign keys make (23503, or 40001
# where a check runs in postgres_fdw's REPEATABLE READ transaction).
# SPLITDB_RACE_ROUNDS, SPLITDB_RACE_SEED and SPLITDB_RACE_ONLY (a pattern of
# the race sets to run) narrow a run by hand.

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $rounds = $ENV{SPLITDB_RACE_ROUNDS} // 120;
# a pattern: only the race sets whose names match it run
my $only = $ENV{SPLITDB_RACE_ONLY};
srand($ENV{SPLITDB_RACE_SEED} // 20261204);

my $node = PostgreSQL::Test::Cluster->new('races');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'splitdb'\nmax_worker_processes = 16\nmax_connections = 60");
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE mono');
$node->safe_psql(
	'mono', q{
CREATE EXTENSION splitdb CASCADE;
CREATE TABLE parent (id integer PRIMARY KEY);
CREATE TABLE moved_parent (id integer PRIMARY KEY);
INSERT INTO parent SELECT g FROM generate_series(1, 60000) g;
INSERT INTO moved_parent SELECT g FROM generate_series(1, 60000) g;
-- move to service ord: referencing tables, one per kind of reference
CREATE TABLE c_noaction (id bigint PRIMARY KEY, pid integer REFERENCES parent);
CREATE TABLE c_cascade (id bigint PRIMARY KEY, pid integer REFERENCES parent ON DELETE CASCADE);
CREATE TABLE c_setnull (id bigint PRIMARY KEY, pid integer REFERENCES parent ON DELETE SET NULL);
CREATE TABLE c_deferred (id bigint PRIMARY KEY,
	pid integer REFERENCES parent DEFERRABLE INITIALLY DEFERRED);
CREATE TABLE c_upcascade (id bigint PRIMARY KEY,
	pid integer REFERENCES parent ON UPDATE CASCADE);
CREATE TABLE c_setdefault (id bigint PRIMARY KEY,
	pid integer DEFAULT 50001 REFERENCES parent ON DELETE SET DEFAULT);
-- a key of two columns, MATCH FULL; a key that is UNIQUE, not the primary key
CREATE TABLE pair (id integer, b integer, PRIMARY KEY (id, b));
INSERT INTO pair SELECT g, g FROM generate_series(1, 60000) g;
CREATE TABLE c_pair (id bigint PRIMARY KEY, pid integer, b integer,
	FOREIGN KEY (pid, b) REFERENCES pair MATCH FULL ON DELETE CASCADE);
CREATE TABLE coded (code integer PRIMARY KEY, id integer UNIQUE);
INSERT INTO coded SELECT -g, g FROM generate_series(1, 60000) g;
CREATE TABLE c_coded (id bigint PRIMARY KEY, pid integer REFERENCES coded (id));
-- a chain that crosses twice: link (moves) refers to root, leaf to link
CREATE TABLE root (id integer PRIMARY KEY);
INSERT INTO root SELECT g FROM generate_series(1, 60000) g;
CREATE TABLE link (id integer PRIMARY KEY, pid integer REFERENCES root ON DELETE CASCADE);
INSERT INTO link SELECT g, g FROM generate_series(1, 60000) g;
CREATE TABLE leaf (id bigint PRIMARY KEY, pid integer REFERENCES link ON DELETE CASCADE);
-- stay, refer to a table that moves
CREATE TABLE s_child (id bigint PRIMARY KEY, pid integer REFERENCES moved_parent);
CREATE TABLE s_upcascade (id bigint PRIMARY KEY,
	pid integer REFERENCES moved_parent ON UPDATE CASCADE);
SELECT splitdb_add_service('ord');
SELECT splitdb_assign('ord', 'c_noaction');
SELECT splitdb_assign('ord', 'c_cascade');
SELECT splitdb_assign('ord', 'c_setnull');
SELECT splitdb_assign('ord', 'c_deferred');
SELECT splitdb_assign('ord', 'c_upcascade');
SELECT splitdb_assign('ord', 'moved_parent');
SELECT splitdb_assign('ord', 'c_setdefault');
SELECT splitdb_assign('ord', 'c_pair');
SELECT splitdb_assign('ord', 'c_coded');
SELECT splitdb_assign('ord', 'link');
});
my ($rc, $out, $err) =
  $node->psql('mono', "SELECT splitdb_migrate('ord', wait => true) > 0");
is($rc, 0, 'the service moves');
diag($err) if $rc;

# the keys never deleted, that a statement of 80 keys carries besides its own
my @safe = (50001 .. 50079);

my %db = (mono => 'mono', ord => 'ord');
my %session;

sub session
{
	my ($name, $dbname) = @_;
	$session{$name} //= $node->background_psql($dbname, on_error_stop => 0);
	return $session{$name};
}

# Send a script to two sessions at once and wait until both have run it.
# Returns whether each one reported an error.
my $marker = 0;

sub race
{
	my ($s1, $script1, $s2, $script2) = @_;
	my $m = ++$marker;

	$_->{stderr} = '' for ($s1, $s2);
	# the sessions live through every race: each race has its own deadline
	# (below), so their timers start again, as a query's would
	$_->{timeout}->start() for ($s1, $s2);
	$s1->{stdout} = '';
	$s2->{stdout} = '';
	# the marker goes to both streams, so that each is read to its end
	# verbose: each error carries its SQLSTATE
	$s1->{stdin} .=
	  "\\set VERBOSITY verbose\n$script1\n\\echo race-done-$m\n\\warn race-done-$m\n";
	$s2->{stdin} .=
	  "\\set VERBOSITY verbose\n$script2\n\\echo race-done-$m\n\\warn race-done-$m\n";
	my $deadline = time + 60;
	while (1)
	{
		$s1->{run}->pump_nb;
		$s2->{run}->pump_nb;
		last
		  if $s1->{stdout} =~ /race-done-$m/
		  && $s2->{stdout} =~ /race-done-$m/
		  && $s1->{stderr} =~ /race-done-$m/
		  && $s2->{stderr} =~ /race-done-$m/;
		die "race $m did not finish: $s1->{stderr} $s2->{stderr}" if time > $deadline;
		select(undef, undef, undef, 0.001);
	}
	return (sqlstates($s1->{stderr}), sqlstates($s2->{stderr}));
}

# The SQLSTATEs of the errors in a session's output, but for the 25P02 of
# the statements after the first error: an empty list when all went well.
sub sqlstates
{
	my ($stderr) = @_;
	return [ grep { $_ ne '25P02' } $stderr =~ /ERROR:  ([0-9A-Z]{5}):/g ];
}

sub pause
{
	return sprintf('SELECT pg_sleep(%.4f);', rand(0.012));
}

# The statement that writes referencing rows: one row with key $k, or 80
# rows, $k among 79 keys that are never deleted.
sub insert_sql
{
	my ($table, $k, $size, $idbase) = @_;
	return "INSERT INTO $table VALUES ($idbase, $k);" if $size == 1;
	return "INSERT INTO $table SELECT $idbase + o, k FROM unnest(ARRAY[$k, "
	  . join(', ', @safe)
	  . "]) WITH ORDINALITY u(k, o);";
}

my $variant = 0;

# The writer's statement when it moves an existing referencing row to the
# raced key: the row is inserted first, in the same transaction, pointing
# at a key that is never deleted, and then updated.
sub repoint_sql
{
	my ($table, $k, $size, $idbase) = @_;
	return "INSERT INTO $table VALUES ($idbase, $safe[0]); "
	  . pause()
	  . "UPDATE $table SET pid = $k WHERE id = $idbase;";
}

# run_races NAME, %options
#   table      the referencing table
#   parent     the referenced table, as the deleter names it
#   writer_db  where the referencing rows are written
#   deleter_db where the referenced row is deleted
#   writer     the writer's statement (default insert_sql; repoint_sql)
#   rekey      the deleter updates the referenced key (to key + 500000)
#              instead of deleting its row
#   size       1 or 80 keys per statement
#   setup      statements at the start of the writer's transaction
#   deleter_setup  the same for the deleter
#   isolation  of the writer's transaction (and the deleter's)
#   orphans    the query counting referencing rows without their row (mono)
#   fresh      the writer inserts the referenced row itself first, in the
#              same transaction (through the shim)
#   hold       the longest pause between the writer's statement and its
#              COMMIT, in seconds (default 0.012)
#   strike     a statement the deleter runs just before its delete
#   refusals   SQLSTATEs allowed besides 23503 and 40001
sub run_races
{
	my ($name, %o) = @_;
	$variant++;
	return if defined $only && $name !~ /$only/;
	my $w = session("w-$o{writer_db}", $o{writer_db});
	my $d = session("d-$o{deleter_db}", $o{deleter_db});
	my ($wins_w, $wins_d, $both) = (0, 0, 0);
	my %refusals;
	my $iso = $o{isolation} // 'READ COMMITTED';

	my $kbase = ($o{fresh} ? 100000 : 0) + $variant * 1000;
	for my $i (1 .. $rounds)
	{
		my $k = $kbase + $i;
		my $idbase = ($variant * 1000 + $i) * 100;
		my $writer =
		    "BEGIN ISOLATION LEVEL $iso; "
		  . ($o{setup} // '')
		  . ($o{fresh} ? "INSERT INTO $o{parent} VALUES ($k); " : '')
		  . pause()
		  . ($o{writer} // \&insert_sql)->($o{table}, $k, $o{size}, $idbase)
		  . sprintf('SELECT pg_sleep(%.4f);', rand($o{hold} // 0.012))
		  . 'COMMIT;';
		my $deleter =
		    "BEGIN ISOLATION LEVEL $iso; "
		  . ($o{deleter_setup} // '')
		  . ($o{fresh} ? 'SELECT pg_sleep(0.006); ' : '')
		  . pause()
		  . ($o{strike} // '')
		  . ($o{rekey}
			? "UPDATE $o{parent} SET id = id + 500000 WHERE id = $k; COMMIT;"
			: "DELETE FROM $o{parent} WHERE id = $k; COMMIT;");
		my ($werr, $derr) = race($w, $writer, $d, $deleter);
		$w->query('ROLLBACK') if @$werr;
		$d->query('ROLLBACK') if @$derr;
		$wins_w++ if !@$werr && @$derr;
		$wins_d++ if @$werr && !@$derr;
		$both++ if !@$werr && !@$derr;
		$refusals{$_}++ for (@$werr, @$derr);
	}
	# a refusal is PostgreSQL's: 23503, or 40001 where a check runs in
	# postgres_fdw's REPEATABLE READ transaction (reference.md, Isolation)
	my %allowed = map { $_ => 1 } ('23503', '40001', @{ $o{refusals} // [] });
	my @foreign = grep { !$allowed{$_} } sort keys %refusals;
	is("@foreign", '', "$name: every refusal is one of " . join(', ', sort keys %allowed));
	# a key that cascades leaves the range: count over the whole table
	my $orphans = $node->safe_psql('mono',
		$o{rekey} ? $o{orphans} : "$o{orphans} AND c.pid BETWEEN $kbase AND $kbase + 999");
	is($orphans, '0', "$name: no referencing row without its referenced row");
	note("$name: $rounds races, writer won $wins_w, deleter won $wins_d, "
		  . "both committed $both (the writer's rows then "
		  . ($o{rekey} ? 'followed the key)' : 'went with the delete)')
		  . '; refusals: '
		  . join(', ', map { "$_ x$refusals{$_}" } sort keys %refusals));
}

my $orphans_of = sub {
	my ($table) = @_;
	return "SELECT count(*) FROM $table c WHERE"
	  . " NOT EXISTS (SELECT 1 FROM parent p WHERE p.id = c.pid)";
};

for my $size (1, 80)
{
	for my $conn ('on', 'off')
	{
		run_races(
			"moved child, direct in the sibling, $size key(s), check_connection $conn",
			table      => 'c_noaction',
			parent     => 'parent',
			writer_db  => 'ord',
			deleter_db => 'mono',
			size       => $size,
			setup      => "SET LOCAL splitdb.check_connection = $conn; ",
			orphans    => $orphans_of->('c_noaction'));
	}
}
run_races(
	'moved child, through the shim, 80 keys',
	table      => 'c_noaction',
	parent     => 'parent',
	writer_db  => 'mono',
	deleter_db => 'mono',
	size       => 80,
	orphans    => $orphans_of->('c_noaction'));
run_races(
	'moved child, direct, 80 keys, REPEATABLE READ',
	table      => 'c_noaction',
	parent     => 'parent',
	writer_db  => 'ord',
	deleter_db => 'mono',
	size       => 80,
	isolation  => 'REPEATABLE READ',
	orphans    => $orphans_of->('c_noaction'));
run_races(
	'moved child, direct, the writer read the source before',
	table      => 'c_noaction',
	parent     => 'parent',
	writer_db  => 'ord',
	deleter_db => 'mono',
	size       => 1,
	setup      => 'INSERT INTO c_noaction VALUES (-1, 50001); DELETE FROM c_noaction WHERE id = -1; ',
	orphans    => $orphans_of->('c_noaction'));
for my $kind ('noaction', 'cascade')
{
	run_races(
		"moved child, $kind, the deleter read the sibling before the race",
		table         => "c_$kind",
		parent        => 'parent',
		writer_db     => 'ord',
		deleter_db    => 'mono',
		size          => 1,
		deleter_setup => "SELECT count(*) FROM c_$kind WHERE id = -1; ",
		orphans       => $orphans_of->("c_$kind"));
}
run_races(
	'moved child, deferred reference, 80 keys',
	table      => 'c_deferred',
	parent     => 'parent',
	writer_db  => 'ord',
	deleter_db => 'mono',
	size       => 80,
	orphans    => $orphans_of->('c_deferred'));
# splitdb's session that holds the writer's lock on the referenced row is
# terminated in the source while the writer holds its transaction open: the
# writer must see it before its commit (the session's FATAL message comes
# before its locks go, and its socket closes only after) and check the key
# again, whichever of the two then wins.  A check that was under way when
# its session ended fails with 08006 (reference.md, Checks on splitdb's own
# connection).
run_races(
	'moved child, direct, the lock holder terminated',
	table      => 'c_noaction',
	parent     => 'parent',
	writer_db  => 'ord',
	deleter_db => 'mono',
	size       => 1,
	hold       => 0.03,
	strike     => "SELECT count(pg_terminate_backend(pid)) >= 0 FROM pg_stat_activity"
	  . " WHERE datname = 'mono' AND application_name = 'splitdb'; ",
	refusals => ['08006'],
	orphans  => $orphans_of->('c_noaction'));
run_races(
	'moved child, ON DELETE CASCADE, 80 keys',
	table      => 'c_cascade',
	parent     => 'parent',
	writer_db  => 'ord',
	deleter_db => 'mono',
	size       => 80,
	orphans    => $orphans_of->('c_cascade'));
run_races(
	'moved child, ON DELETE SET NULL, 80 keys',
	table      => 'c_setnull',
	parent     => 'parent',
	writer_db  => 'ord',
	deleter_db => 'mono',
	size       => 80,
	orphans    => $orphans_of->('c_setnull'));

# Shapes of key and action, each with the writer in the sibling and through
# the shim: SET DEFAULT (the default key, never deleted, is checked when the
# action sets it); a key of two columns, MATCH FULL, ON DELETE CASCADE, next
# to a row whose key is all NULL; a key that is a UNIQUE column, not the
# primary key; a chain root <- link (moved) <- leaf, each ON DELETE CASCADE,
# where a leaf is written in the source while its root is deleted there.
for my $writer_db ('ord', 'mono')
{
	run_races(
		"moved child, ON DELETE SET DEFAULT, written in $writer_db",
		table      => 'c_setdefault',
		parent     => 'parent',
		writer_db  => $writer_db,
		deleter_db => 'mono',
		size       => 1,
		orphans    => $orphans_of->('c_setdefault'));
	run_races(
		"moved child, two-column MATCH FULL key, ON DELETE CASCADE, written in $writer_db",
		table      => 'c_pair',
		parent     => 'pair',
		writer_db  => $writer_db,
		deleter_db => 'mono',
		writer     => sub {
			my ($table, $k, $size, $idbase) = @_;
			return "INSERT INTO $table VALUES ($idbase, $k, $k), ($idbase + 1, NULL, NULL);";
		},
		orphans => 'SELECT count(*) FROM c_pair c WHERE'
		  . ' NOT EXISTS (SELECT 1 FROM pair p WHERE (p.id, p.b) = (c.pid, c.b))');
	run_races(
		"moved child, key to a UNIQUE column, written in $writer_db",
		table      => 'c_coded',
		parent     => 'coded',
		writer_db  => $writer_db,
		deleter_db => 'mono',
		size       => 1,
		orphans    => 'SELECT count(*) FROM c_coded c WHERE'
		  . ' NOT EXISTS (SELECT 1 FROM coded p WHERE p.id = c.pid)');
}
run_races(
	'chain of two crossings, the leaf written while the root goes',
	table      => 'leaf',
	parent     => 'root',
	writer_db  => 'mono',
	deleter_db => 'mono',
	size       => 1,
	orphans    => 'SELECT count(*) FROM (SELECT l.pid FROM leaf l WHERE'
	  . ' NOT EXISTS (SELECT 1 FROM link p WHERE p.id = l.pid) UNION ALL'
	  . ' SELECT l.pid FROM link l WHERE NOT EXISTS (SELECT 1 FROM root p WHERE p.id = l.pid)) c'
	  . ' WHERE true');
run_races(
	'moved child, direct, 80 keys, SERIALIZABLE',
	table      => 'c_noaction',
	parent     => 'parent',
	writer_db  => 'ord',
	deleter_db => 'mono',
	size       => 80,
	isolation  => 'SERIALIZABLE',
	orphans    => $orphans_of->('c_noaction'));
for my $writer_db ('ord', 'mono')
{
	run_races(
		"moved child, deferred reference made IMMEDIATE after the write, in $writer_db",
		table      => 'c_deferred',
		parent     => 'parent',
		writer_db  => $writer_db,
		deleter_db => 'mono',
		writer     => sub {
			return insert_sql(@_) . ' ' . pause() . 'SET CONSTRAINTS ALL IMMEDIATE;';
		},
		size    => 1,
		hold    => 0.03,
		orphans => $orphans_of->('c_deferred'));
}

my $orphans_moved = 'SELECT count(*) FROM s_child c WHERE NOT EXISTS '
  . '(SELECT 1 FROM moved_parent p WHERE p.id = c.pid)';
for my $size (1, 80)
{
	run_races(
		"moved parent, deleted through the shim, $size key(s)",
		table      => 's_child',
		parent     => 'moved_parent',
		writer_db  => 'mono',
		deleter_db => 'mono',
		size       => $size,
		orphans    => $orphans_moved);
	run_races(
		"moved parent, deleted in the sibling, $size key(s)",
		table      => 's_child',
		parent     => 'moved_parent',
		writer_db  => 'mono',
		deleter_db => 'ord',
		size       => $size,
		orphans    => $orphans_moved);
}

# Keys that change.  NO ACTION: an update of a referenced key that a row
# points at is refused, whichever committed first; ON UPDATE CASCADE: the
# referencing rows follow the key, none is left pointing at the old one.
for my $writer_db ('mono', 'ord')
{
	run_races(
		"moved child, repointed in $writer_db, the key deleted in the source",
		table      => 'c_noaction',
		parent     => 'parent',
		writer_db  => $writer_db,
		deleter_db => 'mono',
		writer     => \&repoint_sql,
		orphans    => $orphans_of->('c_noaction'));
}
for my $kind ('noaction', 'upcascade')
{
	run_races(
		"moved child, $kind, the referenced key updated in the source",
		table      => "c_$kind",
		parent     => 'parent',
		writer_db  => 'ord',
		deleter_db => 'mono',
		size       => 1,
		rekey      => 1,
		orphans    => $orphans_of->("c_$kind"));
}
run_races(
	'moved child, repointed in the sibling, the key updated in the source',
	table      => 'c_noaction',
	parent     => 'parent',
	writer_db  => 'ord',
	deleter_db => 'mono',
	writer     => \&repoint_sql,
	rekey      => 1,
	orphans    => $orphans_of->('c_noaction'));
my $orphans_upcascade = 'SELECT count(*) FROM s_upcascade c WHERE NOT EXISTS '
  . '(SELECT 1 FROM moved_parent p WHERE p.id = c.pid)';
for my $deleter_db ('mono', 'ord')
{
	run_races(
		"moved parent, its key updated in $deleter_db",
		table      => 's_child',
		parent     => 'moved_parent',
		writer_db  => 'mono',
		deleter_db => $deleter_db,
		size       => 1,
		rekey      => 1,
		orphans    => $orphans_moved);
	run_races(
		"moved parent, its key updated in $deleter_db, ON UPDATE CASCADE",
		table      => 's_upcascade',
		parent     => 'moved_parent',
		writer_db  => 'mono',
		deleter_db => $deleter_db,
		size       => 1,
		rekey      => 1,
		orphans    => $orphans_upcascade);
	run_races(
		"moved parent, a staying row repointed, the key deleted in $deleter_db",
		table      => 's_child',
		parent     => 'moved_parent',
		writer_db  => 'mono',
		deleter_db => $deleter_db,
		writer     => \&repoint_sql,
		orphans    => $orphans_moved);
}

# The referenced row written through the shim in the writer's own
# transaction: postgres_fdw's remote transaction alone sees it until it
# commits, and its lock is taken again only after that commit.
for my $deleter_db ('mono', 'ord')
{
	run_races(
		"moved parent written in the same transaction, deleted in $deleter_db",
		table      => 's_child',
		parent     => 'moved_parent',
		writer_db  => 'mono',
		deleter_db => $deleter_db,
		size       => 1,
		fresh      => 1,
		orphans    => $orphans_moved);
}
$_->quit for values %session;

# The referenced table moves to a service of its own while a transaction in
# the sibling of the referencing table is open: that transaction holds the
# referencing table, which the cutover's new triggers there wait for, with
# the referenced table locked in the source; and its next check waits for
# that lock.  No deadlock detector sees the circle, which runs through two
# databases: the trigger's DDL there waits no longer than the cutover's
# lock_timeout, the attempt lets go, the writer's check goes through, and a
# later attempt cuts over.
my $open = $node->background_psql('ord', on_error_stop => 0);
$open->query_safe('BEGIN');
$open->query_safe('INSERT INTO c_noaction VALUES (-10, NULL)');
$node->safe_psql(
	'mono', q{
SELECT splitdb_add_service('inv');
SELECT splitdb_assign('inv', 'parent');
SELECT splitdb_migrate('inv') > 0;
});
my $job_state =
  "SELECT state || coalesce(' ' || last_error, '') FROM splitdb.job WHERE service = 'inv'";
my $waits = q{SELECT count(*) FROM pg_stat_activity
 WHERE datname = 'ord' AND wait_event_type = 'Lock' AND query LIKE '%install_reference_ends%'};
my $seen = 0;
my $until = time + 60;
while (time < $until)
{
	$seen = $node->safe_psql('postgres', $waits);
	last if $seen > 0 || $node->safe_psql('mono', $job_state) !~ /^(queued|preparing|copying|indexing|catching_up|verifying|cutting_over)/;
	select(undef, undef, undef, 0.05);
}
ok($seen > 0, "the cutover's triggers in the referencing table's sibling wait for the open transaction");
# the writer's check now waits for the cutover's lock on the referenced table
$open->{stdin} .= "INSERT INTO c_noaction VALUES (-11, 7);\nCOMMIT;\n\\echo committed\n";
my $state = '';
$until = time + 90;
while (time < $until)
{
	$open->{run}->pump_nb;
	$state = $node->safe_psql('mono', $job_state);
	last if $state !~ /^(queued|preparing|copying|indexing|catching_up|verifying|cutting_over)/
	  && $open->{stdout} =~ /committed/;
	select(undef, undef, undef, 0.05);
}
is($state, 'done', 'the referenced table moves: the cutover let go and tried again');
like($open->{stdout}, qr/committed/, "the open transaction's check went through");
is($open->{stderr}, '', 'without an error');
is($node->safe_psql('mono', 'SELECT count(*) FROM c_noaction WHERE id = -11'),
	'1', 'its row is there');
# a session still waiting would never quit
if ($open->{stdout} =~ /committed/) { $open->quit; }
else { $open->{run}->kill_kill; }

# Without splitdb in shared_preload_libraries, the cutover makes the source
# database preload it, so that its commit-time callback runs after
# postgres_fdw's.  A session that loaded postgres_fdw first cannot hold the
# lock of a referenced row it wrote through a shim past its commit: that
# commit is refused, and nothing of it stays.
my $plain = PostgreSQL::Test::Cluster->new('plain');
$plain->init;
$plain->append_conf('postgresql.conf', "max_worker_processes = 16");
$plain->start;
$plain->safe_psql('postgres', 'CREATE DATABASE mono');
$plain->safe_psql(
	'mono', q{
CREATE EXTENSION splitdb CASCADE;
CREATE TABLE moved_parent (id integer PRIMARY KEY);
CREATE TABLE s_child (id bigint PRIMARY KEY, pid integer REFERENCES moved_parent);
INSERT INTO moved_parent VALUES (1);
SELECT splitdb_add_service('ord');
SELECT splitdb_assign('ord', 'moved_parent');
});
($rc, $out, $err) =
  $plain->psql('mono', "SELECT splitdb_migrate('ord', wait => true) > 0");
is($rc, 0, 'without preloading: the service moves');
is( $plain->safe_psql(
		'mono', q{
SELECT c FROM pg_db_role_setting s, unnest(s.setconfig) c
 WHERE s.setdatabase = (SELECT oid FROM pg_database WHERE datname = 'mono')
   AND c LIKE 'session_preload_libraries=%'}),
	'session_preload_libraries=splitdb',
	'the cutover made the source database preload splitdb');
my $same_tx = q{
SELECT count(*) FROM moved_parent;
BEGIN;
INSERT INTO moved_parent VALUES (%d);
INSERT INTO s_child VALUES (%d, %d);
COMMIT;
};
($rc, $out, $err) = $plain->psql('mono', sprintf($same_tx, 2, 2, 2));
is($rc, 0, 'a session that preloads splitdb writes both rows in one transaction');
is($plain->safe_psql('mono', 'SELECT count(*) FROM s_child WHERE pid = 2'),
	'1', 'the referencing row committed');

$plain->safe_psql('mono', 'ALTER DATABASE mono RESET session_preload_libraries');
($rc, $out, $err) =
  $plain->psql('mono', '\set VERBOSITY verbose' . sprintf($same_tx, 3, 3, 3));
diag($err) if $err !~ /55000/;
like($err,
	qr/ERROR:  55000: cannot hold the lock on key \(id\)=\(3\) of table "moved_parent" past the commit/,
	'postgres_fdw loaded first: the commit is refused (55000)');
like($err, qr/HINT:  Add splitdb to shared_preload_libraries or session_preload_libraries/,
	'the hint says how to load splitdb first');
is( $plain->safe_psql(
		'mono',
		q{SELECT (SELECT count(*) FROM s_child WHERE pid = 3) || '/' ||
		         (SELECT count(*) FROM moved_parent WHERE id = 3)}),
	'0/0', 'nothing of the refused transaction stays, on either side');
$plain->stop;

done_testing();
