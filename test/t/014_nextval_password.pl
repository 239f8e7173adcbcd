# Copyright (c) 2026, splitdb developers
#
# The password rule of splitdb_remote_nextval(), the default of a shim's
# serial and identity columns: it is postgres_fdw's rule, applied by the
# one function that applies it to every connection splitdb opens with a
# user mapping (src/remote/remote.c), with the same messages.
#
# One cluster whose Unix socket trusts every role; service svc (a database
# of the same cluster) gets table item (id serial).  Role app is not a
# superuser.  Checked here:
#
# 1. with a mapping on which a superuser set password_required 'false', an
#    INSERT through the shim that leaves id out draws it from the
#    sibling's sequence (it was refused before the rule was one);
# 2. with a mapping without a password, the call is refused with SQLSTATE
#    2F003 and postgres_fdw's detail for a mapping that has none;
# 3. with a mapping whose password the server never asks for, it is
#    refused with 2F003 and postgres_fdw's detail for that case;
# after each refusal the sibling's sequence has not moved.

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('main');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'splitdb'
max_worker_processes = 16
});
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE mono');
$node->safe_psql(
	'mono', q{
CREATE ROLE app LOGIN;
CREATE TABLE item (id serial PRIMARY KEY, note text);
INSERT INTO item (note) VALUES ('one'), ('two');
CREATE EXTENSION splitdb CASCADE;
SELECT splitdb_add_service('svc');
SELECT splitdb_assign('svc', 'item');
SET splitdb.batch_rows = 100;
SELECT splitdb_migrate('svc', wait => true);
});
is($node->safe_psql('mono', q{SELECT state FROM splitdb.job WHERE service = 'svc'}),
	'done', 'item moved to service svc');
$node->safe_psql('svc',
	'GRANT SELECT, INSERT ON item TO app; GRANT USAGE ON SEQUENCE item_id_seq TO app');
$node->safe_psql('mono', 'GRANT SELECT, INSERT ON item TO app');

# Run $sql in mono as app, with verbose errors; returns (exit code, stdout, stderr).
sub as_app
{
	my ($sql) = @_;
	my $ret = $node->psql(
		'mono', "\\set VERBOSITY verbose\nSET ROLE app;\n$sql",
		stdout => \my $out,
		stderr => \my $err);
	return ($ret, $out, $err);
}

sub sequence_value
{
	return $node->safe_psql('svc', 'SELECT last_value FROM item_id_seq');
}

# ===== 1. password_required 'false', set by a superuser
$node->safe_psql('mono',
	"CREATE USER MAPPING FOR app SERVER splitdb_svc OPTIONS (user 'app', password_required 'false')");
my ($ret, $out, $err) = as_app(q{INSERT INTO item (note) VALUES ('three') RETURNING id});
is($ret, 0, 'password_required false: the shim insert that leaves id out succeeds');
is($err, '', 'password_required false: no error');
is($out, '3', 'the id came from the sibling\'s sequence');
is($node->safe_psql('svc', 'SELECT string_agg(id || note, \',\' ORDER BY id) FROM item'),
	'1one,2two,3three', 'the row is in the sibling');

# ===== 2. no password in the mapping
$node->safe_psql('mono',
	'ALTER USER MAPPING FOR app SERVER splitdb_svc OPTIONS (DROP password_required)');
my $seq = sequence_value();
($ret, $out, $err) = as_app(q{SELECT splitdb_remote_nextval('svc', 'public.item_id_seq')});
isnt($ret, 0, 'no password: refused');
like($err, qr/ERROR:  2F003: password is required\nDETAIL:  Non-superuser must provide a password in the user mapping\./,
	'no password: 2F003 with postgres_fdw\'s detail');
is(sequence_value(), $seq, 'no password: the sequence did not move');

# ===== 3. a password the server does not ask for
$node->safe_psql('mono',
	"ALTER USER MAPPING FOR app SERVER splitdb_svc OPTIONS (ADD password 'Unasked-pw-5d1e')");
($ret, $out, $err) = as_app(q{SELECT splitdb_remote_nextval('svc', 'public.item_id_seq')});
isnt($ret, 0, 'unasked password: refused');
like($err,
	qr/ERROR:  2F003: password is required\nDETAIL:  Non-superuser cannot connect if the server does not request a password\./,
	'unasked password: 2F003 with postgres_fdw\'s detail');
unlike($err, qr/Unasked-pw-5d1e/, 'unasked password: the password is not in the error');
is(sequence_value(), $seq, 'unasked password: the sequence did not move');

$node->stop;
done_testing();
