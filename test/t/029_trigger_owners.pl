# Copyright (c) 2026, splitdb developers
#
# Two table owners that are not superusers, on two servers that ask every
# role but the bootstrap superuser for its password (scram-sha-256 over
# TCP) and log every statement.  "customer" (owned by cowner) stays in the
# source; "orders" (owned by oowner, who has REFERENCES on customer) moves
# to service ord and refers to customer.  Without splitdb, cowner could not
# turn the foreign key off: its triggers on customer are system triggers,
# which only a superuser may disable, and only orders' owner may drop the
# constraint.  With splitdb the reference is ordinary triggers, on customer
# in the source and on orders in the sibling.  cowner tries:
#
# 1. ALTER TABLE customer DISABLE TRIGGER (the reference's trigger by name,
#    USER, ALL), ENABLE REPLICA TRIGGER, DROP TRIGGER, ALTER TRIGGER ...
#    RENAME and CREATE OR REPLACE TRIGGER (a function of its own in place
#    of splitdb's) of splitdb's triggers, then deleting a referenced customer
#    or truncating customer: each refused with 42501 before it changes
#    anything, and no orphan;
# 2. oowner tries the same on orders in the sibling and on the shim in the
#    source: refused the same way (the reference's mode is a superuser's
#    to change, with splitdb_reference_mode());
# 3. its own triggers on customer stay its own: it disables and drops them;
# 4. row-level security on customer whose policy calls a function of its
#    own that records current_user: oowner's inserts through the shim (a
#    check in the source), and in the sibling (a check in the source on
#    splitdb's connection, and on postgres_fdw's) must run none of it as
#    oowner.  Through the shim and from the sibling the check reads
#    customer as its owner, past the policy, as PostgreSQL's foreign keys
#    do (from the sibling through splitdb.reference_lookup()).
#
# 5. renaming customer, moving it to another schema, renaming, dropping or
#    retyping its key column (the sibling's checks read them by name, so a
#    table or column put in their place would be read instead): refused
#    with 42501; its other columns and its own schema stay its own.
#
# 6. DETACH PARTITION of a partition of a referenced partitioned table
#    (zone, which visit in the sibling refers to): refused with 42501,
#    since a foreign key checks the rows that refer to it and the
#    reference's triggers see none of them; ATTACH PARTITION of a table
#    with a row that refers to nothing to a referencing one (ticket, in the
#    sibling): refused with 23503, its rows checked in the other database
#    as PostgreSQL checks them against a foreign key; without it, attached,
#    and a partition created (the owner may, as without splitdb), whose
#    rows are checked; an inheritance child of customer (CREATE
#    TABLE ... INHERITS, ALTER TABLE ... INHERIT), whose rows the checks
#    read and no trigger guards: refused with 42501.
#
# 7. CREATE CAST from text to the enum type "tier" of the key of another
#    reference (orders.tier to plan, both owned as above), or from it to
#    text, through a function of cowner's: refused with 42501, since the
#    checks (run in the source as the writer's mapped role) cast keys from
#    and to text, and would call it with the writer's rights.
#
# No password used in the test is in either server's log.
#
# Routes that got through before splitdb closed them: all of section 1
# (a referenced customer deleted, orders left pointing at nothing), and
# all of section 4 (cowner's function ran as oowner on each path), and
# all of section 5, the DETACH and the inheritance children of section 6,
# and section 7.

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SplitdbTest qw(start_logged_pair scram_hba set_passwords psql_verbose);

my $super_pw = 'Super-Pw-9a17';
my $co_pw    = 'Cowner-Pw-41be';
my $oo_pw    = 'Oowner-Pw-d3c5';

my ($source, $sibling, $user) = start_logged_pair(
	conf => q{
listen_addresses = '127.0.0.1'
},
	hba => \&scram_hba);
set_passwords($_, $super_pw, [ cowner => $co_pw, oowner => $oo_pw ])
  for ($source, $sibling);
