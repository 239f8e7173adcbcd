# Copyright (c) 2026, splitdb developers
#
# A hostile application role against splitdb, on two servers that log
# every statement (log_statement = all, log_min_messages = debug1,
# log_min_error_statement = debug1).
#
# The source (mono) and the sibling of service ord (orddb) are on two
# clusters.  "orders" (owned by the role owner) moves to ord; it refers to
# "customer" (NO ACTION), which stays, and "shipment" stays and refers to
# orders (ON DELETE CASCADE).  The role app logs in with its password
# (scram-sha-256 over TCP) and has every table privilege on customer,
# shipment and the shim orders, and on orders directly in the sibling, a
# user mapping of its own on the source's server, USAGE on the servers and
# a schema of its own in both databases.  It tries:
#
# 1. every function of schema splitdb and every public splitdb_* function:
#    the ones it may not execute are exactly the internal ones; those it
#    may are refused (42501) or harmless (reference_relay() runs only what
#    app could run itself, with the checks on);
# 2. reading secrets: splitdb.origin_key, other roles' user mappings,
#    splitdb's sessions in pg_stat_activity;
# 3. turning checks off: splitdb.check_connection, session_replication_role,
#    DISABLE TRIGGER, a trigger or a shim of its own on splitdb's functions,
#    a trigger of its own with the TRIGGER privilege (refused: in the sibling
#    it would fire in the session the source proved and write unchecked rows),
#    writes to splitdb.reference_end, search_path tricks, mappings that
#    would borrow another login, PREPARE TRANSACTION, savepoints, COPY,
#    ON CONFLICT, a data-modifying CTE, TRUNCATE;
# 4. a read through a foreign table of its own, over a view in the sibling
#    that writes, on the connection that a shim write proved (a SELECT, a
#    shim INSERT ... SELECT from it, an UPDATE of the shim joined with it,
#    ANALYZE): each withdraws the proof, so the sibling checks those rows.
#
# Two routes got through before splitdb closed them: the reads of section
# 4, and a trigger of app's own (TRIGGER privilege) on the sibling's
# orders, fired by a shim insert.
#
# Each attempt ends with the exact SQLSTATE or with every reference
# intact: no orphan on either side (splitdb_orphans() and a NOT EXISTS
# across the shim), and splitdb's catalog and settings unchanged.  No
# password used in the test is in either server's log.

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SplitdbTest qw(start_logged_pair scram_hba set_passwords psql_verbose);

my $super_pw = 'Super-Pw-3e81';
my $owner_pw = 'Owner-Pw-c4d0';
my $app_pw   = 'App-Pw-58b7';

# the superuser keeps trust; every other role gives its password over TCP
my ($source, $sibling, $user) = start_logged_pair(
	conf => q{
max_prepared_transactions = 5
listen_addresses = '127.0.0.1'
},
	hba => \&scram_hba);
set_passwords($_, $super_pw, [ owner => $owner_pw, app => $app_pw ])
  for ($source, $sibling);
my $src_port = $source->port;
my $sib_port = $sibling->port;
$source->safe_psql('postgres', 'CREATE DATABASE mono');
$sibling->safe_psql('postgres', 'CREATE DATABASE orddb');
$source->safe_psql(
	'mono', qq{
CREATE TABLE customer (id integer PRIMARY KEY);
CREATE TABLE orders (id serial PRIMARY KEY, customer_id integer REFERENCES customer);
CREATE TABLE shipment (id integer PRIMARY KEY,
	order_id integer NOT NULL REFERENCES orders ON DELETE CASCADE);
INSERT INTO customer SELECT generate_series(1, 5);
INSERT INTO orders (customer_id) VALUES (1), (2), (3);
INSERT INTO shipment VALUES (1, 1), (2, 3);
ALTER TABLE customer OWNER TO owner;
ALTER TABLE orders OWNER TO owner;
ALTER TABLE shipment OWNER TO owner;
GRANT ALL ON customer, orders, shipment TO app;
CREATE SCHEMA app AUTHORIZATION app;
SET log_statement = 'none';
CREATE EXTENSION splitdb CASCADE;
CREATE SERVER sib_srv FOREIGN DATA WRAPPER postgres_fdw
	OPTIONS (host '127.0.0.1', port '$sib_port', dbname 'orddb');
CREATE USER MAPPING FOR CURRENT_USER SERVER sib_srv
	OPTIONS (user '$user', password '$super_pw');
CREATE USER MAPPING FOR owner SERVER sib_srv OPTIONS (user 'owner', password '$owner_pw');
CREATE USER MAPPING FOR app SERVER sib_srv OPTIONS (user 'app', password '$app_pw');
GRANT USAGE ON FOREIGN SERVER sib_srv TO app;
SELECT splitdb_add_service('ord', server => 'sib_srv');
SELECT splitdb_assign('ord', 'orders');
});
$sibling->safe_psql('orddb', 'CREATE SCHEMA app AUTHORIZATION app');

