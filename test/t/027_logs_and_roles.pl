# Copyright (c) 2026, splitdb developers
#
# What both servers' logs and a role with a password see of splitdb's newest
# paths, and what that role can do about them: the online rounds' COPY into
# the sibling, the rollback's COPY ... TO STDOUT from it, the cutover's DO
# block that gives the copies their owners and grants (and every resumed
# run's taking them back), the ddl_command_start guard, the doctor.
#
# Two clusters log everything (log_statement = all, log_min_messages =
# debug2, log_error_verbosity = verbose, log_parameter_max_length = -1) and
# ask every role but the bootstrap superuser for its password (scram over
# TCP).  Every name is one that quote_ident() must quote: the schema, the
# tables, their columns, the index, the enum type and its labels (a quote,
# a backslash, a newline, non-ASCII letters), the application role that
# owns the tables and a grantee whose name holds "$$" and "$splitdb$".  The
# rows' text holds a marker, quotes, a backslash, a newline and non-ASCII
# letters.
#
# Service lg_svc moves one table (with a foreign key to a table that stays)
# online while a writer (the application role) writes; its job is held at
# catching_up, at cutover_committing (its sibling part committed: the copy
# given away) and, resumed, at verifying (the copy taken back), its worker
# terminated at each.  Held, the application role tries: writing and
# reading the sibling's copy, ALTER TABLE ... OWNER and GRANT on it there;
# DROP INDEX and CREATE INDEX CONCURRENTLY of the moved table (the start
# guard) plainly, with search_path at a schema of its own that holds
# operators named like those the guard's queries use, through PGOPTIONS and
# through ALTER ROLE ... SET; SET, PGOPTIONS and ALTER ROLE ... SET of
# session_replication_role and splitdb.* settings; splitdb's internal
# functions.  Each is refused with its SQLSTATE and changes nothing.  A
# second service (lg_cancel) is cancelled under writes.  The first then
# ends done (the sibling holds exactly the original's rows), a reference
# check is refused (23503) from both sides, the service is rolled back
# while the application writes through the shim and in the sibling (every
# write accepted is in the restored table), migrated again, finalized, and
# the doctor runs.
#
# Then: no password in either log, nor in what the application role reads
# (splitdb_status, splitdb's tables, the sibling's pg_stat_activity, the
# errors it got); every name in the new paths' statements in the sibling's
# log appears quoted as quote_ident() quotes it; the rows' values appear
# in the sibling's log only as parameters (never in a statement's text).
#
# The table has a trigger of the application role's, ENABLE REPLICA (it
# fires only with session_replication_role = replica: splitdb's replays),
# whose function makes the role a superuser when a superuser runs it; the
# role must be a superuser on neither server at the end, the trigger's
# state kept in the sibling and in the restored table.  Before the fix the
# copy in the sibling had that state from indexing on, so the online
# rounds (as the mapped superuser) fired it: the role became a superuser
# there, wrote to the withheld copy at verifying, and the job failed its
# verification; the rollback's replays fired it in the source the same way
# (service lg_off, migrated offline, written in the sibling, rolled back).

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SplitdbTest qw(start_logged_pair scram_hba psql_verbose poll_until fingerprint_sql JOB_SUMMARY);

my $super_pw  = 'Super-Pw-27a1';
my $app_pw    = 'App-Pw-27b2';
my $reader_pw = 'Reader-Pw-27c3';
my $pause_key = 1936747639;    # SPLITDB_MIGRATE_PAUSE_KEY
my $rows      = 400;
my $marker    = 'Wert-7Q';

# the names (UTF-8 bytes)
my $app    = 'Äpp Owner';
my $reader = 'Le$$er $splitdb$ ü';
my $schema = 'Shöp "Ä" x';
my $table  = 'Bestell ung"en';
my $ctable = 'Stör"no';
my $parent = 'Kunde N';
my $enum   = 'Lau"ne';
my $index  = 'Idx "B" ü';
my %col    = (id => 'Ïd', kunde => 'Kunde "Nr"', note => "Nöte's", mood => 'LaUne x');
my @labels = ("it's", 'back\slash', "new\nline", 'ñandú', 'plain');
my %password = ($app => $app_pw, $reader => $reader_pw);

# quote_ident() and quote_literal() (standard_conforming_strings on)
sub qi
{
	my ($s) = @_;
	return $s if $s =~ /^[a-z_][a-z0-9_]*$/;
	(my $q = $s) =~ s/"/""/g;
	return "\"$q\"";
}

sub ql
{
	my ($s) = @_;
	(my $q = $s) =~ s/'/''/g;
	return "'$q'";
}

my ($A, $R, $S) = (qi($app), qi($reader), qi($schema));
my $T  = "$S." . qi($table);
my $CT = "$S." . qi($ctable);
my $P  = "$S." . qi($parent);
my $E  = "$S." . qi($enum);
my %C  = map { $_ => qi($col{$_}) } keys %col;
my $labels_sql = 'ARRAY[' . join(', ', map { ql($_) } @labels) . "]::$E\[]";
# a row's note: the marker, then quotes, a backslash, a newline, non-ASCII
sub note_sql { my ($n) = @_; return ql($marker) . " || $n || " . ql(" it's \\ \"q\"\n ü"); }