my $src_port = $source->port;
my $sib_port = $sibling->port;
$source->safe_psql('postgres', 'CREATE DATABASE mono');
$sibling->safe_psql('postgres', 'CREATE DATABASE orddb');
$source->safe_psql(
	'mono', qq{
CREATE TABLE customer (id integer PRIMARY KEY);
CREATE TYPE tier AS ENUM ('gold', 'silver');
CREATE TABLE plan (tier tier PRIMARY KEY);
INSERT INTO plan VALUES ('gold'), ('silver');
CREATE TABLE orders (id integer PRIMARY KEY, customer_id integer REFERENCES customer,
	tier tier REFERENCES plan);
INSERT INTO customer SELECT generate_series(1, 5);
INSERT INTO orders VALUES (1, 1), (2, 2), (3, 3);
CREATE TABLE zone (id integer PRIMARY KEY) PARTITION BY RANGE (id);
CREATE TABLE zone_a PARTITION OF zone FOR VALUES FROM (0) TO (100);
CREATE TABLE zone_b PARTITION OF zone FOR VALUES FROM (100) TO (200);
INSERT INTO zone VALUES (1), (150);
CREATE TABLE visit (id integer PRIMARY KEY, zone_id integer REFERENCES zone);
INSERT INTO visit VALUES (1, 150);
CREATE TABLE ticket (id integer PRIMARY KEY, customer_id integer REFERENCES customer)
	PARTITION BY RANGE (id);
CREATE TABLE ticket_a PARTITION OF ticket FOR VALUES FROM (0) TO (100);
INSERT INTO ticket VALUES (1, 1);
ALTER TABLE customer OWNER TO cowner;
ALTER TYPE tier OWNER TO cowner;
ALTER TABLE plan OWNER TO cowner;
GRANT REFERENCES, SELECT, UPDATE ON plan TO oowner;
ALTER TABLE zone OWNER TO cowner;
ALTER TABLE zone_a OWNER TO cowner;
ALTER TABLE zone_b OWNER TO cowner;
ALTER TABLE orders OWNER TO oowner;
ALTER TABLE visit OWNER TO oowner;
ALTER TABLE ticket OWNER TO oowner;
ALTER TABLE ticket_a OWNER TO oowner;
GRANT REFERENCES, SELECT, UPDATE ON zone TO oowner;
GRANT REFERENCES, SELECT, UPDATE ON customer TO oowner;
CREATE SCHEMA cw AUTHORIZATION cowner;
CREATE FUNCTION public.cowner_trig() RETURNS trigger LANGUAGE plpgsql AS
  \$\$BEGIN RETURN NULL; END\$\$;
SET log_statement = 'none';
CREATE EXTENSION splitdb CASCADE;
CREATE SERVER sib_srv FOREIGN DATA WRAPPER postgres_fdw
	OPTIONS (host '127.0.0.1', port '$sib_port', dbname 'orddb');
CREATE USER MAPPING FOR CURRENT_USER SERVER sib_srv
	OPTIONS (user '$user', password '$super_pw');
CREATE USER MAPPING FOR cowner SERVER sib_srv OPTIONS (user 'cowner', password '$co_pw');
CREATE USER MAPPING FOR oowner SERVER sib_srv OPTIONS (user 'oowner', password '$oo_pw');
SELECT splitdb_add_service('ord', server => 'sib_srv');
SELECT splitdb_assign('ord', 'orders', 'visit', 'ticket');
});
$source->psql('mono', "SELECT splitdb_migrate('ord', wait => true)");
$sibling->safe_psql(
	'orddb', qq{
SET log_statement = 'none';
CREATE USER MAPPING FOR oowner SERVER splitdb_source OPTIONS (user 'oowner', password '$oo_pw');
CREATE USER MAPPING FOR cowner SERVER splitdb_source OPTIONS (user 'cowner', password '$co_pw');
});
my ($rc, $out, $err) =
  $source->psql('mono', "SELECT splitdb_migrate('ord', wait => true) > 0");