# the cutover stops on the owner's mapping missing in the sibling; made, it resumes
$source->psql('mono', "SELECT splitdb_migrate('ord', wait => true)");
$sibling->safe_psql(
	'orddb', qq{
SET log_statement = 'none';
CREATE USER MAPPING FOR owner SERVER splitdb_source OPTIONS (user 'owner', password '$owner_pw');
});
my ($rc, $out, $err) =
  $source->psql('mono', "SELECT splitdb_migrate('ord', wait => true) > 0");
is($rc, 0, 'the migration succeeds') or diag($err);
$sibling->safe_psql(
	'orddb', q{
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON orders TO app;
GRANT USAGE ON FOREIGN SERVER splitdb_source TO app;
});

my %node = (mono => $source, orddb => $sibling);
my %port = (mono => $src_port, orddb => $sib_port);

# Run $sql as app over TCP with its password, verbose errors; returns
# (exit code, stdout, stderr).
sub as_app
{
	my ($db, $sql) = @_;
	local $ENV{PGPASSWORD} = $app_pw;
	return psql_verbose(
		$node{$db}, $db, $sql,
		connstr       => "host=127.0.0.1 port=$port{$db} dbname=$db user=app",
		on_error_stop => 0);
}

# rows without their parent, in both directions: splitdb's count and our own
sub orphans
{
	return $source->safe_psql(
		'mono', q{
SELECT (SELECT count(*) FROM splitdb_orphans('ord'))
	 + (SELECT count(*) FROM orders o
		 WHERE o.customer_id IS NOT NULL
		   AND NOT EXISTS (SELECT FROM customer c WHERE c.id = o.customer_id))
	 + (SELECT count(*) FROM shipment s
		 WHERE NOT EXISTS (SELECT FROM orders o WHERE o.id = s.order_id))});
}

# what splitdb relies on, in both databases
sub state
{
	my $q = q{
SELECT format('rows %s; ends %s; keys %s; triggers %s; mappings %s; servers %s; settings %s; jobs %s; services %s',
	(SELECT string_agg(c.relname || '=' || (xpath('/row/n/text()',
			 query_to_xml(format('SELECT count(*) AS n FROM %s', c.oid::regclass), false, true, '')))[1]::text,
			 ',' ORDER BY c.relname)
	   FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'f')),
	(SELECT md5(string_agg(e::text, ',' ORDER BY e::text)) FROM splitdb.reference_end e),
	(SELECT md5(string_agg(k::text, ',' ORDER BY k.location)) FROM splitdb.origin_key k),
	(SELECT string_agg(t.tgrelid::regclass || '.' || t.tgname || ':' || t.tgenabled::text, ','
					   ORDER BY t.tgrelid::regclass::text, t.tgname)
	   FROM pg_trigger t WHERE NOT t.tgisinternal),
	(SELECT string_agg(srvname || '/' || usename, ',' ORDER BY srvname, usename) FROM pg_user_mappings),
	(SELECT string_agg(srvname || ':' || array_to_string(srvoptions, ' '), ',' ORDER BY srvname)
	   FROM pg_foreign_server),
	(SELECT string_agg(array_to_string(setconfig, ' '), ',') FROM pg_db_role_setting),
	(SELECT string_agg(job_id || ':' || state, ',') FROM splitdb.job),
	(SELECT string_agg(service || ':' || server, ',') FROM splitdb.service))};
	return $source->safe_psql('mono', $q) . "\n" . $sibling->safe_psql('orddb', $q);
}

# $sql as app in $db must fail with $sqlstate (and $msg, a pattern), change
# nothing and leave no orphan
sub refused
{
	my ($db, $sql, $sqlstate, $msg, $name) = @_;
	my $before = state();
	my ($ret, $out, $err) = as_app($db, $sql);
	like($err, qr/ERROR:  $sqlstate: $msg/, "$name: refused with $sqlstate") or diag($err);
	is(state(), $before, "$name: nothing changed");
	is(orphans(), '0', "$name: no row without its parent");
}

# $sql as app in $db must end in $sqlstate or, when $sqlstate is '', in no
# error; either way no orphan
sub intact
{
	my ($db, $sql, $sqlstate, $name) = @_;
	my ($ret, $out, $err) = as_app($db, $sql);
	if ($sqlstate eq '')
	{
		unlike($err, qr/ERROR/, "$name: runs") or diag($err);
	}
	else
	{
		like($err, qr/ERROR:  $sqlstate:/, "$name: refused with $sqlstate");
	}
	is(orphans(), '0', "$name: no row without its parent");
	return $out;
}

