# Copyright (c) 2026, splitdb developers
#
# What the servers log of the sessions that splitdb itself opens, read line
# by line as an auditor reads them: both clusters log every statement,
# every connection and disconnection, at debug1 (log_statement = all,
# log_min_messages = debug1, log_connections, log_disconnections), and the
# application's role logs in with its password (scram over TCP).
#
# The service's name holds a space ("lg svc"), the names of the tables and
# columns quotes, spaces and non-ASCII letters.  A table that stays is
# referenced by one that moves, with a serial key; the application role
# owns both.  After an offline migration the application, as its role:
#
# 1. inserts rows through the shim (the serial default draws the values
#    from the sibling's sequence on a connection of splitdb's own, as many
#    in one round trip as the sequence's CACHE, 10 here), then ends its
#    session;
# 2. writes in the sibling a row that refers to the source (checked over
#    the server splitdb_source, whose options carry '-c splitdb.origin=lg\
#    svc': unescaped, libpq split it at the space, and every such check
#    failed with "invalid command-line argument for server process");
# 3. deletes in the source a customer that a row of the sibling refers to
#    (23503);
# 4. the DBA calls splitdb_doctor(), which checks the objects of its
#    registry in the sibling with one query (it sent one per object);
# 5. the referenced table moves to a second service ("lg k\unde", on the
#    same sibling server), so that the reference joins two siblings, which
#    share a secret and reach each other through servers whose
#    splitdb.origin names a service with a space or a backslash: a row
#    referring to a customer and the delete of a referenced customer are
#    checked there (23503).
#
# Then, in the logs: every session that splitdb opened (application_name
# splitdb) ended with a disconnection and without "unexpected EOF on
# client connection" (before the fix, the connection of the shim's serial
# default was never closed: the sibling logged that line at debug1 for
# every application session that inserted through a shim), no FATAL, no
# password nor secret of the origin, and no value in the text of
# splitdb's statements: not a row's, not the sequence's (the sibling's
# sequence was set with its value pasted into the statement).  The
# verification in the sibling hashed its rows with a temporary function
# made from splitdb's library.

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SplitdbTest qw(start_logged_pair scram_hba psql_verbose);

my $super_pw = 'Super-Pw-39a1';
my $app_pw   = 'App-Pw-39b2';
my $app      = 'app39';
my $svc      = 'lg svc';

my ($source, $sibling, $user) = start_logged_pair(
	conf => q{
listen_addresses = '127.0.0.1'
log_disconnections = on
},
	hba => \&scram_hba);
my ($src_port, $sib_port) = ($source->port, $sibling->port);
for my $node ($source, $sibling)
{
	$node->safe_psql('postgres',
		"SET log_statement = 'none'; ALTER ROLE CURRENT_USER PASSWORD '$super_pw';"
		  . " CREATE ROLE $app LOGIN PASSWORD '$app_pw'");
}

$source->safe_psql('postgres', 'CREATE DATABASE mono');
$source->safe_psql(
	'mono', qq{
CREATE SCHEMA "Lä den" AUTHORIZATION $app;
SET ROLE $app;
CREATE TABLE "Lä den"."Kunde ""K""" ("Ïd" integer PRIMARY KEY);
INSERT INTO "Lä den"."Kunde ""K""" SELECT generate_series(1, 10);
CREATE TABLE "Lä den"."Bestell ung" ("Ïd" bigserial PRIMARY KEY,
	"Kunde Nr" integer CONSTRAINT "Fk ""K"" ü" REFERENCES "Lä den"."Kunde ""K""",
	"Nöte's" text NOT NULL DEFAULT 'none');
INSERT INTO "Lä den"."Bestell ung" ("Kunde Nr", "Nöte's")
	SELECT 1 + g % 10, 'Wert-39x ' || g FROM generate_series(1, 50) g;
SELECT setval('"Lä den"."Bestell ung_Ïd_seq"', 4711);
ALTER SEQUENCE "Lä den"."Bestell ung_Ïd_seq" CACHE 10;
RESET ROLE;
SET log_statement = 'none';
CREATE EXTENSION splitdb CASCADE;
});