is($rc, 0, 'the migration succeeds') or diag($err);
$sibling->safe_psql('orddb', 'GRANT SELECT, UPDATE ON orders, visit, ticket TO cowner;'
	. ' CREATE SCHEMA oo AUTHORIZATION oowner');

my %node = (mono => $source, orddb => $sibling);
my %port = (mono => $src_port, orddb => $sib_port);
my %pw = (cowner => $co_pw, oowner => $oo_pw);

# $sql as $role over TCP with its password, verbose errors
sub as_role
{
	my ($role, $db, $sql) = @_;
	local $ENV{PGPASSWORD} = $pw{$role};
	return psql_verbose(
		$node{$db}, $db, $sql,
		connstr       => "host=127.0.0.1 port=$port{$db} dbname=$db user=$role",
		on_error_stop => 1);
}

sub orphans
{
	return $source->safe_psql(
		'mono', q{
SELECT (SELECT count(*) FROM splitdb_orphans('ord'))
	 + (SELECT count(*) FROM orders o
		 WHERE o.customer_id IS NOT NULL
		   AND NOT EXISTS (SELECT FROM customer c WHERE c.id = o.customer_id))});
}

# splitdb's triggers and the rows, in both databases
sub state
{
	my $q = q{
SELECT format('triggers %s; customers %s; orders %s',
	(SELECT string_agg(t.tgrelid::regclass || '.' || t.tgname || ':' || t.tgenabled::text, ','
					   ORDER BY t.tgrelid::regclass::text, t.tgname)
	   FROM pg_trigger t WHERE NOT t.tgisinternal),
	(SELECT count(*) FROM pg_class WHERE relname = 'customer'),
	(SELECT count(*) FROM pg_class WHERE relname = 'orders'))};
	return $source->safe_psql('mono', $q) . "\n" . $sibling->safe_psql('orddb', $q);
}

is(orphans(), '0', 'no orphan after the migration');
my ($ref_id) = $source->safe_psql('mono',
	"SELECT reference_id FROM splitdb.reference_end WHERE side = 'c' AND relid = 'orders'::regclass AND own_columns = '{customer_id}'");
ok($ref_id, "the reference's id is $ref_id");

# $sql as $role in $db must fail with 42501, change nothing, leave no orphan
sub refused
{
	my ($role, $db, $sql, $name) = @_;
	my $before = state();
	my ($ret, $o, $e) = as_role($role, $db, $sql);
	like($e, qr/ERROR:  42501: .*(splitdb|cross-service reference)/, "$name: refused with 42501") or diag($e);
	is(state(), $before, "$name: nothing changed");
	is(orphans(), '0', "$name: no row without its parent");
}

# ===== 1. the referenced table's owner
# a trigger function of its own, for CREATE OR REPLACE TRIGGER
as_role('cowner', 'mono',
	'CREATE FUNCTION cw.noop() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$');
for my $cmd (
	"ALTER TABLE customer DISABLE TRIGGER splitdb_ref_${ref_id}_p",
	'ALTER TABLE customer DISABLE TRIGGER USER',
	'ALTER TABLE customer DISABLE TRIGGER ALL',
	"ALTER TABLE customer ENABLE REPLICA TRIGGER splitdb_ref_${ref_id}_p",
	"ALTER TABLE customer DISABLE TRIGGER splitdb_reference_flush",
	"DROP TRIGGER splitdb_ref_${ref_id}_p ON customer",
	"DROP TRIGGER splitdb_reference_flush ON public.customer",
	"DROP TRIGGER splitdb_ref_${ref_id}_truncate ON customer",
	"ALTER TRIGGER splitdb_ref_${ref_id}_p ON customer RENAME TO mine",
	"ALTER TRIGGER splitdb_ref_${ref_id}_p ON customer DEPENDS ON EXTENSION plpgsql",
	"ALTER TABLE ONLY customer DISABLE TRIGGER ALL, ADD COLUMN note text",
	"CREATE OR REPLACE TRIGGER splitdb_ref_${ref_id}_p AFTER UPDATE OR DELETE ON customer\n"
	  . '  FOR EACH ROW EXECUTE FUNCTION cw.noop()')
{
	refused('cowner', 'mono', "BEGIN; $cmd; DELETE FROM customer WHERE id = 1; COMMIT;",
		"cowner: $cmd");
}
refused('cowner', 'mono',
	"BEGIN; ALTER TABLE customer DISABLE TRIGGER ALL; TRUNCATE customer; COMMIT;",
	'cowner: DISABLE TRIGGER ALL, then TRUNCATE');

