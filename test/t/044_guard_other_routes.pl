# Copyright (c) 2026, splitdb developers
#
# The routes around the guard of cross-service references that PostgreSQL
# offers besides ALTER TABLE, for roles that are no superuser: the other
# database reads an end's table and key columns by name, where a foreign
# key follows OIDs, and reads the referenced table with its inheritance
# children.  And the rows that a table owner's own code in a sibling (a
# trigger, a rule) writes in turn into another role's table while a write
# through a shim runs there: the sibling leaves the checks of that write
# to the source, which checks only the rows it sent.
#
# One cluster (splitdb preloaded, trust authentication).  Schema shop is
# owned by sowner, who owns none of its tables; towner owns shop.customer
# and shop.region (a typed table, of type shop.rtype, which towner owns
# too), both of which stay, and has CREATE on shop.  shop.orders moves to
# service svc and refers to customer; shop.visit moves to svc2 and refers
# to region (DEFERRABLE INITIALLY DEFERRED, so region has a constraint
# trigger of splitdb's).
#
# 1. towner tries, on its own tables: ALTER INDEX shop.customer RENAME TO
#    (PostgreSQL renames a table by ALTER INDEX), ALTER VIEW and ALTER
#    MATERIALIZED VIEW ... RENAME COLUMN of the key (PostgreSQL renames a
#    table's column by either), ALTER TYPE shop.customer RENAME ATTRIBUTE
#    of the key, ALTER TYPE shop.rtype RENAME ATTRIBUTE id ... CASCADE,
#    ALTER ATTRIBUTE id TYPE ... CASCADE and DROP ATTRIBUTE id CASCADE
#    (which change the typed table region's key column), RENAME CONSTRAINT
#    of the constraint of splitdb's trigger on region, and CREATE FOREIGN
#    TABLE ... INHERITS (shop.customer) over a server it may use, and
#    ALTER TYPE ... RENAME VALUE, RENAME TO and SET SCHEMA of shop.tier, the
#    enum type of the key of shop.plan (which stays; shop.sub moves to
#    svc3, finalized, and refers to it): each refused (42501) before it
#    changes anything.  Before, each went through
#    (none of those commands reached the guard, or the guard did not look
#    at the typed tables); a foreign child over a table of towner's with
#    key 999 let the sibling insert an order for customer 999, which does
#    not exist; with the label 'gold' renamed in the source (the
#    sibling's copy of the enum keeps its own), the sibling's subscription
#    to 'gold' referred to no plan.
# 2. sowner renames schema shop: refused (42501), the name kept.  Before,
#    the rename went through (the guard looked only at the tables the role
#    owns); sowner then made a new schema shop with a table customer of its
#    own, whose rows the sibling's checks read: an order for a customer
#    that does not exist was accepted.
# 3. What the roles may still do, as without splitdb: towner renames a
#    column that is no key by ALTER VIEW ... RENAME COLUMN and ALTER TYPE
#    ... RENAME ATTRIBUTE, and the real index customer_pkey by ALTER INDEX,
#    and adds a label to shop.tier;
#    sowner renames a schema of its own that holds no end.
# 4. app, which owns nothing, gets PostgreSQL's own refusal for each, and
#    its command takes no lock on the table it names: with a lock held on
#    customer by another session, its ALTER INDEX ... RENAME of customer
#    is refused (42501) rather than waiting (lock_timeout ends a wait with
#    55P03), and so is its ALTER SCHEMA shop RENAME.
#
# 5. aowner owns table a4, which moves to svc4 with b4 (which refers to
#    customer; aowner may only INSERT into it, and SELECT).  In the sibling, a trigger
#    of aowner's on a4 writes a row into b4 with the key a4's row carries.
#    aowner's INSERT through the shim of a4 whose trigger writes an order of
#    a missing customer is refused (23503), nothing written; one of an
#    existing customer goes in.  Before, the sibling skipped the check of
#    b4's row (the write came from the source, on a session that proved
#    it) and the source took back the rows written in turn only after an
#    UPDATE or DELETE: the orphan was written.
#
# The references are enforced throughout: an order for a missing customer
# and a visit for a missing region are refused (23503) in the siblings.

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SplitdbTest qw(start_source psql_verbose psql_as);

