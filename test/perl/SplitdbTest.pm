# Copyright (c) 2026, splitdb developers
#
# SplitdbTest: the set-up that several TAP tests of splitdb share.
#
# - start_source(): a cluster with splitdb preloaded and installed in
#   database postgres, with a given splitdb.batch_rows: the source of the
#   migration tests (002, 010, 012, 013, 016);
# - RUNNING, job_sql(), JOB_SUMMARY, fingerprint_sql(), poll_until(): what
#   those tests read and wait for;
# - start_logged_pair(), set_passwords(), psql_verbose(): two clusters that
#   log every statement and take passwords, for the tests that look for
#   secrets in the servers' logs (007, 011);
# - start_pair(), sibling_service_sql(): a source and a sibling on two
#   servers, and the SQL that registers a service whose sibling database is
#   on the second (005, 006, 018, 019, 021, 030);
# - faults_sql(), three_tables_sql(): the gate that holds splitdb's
#   sessions in a sibling at a chosen statement, and the tables of the
#   tests that stop a job in each phase (010, 012, 017).
#
# test/run puts test/perl on prove's include path.

package SplitdbTest;

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;

use Exporter 'import';
our @EXPORT_OK = qw(start_source job_sql fingerprint_sql poll_until scram_hba start_scram_node
  start_logged_pair set_passwords psql_verbose psql_as start_pair sibling_service_sql
  faults_sql three_tables_sql RUNNING JOB_SUMMARY);

# the states of a job that a worker is running, as an SQL list
use constant RUNNING =>
  q{('queued', 'preparing', 'copying', 'indexing', 'catching_up', 'verifying', 'cutting_over')};

# splitdb.job's columns for a message: state, phase, runs and the error
use constant JOB_SUMMARY => "state || ', phase ' || phase || ', run ' || runs || ': '"
  . " || coalesce(last_sqlstate || ' ' || last_error, 'no error')";