my ($source, $sibling, $user) = start_logged_pair(
	initdb => [ '--encoding=UTF8', '--locale=C' ],
	conf   => q{
listen_addresses = '127.0.0.1'
log_min_messages = debug2
log_error_verbosity = verbose
log_parameter_max_length = -1
},
	hba => \&scram_hba);
my $src_port = $source->port;
my $sib_port = $sibling->port;
for my $node ($source, $sibling)
{
	$node->safe_psql(
		'postgres', qq{
SET log_statement = 'none';
ALTER ROLE CURRENT_USER PASSWORD '$super_pw';
CREATE ROLE $A LOGIN PASSWORD '$app_pw';
CREATE ROLE $R LOGIN PASSWORD '$reader_pw';
});
}

$source->safe_psql('postgres', 'CREATE DATABASE mono');
$source->safe_psql(
	'mono', qq{
CREATE SCHEMA $S AUTHORIZATION $A;
GRANT USAGE ON SCHEMA $S TO $R;
SET ROLE $A;
CREATE TYPE $E AS ENUM (@{[ join(', ', map { ql($_) } @labels) ]});
CREATE TABLE $P ($C{id} bigint PRIMARY KEY, name text);
INSERT INTO $P SELECT g, 'k' || g FROM generate_series(1, 20) g;
CREATE TABLE $T ($C{id} bigint PRIMARY KEY, $C{kunde} bigint REFERENCES $P,
	$C{note} text NOT NULL, $C{mood} $E NOT NULL DEFAULT 'plain');
CREATE INDEX @{[ qi($index) ]} ON $T ($C{note});
INSERT INTO $T SELECT g, 1 + g % 20, @{[ note_sql('g') ]}, ($labels_sql)[1 + g % 5]
  FROM generate_series(1, $rows) g;
GRANT SELECT, UPDATE ($C{note}) ON $T TO $R;
CREATE TABLE $CT ($C{id} bigint PRIMARY KEY, $C{note} text NOT NULL);
INSERT INTO $CT SELECT g, @{[ note_sql('g') ]} FROM generate_series(1, $rows) g;
GRANT SELECT ON $CT TO $R;
RESET ROLE;
SET log_statement = 'none';
CREATE EXTENSION splitdb CASCADE;
});

# a trigger of the application's that fires only where session_replication_role
# is replica (splitdb's replays) and makes it a superuser when a superuser
# runs it
my $trigger = 'Stämpel "t"';
my $tfunc   = "$S." . qi('Stämp "f"');
$source->safe_psql(
	'mono', "SET ROLE $A;\n"
	  . "CREATE FUNCTION $tfunc() RETURNS trigger LANGUAGE plpgsql AS \$f\$\nBEGIN\n"
	  . "  IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) THEN\n"
	  . "    EXECUTE pg_catalog.format('ALTER ROLE %I SUPERUSER', " . ql($app) . ");\n"
	  . "  END IF;\n  RETURN coalesce(NEW, OLD);\nEND \$f\$;\n"
	  . "CREATE TRIGGER " . qi($trigger) . " BEFORE INSERT OR UPDATE OR DELETE ON $T"
	  . " FOR EACH ROW EXECUTE FUNCTION $tfunc();\n"
	  . "ALTER TABLE $T ENABLE REPLICA TRIGGER " . qi($trigger) . ";\n");

# whether the application role is a superuser on $node
sub superuser
{
	my ($node) = @_;
	return $node->safe_psql('postgres', 'SELECT rolsuper FROM pg_roles WHERE rolname = ' . ql($app));
}

# the state of that trigger on the table $t of $node's database $db
sub trigger_state
{
	my ($node, $db, $t) = @_;
	return $node->safe_psql($db,
		"SELECT tgenabled FROM pg_trigger WHERE tgrelid = " . ql($t) . "::regclass AND tgname = " . ql($trigger));
}

for my $svc ('lg_svc', 'lg_cancel')
{
	$sibling->safe_psql('postgres', "CREATE DATABASE $svc");
	# the schema open to both roles, and the connecting role's default
	# privileges granting them everything there: only the copies' own
	# privileges stand between the roles and the copies
	$sibling->safe_psql(
		$svc, qq{
CREATE SCHEMA $S;
GRANT USAGE ON SCHEMA $S TO $A, $R;
ALTER DEFAULT PRIVILEGES IN SCHEMA $S GRANT ALL ON TABLES TO $A, $R;
SET log_statement = 'none';
CREATE EXTENSION splitdb CASCADE;
CREATE SERVER splitdb_source FOREIGN DATA WRAPPER postgres_fdw
	OPTIONS (host '127.0.0.1', port '$src_port', dbname 'mono');
CREATE USER MAPPING FOR $A SERVER splitdb_source OPTIONS (user @{[ ql($app) ]}, password '$app_pw');
});
	$source->safe_psql(
		'mono', qq{
SET log_statement = 'none';
CREATE SERVER ${svc}_srv FOREIGN DATA WRAPPER postgres_fdw
	OPTIONS (host '127.0.0.1', port '$sib_port', dbname '$svc');
CREATE USER MAPPING FOR CURRENT_USER SERVER ${svc}_srv OPTIONS (user '$user', password '$super_pw');
CREATE USER MAPPING FOR $A SERVER ${svc}_srv OPTIONS (user @{[ ql($app) ]}, password '$app_pw');
RESET log_statement;
SELECT splitdb_add_service('$svc', server => '${svc}_srv');
});
}
$source->safe_psql('mono',
	"SELECT splitdb_assign('lg_svc', " . ql($T) . "); SELECT splitdb_assign('lg_cancel', " . ql($CT) . ')');