my $node = start_source('guard_routes', 500);

sub query
{
	my ($db, $sql) = @_;
	return $node->safe_psql($db, $sql);
}

# $sql in $db as $role: (exit code, stdout, stderr)
sub as_role { return psql_as($node, @_); }

query(
	'postgres', q{
CREATE ROLE towner LOGIN;
CREATE ROLE sowner LOGIN;
CREATE ROLE app LOGIN;
CREATE ROLE aowner LOGIN;
GRANT CREATE ON DATABASE postgres TO sowner;
CREATE SCHEMA shop AUTHORIZATION sowner;
CREATE SCHEMA sown AUTHORIZATION sowner;
CREATE TABLE sown.note (id integer);
CREATE SCHEMA tsch AUTHORIZATION towner;
CREATE TABLE shop.customer (id integer PRIMARY KEY, name text);
INSERT INTO shop.customer SELECT g, 'c' || g FROM generate_series(1, 10) g;
CREATE TABLE shop.orders (id integer PRIMARY KEY, customer_id integer REFERENCES shop.customer);
INSERT INTO shop.orders SELECT g, g FROM generate_series(1, 5) g;
CREATE TYPE shop.rtype AS (id integer, label text);
CREATE TABLE shop.region OF shop.rtype (PRIMARY KEY (id));
INSERT INTO shop.region VALUES (1, 'north'), (2, 'south');
CREATE TABLE shop.visit (id integer PRIMARY KEY,
	region_id integer REFERENCES shop.region DEFERRABLE INITIALLY DEFERRED);
INSERT INTO shop.visit VALUES (1, 1);
CREATE TYPE shop.tier AS ENUM ('gold', 'silver');
CREATE TABLE shop.plan (k shop.tier PRIMARY KEY);
INSERT INTO shop.plan VALUES ('gold'), ('silver');
CREATE TABLE shop.sub (id integer PRIMARY KEY, plan_k shop.tier REFERENCES shop.plan);
INSERT INTO shop.sub VALUES (1, 'gold');
ALTER TYPE shop.tier OWNER TO towner;
ALTER TABLE shop.plan OWNER TO towner;
CREATE TABLE shop.a4 (id integer PRIMARY KEY);
CREATE TABLE shop.b4 (id integer PRIMARY KEY, customer_id integer REFERENCES shop.customer);
ALTER TABLE shop.a4 OWNER TO aowner;
GRANT INSERT, SELECT ON shop.b4 TO aowner;
ALTER TABLE shop.customer OWNER TO towner;
ALTER TYPE shop.rtype OWNER TO towner;
ALTER TABLE shop.region OWNER TO towner;
GRANT USAGE, CREATE ON SCHEMA shop TO towner;
GRANT USAGE ON SCHEMA shop TO app, aowner;
CREATE SERVER loop FOREIGN DATA WRAPPER postgres_fdw OPTIONS (dbname 'postgres');
GRANT USAGE ON FOREIGN SERVER loop TO towner;
SELECT splitdb_add_service('svc');
SELECT splitdb_add_service('svc2');
SELECT splitdb_add_service('svc3');
SELECT splitdb_add_service('svc4');
CREATE USER MAPPING FOR towner SERVER splitdb_svc OPTIONS (user 'towner', password_required 'false');
CREATE USER MAPPING FOR towner SERVER splitdb_svc2 OPTIONS (user 'towner', password_required 'false');
CREATE USER MAPPING FOR towner SERVER splitdb_svc3 OPTIONS (user 'towner', password_required 'false');
CREATE USER MAPPING FOR towner SERVER splitdb_svc4 OPTIONS (user 'towner', password_required 'false');
CREATE USER MAPPING FOR aowner SERVER splitdb_svc4 OPTIONS (user 'aowner', password_required 'false');
SELECT splitdb_assign('svc', 'shop.orders');
SELECT splitdb_assign('svc2', 'shop.visit');
SELECT splitdb_assign('svc3', 'shop.sub');
SELECT splitdb_assign('svc4', 'shop.a4', 'shop.b4');
});
query('postgres', "SELECT splitdb_migrate('svc', wait => true)");
query('postgres', "SELECT splitdb_migrate('svc2', wait => true)");
# finalized: no archive whose types the DDL guard of the job's tables keeps
query('postgres', "SELECT splitdb_migrate('svc3', wait => true); SELECT splitdb_finalize('svc3')");
query('postgres', "SELECT splitdb_migrate('svc4', wait => true)");
query(
	'postgres', q{
CREATE TABLE tsch.fake (id integer, name text);
INSERT INTO tsch.fake VALUES (999, 'decoy');
ALTER TABLE tsch.fake OWNER TO towner;
});
is( query('postgres',
		q{SELECT string_agg(child_table || ' > ' || parent_table, ', ' ORDER BY reference_id) FROM splitdb_references}),
	'shop.orders > shop.customer, shop.visit > shop.region, shop.sub > shop.plan, shop.b4 > shop.customer',
	'both references cross the split');