# the sibling's database, and its way back to the source for the checks
# of the application's role (with its password: splitdb makes none)
$sibling->safe_psql('postgres', 'CREATE DATABASE lg_svc');
$sibling->safe_psql(
	'lg_svc', qq{
CREATE SCHEMA "Lä den" AUTHORIZATION $app;
SET log_statement = 'none';
CREATE EXTENSION splitdb CASCADE;
CREATE SERVER splitdb_source FOREIGN DATA WRAPPER postgres_fdw
	OPTIONS (host '127.0.0.1', port '$src_port', dbname 'mono');
CREATE USER MAPPING FOR $app SERVER splitdb_source OPTIONS (user '$app', password '$app_pw');
});
$source->safe_psql(
	'mono', qq{
SET log_statement = 'none';
CREATE SERVER lg_srv FOREIGN DATA WRAPPER postgres_fdw
	OPTIONS (host '127.0.0.1', port '$sib_port', dbname 'lg_svc');
CREATE USER MAPPING FOR CURRENT_USER SERVER lg_srv OPTIONS (user '$user', password '$super_pw');
CREATE USER MAPPING FOR $app SERVER lg_srv OPTIONS (user '$app', password '$app_pw');
RESET log_statement;
SELECT splitdb_add_service('$svc', server => 'lg_srv');
SELECT splitdb_assign('$svc', '"Lä den"."Bestell ung"');
SELECT splitdb_migrate('$svc', mode => 'offline', wait => true);
});
is($source->safe_psql('mono', "SELECT state FROM splitdb.job WHERE service = '$svc'"),
	'done', 'the service is migrated');

my %port = (mono => $src_port, lg_svc => $sib_port);
my %node = (mono => $source, lg_svc => $sibling);

# $sql in $db as the application's role, over TCP with its password, in a
# session of its own; returns (exit code, stdout, stderr)
sub as_app
{
	my ($db, $sql) = @_;
	local $ENV{PGPASSWORD} = $app_pw;
	return psql_verbose($node{$db}, $db, $sql,
		connstr => "host=127.0.0.1 port=$port{$db} dbname=$db user=$app");
}

# 1. inserts through the shim: the serial default, drawn from the
# sibling's sequence; its CACHE 10 draws ten values in one round trip (one
# per row before), which serve both statements of the session
my ($ret, $out, $err) = as_app('mono',
	'INSERT INTO "Lä den"."Bestell ung" ("Kunde Nr") SELECT 1 + g % 10 FROM generate_series(1, 5) g;'
	  . ' INSERT INTO "Lä den"."Bestell ung" ("Kunde Nr") SELECT 1 + g % 10 FROM generate_series(1, 3) g');
is($ret, 0, 'the application inserts through the shim') or diag($err);
is( $sibling->safe_psql('lg_svc',
		'SELECT string_agg("Ïd"::text, \',\' ORDER BY "Ïd") FROM "Lä den"."Bestell ung" WHERE "Ïd" > 50'),
	join(',', 4712 .. 4719), 'the rows drew their keys from the sibling\'s sequence, in order');