is(orphans(), '0', 'no orphan after the migration');
my $initial = state();

# ===== 1. splitdb's functions

my $fn_list = q{
SELECT string_agg(p.oid::regprocedure::text, ' ' ORDER BY p.oid::regprocedure::text)
  FROM pg_proc p
 WHERE (p.pronamespace = 'splitdb'::regnamespace
		OR (p.pronamespace = 'public'::regnamespace AND p.proname LIKE 'splitdb\_%'))
   AND has_function_privilege('app', p.oid, 'EXECUTE') = };
my $internal =
    'splitdb.archive_guard() splitdb.capture_changes() '
  . 'splitdb.capture_partition(regclass,regclass) splitdb.capture_problem(bigint,text[]) '
  . 'splitdb.capture_relation(regclass,regclass,name[],bigint) '
  . 'splitdb.close_capture(bigint,text) splitdb.drop_capture(bigint) '
  . 'splitdb.drop_reference_end(bigint,"char") splitdb.drop_reference_ends(bigint[]) '
  . 'splitdb.ensure_preloaded() '
  . 'splitdb.ensure_server(name,text[],text) splitdb.ensure_user_mapping(name,name,text[]) '
  . 'splitdb.forget_dropped_tables() splitdb.guard_ddl() splitdb.guard_drop() '
  . 'splitdb.guard_dropped_ends() splitdb.guard_start() splitdb.guard_triggers() '
  . 'splitdb.install_capture(bigint,text[]) '
  . 'splitdb.install_reference_ends(jsonb) '
  . 'splitdb.origin_key_make(text,name,text) splitdb.partition_route(regclass,text) '
  . 'splitdb.reference_ends_off(bigint) '
  . 'splitdb.refuse_foreign_triggers() '
  . 'splitdb.refuse_writes() splitdb.shim_statement()';
for my $db ('mono', 'orddb')
{
	is($node{$db}->safe_psql($db, $fn_list . 'false'),
		$internal, "$db: app may execute none of splitdb's internal functions");
	refused($db, "SELECT splitdb.drop_reference_ends(ARRAY[1::bigint])",
		'42501', 'permission denied for function drop_reference_ends',
		"$db: drop_reference_ends()");
	refused($db, q{SELECT splitdb.install_reference_ends('[]')},
		'42501', 'permission denied for function install_reference_ends',
		"$db: install_reference_ends()");
	refused($db, q{SELECT splitdb.ensure_server('x', '{host=127.0.0.1}', 'source')},
		'42501', 'permission denied for function ensure_server', "$db: ensure_server()");
	refused($db, q{SELECT splitdb.ensure_user_mapping('app', 'sib_srv', '{user=owner}')},
		'42501', 'permission denied for function ensure_user_mapping',
		"$db: ensure_user_mapping()");
	refused($db, 'SELECT splitdb.ensure_preloaded()',
		'42501', 'permission denied for function ensure_preloaded', "$db: ensure_preloaded()");
	refused($db, q{SELECT splitdb.origin_key_make('x', NULL, 'y')},
		'42501', 'permission denied for function origin_key_make', "$db: origin_key_make()");
	refused($db, q{SELECT splitdb.partition_route('pg_class', 'new')},
		'42501', 'permission denied for function partition_route', "$db: partition_route()");
	# the trigger functions, which a partition's owner needs to clone the
	# parent's triggers, run only as triggers
	refused($db, 'SELECT splitdb.reference_flush()',
		'39P01', 'splitdb.reference_flush\(\) must be fired FOR EACH STATEMENT', "$db: reference_flush()");
}
is( $source->safe_psql('mono', $fn_list . 'true'),
	'splitdb.job_worker_gone(text,integer) splitdb.key_type(oid) '
	  . 'splitdb.origin_challenge() splitdb.origin_prove(text,text) splitdb.origin_withdraw() '
	  . 'splitdb.reference_counters() splitdb.reference_end_relid(oid,text) '
	  . 'splitdb.reference_flush() '
	  . 'splitdb.reference_lookup(bigint,"char",integer,text[],text[],bigint,text) '
	  . 'splitdb.reference_relay(text,text[]) '
	  . 'splitdb.reference_relay_action(bigint,"char",text[],text[],bigint,text) '
	  . 'splitdb.reference_relayed() splitdb.reference_row() splitdb.row_digest("any") splitdb.row_hash("any") '
	  . 'splitdb_add_service(name,text,name,boolean) splitdb_assign(name,regclass[]) '
	  . 'splitdb_cancel(name) splitdb_doctor(boolean) '
	  . 'splitdb_drop_service(name) splitdb_finalize(name,boolean) '
	  . 'splitdb_migrate(name,text,boolean) splitdb_orphans(name) '
	  . 'splitdb_plan(name) splitdb_plan_dot(name) splitdb_reference_mode(bigint,text) '
	  . 'splitdb_remote_nextval(name,text) splitdb_rollback(name) splitdb_unassign(name,regclass[]) '
	  . 'splitdb_verify(name)',
	'app may execute the public functions, the origin proofs, the relay and five pure helpers');