my $conname = query('postgres',
	q{SELECT c.conname FROM pg_trigger t JOIN pg_constraint c ON c.oid = t.tgconstraint
	   WHERE t.tgrelid = 'shop.region'::regclass});
is($conname, 'visit_region_id_fkey', "region has the constraint trigger of splitdb's deferrable reference");

# the names the sibling's checks read, the children of customer, and the
# constraints of region: what no refused command may change
my $state_sql = q{
SELECT (SELECT string_agg(nspname, ',' ORDER BY nspname) FROM pg_namespace
         WHERE nspname IN ('shop', 'sown', 'tsch', 'shop_old', 'sown2')),
       (SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_class
         WHERE relnamespace IN ('shop'::regnamespace, 'tsch'::regnamespace)),
       (SELECT string_agg(attrelid::regclass || '.' || attname, ',' ORDER BY attrelid, attnum)
          FROM pg_attribute WHERE attrelid IN ('shop.customer'::regclass, 'shop.region'::regclass,
                                                'shop.rtype'::regclass)
           AND attnum > 0 AND NOT attisdropped),
       (SELECT string_agg(format_type(atttypid, atttypmod), ',' ORDER BY attrelid, attnum)
          FROM pg_attribute WHERE attrelid = 'shop.region'::regclass AND attnum > 0 AND NOT attisdropped),
       (SELECT count(*) FROM pg_inherits WHERE inhparent = 'shop.customer'::regclass),
       (SELECT string_agg(conname, ',' ORDER BY conname) FROM pg_constraint
         WHERE conrelid = 'shop.region'::regclass),
       (SELECT string_agg(t.typnamespace::regnamespace || '.' || t.typname || ':' || e.enumlabel, ','
                          ORDER BY e.enumsortorder)
          FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid WHERE t.typowner = 'towner'::regrole)};
my $before = query('postgres', $state_sql);

# $sql as $role must fail with $state before it changes anything (run in a
# transaction that rolls back, so that one that gets through changes nothing
# either, and the next attempt starts from the same state)
sub refused
{
	my ($role, $sql, $state, $name) = @_;
	my ($rc, $out, $err) = as_role($role, 'postgres', "BEGIN;\n$sql;\nROLLBACK;");
	like($err, qr/ERROR:  $state:/, "$name: refused with $state") or diag($err);
	is(query('postgres', $state_sql), $before, "$name: nothing changed");
	return $err;
}

# ===== 1. towner: the other commands that rename or change its tables =====
my $err = refused('towner', 'ALTER INDEX shop.customer RENAME TO customer_old', '42501',
	'ALTER INDEX ... RENAME of a table with an end');
like($err, qr/permission denied: table "customer" holds an end of a cross-service reference\nDETAIL:  ALTER INDEX would change the name/,
	'the refusal names the table and the command');
$err = refused('towner', 'ALTER VIEW shop.customer RENAME COLUMN id TO real_id', '42501',
	'ALTER VIEW ... RENAME COLUMN of a key');
like($err, qr/permission denied: column "id" of table "customer" is a key of a cross-service reference\nDETAIL:  ALTER VIEW would change/,
	'the refusal names the column and the command');
