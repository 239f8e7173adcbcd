# Copyright (c) 2026, splitdb developers
#
# Non-superuser roles against an online migration, on two servers that log
# every statement (log_statement = all, log_min_messages = debug1,
# log_min_error_statement = debug1).
#
# Three services of the source database mono (acc_copy, acc_catch,
# acc_cut) each move one table of schema acc (owned by the role owner) to a
# sibling database of their own on the second cluster.  Each job is held
# (splitdb.migrate_pause_at) at one point: copying (after its first batch),
# catching_up (before a round) and cutover (before the attempt to take the
# cutover's locks).  There, three roles that log in with their passwords
# (scram-sha-256 over TCP) try:
#
# - owner, the owner of the tables: DISABLE TRIGGER of a capture trigger,
#   DISABLE TRIGGER ALL, ENABLE REPLICA TRIGGER, DROP TRIGGER on each capture
#   trigger, ALTER TRIGGER ... RENAME, ALTER TABLE ... RENAME (the table, a
#   column), ALTER SCHEMA ... RENAME of the tables' schema, a trigger of its
#   own calling splitdb.capture_changes(), CREATE CAST to json or text from
#   a column's type (an enum, a composite type of it), or from text to it,
#   through a function of its own that makes it a superuser when a
#   superuser calls it, ALTER TYPE
#   (an enum value added or renamed, a composite's attribute renamed),
#   ALTER DOMAIN (a constraint dropped, and one added to a domain that only
#   a CHECK of the table casts to), SET session_replication_role and
#   splitdb.* settings, reading, writing, deleting from and truncating the
#   capture log, splitdb's internal functions, signalling the worker: each
#   refused with its SQLSTATE (and splitdb's own with a hint), and nothing
#   changed (the triggers and their states, the names, the capture intact,
#   the log's rows, the job, the types, the casts, the owner's rights);
# - writer (INSERT and UPDATE only), outsider (no right on the tables):
#   reading the capture log, the copy's checkpoint keys in splitdb.job_table
#   and splitdb.job_range (row keys of a table they may not read), creating
#   in splitdb_capture, splitdb_cancel(), splitdb_migrate(): refused,
#   nothing changed;
# - writes that must be captured: INSERT ... ON CONFLICT, MERGE, a
#   data-modifying CTE, COPY FROM STDIN, a SECURITY DEFINER function called
#   by writer, writer's INSERT and UPDATE, a TRUNCATE (while copying).
#
# Each job then ends done, and its sibling's table holds exactly the rows of
# the archived original (every row compared): no write lost.  A fourth
# service (acc_cast), whose column's type has such casts made before the
# job, is refused by its plan's blockers (55000) in both modes, and the
# owner never becomes a superuser.  No password, and no user mapping's
# password option, is in either server's log.
#
# Routes that got through before splitdb closed them: DROP TRIGGER on a
# capture trigger (the next round failed the job); ALTER SCHEMA ... RENAME
# of the schema of a table being moved (the rounds read the table by name);
# ALTER TYPE and ALTER DOMAIN of a column's type (rows the sibling refuses);
# the copy's checkpoint keys, readable by every role; and a cast of the
# owner's, which the worker called as a superuser (to_jsonb() in a round,
# ::text in verification): the owner became a superuser.

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SplitdbTest qw(start_logged_pair scram_hba set_passwords psql_verbose poll_until fingerprint_sql JOB_SUMMARY);

my $super_pw    = 'Super-Pw-6a19';
my $owner_pw    = 'Owner-Pw-93fe';
my $writer_pw   = 'Writer-Pw-0d27';
my $outsider_pw = 'Outsider-Pw-b5c1';
my $pause_key   = 1936747639;         # SPLITDB_MIGRATE_PAUSE_KEY
my $rows        = 3000;

my ($source, $sibling, $user) = start_logged_pair(
	conf => q{
listen_addresses = '127.0.0.1'
},
	hba => \&scram_hba);
set_passwords($_, $super_pw,
	[ owner => $owner_pw, writer => $writer_pw, outsider => $outsider_pw ])
  for ($source, $sibling);