# the public functions that change or read data check superuser() themselves
refused('mono', q{SELECT splitdb_reference_mode(1, 'off')},
	'42501', 'permission denied to change the mode of a cross-service reference', 'splitdb_reference_mode(off)');
refused('mono', q{SELECT * FROM splitdb_orphans('ord')},
	'42501', 'permission denied for function splitdb_orphans', 'splitdb_orphans()');
refused('mono', q{SELECT * FROM splitdb_verify('ord')},
	'42501', 'permission denied for function splitdb_verify', 'splitdb_verify()');
refused('mono', q{SELECT splitdb_migrate('ord')},
	'42501', 'permission denied for function splitdb_migrate', 'splitdb_migrate()');
refused('mono', q{SELECT splitdb_cancel('ord')},
	'42501', 'permission denied for function splitdb_cancel', 'splitdb_cancel()');
refused('mono', q{SELECT splitdb_finalize('ord', drop_shim => true)},
	'42501', 'permission denied for function splitdb_finalize', 'splitdb_finalize()');
refused('mono', q{SELECT * FROM splitdb_doctor(repair => true)},
	'42501', 'permission denied for function splitdb_doctor', 'splitdb_doctor()');
refused('mono', q{SELECT splitdb_drop_service('ord')},
	'42501', 'permission denied for function splitdb_drop_service', 'splitdb_drop_service()');
refused('mono', q{SELECT splitdb_unassign('ord', 'orders')},
	'42501', 'permission denied for function splitdb_unassign', 'splitdb_unassign()');
refused('mono', q{SELECT splitdb_add_service('evil', server => 'sib_srv')},
	'42501', 'permission denied for function splitdb_add_service', 'splitdb_add_service()');
# the sequence's next value with app's own mapping, which may not use it
my $seq_before = $sibling->safe_psql('orddb', 'SELECT last_value FROM orders_id_seq');
refused('mono', q{SELECT splitdb_remote_nextval('ord', 'public.orders_id_seq')},
	'42501', '.*permission denied for sequence orders_id_seq',
	'splitdb_remote_nextval() with app\'s own mapping');
is($sibling->safe_psql('orddb', 'SELECT last_value FROM orders_id_seq'),
	$seq_before, 'the sibling\'s sequence did not move');

# the relay runs what app could run itself, with every check on
for my $db ('mono', 'orddb')
{
	refused($db,
		q{SELECT * FROM splitdb.reference_relay('ALTER TABLE public.orders DISABLE TRIGGER ALL', '{}')},
		'42501', 'must be owner of (foreign )?table orders',
		"$db: reference_relay() of DISABLE TRIGGER");
	refused($db,
		q{SELECT * FROM splitdb.reference_relay('SET session_replication_role = replica', '{}')},
		'42501', 'permission denied to set parameter "session_replication_role"',
		"$db: reference_relay() of SET session_replication_role");
	refused($db,
		q{SELECT * FROM splitdb.reference_relay('DELETE FROM splitdb.reference_end', '{}')},
		'42501', 'permission denied for table reference_end',
		"$db: reference_relay() of a write to splitdb.reference_end");
	# an action as the referencing table's owner: splitdb's alone
	refused($db,
		q{SELECT * FROM splitdb.reference_relay_action(1, 'd', '{NULL}', '{"{1}"}', 1, repeat('0', 64))},
		'42501', 'permission denied to apply a referential action of another database',
		"$db: reference_relay_action() on a session that proved nothing");
	my ($ret, $relayed) = as_app($db, 'SELECT count(*) FROM splitdb.reference_relayed()');
	is($relayed, '0', "$db: reference_relayed() hands back nothing");
}
refused('mono',
	q{SELECT * FROM splitdb.reference_relay('DELETE FROM public.customer WHERE id = $1[1]::integer', '{"{1}"}')},
	'23503', 'update or delete on table "customer"',
	'reference_relay() of a delete of a referenced customer');
refused('orddb',
	q{SELECT * FROM splitdb.reference_relay('INSERT INTO public.orders VALUES (100, 99)', '{}')},
	'23503', 'insert or update on table "orders"',
	'reference_relay() of an orphan insert in the sibling');
refused('orddb', q{SELECT splitdb.origin_prove('source', repeat('00', 32))},
	'28000', '', 'origin_prove() without a challenge');

# ===== 2. secrets