refused('towner', 'ALTER MATERIALIZED VIEW shop.customer RENAME COLUMN id TO real_id', '42501',
	'ALTER MATERIALIZED VIEW ... RENAME COLUMN of a key');
refused('towner', 'ALTER TYPE shop.customer RENAME ATTRIBUTE id TO real_id', '42501',
	"ALTER TYPE ... RENAME ATTRIBUTE of a key of the table's row type");
$err = refused('towner', 'ALTER TYPE shop.rtype RENAME ATTRIBUTE id TO real_id CASCADE', '42501',
	'ALTER TYPE ... RENAME ATTRIBUTE ... CASCADE of the key of a typed table');
like($err, qr/column "id" of table "region" is a key of a cross-service reference/,
	'the refusal names the typed table');
refused('towner', 'ALTER TYPE shop.rtype ALTER ATTRIBUTE id TYPE bigint CASCADE', '42501',
	'ALTER TYPE ... ALTER ATTRIBUTE ... CASCADE of the key of a typed table');
refused('towner', 'ALTER TYPE shop.rtype DROP ATTRIBUTE id CASCADE', '42501',
	'ALTER TYPE ... DROP ATTRIBUTE ... CASCADE of the key of a typed table');
$err = refused('towner', "ALTER TABLE shop.region NOT OF; ALTER TABLE shop.region RENAME CONSTRAINT $conname TO mine",
	'42501', "RENAME CONSTRAINT of the constraint of splitdb's trigger");
like($err, qr/permission denied: "$conname" on table "region" is a trigger of splitdb/,
	'the refusal names the trigger');
$err = refused('towner',
	q{CREATE FOREIGN TABLE tsch.customer_more () INHERITS (shop.customer)
	    SERVER loop OPTIONS (schema_name 'tsch', table_name 'fake')},
	'42501', 'CREATE FOREIGN TABLE ... INHERITS a table with an end');
like($err, qr/DETAIL:  CREATE FOREIGN TABLE would give it an inheritance child/,
	'the refusal says the child is the matter');

# an enum key type: the databases compare its labels as text, each with its
# own copy of the type, where a foreign key compares their OIDs
$err = refused('towner', "ALTER TYPE shop.tier RENAME VALUE 'gold' TO 'platinum'", '42501',
	'ALTER TYPE ... RENAME VALUE of a key type');
like($err, qr/permission denied: type shop.tier is a key type of a cross-service reference\nDETAIL:  ALTER TYPE would change the names or labels/,
	'the refusal names the type');
refused('towner', 'ALTER TYPE shop.tier RENAME TO grade', '42501', 'ALTER TYPE ... RENAME of a key type');
refused('towner', 'ALTER TYPE shop.tier SET SCHEMA tsch', '42501', 'ALTER TYPE ... SET SCHEMA of a key type');

# ===== 2. sowner: its schema, over towner's tables =====
$err = refused('sowner', 'ALTER SCHEMA shop RENAME TO shop_old', '42501',
	"ALTER SCHEMA ... RENAME by the schema's owner, over another role's table with an end");
like($err, qr/permission denied: table "\w+" holds an end of a cross-service reference\nDETAIL:  ALTER SCHEMA would change the name/,
	'the refusal names a table with an end');

# ===== 3. what stays theirs =====
my ($rc, $out);
($rc, $out, $err) = as_role(
	'towner', 'postgres', q{
ALTER VIEW shop.customer RENAME COLUMN name TO full_name;
ALTER TYPE shop.customer RENAME ATTRIBUTE full_name TO name;
ALTER INDEX shop.customer_pkey RENAME TO customer_key;
ALTER TYPE shop.rtype RENAME ATTRIBUTE label TO title CASCADE;
ALTER TYPE shop.tier ADD VALUE 'bronze';
});
is($rc, 0, 'towner renames columns that are no key and an index, and adds a label to a key type, as without splitdb') or diag($err);
($rc, $out, $err) = as_role('sowner', 'postgres', 'ALTER SCHEMA sown RENAME TO sown2');
is($rc, 0, 'sowner renames a schema of its own that holds no end') or diag($err);
is( query('postgres',
		q{SELECT (SELECT count(*) FROM pg_class WHERE oid = 'shop.customer_key'::regclass),
		         (SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute
		           WHERE attrelid = 'shop.region'::regclass AND attnum > 0 AND NOT attisdropped),
		         (SELECT count(*) FROM pg_namespace WHERE nspname = 'sown2')}),
	'1|id,title|1',
	'the index, the column and the schema have their new names');