# start_source($name, $batch, $conf, $readers)
#
# A new cluster $name that preloads splitdb (16 worker processes, and the
# lines of $conf when given), started, with splitdb installed in database
# postgres and splitdb.batch_rows set to $batch for the whole cluster, and
# splitdb.copy_readers to $readers (1 when not given: every table is read
# by the worker alone, whatever the machine's cores).
# Returns when the postmaster has read the setting: new sessions are forked
# from it, as background workers are, so once one shows the value, every
# worker will.
sub start_source
{
	my ($name, $batch, $conf, $readers) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);

	$node->init;
	$node->append_conf(
		'postgresql.conf', q{
shared_preload_libraries = 'splitdb'
max_worker_processes = 16
} . ($conf // ''));
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION splitdb CASCADE');
	$readers //= 1;
	$node->safe_psql('postgres',
		"ALTER SYSTEM SET splitdb.batch_rows = $batch;"
		  . " ALTER SYSTEM SET splitdb.copy_readers = $readers; SELECT pg_reload_conf()");
	$node->poll_query_until('postgres',
		"SELECT current_setting('splitdb.batch_rows') || ' ' || current_setting('splitdb.copy_readers')",
		"$batch $readers")
	  or die 'the postmaster did not reload splitdb.batch_rows and splitdb.copy_readers';
	return $node;
}

# job_sql($svc, $columns): the query of $columns of service $svc's job
sub job_sql
{
	my ($svc, $columns) = @_;
	return "SELECT $columns FROM splitdb.job WHERE service = '$svc'";
}

# fingerprint_sql($table, $distinct, $where)
#
# The query of a one-line fingerprint of the rows of $table (ONLY): the
# count, the count of distinct values of $distinct ("id": "N keys", any
# other expression over row t: "N distinct") and a checksum of every row;
# of the rows that $where holds for, when given.
sub fingerprint_sql
{
	my ($table, $distinct, $where) = @_;
	my $label = $distinct eq 'id' ? 'keys' : 'distinct';
	return "SELECT count(*) || ' rows, ' || count(DISTINCT $distinct) || ' $label, checksum '"
	  . " || coalesce(sum(hashtext(t::text)), 0) FROM ONLY $table t"
	  . (defined $where ? " WHERE $where" : '');
}

# poll_until($cond, $gone, $what)
#
# Call $cond every 50 ms until it returns true (then return 1), or until
# $gone, when given, returns true (then return 0).  Dies naming $what after
# PostgreSQL::Test::Utils' default timeout.
sub poll_until
{
	my ($cond, $gone, $what) = @_;
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while (time < $deadline)
	{
		return 1 if $cond->();
		return 0 if defined $gone && $gone->();
		select(undef, undef, undef, 0.05);
	}
	die "timed out waiting for $what";
}

# start_logged_pair(%opt)
#
# Two new clusters, named source and sibling, that preload splitdb, log
# every statement, message and connection (log_statement = all,
# log_min_messages and log_min_error_statement = debug1) and keep
# passwords as SCRAM, with the lines of $opt{conf} added; started.  When
# $opt{hba} is given, it is called with each node and the name of its
# bootstrap superuser, and what it returns becomes that node's
# pg_hba.conf (reloaded); $opt{initdb}, when given, is a list of initdb's
# options (an encoding).  Returns (source, sibling, superuser's name).
sub start_logged_pair
{
	my (%opt) = @_;
	my @nodes = map { PostgreSQL::Test::Cluster->new($_) } ('source', 'sibling');
	my $user;

	for my $node (@nodes)
	{
		$node->init(extra => $opt{initdb} // []);
		$node->append_conf(
			'postgresql.conf', q{
shared_preload_libraries = 'splitdb'
max_worker_processes = 16
log_statement = 'all'
log_min_messages = debug1
log_min_error_statement = debug1
log_connections = on
password_encryption = 'scram-sha-256'
} . ($opt{conf} // ''));
		$node->start;
		$user = $node->safe_psql('postgres', 'SELECT current_user');
		if (defined $opt{hba})
		{
			my $hba_file = $node->data_dir . '/pg_hba.conf';
			my $hba      = $opt{hba}->($node, $user);
			open(my $fh, '>', $hba_file) or die "could not write $hba_file: $!";
			print $fh $hba;
			close($fh);
			$node->reload;
		}
	}
	return (@nodes, $user);
}

# scram_hba($node, $superuser)
#
# A pg_hba.conf for start_logged_pair's hba option: the bootstrap
# superuser keeps trust; every other role gives its password (SCRAM), over
# the Unix socket and over TCP from 127.0.0.1.
sub scram_hba
{
	my ($node, $superuser) = @_;
	return "local all $superuser trust\n"
	  . "local all all scram-sha-256\n"
	  . "host all $superuser 127.0.0.1/32 trust\n"
	  . "host all all 127.0.0.1/32 scram-sha-256\n";
}

# set_passwords($node, $super_pw, [role => password, ...])
#
# In database postgres of $node, without logging the statements: give the
# current user (the bootstrap superuser) password $super_pw and create
# each role, LOGIN with its password, in the order given.
sub set_passwords
{
	my ($node, $super_pw, $roles) = @_;
	my $sql = "SET log_statement = 'none';\nALTER ROLE CURRENT_USER PASSWORD '$super_pw';\n";
	my @pairs = @$roles;

	while (my ($role, $pw) = splice(@pairs, 0, 2))
	{
		$sql .= "CREATE ROLE $role LOGIN PASSWORD '$pw';\n";
	}
	$node->safe_psql('postgres', $sql);
	return;
}

# start_scram_node($name, \%pw, $conf)
#
# One new cluster that preloads splitdb (16 worker processes), logs every
# statement, listens on 127.0.0.1 and keeps passwords as SCRAM, with the
# lines of $conf added; started.  Every role, the bootstrap superuser too
# ($pw{super}), logs in with its password (SCRAM, over the Unix socket and
# over TCP from 127.0.0.1); each other key of %pw becomes a LOGIN role with
# its password (set_passwords), and PGPASSWORD is the superuser's.
# Returns (node, the superuser's name).
sub start_scram_node
{
	my ($name, $pw, $conf) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);

	$node->init;
	$node->append_conf(
		'postgresql.conf', q{
shared_preload_libraries = 'splitdb'
max_worker_processes = 16
log_statement = 'all'
listen_addresses = '127.0.0.1'
password_encryption = 'scram-sha-256'
} . ($conf // ''));
	$node->start;
	my $user = $node->safe_psql('postgres', 'SELECT current_user');
	set_passwords($node, $pw->{super},
		[ map { ($_ => $pw->{$_}) } grep { $_ ne 'super' } sort keys %$pw ]);
	my $hba = $node->data_dir . '/pg_hba.conf';
	open(my $fh, '>', $hba) or die "could not write $hba: $!";
	print $fh "local all all scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\n";
	close($fh);
	$ENV{PGPASSWORD} = $pw->{super};
	$node->reload;
	return ($node, $user);
}

# psql_verbose($node, $db, $sql, %psql_opts)
#
# Run $sql in $db of $node with \set VERBOSITY verbose (so errors show
# their SQLSTATE), with PostgreSQL::Test::Cluster::psql's options
# %psql_opts.  Returns (exit code, stdout, stderr).
sub psql_verbose
{
	my ($node, $db, $sql, %psql_opts) = @_;
	my ($out, $err);
	my $ret = $node->psql(
		$db, "\\set VERBOSITY verbose\n$sql",
		stdout => \$out,
		stderr => \$err,
		%psql_opts);
	return ($ret, $out, $err);
}

# psql_as($node, $role, $db, $sql)
#
# $sql in database $db of $node as role $role, with verbose errors, stopping
# at the first: (exit code, stdout, stderr), as psql_verbose() gives them.
sub psql_as
{
	my ($node, $role, $db, $sql) = @_;
	return psql_verbose($node, $db, $sql,
		connstr => $node->connstr($db) . " user=$role", on_error_stop => 1);
}

# start_pair(%opt)
#
# Two new clusters, named source and sibling: the source preloads splitdb
# with 16 worker processes; each gets the lines of $opt{source_conf} or
# $opt{sibling_conf} when given; both started.  Returns (source, sibling,
# the name of the bootstrap superuser, which both share).
sub start_pair
{
	my (%opt) = @_;
	my $source  = PostgreSQL::Test::Cluster->new('source');
	my $sibling = PostgreSQL::Test::Cluster->new('sibling');

	$source->init;
	$source->append_conf('postgresql.conf',
		"shared_preload_libraries = 'splitdb'\nmax_worker_processes = 16\n"
		  . ($opt{source_conf} // ''));
	$source->start;
	$sibling->init;
	$sibling->append_conf('postgresql.conf', $opt{sibling_conf}) if defined $opt{sibling_conf};
	$sibling->start;
	return ($source, $sibling, $source->safe_psql('postgres', 'SELECT current_user'));
}

# sibling_service_sql($sibling, $user, $service, %opt)
#
# The SQL, to run in the source database, that registers service $service
# with its sibling database $opt{dbname} ($service when not given) on the
# server of node $sibling: a postgres_fdw server $opt{server} ("<service>_srv"
# when not given), the current user's user mapping there as $user, the
# service, and the tables of $opt{tables} (a list of names as SQL literals'
# contents) assigned to it.  The database must exist in $sibling.
sub sibling_service_sql
{
	my ($sibling, $user, $service, %opt) = @_;
	my $dbname = $opt{dbname} // $service;
	my $server = $opt{server} // "${service}_srv";
	my ($host, $port) = ($sibling->host, $sibling->port);
	my $sql = "CREATE SERVER $server FOREIGN DATA WRAPPER postgres_fdw\n"
	  . "\tOPTIONS (host '$host', port '$port', dbname '$dbname');\n"
	  . "CREATE USER MAPPING FOR CURRENT_USER SERVER $server OPTIONS (user '$user');\n"
	  . "SELECT splitdb_add_service('$service', server => '$server');\n";

	$sql .= "SELECT splitdb_assign('$service', "
	  . join(', ', map { "'$_'" } @{ $opt{tables} }) . ");\n"
	  if $opt{tables};
	return $sql;
}

# faults_sql(%opt)
#
# The SQL, to run in a sibling database, of the test's faults: a gate table
# faults.gate, the tags armed (faults.armed), and an event trigger that
# holds the sessions named splitdb at the gate (LOCK ... IN SHARE MODE,
# until the test's session that locks it lets go) at the end of a command
# whose tag is armed, and gives every new table of schema public a
# statement trigger that holds them for the tag COPY.  With
# $opt{copy_after}, that trigger holds only once the table has that many
# rows; with $opt{sleep}, a session also sleeps while "sleep <tag>" is
# armed (a hold that outlives a restart of the source).
sub faults_sql
{
	my (%opt) = @_;
	my $sleep = $opt{sleep} ? q{
	WHILE pg_catalog.current_setting('application_name') = 'splitdb'
	   AND EXISTS (SELECT FROM faults.armed a WHERE a.tag = 'sleep ' || what) LOOP
		PERFORM pg_catalog.pg_sleep(0.05);
	END LOOP;} : '';
	my $hold_copy = defined $opt{copy_after} ? qq{
DECLARE
	n bigint;
BEGIN
	EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FROM %s', tg_relid::regclass) INTO n;
	IF n >= $opt{copy_after} THEN
		PERFORM faults.hold('COPY');
	END IF;
	RETURN NULL;
END} : q{
BEGIN
	PERFORM faults.hold('COPY');
	RETURN NULL;
END};

	return qq{
CREATE SCHEMA faults;
CREATE TABLE faults.gate ();
CREATE TABLE faults.armed (tag text PRIMARY KEY);
CREATE FUNCTION faults.hold(what text) RETURNS void LANGUAGE plpgsql AS \$\$
BEGIN
	IF pg_catalog.current_setting('application_name') = 'splitdb'
	   AND EXISTS (SELECT FROM faults.armed a WHERE a.tag = what) THEN
		LOCK TABLE faults.gate IN SHARE MODE;
	END IF;$sleep
END
\$\$;
CREATE FUNCTION faults.hold_copy() RETURNS trigger LANGUAGE plpgsql AS \$\$$hold_copy
\$\$;
CREATE FUNCTION faults.on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS \$\$
DECLARE
	r record;
BEGIN
	IF tg_tag = 'CREATE TABLE' AND EXISTS (SELECT FROM faults.armed a WHERE a.tag = 'COPY') THEN
		FOR r IN SELECT c.objid FROM pg_catalog.pg_event_trigger_ddl_commands() c
				  WHERE c.object_type = 'table' AND c.schema_name = 'public' LOOP
			EXECUTE pg_catalog.format('CREATE TRIGGER zz_fault_copy BEFORE INSERT ON %s'
				' FOR EACH STATEMENT EXECUTE FUNCTION faults.hold_copy()', r.objid::regclass);
		END LOOP;
	END IF;
	PERFORM faults.hold(tg_tag);
END
\$\$;
CREATE EVENT TRIGGER faults_on_ddl ON ddl_command_end EXECUTE FUNCTION faults.on_ddl();
};
}

# three_tables_sql($svc, $rows, $plain_rows)
#
# The SQL of a service's three tables: <svc>_big ($rows rows, a bigserial
# key, an index, a NULL every 97 rows), <svc>_small (300 rows referring to
# it) and <svc>_zplain ($plain_rows rows, no key).
sub three_tables_sql
{
	my ($svc, $rows, $plain_rows) = @_;
	return qq{
CREATE TABLE ${svc}_big (
	id         bigserial PRIMARY KEY,
	label      text NOT NULL,
	amount     numeric(12,2),
	created_at timestamptz NOT NULL
);
INSERT INTO ${svc}_big (id, label, amount, created_at)
SELECT g, 'row ' || g, CASE WHEN g % 97 = 0 THEN NULL ELSE round((g * 7.31) % 100000, 2) END,
	   timestamptz '2024-01-01 00:00:00+00' + g * interval '37 seconds'
  FROM generate_series(1, $rows) g;
SELECT setval('${svc}_big_id_seq', $rows);
CREATE INDEX ${svc}_big_created_at_idx ON ${svc}_big (created_at);
CREATE TABLE ${svc}_small (
	id     integer PRIMARY KEY,
	big_id bigint NOT NULL REFERENCES ${svc}_big (id),
	note   text
);
INSERT INTO ${svc}_small SELECT g, (g * 997) % $rows + 1, 'note ' || g FROM generate_series(1, 300) g;
CREATE TABLE ${svc}_zplain (n integer NOT NULL, what text NOT NULL);
INSERT INTO ${svc}_zplain SELECT g, 'event ' || g FROM generate_series(1, $plain_rows) g;
};
}

1;