my $src_port = $source->port;
my $sib_port = $sibling->port;
my %password = (owner => $owner_pw, writer => $writer_pw, outsider => $outsider_pw);

$source->safe_psql('postgres', 'CREATE DATABASE mono');
$source->safe_psql(
	'mono', q{
CREATE SCHEMA acc AUTHORIZATION owner;
CREATE SCHEMA acc2 AUTHORIZATION owner;
GRANT CREATE ON DATABASE mono TO owner;
GRANT USAGE ON SCHEMA acc TO writer, outsider;
SET ROLE owner;
CREATE TYPE acc.mood AS ENUM ('calm', 'busy');
CREATE TYPE acc.pair AS (m acc.mood, n integer);
CREATE DOMAIN acc.grade AS integer CONSTRAINT grade_check CHECK (VALUE >= 0);
-- a domain that no column has: a CHECK of the tables casts to it
CREATE DOMAIN acc.castonly AS integer CONSTRAINT castonly_check CHECK (VALUE >= 0);
CREATE TYPE acc.tone AS ENUM ('low', 'high');
-- casts whose functions make their owner a superuser when a superuser calls them
CREATE FUNCTION acc.escalate() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) THEN
		EXECUTE 'ALTER ROLE owner SUPERUSER';
	END IF;
END $$;
CREATE FUNCTION acc.mood_json(m acc.mood) RETURNS json LANGUAGE plpgsql AS $$
BEGIN PERFORM acc.escalate(); RETURN pg_catalog.to_json(pg_catalog.format('%s', m)); END $$;
CREATE FUNCTION acc.mood_text(m acc.mood) RETURNS text LANGUAGE plpgsql AS $$
BEGIN PERFORM acc.escalate(); RETURN pg_catalog.format('%s', m); END $$;
CREATE FUNCTION acc.pair_text(p acc.pair) RETURNS text LANGUAGE plpgsql AS $$
BEGIN PERFORM acc.escalate(); RETURN pg_catalog.format('%s', p); END $$;
CREATE FUNCTION acc.tone_json(t acc.tone) RETURNS json LANGUAGE plpgsql AS $$
BEGIN PERFORM acc.escalate(); RETURN pg_catalog.to_json(pg_catalog.format('%s', t)); END $$;
CREATE FUNCTION acc.tone_text(t acc.tone) RETURNS text LANGUAGE plpgsql AS $$
BEGIN PERFORM acc.escalate(); RETURN pg_catalog.format('%s', t); END $$;
CREATE FUNCTION acc.text_mood(t text) RETURNS acc.mood LANGUAGE plpgsql AS $$
BEGIN PERFORM acc.escalate(); RETURN 'calm'; END $$;
CREATE FUNCTION acc.text_tone(t text) RETURNS acc.tone LANGUAGE plpgsql AS $$
BEGIN PERFORM acc.escalate(); RETURN 'low'; END $$;
RESET ROLE;
SET log_statement = 'none';
CREATE EXTENSION splitdb CASCADE;
});

my @services = (
	[ 'acc_copy',  'copying' ],
	[ 'acc_catch', 'catching_up' ],
	[ 'acc_cut',   'cutover' ]);