# ===== 2. the referencing table's owner, in the sibling and on the shim
as_role('oowner', 'orddb',
	'CREATE FUNCTION oo.noop() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$');
for my $cmd (
	"ALTER TABLE orders DISABLE TRIGGER splitdb_ref_${ref_id}_c",
	'ALTER TABLE orders DISABLE TRIGGER ALL',
	"DROP TRIGGER splitdb_ref_${ref_id}_c ON orders",
	"CREATE OR REPLACE TRIGGER splitdb_ref_${ref_id}_c AFTER INSERT OR UPDATE ON orders\n"
	  . '  FOR EACH ROW EXECUTE FUNCTION oo.noop()')
{
	refused('oowner', 'orddb', "BEGIN; $cmd; INSERT INTO orders VALUES (10, 99); COMMIT;",
		"oowner in the sibling: $cmd");
}
for my $cmd (
	"ALTER FOREIGN TABLE orders DISABLE TRIGGER splitdb_ref_${ref_id}_c",
	'ALTER TABLE orders DISABLE TRIGGER USER',
	"DROP TRIGGER splitdb_ref_${ref_id}_c ON orders")
{
	refused('oowner', 'mono', "BEGIN; $cmd; INSERT INTO orders VALUES (11, 98); COMMIT;",
		"oowner on the shim: $cmd");
}

# ===== 3. its own triggers stay its own
($rc, $out, $err) = as_role('cowner', 'mono', q{
CREATE TRIGGER mine AFTER INSERT ON customer FOR EACH ROW EXECUTE FUNCTION public.cowner_trig();
ALTER TABLE customer DISABLE TRIGGER mine;
ALTER TABLE customer ENABLE TRIGGER mine;
ALTER TRIGGER mine ON customer RENAME TO mine2;
DROP TRIGGER mine2 ON customer;
});
is($rc, 0, "cowner changes and drops its own trigger") or diag($err);

# the reference still works both ways
($rc, $out, $err) = as_role('cowner', 'mono', 'DELETE FROM customer WHERE id = 1');
like($err, qr/ERROR:  23503:/, 'a referenced customer is still refused');
($rc, $out, $err) = as_role('oowner', 'orddb', 'INSERT INTO orders VALUES (12, 97)');
like($err, qr/ERROR:  23503:/, 'an order of a missing customer is still refused');
is(orphans(), '0', 'no orphan after the triggers held');

# ===== 6. partitions: rows attached and checked, referenced rows detached
refused('cowner', 'mono', 'ALTER TABLE zone DETACH PARTITION zone_b',
	'cowner: DETACH PARTITION of a referenced partition');
# the owner may add partitions (cloning splitdb's triggers takes EXECUTE on
# their functions, which PUBLIC keeps); the rows an attached one brings are
# checked in the other database before the command ends
my $before = state();
($rc, $out, $err) = as_role('oowner', 'orddb',
	"CREATE TABLE oo.ticket_b (id integer NOT NULL, customer_id integer);\n"
	  . "INSERT INTO oo.ticket_b VALUES (150, 99);\n"
	  . 'ALTER TABLE ticket ATTACH PARTITION oo.ticket_b FOR VALUES FROM (100) TO (200)');
like($err,
	qr/ERROR:  23503: insert or update on table "ticket_b" violates foreign key constraint/,
	'oowner: ATTACH PARTITION of a table with an orphan is refused');