for my $db ('mono', 'orddb')
{
	refused($db, 'SELECT * FROM splitdb.origin_key',
		'42501', 'permission denied for table origin_key', "$db: reading splitdb.origin_key");
	refused($db, 'SELECT umoptions FROM pg_user_mapping',
		'42501', 'permission denied for table pg_user_mapping', "$db: reading pg_user_mapping");
	my ($ret, $maps) = as_app($db,
		"SELECT usename || ':' || coalesce(array_to_string(umoptions, ' '), '<hidden>')"
		  . ' FROM pg_user_mappings ORDER BY 1');
	my $shown = $db eq 'mono' ? "app:user=app password=$app_pw" : '';
	my @visible = grep { !/<hidden>/ } split /\n/, $maps;
	is(join("\n", @visible), $shown,
		"$db: pg_user_mappings shows app the options of its own mapping only");
	unlike($maps, qr/\Q$owner_pw\E|\Q$super_pw\E/, "$db: no other role's password is shown");
	($ret, my $srv) = as_app($db, 'SELECT srvname, srvoptions FROM pg_foreign_server');
	unlike($srv, qr/password/, "$db: no server holds a password");
	($ret, my $jobs) = as_app($db, 'SELECT * FROM splitdb.job');
	unlike($jobs, qr/\Q$owner_pw\E|\Q$super_pw\E|\Q$app_pw\E/,
		"$db: splitdb.job shows no password");
}
# splitdb's connections to the source, opened by a check in the sibling
{
	my $bg = $sibling->background_psql('orddb');
	$bg->query_safe('BEGIN; SET ROLE owner; INSERT INTO orders VALUES (50, 4)');
	my ($ret, $act) = as_app('mono',
		q{SELECT usename || ':' || coalesce(query, '<none>') FROM pg_stat_activity
		   WHERE datname = 'mono' AND application_name IN ('splitdb', 'postgres_fdw')});
	like($act, qr/^owner:<insufficient privilege>(\nowner:<insufficient privilege>)*$/,
		'app sees that splitdb\'s check sessions exist, not what they run');
	$bg->query_safe('ROLLBACK');
	$bg->quit;
}

# ===== 3. turning the checks off

for my $db ('mono', 'orddb')
{
	refused($db, 'SET session_replication_role = replica',
		'42501', 'permission denied to set parameter "session_replication_role"',
		"$db: SET session_replication_role");
	refused($db, 'ALTER TABLE orders DISABLE TRIGGER ALL',
		'42501', 'must be owner of (foreign )?table orders', "$db: DISABLE TRIGGER on orders");
	refused($db, 'ALTER TABLE orders DISABLE TRIGGER USER',
		'42501', 'must be owner of (foreign )?table orders', "$db: DISABLE TRIGGER USER on orders");
	refused($db, q{INSERT INTO splitdb.reference_end SELECT * FROM splitdb.reference_end},
		'42501', 'permission denied for table reference_end', "$db: writing splitdb.reference_end");
	refused($db, q{UPDATE splitdb.reference_end SET relid = 0},
		'42501', 'permission denied for table reference_end', "$db: changing splitdb.reference_end");
	refused($db, q{DELETE FROM splitdb.reference WHERE true},
		'42501', 'permission denied for table reference', "$db: deleting splitdb.reference");
	# a trigger of its own on splitdb's functions, on a table it owns:
	# refused at CREATE TRIGGER (PUBLIC may execute them, for the copies
	# PostgreSQL makes on a new partition), and a constraint trigger too
	refused($db,
		"CREATE TABLE app.t (id integer);\n"
		  . "CREATE TRIGGER splitdb_x AFTER INSERT ON app.t FOR EACH ROW EXECUTE FUNCTION splitdb.reference_row('1', 'c')",
		'42501', 'permission denied for function (splitdb\.)?reference_row',
		"$db: a trigger of its own calling splitdb.reference_row()");
	refused($db,
		"CREATE CONSTRAINT TRIGGER splitdb_y AFTER INSERT ON app.t DEFERRABLE INITIALLY DEFERRED\n"
		  . "  FOR EACH ROW EXECUTE FUNCTION splitdb.reference_row('1', 'c')",
		'42501', 'permission denied for function (splitdb\.)?reference_row',
		"$db: a constraint trigger of its own calling splitdb.reference_row()");
	refused($db,
		'CREATE TRIGGER splitdb_z AFTER INSERT ON app.t FOR EACH STATEMENT EXECUTE FUNCTION splitdb.reference_flush()',
		'42501', 'permission denied for function (splitdb\.)?reference_flush',
		"$db: a trigger of its own calling splitdb.reference_flush()");
	is($node{$db}->safe_psql($db, q{SELECT count(*) FROM pg_trigger WHERE tgrelid = 'app.t'::regclass}),
		'0', "$db: app.t has no trigger");
	as_app($db, 'DROP TABLE IF EXISTS app.t');
}
refused('orddb',
	'CREATE TRIGGER splitdb_x BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION splitdb.reference_row(\'1\', \'c\')',
	'42501', 'permission denied for function (splitdb\.)?reference_row',
	'a trigger on the sibling\'s orders (TRIGGER privilege) calling splitdb.reference_row()');