is( $source->safe_psql('mono',
		"SELECT count(*) FROM splitdb_plan('lg_svc') WHERE action = 'blocker'"),
	'0', 'the plan of lg_svc has no blocker');

my %node = (mono => $source, lg_svc => $sibling, lg_cancel => $sibling);
my %port = (mono => $src_port, lg_svc => $sib_port, lg_cancel => $sib_port);

# everything the roles got back: searched for passwords at the end
my @seen;

# $sql in $db as $role over TCP with its password (and %env), verbose
# errors; returns (exit code, stdout, stderr)
sub as_role
{
	my ($role, $db, $sql, %env) = @_;
	local $ENV{PGPASSWORD} = $password{$role};
	local $ENV{PGOPTIONS}  = $env{PGOPTIONS} if defined $env{PGOPTIONS};
	my @r = psql_verbose(
		$node{$db}, $db, $sql,
		connstr       => "host=127.0.0.1 port=$port{$db} dbname=$db user='$role'",
		on_error_stop => 1);
	push @seen, ($r[1] // '') . ($r[2] // '');
	return @r;
}

sub job
{
	my ($svc, $columns) = @_;
	return $source->safe_psql('mono',
		"SELECT $columns FROM splitdb.job WHERE service = '$svc' ORDER BY job_id DESC LIMIT 1");
}

# the writer: the application role, in the source
my $writer = $source->background_psql('mono');
$writer->query_safe("SET ROLE $A");
my $next_key = 100000;

# a few writes on $t (through the shim after the cutover): a new row, an
# update of one, a delete of one
sub write_some
{
	my ($t) = @_;
	my $k = $next_key++;
	my $extra = $t eq $T ? ", 1 + $k % 20" : '';
	my $cols  = $t eq $T ? "$C{id}, $C{note}, $C{kunde}" : "$C{id}, $C{note}";
	$writer->query_safe("INSERT INTO $t ($cols) VALUES ($k, @{[ note_sql($k) ]}$extra)");
	$writer->query_safe("UPDATE $t SET $C{note} = $C{note} || " . ql("'\\\nü") . " WHERE $C{id} = " . (1 + $k % $rows));
	$writer->query_safe("DELETE FROM $t WHERE $C{id} = " . (($k * 7) % $rows + 1));
	return;
}

# what a refused try must leave as it was: the table's indexes, triggers
# and name, the job's state and runs, the rows in the source and in the
# copy, the role's settings
sub state
{
	my ($svc, $t) = @_;
	my $src = $source->safe_psql(
		'mono', qq{
SELECT format('indexes %s; triggers %s; job %s; rows %s; settings %s',
	(SELECT string_agg(indexrelid::regclass::text, ',' ORDER BY indexrelid::regclass::text)
	   FROM pg_index WHERE indrelid = @{[ ql($t) ]}::regclass),
	(SELECT string_agg(tgname || ':' || tgenabled::text, ',' ORDER BY tgname)
	   FROM pg_trigger WHERE tgrelid = @{[ ql($t) ]}::regclass),
	(SELECT state || '/' || runs FROM splitdb.job WHERE service = '$svc' ORDER BY job_id DESC LIMIT 1),
	(SELECT count(*) || '/' || sum(hashtext(x::text)) FROM $t x),
	(SELECT array_agg(s ORDER BY s) FROM pg_db_role_setting, unnest(setconfig) s
	  WHERE setrole = (SELECT oid FROM pg_roles WHERE rolname = @{[ ql($app) ]})))});
	my $sib = $sibling->safe_psql($svc,
		"SELECT coalesce((SELECT count(*) || '/' || sum(hashtext(x::text)) FROM $t x)::text, 'none')"
		  . " || ' ' || coalesce((SELECT relacl::text FROM pg_class WHERE oid = to_regclass(" . ql($t) . ')), \'-\')');
	return "$src; copy $sib";
}

# $sql as $role in $db must fail with $sqlstate and a message like $msg,
# and change nothing.  A connection refused for its PGOPTIONS says FATAL,
# before psql's VERBOSITY can show the SQLSTATE: the message stands for it.
sub refused
{
	my ($svc, $t, $role, $db, $sql, $sqlstate, $msg, $name, %env) = @_;
	my $before = state($svc, $t);
	my ($ret, $out, $err) = as_role($role, $db, $sql, %env);
	my $code = defined $env{PGOPTIONS} ? "(?:$sqlstate: )?" : "$sqlstate: ";
	like($err, qr/(?:ERROR|FATAL):  $code$msg/, "$svc: $name: refused with $sqlstate")
	  or diag($err);
	is(state($svc, $t), $before, "$svc: $name: nothing changed");
	return;
}

# operators of the application role's schema named like those the guard's
# queries call; the first makes every NOT IN true, so no job would guard
$source->safe_psql(
	'mono', qq{
SET ROLE $A;
CREATE FUNCTION $S.never(text, text) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT false';
CREATE OPERATOR $S.<> (LEFTARG = text, RIGHTARG = text, FUNCTION = $S.never);
CREATE FUNCTION $S.never_oid(oid, oid) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT false';
CREATE OPERATOR $S.= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = $S.never_oid);
CREATE FUNCTION $S.never_int8(bigint, bigint) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT false';
CREATE OPERATOR $S.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = $S.never_int8);
CREATE FUNCTION $S.unnest(oid[]) RETURNS SETOF oid LANGUAGE sql IMMUTABLE AS 'SELECT 0::oid';
});