for my $s (@services)
{
	my $svc = $s->[0];
	$sibling->safe_psql('postgres', "CREATE DATABASE $svc");
	$source->safe_psql(
		'mono', qq{
SET ROLE owner;
CREATE TABLE acc.$svc (id bigint PRIMARY KEY, v integer NOT NULL, note text NOT NULL,
	mood acc.mood NOT NULL DEFAULT 'calm', pair acc.pair, grade acc.grade,
	CHECK ((v::acc.castonly) IS NOT NULL));
INSERT INTO acc.$svc SELECT g, 0, 'row ' || g, CASE WHEN g % 2 = 0 THEN 'busy' ELSE 'calm' END::acc.mood,
	ROW('busy', g)::acc.pair, g % 7 FROM generate_series(1, $rows) g;
GRANT INSERT, UPDATE ON acc.$svc TO writer;
CREATE FUNCTION acc.${svc}_bump(k bigint) RETURNS void LANGUAGE sql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'UPDATE acc.$svc SET v = v + 100 WHERE id = k';
REVOKE ALL ON FUNCTION acc.${svc}_bump(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION acc.${svc}_bump(bigint) TO writer;
RESET ROLE;
SET log_statement = 'none';
CREATE SERVER ${svc}_srv FOREIGN DATA WRAPPER postgres_fdw
	OPTIONS (host '127.0.0.1', port '$sib_port', dbname '$svc');
CREATE USER MAPPING FOR CURRENT_USER SERVER ${svc}_srv
	OPTIONS (user '$user', password '$super_pw');
RESET log_statement;
SELECT splitdb_add_service('$svc', server => '${svc}_srv');
SELECT splitdb_assign('$svc', 'acc.$svc');
});
}

# Run $sql in mono as $role over TCP with its password, verbose errors;
# returns (exit code, stdout, stderr).
sub as_role
{
	my ($role, $sql) = @_;
	local $ENV{PGPASSWORD} = $password{$role};
	return psql_verbose(
		$source, 'mono', $sql,
		connstr       => "host=127.0.0.1 port=$src_port dbname=mono user=$role",
		on_error_stop => 1);
}

sub job
{
	my ($id, $columns) = @_;
	return $source->safe_psql('mono', "SELECT $columns FROM splitdb.job WHERE job_id = $id");
}

# what a refused call must leave as it was: the table's triggers and their
# states, its name and schema, the capture's completeness, the log's rows,
# the job's state and runs, the settings the job reads
sub state
{
	my ($svc, $id) = @_;
	my $log = $source->safe_psql('mono',
		"SELECT log FROM splitdb.capture WHERE relid = 'acc.$svc'::regclass");
	return $source->safe_psql(
		'mono', qq{
SELECT format('triggers %s; table %s; capture %s; log %s; job %s; rows %s; types %s %s %s; casts %s; superuser %s',
	(SELECT string_agg(tgname || ':' || tgenabled::text, ',' ORDER BY tgname)
	   FROM pg_trigger WHERE tgrelid = 'acc.$svc'::regclass),
	(SELECT n.nspname || '.' || c.relname || '(' ||
			(SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute
			  WHERE attrelid = c.oid AND attnum > 0 AND NOT attisdropped) || ')'
	   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	  WHERE c.oid = 'acc.$svc'::regclass),
	coalesce(splitdb.capture_problem($id, ARRAY['acc.$svc']), 'intact'),
	(SELECT count(*) || '/' || coalesce(sum(hashtext(l::text)), 0) FROM $log l),
	(SELECT state || '/' || runs FROM splitdb.job WHERE job_id = $id),
	(SELECT count(*) || '/' || sum(hashtext(t::text)) FROM acc.$svc t),
	(SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder) FROM pg_enum
	  WHERE enumtypid = 'acc.mood'::regtype),
	(SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute
	  WHERE attrelid = 'acc.pair'::regclass AND NOT attisdropped),
	(SELECT string_agg(conname, ',') FROM pg_constraint WHERE contypid = 'acc.grade'::regtype),
	(SELECT count(*) FROM pg_cast WHERE castsource IN ('acc.mood'::regtype, 'acc.pair'::regtype)
	     OR casttarget = 'acc.mood'::regtype),
	(SELECT rolsuper FROM pg_roles WHERE rolname = 'owner'))});
}

# $sql as $role must fail with $sqlstate (and $msg, a pattern), with a hint
# when $hint, and change nothing
sub refused
{
	my ($svc, $id, $role, $sql, $sqlstate, $msg, $hint, $name) = @_;
	my $before = state($svc, $id);
	my ($ret, $out, $err) = as_role($role, $sql);
	like($err, qr/ERROR:  $sqlstate: $msg/, "$svc: $name: refused with $sqlstate")
	  or diag($err);
	like($err, qr/HINT:  \S/, "$svc: $name: the error has a hint") if $hint;
	is(state($svc, $id), $before, "$svc: $name: nothing changed");
	return;
}

# $sql as $role must run without an error
sub runs
{
	my ($role, $sql, $name) = @_;
	my ($ret, $out, $err) = as_role($role, $sql);
	is($ret, 0, "$name: runs") or diag($err);
	return $out;
}