is(state(), $before, 'oowner: ATTACH PARTITION: nothing changed');
is(orphans(), '0', 'oowner: ATTACH PARTITION: no row without its parent');
($rc, $out, $err) = as_role('oowner', 'orddb',
	"DELETE FROM oo.ticket_b;\n"
	  . "INSERT INTO oo.ticket_b VALUES (150, 2), (151, NULL);\n"
	  . "ALTER TABLE ticket ATTACH PARTITION oo.ticket_b FOR VALUES FROM (100) TO (200);\n"
	  . 'CREATE TABLE oo.ticket_c PARTITION OF ticket FOR VALUES FROM (200) TO (300)');
is($rc, 0, 'oowner: a partition without an orphan attached, another created') or diag($err);
($rc, $out, $err) = as_role('oowner', 'orddb', 'INSERT INTO oo.ticket_c VALUES (250, 99)');
like($err, qr/ERROR:  23503:/, "oowner: the new partition's rows are checked");
($rc, $out, $err) = as_role('cowner', 'mono', 'DELETE FROM customer WHERE id = 2');
like($err, qr/ERROR:  23503:/, "cowner: the attached row's customer is kept");
is($sibling->safe_psql('orddb', 'SELECT count(*) FROM ticket'), '3',
	'ticket holds its row and the two attached');
is(orphans(), '0', 'oowner: partitions added: no row without its parent');

# an inheritance child: the checks would read its rows, which no trigger guards
refused('cowner', 'mono',
	"CREATE TABLE cw.extra () INHERITS (customer);\n"
	  . "INSERT INTO cw.extra VALUES (77);",
	'cowner: CREATE TABLE ... INHERITS');
refused('cowner', 'mono',
	"CREATE TABLE cw.extra (id integer NOT NULL);\n"
	  . "INSERT INTO cw.extra VALUES (77);\n"
	  . "ALTER TABLE cw.extra INHERIT customer;",
	'cowner: ALTER TABLE ... INHERIT');

# ===== 5. names the other database reads by: the table, its schema, its key columns
sub refused_rename
{
	my ($sql, $name) = @_;
	my $before = state();
	my ($ret, $o, $e) = as_role('cowner', 'mono', $sql);
	like($e, qr/ERROR:  42501: permission denied: (table|column) .*cross-service reference/,
		"$name: refused with 42501") or diag($e);
	is(state(), $before, "$name: nothing changed");
}
refused_rename('ALTER TABLE customer RENAME COLUMN id TO real_id', 'RENAME COLUMN of the key');
refused_rename('ALTER TABLE customer RENAME TO customer_old', 'RENAME of the table');
refused_rename('ALTER TABLE customer SET SCHEMA cw', 'SET SCHEMA of the table');
refused_rename('ALTER TABLE customer DROP COLUMN id CASCADE', 'DROP COLUMN of the key');
refused_rename('ALTER TABLE customer ALTER COLUMN id TYPE bigint USING id + 1000',
	'ALTER COLUMN TYPE of the key');
$source->safe_psql('mono', 'GRANT CREATE ON DATABASE mono TO cowner');
($rc, $out, $err) = as_role('cowner', 'mono', q{
ALTER TABLE customer ADD COLUMN note text;
ALTER TABLE customer RENAME COLUMN note TO memo;
ALTER TABLE customer ALTER COLUMN memo TYPE varchar(20);
ALTER TABLE customer DROP COLUMN memo;
ALTER SCHEMA cw RENAME TO cw2;
ALTER SCHEMA cw2 RENAME TO cw;
});
is($rc, 0, "cowner changes the other columns of customer, and its own schema") or diag($err);
is($source->safe_psql('mono',
		"SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'customer'::regclass AND attnum > 0 AND NOT attisdropped"),
	'id', 'customer keeps its key column');