# every way around the new paths, while the job of $svc is held
sub attack
{
	my ($svc, $t, $bare, $point) = @_;
	my $idx      = "$S." . qi($index);
	my $guarded  = qr/table "\Q$schema.$table\E" belongs to a migration of service "$svc"/;
	my $shadowed = "SET search_path = $S, pg_catalog; ";

	# the copy in the sibling
	for my $try (
		[ $app,    "INSERT INTO $t ($C{id}, $C{note}) VALUES (-1, 'early')", 'INSERT' ],
		[ $app,    "UPDATE $t SET $C{note} = 'changed'",                    'UPDATE' ],
		[ $app,    "DELETE FROM $t",                                        'DELETE' ],
		[ $app,    "SELECT count(*) FROM $t",                               'SELECT' ],
		[ $reader, "SELECT count(*) FROM $t",                               'SELECT' ],
		[ $reader, "UPDATE $t SET $C{note} = 'changed'", 'UPDATE of its column' ],
		[ $app,    "GRANT SELECT ON $t TO $A",           'GRANT' ])
	{
		my ($role, $sql, $name) = @$try;
		refused($svc, $t, $role, $svc, $sql, '42501', qr/permission denied for table/,
			"at $point, $role in the sibling: $name");
	}
	refused($svc, $t, $app, $svc, "ALTER TABLE $t OWNER TO $A", '42501',
		qr/must be owner of table/, "at $point, $app in the sibling: ALTER TABLE ... OWNER");
	refused($svc, $t, $app, $svc,
		"DO \$splitdb\$ BEGIN EXECUTE 'ALTER TABLE $S.' || pg_catalog.quote_ident(" . ql($bare)
		  . ") || ' OWNER TO CURRENT_USER'; END \$splitdb\$",
		'42501', qr/must be owner of table/, "at $point, $app in the sibling: a DO block of its own");

	return if $svc ne 'lg_svc';

	# the start guard, plainly and with the role's own operators first
	refused($svc, $t, $app, 'mono', "DROP INDEX $idx", '55006', $guarded, "at $point: DROP INDEX");
	refused($svc, $t, $app, 'mono', "CREATE INDEX CONCURRENTLY ON $t ($C{mood})", '55006', $guarded,
		"at $point: CREATE INDEX CONCURRENTLY");
	refused($svc, $t, $app, 'mono', $shadowed . "DROP INDEX $idx", '55006', $guarded,
		"at $point: DROP INDEX, search_path at the role's operators");
	refused($svc, $t, $app, 'mono', $shadowed . "CREATE INDEX CONCURRENTLY ON $t ($C{mood})",
		'55006', $guarded, "at $point: CREATE INDEX CONCURRENTLY, search_path at the role's operators");
	refused($svc, $t, $app, 'mono', $shadowed . "ALTER TABLE $t ADD COLUMN extra integer",
		'55006', $guarded, "at $point: ALTER TABLE ... ADD COLUMN, search_path at the role's operators");
	refused($svc, $t, $app, 'mono', "DROP INDEX $idx", '55006', $guarded,
		"at $point: DROP INDEX, search_path from PGOPTIONS",
		PGOPTIONS => '-c ' . ("search_path=$S,pg_catalog" =~ s/ /\\ /gr));
	my ($ret, $out, $err) = as_role($app, 'mono', "ALTER ROLE $A SET search_path = $S, pg_catalog");
	is($ret, 0, "at $point: the role sets its own search_path") or diag($err);
	refused($svc, $t, $app, 'mono', "SHOW search_path; DROP INDEX $idx", '55006', $guarded,
		"at $point: DROP INDEX, search_path from ALTER ROLE ... SET");
	($ret, $out, $err) = as_role($app, 'mono', "ALTER ROLE $A RESET search_path");
	is($ret, 0, "at $point: the role resets its search_path") or diag($err);

	# settings
	refused($svc, $t, $app, 'mono', 'SET session_replication_role = replica', '42501',
		qr/permission denied to set parameter "session_replication_role"/,
		"at $point: SET session_replication_role");
	refused($svc, $t, $app, 'mono', 'SELECT 1', '42501',
		qr/permission denied to set parameter "session_replication_role"/,
		"at $point: session_replication_role from PGOPTIONS",
		PGOPTIONS => '-c session_replication_role=replica');
	refused($svc, $t, $app, 'mono', "ALTER ROLE $A SET session_replication_role = replica", '42501',
		qr/permission denied to set parameter "session_replication_role"/,
		"at $point: ALTER ROLE ... SET session_replication_role");
	for my $guc ('capture_direct = off', "migrate_pause_at = ''", 'cutover_lock_timeout = 60000',
		'cutover_max_freeze = 600000', 'batch_rows = 1')
	{
		(my $opt = $guc) =~ s/ = '?([^']*)'?$/=$1/;
		refused($svc, $t, $app, 'mono', "SET splitdb.$guc", '42501',
			qr/permission denied to set parameter "splitdb\./, "at $point: SET splitdb.$guc");
		refused($svc, $t, $app, 'mono', 'SELECT 1', '42501',
			qr/permission denied to set parameter "splitdb\./,
			"at $point: splitdb.$guc from PGOPTIONS", PGOPTIONS => "-c splitdb.$opt");
		refused($svc, $t, $app, 'mono', "ALTER ROLE $A SET splitdb.$guc", '42501',
			qr/permission denied to set parameter "splitdb\./,
			"at $point: ALTER ROLE ... SET splitdb.$guc");
	}

	# splitdb's internal functions, in both databases
	for my $f ('splitdb.guard_start()', 'splitdb.guard_ddl()', "splitdb.capture_problem(1, ARRAY[]::text[])")
	{
		(my $name = $f) =~ s/\(.*//;
		$name =~ s/^splitdb\.//;
		refused($svc, $t, $app, 'mono', "SELECT $f", '42501',
			qr/permission denied for function $name/, "at $point: $f");
	}
	return;
}