$before = query('postgres', $state_sql);

# ===== 4. app: PostgreSQL's refusals, and no lock taken =====
my $holder = $node->background_psql('postgres');
$holder->query_safe('BEGIN; LOCK shop.customer IN ACCESS SHARE MODE');
$err = refused('app', "SET lock_timeout = '30s'; ALTER INDEX shop.customer RENAME TO customer_old", '42501',
	'ALTER INDEX ... RENAME by a role that owns nothing, while another session reads customer');
like($err, qr/must be owner of table customer/, "app gets PostgreSQL's own refusal, without waiting for the lock");
$err = refused('app', "SET lock_timeout = '30s'; ALTER SCHEMA shop RENAME TO shop_old", '42501',
	'ALTER SCHEMA ... RENAME by a role that owns nothing');
like($err, qr/must be owner of schema shop/, "app gets PostgreSQL's own refusal");
$holder->query_safe('COMMIT');
$holder->quit;

# the references still hold, both ways
($rc, $out, $err) = psql_verbose($node, 'svc', 'INSERT INTO shop.orders VALUES (999, 999)');
like($err, qr/ERROR:  23503: insert or update on table "orders" violates foreign key constraint "orders_customer_id_fkey"/,
	'an order for a customer that does not exist is refused in the sibling');
($rc, $out, $err) = psql_verbose($node, 'svc2', 'INSERT INTO shop.visit VALUES (999, 999)');
like($err, qr/ERROR:  23503: insert or update on table "visit" violates foreign key constraint "visit_region_id_fkey"/,
	'a visit for a region that does not exist is refused in the sibling');
($rc, $out, $err) = as_role('towner', 'postgres', 'DELETE FROM shop.region WHERE id = 1');
like($err, qr/ERROR:  23503: update or delete on table "region" violates foreign key constraint "visit_region_id_fkey"/,
	'a region that a visit refers to cannot be deleted');
is(query('svc', 'SELECT count(*) FROM shop.orders WHERE id = 999'), '0', 'no orphan order');
is(query('postgres', 'SELECT count(*) FROM shop.region'), '2', 'no region deleted');
($rc, $out, $err) = as_role('towner', 'postgres', "DELETE FROM shop.plan WHERE k = 'gold'");
like($err, qr/ERROR:  23503: update or delete on table "plan" violates foreign key constraint "sub_plan_k_fkey"/,
	'a plan that a subscription refers to by its label cannot be deleted');
($rc, $out, $err) = psql_verbose($node, 'svc3', "INSERT INTO shop.sub VALUES (2, 'silver')");
is($rc, 0, 'a subscription to an existing plan goes in') or diag($err);

# ===== 5. a trigger in the sibling, fired by an INSERT through a shim =====
# The sibling skips the checks of the writes that come from the source on a
# session that proved it (the source checks the rows it sends); the rows
# that the sibling's triggers write in turn into another table go back to
# the source, which checks them in the writer's transaction.  Before, only
# an UPDATE or DELETE through a shim took them back: aowner, with INSERT
# only on b4, wrote into it any key it liked through a trigger on its own
# table a4.
query('svc4', 'CREATE SCHEMA aown AUTHORIZATION aowner');
($rc, $out, $err) = as_role(
	'aowner', 'svc4', q{
CREATE FUNCTION aown.a4_side() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO shop.b4 VALUES (NEW.id + 100000, NEW.id);
	RETURN NEW;
END $$;
CREATE TRIGGER a4_side AFTER INSERT ON shop.a4 FOR EACH ROW EXECUTE FUNCTION aown.a4_side();
});
is($rc, 0, "aowner puts a trigger of its own on its table a4 in the sibling") or diag($err);
($rc, $out, $err) = as_role('aowner', 'svc4', 'INSERT INTO shop.b4 VALUES (1, 4242)');
like($err, qr/ERROR:  23503: insert or update on table "b4" violates foreign key constraint "b4_customer_id_fkey"/,
	'aowner cannot write an order of a missing customer into b4 itself');