# the routes around the capture, tried while the job of $svc is held
sub attack
{
	my ($svc, $id) = @_;
	my $t   = "acc.$svc";
	my $log = $source->safe_psql('mono', "SELECT log FROM splitdb.capture WHERE relid = '$t'::regclass");

	# DDL that would stop the capture, or make the rounds read another table
	for my $ev ('insert', 'update', 'delete', 'truncate')
	{
		refused($svc, $id, 'owner', "ALTER TABLE $t DISABLE TRIGGER splitdb_capture_$ev",
			'55006', qr/table "acc\.$svc" belongs to a migration of service "$svc"/, 1,
			"DISABLE TRIGGER splitdb_capture_$ev");
		refused($svc, $id, 'owner', "DROP TRIGGER splitdb_capture_$ev ON $t",
			'55006', qr/table "acc\.$svc" belongs to a migration of service "$svc"/, 1,
			"DROP TRIGGER splitdb_capture_$ev");
	}
	refused($svc, $id, 'owner', "ALTER TABLE $t DISABLE TRIGGER ALL",
		'55006', qr/table "acc\.$svc" belongs to a migration/, 1, 'DISABLE TRIGGER ALL');
	refused($svc, $id, 'owner', "ALTER TABLE $t ENABLE REPLICA TRIGGER splitdb_capture_update",
		'55006', qr/table "acc\.$svc" belongs to a migration/, 1, 'ENABLE REPLICA TRIGGER');
	refused($svc, $id, 'owner', "ALTER TRIGGER splitdb_capture_insert ON $t RENAME TO x",
		'55006', qr/table "acc\.$svc" belongs to a migration/, 1, 'ALTER TRIGGER ... RENAME');
	refused($svc, $id, 'owner', "ALTER TABLE $t RENAME TO ${svc}_old",
		'55006', qr/table "acc\.$svc" belongs to a migration/, 1, 'ALTER TABLE ... RENAME');
	refused($svc, $id, 'owner', "ALTER TABLE $t RENAME COLUMN note TO memo",
		'55006', qr/table "acc\.$svc" belongs to a migration/, 1, 'ALTER TABLE ... RENAME COLUMN');
	refused($svc, $id, 'owner', "ALTER TABLE $t SET SCHEMA acc2",
		'55006', qr/table "acc\.$svc" belongs to a migration/, 1, 'ALTER TABLE ... SET SCHEMA');
	refused(
		$svc, $id, 'owner',
		"ALTER SCHEMA acc RENAME TO acc_old; CREATE SCHEMA acc;"
		  . " CREATE TABLE acc.$svc (id bigint PRIMARY KEY)",
		# once an earlier service of the schema holds an end of a
		# cross-service reference, splitdb_guard_triggers refuses first
		'(?:55006|42501)',
		qr/(?:table "acc\.$svc" belongs to a migration|permission denied: table "[^"]+" holds an end of a cross-service reference)/,
		1, 'ALTER SCHEMA ... RENAME and a table of the same name');
	refused(
		$svc, $id, 'owner',
		"CREATE TRIGGER own AFTER INSERT ON $t REFERENCING NEW TABLE AS splitdb_new"
		  . " FOR EACH STATEMENT EXECUTE FUNCTION splitdb.capture_changes()",
		'42501', qr/permission denied for function (splitdb\.)?capture_changes/, 0,
		'a trigger of its own calling splitdb.capture_changes()');

	# the types of the table's columns, and casts that the worker would call;
	# the first table named is the one of the first job, which may be done
	my $guarded = qr/table \S+ (?:belongs to a migration of service|is the archived original of table)/;
	for my $cast ('acc.mood AS json', 'acc.mood AS text', 'acc.pair AS text', 'text AS acc.mood')
	{
		my $fn =
		  $cast =~ /^acc\.(\w+) AS (\w+)$/ ? "acc.$1_$2(acc.$1)"
		  : $cast =~ /^text AS acc\.(\w+)$/ ? "acc.text_$1(text)"
		  :                                    die "no function for cast $cast";
		refused($svc, $id, 'owner', "CREATE CAST ($cast) WITH FUNCTION $fn",
			'55006', $guarded, 1,
			"CREATE CAST ($cast) calling a function of the owner's");
	}
	refused($svc, $id, 'owner', "ALTER TYPE acc.mood ADD VALUE 'wild'",
		'55006', $guarded, 1, 'ALTER TYPE ... ADD VALUE');
	refused($svc, $id, 'owner', "ALTER TYPE acc.mood RENAME VALUE 'busy' TO 'hectic'",
		'55006', $guarded, 1, 'ALTER TYPE ... RENAME VALUE');
	refused($svc, $id, 'owner', "ALTER TYPE acc.pair RENAME ATTRIBUTE n TO k",
		'55006', $guarded, 1, 'ALTER TYPE ... RENAME ATTRIBUTE');
	refused($svc, $id, 'owner', "ALTER DOMAIN acc.grade DROP CONSTRAINT grade_check",
		'55006', $guarded, 1, 'ALTER DOMAIN ... DROP CONSTRAINT');
	refused($svc, $id, 'owner',
		"ALTER DOMAIN acc.castonly ADD CONSTRAINT castonly_more CHECK (VALUE < 1000000000) NOT VALID",
		'55006', $guarded, 1, 'ALTER DOMAIN ... ADD CONSTRAINT of a domain that only a CHECK casts to');

	# settings
	refused($svc, $id, 'owner', "SET session_replication_role = replica",
		'42501', qr/permission denied to set parameter "session_replication_role"/, 0,
		'SET session_replication_role');
	for my $guc ("capture_direct = off", "migrate_pause_at = ''", "cutover_max_freeze = 600000",
		"batch_rows = 1")
	{
		refused($svc, $id, 'owner', "SET splitdb.$guc",
			'42501', qr/permission denied to set parameter "splitdb\./, 0, "SET splitdb.$guc");
	}

	# the capture log, the copy's keys
	for my $role ('owner', 'writer', 'outsider')
	{
		refused($svc, $id, $role, "SELECT * FROM $log", '42501',
			qr/permission denied for schema splitdb_capture/, 0, "$role reads the capture log");
		refused($svc, $id, $role, "INSERT INTO $log (splitdb_op) VALUES ('T')", '42501',
			qr/permission denied for schema splitdb_capture/, 0, "$role writes the capture log");
		refused($svc, $id, $role, "DELETE FROM $log", '42501',
			qr/permission denied for schema splitdb_capture/, 0, "$role deletes from the capture log");
		refused($svc, $id, $role, "TRUNCATE $log", '42501',
			qr/permission denied for schema splitdb_capture/, 0, "$role truncates the capture log");
		refused($svc, $id, $role, "CREATE TABLE splitdb_capture.mine (i integer)", '42501',
			qr/permission denied for schema splitdb_capture/, 0, "$role creates in splitdb_capture");
		refused($svc, $id, $role, "SELECT last_key FROM splitdb.job_table", '42501',
			qr/permission denied for table job_table/, 0, "$role reads the copy's checkpoint keys");
		refused($svc, $id, $role, "SELECT lower_key, upper_key, last_key FROM splitdb.job_range",
			'42501', qr/permission denied for table job_range/, 0,
			"$role reads the copy's range keys");
		refused($svc, $id, $role, "SELECT splitdb_cancel('$svc')", '42501',
			qr/permission denied for function splitdb_cancel/, 1, "$role cancels the job");
		refused($svc, $id, $role, "SELECT splitdb_migrate('$svc', mode => 'offline')", '42501',
			qr/permission denied for function splitdb_migrate/, 1, "$role migrates the service");
	}
	is( (as_role('outsider',
				"SELECT state FROM splitdb.job_table t JOIN splitdb.job j USING (job_id)"
				  . " WHERE j.job_id = $id AND t.rows_copied >= 0"))[1],
		job($id, 'state'),
		"$svc: the job's progress stays readable to every role");

	# splitdb's internal functions, the worker
	for my $f ("splitdb.drop_capture($id)", "splitdb.install_capture($id, ARRAY['$t'])",
		"splitdb.close_capture($id, '$svc')", "splitdb.capture_problem($id, ARRAY['$t'])")
	{
		(my $fname = $f) =~ s/\(.*//;
		$fname =~ s/^splitdb\.//;
		refused($svc, $id, 'owner', "SELECT $f", '42501',
			qr/permission denied for function (splitdb\.)?$fname/, 0, "owner calls splitdb.$fname()");
	}
	my $pid = job($id, 'worker_pid');
	refused($svc, $id, 'owner', "SELECT pg_terminate_backend($pid)", '42501',
		qr/must be a superuser to terminate superuser process/, 0, 'owner terminates the worker');

	# writes, each of them captured
	runs('owner',
		"INSERT INTO $t VALUES (1, 1, 'upserted'), (${rows}1, 1, 'inserted')"
		  . " ON CONFLICT (id) DO UPDATE SET v = excluded.v, note = excluded.note",
		"$svc: INSERT ... ON CONFLICT");
	runs('owner',
		"MERGE INTO $t t USING (VALUES (2::bigint), (${rows}2)) s(id) ON t.id = s.id"
		  . " WHEN MATCHED THEN UPDATE SET note = 'merged'"
		  . " WHEN NOT MATCHED THEN INSERT VALUES (s.id, 2, 'merged')",
		"$svc: MERGE");
	runs('owner',
		"WITH d AS (DELETE FROM $t WHERE id BETWEEN 3 AND 5 RETURNING id)"
		  . " UPDATE $t SET v = v + 1 WHERE id IN (SELECT id + 10 FROM d)",
		"$svc: a data-modifying CTE");
	runs('owner', "COPY $t (id, v, note) FROM STDIN;\n${rows}3\t3\tcopied\n${rows}4\t3\tcopied\n\\.\n",
		"$svc: COPY FROM STDIN");
	runs('writer', "SELECT acc.${svc}_bump(20)", "$svc: a SECURITY DEFINER function");
	runs('writer', "INSERT INTO $t VALUES (${rows}5, 5, 'by writer')", "$svc: writer's INSERT");
	runs('writer', "UPDATE $t SET note = 'by writer'", "$svc: writer's UPDATE of every row");
	return;
}

for my $s (@services)
{
	my ($svc, $point) = @$s;
	my $holder = $source->background_psql('mono');
	$holder->query_safe("SELECT pg_advisory_lock($pause_key, 0)");
	my $id = $source->safe_psql('mono',
		"SET splitdb.migrate_pause_at = '$point'; SET splitdb.batch_rows = 500;"
		  . " SELECT splitdb_migrate('$svc')");
	poll_until(
		sub {
			$source->safe_psql('mono',
				"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'splitdb worker'"
				  . " AND query = 'paused at $point'") eq '1';
		},
		sub { job($id, 'state') =~ /^(failed|cancelled|done)$/ },
		"the worker of $svc to pause at $point")
	  or BAIL_OUT("the job of $svc ended before pausing at $point: " . job($id, JOB_SUMMARY));

	# while copying, the application empties the table and fills it again
	if ($point eq 'copying')
	{
		runs('owner',
			"SET lock_timeout = '10s'; BEGIN; TRUNCATE acc.$svc; INSERT INTO acc.$svc"
			  . " SELECT g, 7, 'again ' || g FROM generate_series(1, $rows) g; COMMIT",
			"$svc: TRUNCATE and the rows again");
	}
	attack($svc, $id);

	$holder->query_safe("SELECT pg_advisory_unlock($pause_key, 0)");
	$holder->quit;
	poll_until(sub { job($id, 'state') =~ /^(done|failed|cancelled)$/ }, undef, "the end of job $id");
	is(job($id, "state || ' ' || mode || ' ' || runs"), 'done online 1',
		"$svc: the job ends done in one run") or diag(job($id, JOB_SUMMARY));
	my $archived = $source->safe_psql('mono',
		"SELECT relid::regclass FROM splitdb.job_table WHERE job_id = $id");
	like($archived, qr/^splitdb_archive\./, "$svc: the original is archived");
	my $expected = $source->safe_psql('mono', fingerprint_sql($archived, 'id'));
	like($expected, qr/^300[0-9] rows/, "$svc: the original holds the rows written");
	is($sibling->safe_psql($svc, fingerprint_sql("acc.$svc", 'id')),
		$expected, "$svc: the sibling holds exactly the original's rows");
	is( $sibling->safe_psql($svc,
			"SELECT count(*) FROM acc.$svc WHERE note = 'by writer'")
		  . ' '
		  . $sibling->safe_psql($svc, "SELECT count(*) FROM acc.$svc WHERE id IN (${rows}3, ${rows}4)"),
		$source->safe_psql('mono', "SELECT count(*) FROM $archived") . ' 2',
		"$svc: the writer's update of every row and the COPY reached the sibling");
}

# a cast to json or text that the table's owner made, through a function of
# its own, is a blocker: the worker (a superuser) would call it
{
	my $svc = 'acc_cast';
	$sibling->safe_psql('postgres', "CREATE DATABASE $svc");
	$source->safe_psql(
		'mono', qq{
SET ROLE owner;
CREATE TABLE acc.$svc (id bigint PRIMARY KEY, tone acc.tone NOT NULL);
INSERT INTO acc.$svc SELECT g, 'low' FROM generate_series(1, 100) g;
CREATE CAST (acc.tone AS json) WITH FUNCTION acc.tone_json(acc.tone);
CREATE CAST (acc.tone AS text) WITH FUNCTION acc.tone_text(acc.tone);
CREATE CAST (text AS acc.tone) WITH FUNCTION acc.text_tone(text);
RESET ROLE;
SET log_statement = 'none';
CREATE SERVER ${svc}_srv FOREIGN DATA WRAPPER postgres_fdw
	OPTIONS (host '127.0.0.1', port '$sib_port', dbname '$svc');
CREATE USER MAPPING FOR CURRENT_USER SERVER ${svc}_srv
	OPTIONS (user '$user', password '$super_pw');
RESET log_statement;
SELECT splitdb_add_service('$svc', server => '${svc}_srv');
SELECT splitdb_assign('$svc', 'acc.$svc');
});
	is( $source->safe_psql('mono',
			"SELECT string_agg(object, ', ' ORDER BY object) FROM splitdb_plan('$svc')"
			  . " WHERE action = 'blocker'"),
		'(acc.tone AS json), (acc.tone AS text), (text AS acc.tone)',
		"$svc: the plan has a blocker for each cast");
	for my $mode ('online', 'offline')
	{
		my ($ret, $out, $err) = psql_verbose($source, 'mono',
			"SELECT splitdb_migrate('$svc', mode => '$mode', wait => true)");
		like(
			$err,
			qr/ERROR:  55000: the plan of service "$svc" has 3 blockers\nDETAIL:  cast \(acc\.tone AS json\) runs function acc\.tone_json\(acc\.tone\), owned by role owner, who is no superuser/,
			"$svc: $mode, the migration is refused (55000), the detail names the cast and its function's owner")
		  or diag($err);
		like($err, qr/HINT:  See SELECT \* FROM splitdb_plan/, "$svc: $mode, the hint leads to the plan");
	}
	is( $source->safe_psql('mono',
			"SELECT (SELECT count(*) FROM splitdb.job WHERE service = '$svc') || ' '"
			  . " || (SELECT count(*) FROM pg_trigger WHERE tgrelid = 'acc.$svc'::regclass)"),
		'0 0', "$svc: no job, no capture");
}
is($source->safe_psql('mono', "SELECT rolsuper FROM pg_roles WHERE rolname = 'owner'"),
	'f', 'the owner of the tables never became a superuser');

# no secret in either log: no password, no password option but the
# placeholder of splitdb's hints ('...'); the lines that have one, if any
for my $node ($source, $sibling)
{
	my @lines = split /\n/, slurp_file($node->logfile);
	for my $role (sort keys %password, 'superuser')
	{
		my $pw = $password{$role} // $super_pw;
		is(join("\n", grep { /\Q$pw\E/ } @lines),
			'', $node->name . ": the password of $role is not in the server's log");
	}
	is(join("\n", grep { /password\s*'(?!\.\.\.')[^']/i } @lines),
		'', $node->name . ": no user mapping's password option in the server's log");
}

done_testing();