my @draws = grep { /splitdb [^\n]*(?:statement|execute [^:]*): SELECT pg_catalog\.nextval\(/ }
  split /\n(?=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)/, slurp_file($sibling->logfile);
is(scalar(@draws), 1, 'the eight keys took one round trip to the sibling (CACHE 10)');

# 2. in the sibling, checked in the source over splitdb_source
($ret, $out, $err) = as_app('lg_svc',
	'INSERT INTO "Lä den"."Bestell ung" ("Kunde Nr") VALUES (3)');
is($ret, 0, 'in the sibling, a row that refers to a customer is accepted') or diag($err);
($ret, $out, $err) = as_app('lg_svc',
	'INSERT INTO "Lä den"."Bestell ung" ("Kunde Nr") VALUES (99)');
like($err, qr/ERROR:  23503: insert or update on table "Bestell ung" violates foreign key constraint "Fk "K" ü"/,
	'in the sibling, a row that refers to no customer is refused (23503)');

# 3. in the source, checked in the sibling
($ret, $out, $err) = as_app('mono', 'DELETE FROM "Lä den"."Kunde ""K""" WHERE "Ïd" = 3');
like($err, qr/ERROR:  23503: /, 'in the source, deleting a customer referred to is refused (23503)');

# 4. the doctor: one query checks every object of the registry in the
# sibling (it ran one per object before)
my $objects = $source->safe_psql('mono',
	"SELECT count(*) FROM splitdb.artifact WHERE service = '$svc' AND dropped_at IS NULL");
cmp_ok($objects, '>', 1, "the registry lists $objects objects in the sibling");
is($source->safe_psql('mono', 'SELECT count(*) FROM splitdb_doctor()'), '0', 'the doctor finds nothing');
my @checks = grep { /splitdb [^\n]*(?:statement|execute [^:]*): SELECT coalesce\(CASE (?:o\.kind|\$3)/ }
  split /\n(?=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)/, slurp_file($sibling->logfile);
is(scalar(@checks), 1, 'the doctor checked the sibling\'s objects with one query');

# 5. the referenced table moves too, to a second service (a backslash in
# its name) on the same sibling server: the reference then joins two
# siblings, which share a secret that one copies to the other with COPY,
# and reach each other through servers whose splitdb.origin names the
# other service, escaped.  The application's mappings there, with its
# password, are the DBA's (splitdb makes none).
my $svc2 = 'lg k\\unde';
$sibling->safe_psql('postgres', 'CREATE DATABASE lg_kunde');
$sibling->safe_psql('lg_kunde', qq{
CREATE SCHEMA "Lä den" AUTHORIZATION $app;
SET log_statement = 'none';
CREATE EXTENSION splitdb CASCADE;
CREATE SERVER "splitdb_lg svc" FOREIGN DATA WRAPPER postgres_fdw
	OPTIONS (host '127.0.0.1', port '$sib_port', dbname 'lg_svc');
CREATE USER MAPPING FOR $app SERVER "splitdb_lg svc" OPTIONS (user '$app', password '$app_pw');
CREATE SERVER splitdb_source FOREIGN DATA WRAPPER postgres_fdw
	OPTIONS (host '127.0.0.1', port '$src_port', dbname 'mono');
CREATE USER MAPPING FOR $app SERVER splitdb_source OPTIONS (user '$app', password '$app_pw');
});
$sibling->safe_psql('lg_svc', qq{
SET log_statement = 'none';
CREATE SERVER "splitdb_$svc2" FOREIGN DATA WRAPPER postgres_fdw
	OPTIONS (host '127.0.0.1', port '$sib_port', dbname 'lg_kunde');
CREATE USER MAPPING FOR $app SERVER "splitdb_$svc2" OPTIONS (user '$app', password '$app_pw');
});
$source->safe_psql(
	'mono', qq{
SET log_statement = 'none';
CREATE SERVER lg_srv2 FOREIGN DATA WRAPPER postgres_fdw
	OPTIONS (host '127.0.0.1', port '$sib_port', dbname 'lg_kunde');
CREATE USER MAPPING FOR CURRENT_USER SERVER lg_srv2 OPTIONS (user '$user', password '$super_pw');
CREATE USER MAPPING FOR $app SERVER lg_srv2 OPTIONS (user '$app', password '$app_pw');
RESET log_statement;
SELECT splitdb_add_service('$svc2', server => 'lg_srv2');
SELECT splitdb_assign('$svc2', '"Lä den"."Kunde ""K"""');
SELECT splitdb_migrate('$svc2', mode => 'offline', wait => true);
});
is($source->safe_psql('mono', "SELECT state FROM splitdb.job WHERE service = '$svc2'"),
	'done', 'the second service is migrated');
$node{lg_kunde} = $sibling;
$port{lg_kunde} = $sib_port;
($ret, $out, $err) = as_app('lg_svc', 'INSERT INTO "Lä den"."Bestell ung" ("Kunde Nr") VALUES (4)');
is($ret, 0, 'sibling to sibling: a row that refers to a customer is accepted') or diag($err);
($ret, $out, $err) = as_app('lg_svc', 'INSERT INTO "Lä den"."Bestell ung" ("Kunde Nr") VALUES (98)');
like($err, qr/ERROR:  23503: /, 'sibling to sibling: a row that refers to no customer is refused (23503)');
($ret, $out, $err) = as_app('lg_kunde', 'DELETE FROM "Lä den"."Kunde ""K""" WHERE "Ïd" = 4');
like($err, qr/ERROR:  23503: /, 'sibling to sibling: deleting a customer referred to is refused (23503)');
my @secrets = map { $sibling->safe_psql($_, "SELECT string_agg(encode(secret, 'hex'), ' ') FROM splitdb.origin_key") }
  ('lg_svc', 'lg_kunde');
like(join(' ', @secrets), qr/^[0-9a-f]{64}/, 'the siblings share secrets');

# every session has ended once pg_stat_activity shows no client but ours
for my $node ($source, $sibling)
{
	$node->poll_query_until('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
		  . ' AND pid <> pg_backend_pid()', '0')
	  or die 'sessions left on ' . $node->name;
}

# the logs as entries: "<date> <time> <zone> [pid] <application_name> ..."
for my $node ($source, $sibling)
{
	my $name = $node->name;
	my $log  = slurp_file($node->logfile);
	my @entries = split /\n(?=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)/, $log;
	my (%app_of, %ended, @eof, @fatal);
	for my $e (@entries)
	{
		next unless $e =~ /^\S+ \S+ \S+ \[(\d+)\] /;
		my $pid = $1;
		$app_of{$pid} = $1 if $e =~ /connection authorized: .* application_name=(\S+)/;
		$ended{$pid} = 1 if $e =~ /LOG:  disconnection: /;
		push @eof, $pid if $e =~ /unexpected EOF on client connection|could not receive data from client/;
		push @fatal, $e if $e =~ /FATAL:  /;
	}
	my @splitdb = grep { $app_of{$_} eq 'splitdb' } sort keys %app_of;
	ok(@splitdb > 0, "$name: splitdb opened sessions there (" . scalar(@splitdb) . ')');
	is(join(',', grep { !$ended{$_} } @splitdb), '', "$name: every session splitdb opened logged its disconnection");
	is(join(',', grep { ($app_of{$_} // '') eq 'splitdb' } @eof),
		'', "$name: no session splitdb opened ended with an unexpected EOF");
	is(join("\n", @fatal), '', "$name: no FATAL");
	for my $pw ($super_pw, $app_pw)
	{
		unlike($log, qr/\Q$pw\E/, "$name: no password in the log");
	}
	for my $secret (map { split / / } @secrets)
	{
		unlike($log, qr/\Q$secret\E/i, "$name: no secret of the origin in the log");
	}

	# the statements of splitdb's sessions: no value in their text, not a
	# row's (the marker), not the sequence's (4711: before the fix, the
	# sibling's sequence was set with "SELECT pg_catalog.setval('...', 4711,
	# true)")
	my @statements = map { /(?:LOG|DEBUG\d?):  (?:statement|execute [^:]*): (.*)\z/s ? $1 : () }
	  grep { /^\S+ \S+ \S+ \[(\d+)\] splitdb / } @entries;
	ok(@statements > 0, "$name: splitdb's statements are logged (" . scalar(@statements) . ')');
	is(join("\n---\n", grep { /Wert-39x|4711|setval\('/ } @statements),
		'', "$name: no value in the text of a statement of splitdb's");
}
like(slurp_file($sibling->logfile),
	qr/setval\(\$1::pg_catalog.regclass, \$2::pg_catalog.int8, true\)\n[^\n]*DETAIL:  parameters: \$1 = '"Lä den"."Bestell ung_Ïd_seq"', \$2 = '4711'/,
	'the sibling\'s sequence is set with its name and value as parameters');

# the job's verification hashed the sibling's rows with a function of its
# session's own, made from splitdb's library: no record built per row
like(slurp_file($sibling->logfile),
	qr/\] splitdb LOG:  (?:statement|execute [^:]*): CREATE OR REPLACE FUNCTION pg_temp\.splitdb_row_digest\(VARIADIC "any"\)/,
	'the sibling\'s verification session made its row digest function');
like(slurp_file($sibling->logfile),
	qr/pg_catalog\.sum\(pg_temp\.splitdb_row_digest\([^\n]*\)\)::pg_catalog\.text FROM ONLY "Lä den"\."Bestell ung"/,
	'the sibling\'s checksum of the moved table used it');

done_testing();