($rc, $out, $err) = as_role('aowner', 'postgres', 'INSERT INTO shop.a4 VALUES (4242)');
like($err, qr/ERROR:  23503: insert or update on table "b4" violates foreign key constraint "b4_customer_id_fkey"/,
	"nor through its trigger, fired by an INSERT through the shim: the row goes back to the source's check");
is(query('svc4', 'SELECT (SELECT count(*) FROM shop.a4) || \' \' || (SELECT count(*) FROM shop.b4)'), '0 0',
	'neither row is written');
($rc, $out, $err) = as_role('aowner', 'postgres', 'INSERT INTO shop.a4 VALUES (3)');
is($rc, 0, "a row whose trigger refers to an existing customer goes in") or diag($err);
($rc, $out, $err) = psql_verbose($node, 'postgres', q{
BEGIN;
INSERT INTO shop.customer VALUES (51, 'in this transaction');
INSERT INTO shop.a4 VALUES (51);
COMMIT;
}, on_error_stop => 1);
is($rc, 0, "a row whose trigger refers to a customer inserted in the same transaction goes in: the source checks it there")
  or diag($err);
is( query('svc4', q{SELECT string_agg(id || ':' || customer_id, ',' ORDER BY id) FROM shop.b4}),
	'100003:3,100051:51',
	'b4 holds only the rows that refer to existing customers');

# the same through what ActivePortal holds besides the client's statement:
# a cursor's portal (a PL/pgSQL FOR loop over INSERT ... RETURNING, in the
# trigger), and the actions of a DO ALSO and a DO INSTEAD rule on a4
my %route = (
	'a FOR loop over INSERT ... RETURNING in the trigger' => q{
CREATE OR REPLACE FUNCTION aown.a4_side() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE r record;
BEGIN
	FOR r IN INSERT INTO shop.b4 VALUES (NEW.id + 100000, NEW.id) RETURNING * LOOP
	END LOOP;
	RETURN NEW;
END $$;},
	'a DO ALSO rule' => q{
DROP TRIGGER a4_side ON shop.a4;
CREATE RULE a4_also AS ON INSERT TO shop.a4 DO ALSO INSERT INTO shop.b4 VALUES (NEW.id + 100000, NEW.id);},
	'a DO INSTEAD rule' => q{
DROP RULE a4_also ON shop.a4;
CREATE RULE a4_instead AS ON INSERT TO shop.a4 DO INSTEAD INSERT INTO shop.b4 VALUES (NEW.id + 100000, NEW.id);});
my $b4_before = query('svc4', q{SELECT string_agg(id || ':' || customer_id, ',' ORDER BY id) FROM shop.b4});
for my $name ('a FOR loop over INSERT ... RETURNING in the trigger', 'a DO ALSO rule', 'a DO INSTEAD rule')
{
	($rc, $out, $err) = as_role('aowner', 'svc4', $route{$name});
	is($rc, 0, "aowner makes $name") or diag($err);
	($rc, $out, $err) = as_role('aowner', 'postgres', 'INSERT INTO shop.a4 VALUES (4243)');
	like($err, qr/ERROR:  23503: insert or update on table "b4" violates foreign key constraint "b4_customer_id_fkey"/,
		"$name: an order of a missing customer written in turn is refused");
	is( query('svc4', q{SELECT string_agg(id || ':' || customer_id, ',' ORDER BY id) FROM shop.b4}),
		$b4_before, "$name: b4 unchanged");
	is(query('svc4', 'SELECT count(*) FROM shop.a4 WHERE id = 4243'), '0', "$name: no row in a4");
}
($rc, $out, $err) = as_role('aowner', 'svc4', 'DROP RULE a4_instead ON shop.a4');
($rc, $out, $err) = as_role('aowner', 'postgres',
	'INSERT INTO shop.a4 VALUES (4244); UPDATE shop.a4 SET id = 4245 WHERE id = 4244; DELETE FROM shop.a4 WHERE id = 4245');
is($rc, 0, "the shim's own rows are written, changed and deleted as before") or diag($err);

done_testing();