# hold the job of $svc at $point (resuming it when it failed), writing on
# $t meanwhile, run $check, then terminate the worker (the job fails)
sub hold_at
{
	my ($svc, $t, $point, $check, $keep) = @_;
	my $runs   = $source->safe_psql('mono',
		"SELECT coalesce((SELECT runs FROM splitdb.job WHERE service = '$svc' ORDER BY job_id DESC LIMIT 1), 0)");
	my $holder = $source->background_psql('mono');
	$holder->query_safe("SELECT pg_advisory_lock($pause_key, 0)");
	$source->safe_psql('mono',
		"SET splitdb.migrate_pause_at = '$point'; SET splitdb.batch_rows = 100;"
		  . " SELECT splitdb_migrate('$svc')");
	poll_until(
		sub {
			write_some($t) if $point ne 'cutover_committing';
			$source->safe_psql('mono',
				"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'splitdb worker'"
				  . " AND query = 'paused at $point'") eq '1';
		},
		sub { job($svc, "state || ' ' || runs") =~ /^(failed|cancelled|done) (\d+)$/ && $2 > $runs },
		"the worker of $svc to pause at $point")
	  or BAIL_OUT("the job of $svc ended before pausing at $point: " . job($svc, JOB_SUMMARY));
	$check->();
	return $holder if $keep;
	$source->safe_psql('mono',
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'splitdb worker'"
		  . " AND query = 'paused at $point'");
	poll_until(sub { job($svc, 'state') eq 'failed' }, undef, "the job of $svc to fail");
	$holder->query_safe("SELECT pg_advisory_unlock($pause_key, 0)");
	$holder->quit;
	return;
}

# what the application role reads of splitdb and of the sibling's sessions
sub look
{
	my ($svc) = @_;
	as_role($app, 'mono', "SELECT * FROM splitdb_status; SELECT * FROM splitdb_table_status;"
		  . " SELECT * FROM splitdb_references");
	as_role($app, 'mono', 'SELECT * FROM splitdb.job');
	as_role($app, 'mono', 'SELECT * FROM splitdb.job_table');
	as_role($app, $svc, 'SELECT * FROM pg_stat_activity');
	return;
}

# ===== lg_svc online, held at catching_up: every way around

hold_at('lg_svc', $T, 'catching_up', sub { look('lg_svc'); attack('lg_svc', $T, $table, 'catching_up') });

# the cancelled service, under writes
{
	my $holder = hold_at('lg_cancel', $CT, 'catching_up',
		sub { look('lg_cancel'); attack('lg_cancel', $CT, $ctable, 'catching_up') }, 1);
	write_some($CT);
	my $expected = $source->safe_psql('mono', fingerprint_sql($CT, $C{id}));
	$source->safe_psql('mono', "SELECT splitdb_cancel('lg_cancel')");
	$holder->query_safe("SELECT pg_advisory_unlock($pause_key, 0)");
	$holder->quit;
	poll_until(sub { job('lg_cancel', 'state') eq 'cancelled' }, undef, 'the cancel of lg_cancel');
	is($source->safe_psql('mono', fingerprint_sql($CT, $C{id})), $expected,
		'lg_cancel: the source table holds every write, cancelled');
	is( $source->safe_psql('mono',
			"SELECT count(*) FROM pg_trigger WHERE tgrelid = " . ql($CT) . '::regclass'),
		'0', 'lg_cancel: no capture trigger left');
	is($sibling->safe_psql('lg_cancel', 'SELECT to_regclass(' . ql($CT) . ') IS NULL'),
		't', 'lg_cancel: the copy is gone from the sibling');
}