# ===== 4. the referenced table's row-level security runs no code as the writer
# PostgreSQL's own checks read the referenced table as its owner, to whom
# its policies do not apply; a policy of cowner's that splitdb's checks ran
# as the writer (oowner) would run cowner's code with oowner's rights.
($rc, $out, $err) = as_role('cowner', 'mono', q{
CREATE TABLE cw.seen (who name);
GRANT USAGE ON SCHEMA cw TO PUBLIC;
GRANT INSERT ON cw.seen TO PUBLIC;
CREATE FUNCTION cw.peek() RETURNS boolean LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO cw.seen VALUES (current_user); RETURN true; END$$;
ALTER TABLE customer ENABLE ROW LEVEL SECURITY;
CREATE POLICY peek ON customer USING (cw.peek());
});
is($rc, 0, 'cowner puts a policy on customer') or diag($err);
my $seen = q{SELECT coalesce(string_agg(DISTINCT who::text, ','), '') FROM cw.seen};
$source->safe_psql('mono', 'GRANT UPDATE ON customer TO oowner');
# through the shim: checked here, against customer
($rc, $out, $err) = as_role('oowner', 'mono', 'INSERT INTO orders VALUES (30, 2)');
is($source->safe_psql('mono', $seen), '', "a check through the shim runs none of cowner's code as oowner")
  or diag($err);
is($rc, 0, 'the order is checked as customer\'s owner, to whom its policy does not apply') or diag($err);
$source->safe_psql('mono', 'TRUNCATE cw.seen');
# in the sibling: checked in the source on splitdb's connection, and on postgres_fdw's
for my $cc ('on', 'off')
{
	($rc, $out, $err) = as_role('oowner', 'orddb',
		"SET splitdb.check_connection = $cc; INSERT INTO orders VALUES (31, 2)");
	is($source->safe_psql('mono', $seen), '',
		"a check from the sibling (check_connection $cc) runs none of cowner's code as oowner")
	  or diag($err);
	is($rc, 0,
		"check_connection $cc: the check reads customer as its owner, past the policy, as PostgreSQL's foreign key does")
	  or diag($err);
	$source->safe_psql('mono', 'TRUNCATE cw.seen');
	$sibling->safe_psql('orddb', 'DELETE FROM orders WHERE id = 31');
}
is(orphans(), '0', 'no orphan at the end');

# ===== 7. a cast from or to a key type, which the checks would call as the writer
for my $cast ('CREATE CAST (text AS public.tier) WITH FUNCTION cw.to_tier(text)',
	'CREATE CAST (public.tier AS text) WITH FUNCTION cw.of_tier(public.tier)')
{
	my $before = state();
	($rc, $out, $err) = as_role('cowner', 'mono', q{
CREATE OR REPLACE FUNCTION cw.to_tier(text) RETURNS public.tier LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO cw.seen VALUES (current_user); RETURN $1::name::text::public.tier; END$$;
CREATE OR REPLACE FUNCTION cw.of_tier(public.tier) RETURNS text LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO cw.seen VALUES (current_user); RETURN 'gold'; END$$;
} . "$cast;");
	like($err, qr/ERROR:  42501: permission denied: type tier is a key type of a cross-service reference/,
		"cowner: $cast: refused with 42501") or diag($err);
	is(state(), $before, "cowner: $cast: nothing changed");
}
is($source->safe_psql('mono', 'SELECT count(*) FROM pg_cast WHERE castsource = \'public.tier\'::regtype OR casttarget = \'public.tier\'::regtype'),
	'0', 'no cast of the key type was made');

# ===== no password in either server's log, nor in what the roles were told
my $src_log = slurp_file($source->logfile);
my $sib_log = slurp_file($sibling->logfile);
like($sib_log, qr/statement: /, "the sibling logged the roles' statements");
for my $pw ([ $super_pw, "the superuser's" ], [ $co_pw, "cowner's" ], [ $oo_pw, "oowner's" ])
{
	unlike($src_log, qr/\Q$pw->[0]\E/, "the source's log does not hold $pw->[1] password");
	unlike($sib_log, qr/\Q$pw->[0]\E/, "the sibling's log does not hold $pw->[1] password");
}

done_testing();