# a trigger of its own, with the TRIGGER privilege, on a table a shim writes:
# in the sibling it would fire in the session that the source proved, and
# write rows that neither database checks
as_app('orddb', q{
CREATE FUNCTION app.more() RETURNS trigger LANGUAGE plpgsql AS
$$BEGIN IF NEW.id < 500 THEN INSERT INTO public.orders VALUES (NEW.id + 500, 99); END IF; RETURN NULL; END$$;
});
refused('orddb',
	'CREATE TRIGGER zz_more AFTER INSERT ON public.orders FOR EACH ROW EXECUTE FUNCTION app.more()',
	'42501', 'permission denied to create trigger zz_more on public.orders\nDETAIL:  In a database with splitdb, only a table\'s owner may create triggers on it',
	'a trigger of its own on the sibling\'s orders (TRIGGER privilege)');
refused('orddb',
	'CREATE CONSTRAINT TRIGGER zz_more AFTER INSERT ON public.orders DEFERRABLE FOR EACH ROW EXECUTE FUNCTION app.more()',
	'42501', 'permission denied to create trigger zz_more on public.orders',
	'a constraint trigger of its own on the sibling\'s orders');
refused('mono',
	"CREATE FUNCTION app.gone() RETURNS trigger LANGUAGE plpgsql AS \$\$BEGIN DELETE FROM public.customer WHERE id = 3; RETURN NULL; END\$\$;\n"
	  . 'CREATE TRIGGER zz_gone AFTER INSERT ON customer FOR EACH ROW EXECUTE FUNCTION app.gone()',
	'42501', 'permission denied to create trigger zz_gone on public.customer',
	'a trigger of its own on the source\'s customer (TRIGGER privilege)');
intact('mono', 'INSERT INTO orders VALUES (130, 4);', '', 'a shim insert after the refused triggers');
as_app('mono', 'DELETE FROM orders WHERE id = 130');
refused('mono',
	"CREATE FOREIGN TABLE app.fake (id integer, customer_id integer) SERVER sib_srv\n"
	  . "  OPTIONS (schema_name 'public', table_name 'orders');\n"
	  . 'CREATE TRIGGER splitdb_shim AFTER UPDATE ON app.fake FOR EACH STATEMENT EXECUTE FUNCTION splitdb.shim_statement()',
	'42501', 'permission denied for function (splitdb\.)?shim_statement',
	'a shim of its own (a foreign table with the trigger splitdb_shim)');
as_app('mono', 'DROP FOREIGN TABLE IF EXISTS app.fake');

# a user mapping of its own that would borrow another login
refused('orddb',
	"CREATE USER MAPPING FOR app SERVER splitdb_source OPTIONS (user '$user', password_required 'false')",
	'42501', 'password_required=false is superuser-only',
	'a mapping of its own without a password');
{
	my $before = state();
	my ($ret, $out, $err) = as_app('orddb',
		"CREATE USER MAPPING FOR app SERVER splitdb_source OPTIONS (user 'owner');\n"
		  . "CREATE FOREIGN TABLE app.cust (id integer) SERVER splitdb_source OPTIONS (schema_name 'public', table_name 'customer');\n"
		  . 'DELETE FROM app.cust WHERE id = 5');
	like($err, qr/ERROR:  2F003: password is required/,
		'a mapping of its own with the owner\'s name and no password cannot connect (2F003)');
	as_app('orddb', "DROP FOREIGN TABLE app.cust;\nDROP USER MAPPING FOR app SERVER splitdb_source");
	is(state(), $before, 'the borrowed login changed nothing');
}