# ===== the two-database commit window, and the copy taken back

hold_at(
	'lg_svc', $T,
	'cutover_committing',
	sub {
		my ($ret, $out, $err) = as_role($reader, 'lg_svc', "SELECT count(*) > 0 FROM $T");
		is($out, 't', 'at cutover_committing: the grantee reads the copy already') or diag($err);
	});
is($source->safe_psql('mono', 'SELECT relkind FROM pg_class WHERE oid = ' . ql($T) . '::regclass'),
	'r', 'stopped between the commits, the source keeps its table');
hold_at('lg_svc', $T, 'verifying', sub { attack('lg_svc', $T, $table, 'verifying after the window') });
ok($source->log_contains(qr/job \d+ of service "lg_svc" took its copies in the sibling back/),
	'the resumed job logged that it took the copy back');

# ===== done under writes, made before the verification (a write at the
# cutover may reach the sibling only, through the shim)
my $before_verifying = qr/^(?:queued|preparing|copying|indexing|catching_up|failed)$/;
{
	my $id = $source->safe_psql('mono', "SELECT splitdb_migrate('lg_svc')");
	poll_until(
		sub { write_some($T) if job('lg_svc', 'state') =~ $before_verifying; job('lg_svc', 'state') =~ /^(done|failed)$/ },
		undef, 'the end of lg_svc');
	is(job('lg_svc', 'state'), 'done', 'lg_svc: done') or diag(job('lg_svc', JOB_SUMMARY));
	my $archived = $source->safe_psql('mono',
		"SELECT relid::regclass FROM splitdb.job_table WHERE job_id = $id");
	is($sibling->safe_psql('lg_svc', fingerprint_sql($T, $C{id})),
		$source->safe_psql('mono', fingerprint_sql($archived, $C{id})),
		'lg_svc: the sibling holds exactly the original\'s rows, every write included');
	is( $sibling->safe_psql('lg_svc',
			"SELECT has_table_privilege(" . ql($reader) . ", " . ql($T) . ", 'SELECT') || ' '"
			  . " || has_column_privilege(" . ql($reader) . ", " . ql($T) . ", " . ql($col{note}) . ", 'UPDATE')"
			  . " || ' ' || (SELECT relowner::regrole::text FROM pg_class WHERE oid = " . ql($T) . '::regclass)'),
		"true true $A", 'lg_svc: the copy has the original\'s owner and grants');
	is(trigger_state($sibling, 'lg_svc', $T), 'R', 'lg_svc: the copy\'s trigger is ENABLE REPLICA, as the original\'s');
	is(superuser($sibling), 'f',
		'the sibling\'s rounds did not fire the application\'s ENABLE REPLICA trigger as a superuser');
	look('lg_svc');
}

# ===== a reference check refused from both sides
{
	my $before = state('lg_svc', $T) . $source->safe_psql('mono', "SELECT count(*) FROM $P");
	my ($ret, $out, $err) = as_role($app, 'lg_svc',
		"INSERT INTO $T ($C{id}, $C{kunde}, $C{note}) VALUES (-5, 999, 'orphan')");
	like($err, qr/ERROR:  23503: /, 'in the sibling, a row referring to no customer: 23503')
	  or diag($err);
	($ret, $out, $err) = as_role($app, 'mono', "DELETE FROM $P WHERE $C{id} = 2");
	like($err, qr/ERROR:  23503: /, 'in the source, deleting a customer referred to: 23503')
	  or diag($err);
	is(state('lg_svc', $T) . $source->safe_psql('mono', "SELECT count(*) FROM $P"),
		$before, 'the refused writes changed nothing');
	($ret, $out, $err) = as_role($app, 'mono',
		"INSERT INTO $T ($C{id}, $C{kunde}, $C{note}, $C{mood}) VALUES (-6, 3, @{[ note_sql(-6) ]}, "
		  . ql($labels[2]) . ") RETURNING $C{id}");
	is($out, '-6', 'through the shim, the application inserts a row that refers to a customer')
	  or diag($err);
}