# settings and names while its writes are checked
for my $setting ('SET splitdb.check_connection = off', 'SET splitdb.check_connection = on')
{
	refused('mono', "$setting;\nINSERT INTO orders VALUES (101, 99)",
		'23503', 'insert or update on table "orders"', "$setting, insert through the shim");
	refused('orddb', "$setting;\nINSERT INTO orders VALUES (102, 99)",
		'23503', 'insert or update on table "orders"', "$setting, insert in the sibling");
	refused('mono', "$setting;\nDELETE FROM customer WHERE id = 2",
		'23503', 'update or delete on table "customer"', "$setting, delete of a referenced customer");
	refused('orddb', "$setting;\nUPDATE orders SET id = 1000 WHERE id = 3",
		'23503', 'update or delete on table "orders"',
		"$setting, in the sibling, a new id for an order that has a shipment");
}
for my $db ('mono', 'orddb')
{
	# an equality operator, functions and tables named like pg_catalog's, first in the path
	as_app(
		$db, q{
CREATE FUNCTION app.int4eq(integer, integer) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE OPERATOR app.= (LEFTARG = integer, RIGHTARG = integer, FUNCTION = app.int4eq);
CREATE FUNCTION app.unnest(anyarray) RETURNS SETOF anyelement LANGUAGE sql AS 'SELECT 1::integer';
CREATE FUNCTION app.array_agg(anyelement) RETURNS anyarray LANGUAGE sql AS 'SELECT NULL';
CREATE TABLE app.customer (id integer);
INSERT INTO app.customer VALUES (99);
CREATE TABLE app.orders (id integer, customer_id integer);
});
}
refused('mono',
	"SET search_path = app, pg_catalog, public;\nINSERT INTO public.orders VALUES (103, 99)",
	'23503', 'insert or update on table "orders"', 'search_path tricks, insert through the shim');
refused('orddb',
	"SET search_path = app, pg_catalog, public;\nINSERT INTO public.orders VALUES (104, 99)",
	'23503', 'insert or update on table "orders"', 'search_path tricks, insert in the sibling');
refused('mono',
	"SET search_path = app, pg_catalog, public;\nDELETE FROM public.customer WHERE id = 2",
	'23503', 'update or delete on table "customer"',
	'search_path tricks, delete of a referenced customer');
for my $db ('mono', 'orddb')
{
	as_app($db, "DROP TABLE app.customer, app.orders;\nDROP OPERATOR app.= (integer, integer);\n"
		  . "DROP FUNCTION app.int4eq, app.unnest, app.array_agg");
}
refused('mono',
	"CREATE TEMP TABLE customer (id integer);\nINSERT INTO pg_temp.customer VALUES (99);\n"
	  . "SET search_path = pg_temp, public;\nINSERT INTO public.orders VALUES (105, 99)",
	'23503', 'insert or update on table "orders"', 'a temporary table named customer first in the path');

# transactions: savepoints, PREPARE TRANSACTION
refused('orddb',
	"BEGIN;\nINSERT INTO orders VALUES (106, 4);\nSAVEPOINT s;\nINSERT INTO orders VALUES (107, 99);\n"
	  . "ROLLBACK TO s;\nUPDATE orders SET customer_id = 99 WHERE id = 106;\nCOMMIT;",
	'23503', 'insert or update on table "orders"',
	'a savepoint rolled back around a check, then an orphan update');
refused('mono',
	"BEGIN;\nSAVEPOINT s;\nINSERT INTO orders VALUES (108, 99);\nRELEASE s;\nCOMMIT;",
	'23503', 'insert or update on table "orders"', 'an orphan insert in a released savepoint');
refused('orddb',
	"BEGIN;\nINSERT INTO orders VALUES (109, 4);\nPREPARE TRANSACTION 'p1';",
	'0A000', 'cannot prepare a transaction that has checked cross-service references',
	'PREPARE TRANSACTION in the sibling after a checked insert');
refused('orddb',
	"BEGIN;\nSET LOCAL splitdb.check_connection = off;\nINSERT INTO orders VALUES (110, 4);\nPREPARE TRANSACTION 'p2';",
	'0A000', 'cannot prepare a transaction that has checked cross-service references',
	'PREPARE TRANSACTION in the sibling with splitdb.check_connection off');
refused('mono',
	"BEGIN;\nDELETE FROM customer WHERE id = 5;\nPREPARE TRANSACTION 'p3';",
	'0A000', 'cannot prepare a transaction that has checked cross-service references',
	'PREPARE TRANSACTION in the source after a checked delete');
is($sibling->safe_psql('orddb', 'SELECT count(*) FROM pg_prepared_xacts')
	  . $source->safe_psql('mono', 'SELECT count(*) FROM pg_prepared_xacts'),
	'00', 'no transaction is left prepared');

# COPY, ON CONFLICT, a data-modifying CTE, TRUNCATE
refused('mono', "COPY orders FROM STDIN;\n111\t99\n\\.\n",
	'23503', 'insert or update on table "orders"', 'COPY FROM into the shim');
refused('orddb', "COPY orders FROM STDIN;\n112\t99\n\\.\n",
	'23503', 'insert or update on table "orders"', 'COPY FROM into the sibling\'s table');
refused('orddb',
	'INSERT INTO orders VALUES (1, 4) ON CONFLICT (id) DO UPDATE SET customer_id = 99',
	'23503', 'insert or update on table "orders"', 'INSERT ... ON CONFLICT DO UPDATE in the sibling');