# ===== rolled back under writes through the shim and in the sibling
{
	my $bg = $source->background_psql('mono');
	$bg->query_until(qr/started/, "\\echo started\nSELECT splitdb_rollback('lg_svc');\n\\echo ended\n");
	my (@accepted, @refused);
	my $k = 500000;
	poll_until(
		sub {
			my $state = job('lg_svc', 'state');
			return 1 if $state ne 'done';
			$k++;
			my ($ret) = $source->psql('mono',
				"SET ROLE $A; SET lock_timeout = '2s';"
				  . " INSERT INTO $T ($C{id}, $C{kunde}, $C{note}) VALUES ($k, 1, @{[ note_sql($k) ]})");
			push @{ $ret == 0 ? \@accepted : \@refused }, $k;
			$k++;
			($ret) = as_role($app, 'lg_svc',
				"INSERT INTO $T ($C{id}, $C{kunde}, $C{note}) VALUES ($k, 1, 'direct')");
			push @{ $ret == 0 ? \@accepted : \@refused }, $k;
			return 0;
		},
		undef, 'the rollback of lg_svc');
	$bg->query_until(qr/ended/, '');
	$bg->quit;
	poll_until(sub { job('lg_svc', 'state') ne 'done' }, undef, 'the rollback');
	is(job('lg_svc', 'state'), 'rolled_back', 'lg_svc: rolled back') or diag(job('lg_svc', JOB_SUMMARY));
	ok(@accepted > 0, 'writes went on during the rollback (' . scalar(@accepted) . ' accepted)');
	is( $source->safe_psql('mono',
			"SELECT string_agg($C{id}::text, ',' ORDER BY $C{id}) FROM $T WHERE $C{id} >= 500000"),
		join(',', @accepted), 'every write accepted during the rollback is in the restored table');
	is(trigger_state($source, 'mono', $T), 'R', 'lg_svc: the restored table\'s trigger is ENABLE REPLICA still');
	is(superuser($source), 'f',
		'the rollback\'s replays did not fire the application\'s ENABLE REPLICA trigger as a superuser');
}

# ===== again, finalized; the doctor
{
	my $id = $source->safe_psql('mono', "SELECT splitdb_migrate('lg_svc')");
	poll_until(
		sub { write_some($T) if job('lg_svc', 'state') =~ $before_verifying; job('lg_svc', 'state') =~ /^(done|failed)$/ },
		undef, 'the end of lg_svc again');
	is(job('lg_svc', 'state'), 'done', 'lg_svc: done again') or diag(job('lg_svc', JOB_SUMMARY));
	$source->safe_psql('mono', "SELECT splitdb_finalize('lg_svc')");
	is(job('lg_svc', 'state'), 'finalized', 'lg_svc: finalized');
	my ($ret, $out, $err) = psql_verbose($source, 'mono', 'SELECT * FROM splitdb_doctor(repair => true)');
	is($ret, 0, 'the doctor runs') or diag($err);
	push @seen, $out . $err;
	refused('lg_svc', $T, $app, 'mono', 'SELECT * FROM splitdb_doctor()', '42501',
		qr/permission denied for function splitdb_doctor/, 'the application calls the doctor');
	look('lg_svc');
}
$writer->quit;

# ===== an offline service rolled back: its replays in the source alone
{
	my $OT = "$S." . qi('Ränder "o"');
	$sibling->safe_psql('postgres', 'CREATE DATABASE lg_off');
	$sibling->safe_psql('lg_off', "CREATE SCHEMA $S; GRANT USAGE ON SCHEMA $S TO $A");
	$source->safe_psql(
		'mono', qq{
SET ROLE $A;
CREATE TABLE $OT ($C{id} bigint PRIMARY KEY, $C{note} text NOT NULL);
INSERT INTO $OT SELECT g, @{[ note_sql('g') ]} FROM generate_series(1, 50) g;
CREATE TRIGGER @{[ qi($trigger) ]} BEFORE INSERT OR UPDATE OR DELETE ON $OT
	FOR EACH ROW EXECUTE FUNCTION $tfunc();
ALTER TABLE $OT ENABLE REPLICA TRIGGER @{[ qi($trigger) ]};
RESET ROLE;
SET log_statement = 'none';
CREATE SERVER lg_off_srv FOREIGN DATA WRAPPER postgres_fdw
	OPTIONS (host '127.0.0.1', port '$sib_port', dbname 'lg_off');
CREATE USER MAPPING FOR CURRENT_USER SERVER lg_off_srv OPTIONS (user '$user', password '$super_pw');
RESET log_statement;
SELECT splitdb_add_service('lg_off', server => 'lg_off_srv');
SELECT splitdb_assign('lg_off', @{[ ql($OT) ]});
SELECT splitdb_migrate('lg_off', mode => 'offline', wait => true);
});
	is(job('lg_off', 'state'), 'done', 'lg_off: done offline');
	$node{lg_off} = $sibling;
	$port{lg_off} = $sib_port;
	my ($ret, $out, $err) = as_role($app, 'lg_off',
		"INSERT INTO $OT VALUES (-1, 'direct'); UPDATE $OT SET $C{note} = 'changed' WHERE $C{id} = 7");
	is($ret, 0, 'lg_off: the application writes its table in the sibling') or diag($err);
	my $expected = $sibling->safe_psql('lg_off', fingerprint_sql($OT, $C{id}));
	$source->safe_psql('mono', "SELECT splitdb_rollback('lg_off')");
	is(job('lg_off', 'state'), 'rolled_back', 'lg_off: rolled back');
	is($source->safe_psql('mono', fingerprint_sql($OT, $C{id})),
		$expected, 'lg_off: the restored table holds the sibling\'s rows');
	is(trigger_state($source, 'mono', $OT), 'R', 'lg_off: its trigger is ENABLE REPLICA still');
	is(superuser($source), 'f',
		'lg_off: the rollback\'s replays did not fire the application\'s ENABLE REPLICA trigger as a superuser');
}