refused('mono', 'INSERT INTO orders VALUES (113, 99) ON CONFLICT DO NOTHING',
	'23503', 'insert or update on table "orders"', 'INSERT ... ON CONFLICT DO NOTHING through the shim');
refused('mono',
	'WITH d AS (DELETE FROM customer WHERE id = 1 RETURNING id) INSERT INTO customer SELECT id + 100 FROM d',
	'23503', 'update or delete on table "customer"', 'a data-modifying CTE deleting a referenced customer');
refused('mono',
	'WITH o AS (INSERT INTO orders VALUES (114, 99) RETURNING id) SELECT count(*) FROM o',
	'23503', 'insert or update on table "orders"', 'a data-modifying CTE inserting through the shim');
refused('mono', 'TRUNCATE customer',
	'0A000', 'cannot truncate a table referenced in a foreign key constraint', 'TRUNCATE customer');
refused('mono', 'TRUNCATE orders',
	'0A000', 'cannot truncate a table referenced in a foreign key constraint', 'TRUNCATE of the shim');
refused('orddb', 'TRUNCATE orders',
	'0A000', 'cannot truncate a table referenced in a foreign key constraint',
	'TRUNCATE of the sibling\'s table');

# ===== 4. a read through a foreign table of its own on a proved connection

as_app(
	'orddb', q{
CREATE FUNCTION app.sneak() RETURNS integer LANGUAGE sql VOLATILE
	AS 'INSERT INTO public.orders VALUES (120, 99) RETURNING 1';
CREATE VIEW app.sneaky AS SELECT app.sneak() AS x;
});
as_app('mono',
	q{CREATE FOREIGN TABLE app.sneaky (x integer) SERVER sib_srv OPTIONS (schema_name 'app', table_name 'sneaky')}
);
refused('mono',
	"BEGIN;\nINSERT INTO orders VALUES (121, 4);\nSELECT * FROM app.sneaky;\nCOMMIT;",
	'23503', 'insert or update on table "orders"',
	'a read through its own foreign table after a shim write, same transaction');
refused('mono',
	"INSERT INTO orders VALUES (122, 4);\nDELETE FROM orders WHERE id = 122;\nSELECT * FROM app.sneaky;",
	'23503', 'insert or update on table "orders"',
	'a read through its own foreign table after a shim write, next transaction');
refused('mono',
	"INSERT INTO orders SELECT 123, x + 3 FROM app.sneaky;",
	'23503', 'insert or update on table "orders"',
	'a shim insert that reads its own foreign table');
refused('mono',
	"INSERT INTO orders VALUES (124, 4);\nDELETE FROM orders WHERE id = 124;\nUPDATE orders o SET customer_id = 5 FROM app.sneaky s WHERE o.id = 2 AND s.x = 1;",
	'23503', 'insert or update on table "orders"',
	'an update of the shim joined with its own foreign table, after a shim write');
refused('mono',
	"INSERT INTO orders VALUES (125, 4);\nDELETE FROM orders WHERE id = 125;\nANALYZE app.sneaky;",
	'23503', 'insert or update on table "orders"',
	'ANALYZE of its own foreign table after a shim write');

# the legitimate paths still work
intact('mono', "BEGIN;\nINSERT INTO customer VALUES (10);\nINSERT INTO orders VALUES (10, 10);\nCOMMIT;",
	'', 'a customer and its order in one transaction through the shim');
intact('orddb', 'INSERT INTO orders VALUES (11, 10)', '', 'an order of a present customer in the sibling');
intact('mono', 'DELETE FROM orders WHERE id = 3', '', 'a delete through the shim cascades to shipment');
is($source->safe_psql('mono', 'SELECT string_agg(id::text, \',\' ORDER BY id) FROM shipment'),
	'1', 'the shipment of the deleted order is gone');
is($sibling->safe_psql('orddb', 'SELECT string_agg(id::text, \',\' ORDER BY id) FROM orders'),
	'1,2,10,11', 'the sibling holds exactly the accepted orders');

# ===== 5. no password in any log

my $src_log = slurp_file($source->logfile);
my $sib_log = slurp_file($sibling->logfile);
like($src_log, qr/DEBUG:  /, 'the source logged at debug1');
like($sib_log, qr/execute <unnamed>: SELECT splitdb\.origin_challenge/,
	'the sibling logged splitdb\'s statements');
for my $pw ([ $super_pw, 'the superuser\'s' ], [ $owner_pw, 'the owner\'s' ],
	[ $app_pw, 'app\'s' ])
{
	unlike($src_log, qr/\Q$pw->[0]\E/, "the source's log does not hold $pw->[1] password");
	unlike($sib_log, qr/\Q$pw->[0]\E/, "the sibling's log does not hold $pw->[1] password");
}

done_testing();