is(superuser($source) . ' ' . superuser($sibling), 'f f',
	'the application role is a superuser on neither server');

# ===== the logs, and what the application role saw

my %log = (source => slurp_file($source->logfile), sibling => slurp_file($sibling->logfile));
for my $where (sort keys %log)
{
	for my $pw ([ $super_pw, 'the superuser\'s' ], [ $app_pw, 'the application role\'s' ],
		[ $reader_pw, 'the grantee\'s' ])
	{
		unlike($log{$where}, qr/\Q$pw->[0]\E/, "the ${where}'s log holds not $pw->[1] password");
	}
	like($log{$where}, qr/DEBUG:  00000: (?:parse|bind) /, "the $where logged at debug2 (parse, bind)");
}
my $seen = join("\n", @seen);
like($seen, qr/lg_svc/, 'the application role read splitdb_status');
for my $pw ($super_pw, $app_pw, $reader_pw)
{
	unlike($seen, qr/\Q$pw\E/, 'no password in what the application role read or was told');
}

# the sibling's log as entries (a message and its continuation lines)
my @entries = split /\n(?=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)/, $log{sibling};
# an entry's statement text: "statement: ", "execute <name>: ", "parse <name>: ", "STATEMENT:  "
sub statement_text
{
	my ($entry) = @_;
	return $1 if $entry =~ /(?:LOG|DEBUG\d?|ERROR|WARNING):  \d{5}: (?:statement|execute [^:]*|parse [^:]*): (.*?)(?:\n\S+ LOCATION:|\z)/s;
	return $1 if $entry =~ /STATEMENT:  (.*)\z/s;
	return undef;
}
my @statements = grep { defined } map { statement_text($_) } @entries;
# those of splitdb's own sessions (application_name splitdb)
my @splitdb = grep { defined } map { statement_text($_) }
  grep { /^\S+ \S+ \S+ \[\d+\] splitdb / } @entries;
ok(@statements > 100, 'the sibling logged the statements (' . scalar(@statements) . ')');

# the new paths' statements: the rounds' COPY FROM STDIN, the rollback's
# COPY ... TO STDOUT, the DO blocks of the cutover and the take-back
my $qtable = quotemeta($T);
my @copy_in  = grep { /^COPY (?:ONLY )?$qtable .*FROM STDIN/s } @splitdb;
my @copy_out = grep { /^COPY \(SELECT .* FROM (?:ONLY )?$qtable / } @splitdb;
my @do       = grep { /^DO \$splitdb/ } @splitdb;
ok(@copy_in > 0,  'the sibling logged the online rounds\' COPY FROM STDIN (' . scalar(@copy_in) . ')');
ok(@copy_out > 0, 'the sibling logged the rollback\'s COPY ... TO STDOUT (' . scalar(@copy_out) . ')');
ok(@do >= 2,      'the sibling logged the DO blocks of the cutover and of the take-back (' . scalar(@do) . ')');
my @do_grant = grep { /GRANT/ && /\Q$R\E/ } @do;
ok(@do_grant > 0, 'a cutover\'s DO block grants to the grantee, quoted');
like($do_grant[0] // '', qr/^DO (\$splitdb_\d+\$) .*\Q$R\E.*\1\z/s,
	'its dollar quote is a tag that the grantee\'s name does not hold');
my @do_revoke = grep { /REVOKE/ && /\Q$R\E/ } @do;
ok(@do_revoke > 0, 'a take-back\'s DO block revokes from the grantee, quoted');
my $qtrigger = qi($trigger);
ok((grep { /ENABLE REPLICA TRIGGER \Q$qtrigger\E/ } @do),
	'a cutover\'s DO block gives the trigger its state, its name quoted');
ok((grep { /REVOKE/ && /ENABLE TRIGGER \Q$qtrigger\E/ } @do),
	'the take-back\'s DO block puts the trigger back to the default, its name quoted');

# a name must appear in them only as quote_ident() quotes it: drop every
# quoted name, then no bare one may be left
my @names = ($schema, $table, $app, $reader, $trigger, values %col);
for my $stmt (@copy_in, @copy_out, @do)
{
	(my $rest = $stmt) =~ s/"(?:[^"]|"")*"//g;
	my @bare = grep { index($rest, $_) >= 0 || index($rest, $_ =~ s/"//gr) >= 0 } @names;
	is(join(', ', @bare), '', 'no bare name in: ' . substr($stmt, 0, 60) =~ s/\n/ /gr);
}
is(join("\n", grep { !/\Q$C{id}\E/ || !/\Q$C{note}\E/ } @copy_in, @copy_out),
	'', 'every COPY names the columns quoted');

# the rows' values: parameters or COPY data only, never in a statement
is(join("\n---\n", grep { /\Q$marker\E/ } @statements),
	'', 'no row\'s value in the text of a statement the sibling logged');
like($log{sibling}, qr/DETAIL:  [^\n]*parameters: [^\n]*\Q$marker\E/,
	'the rows\' values reached the sibling as parameters');

done_testing();
