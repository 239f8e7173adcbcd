# Copyright (c) 2026, splitdb developers
#
# The rows that code of a table's owner writes into the same table while a
# write through a shim runs in the sibling: a function that the executor
# calls inside the client's statement (a CHECK constraint, a domain's CHECK,
# a column's DEFAULT), not a trigger or a rule.  The sibling leaves the
# checks of a shim's rows to the source, which checks only the rows it
# sent; a row that such a function inserts is no row the source sent, so it
# must be checked too, as PostgreSQL's own foreign key would check it.
#
# One cluster (splitdb preloaded, trust authentication).  aowner owns
# shop.c5, which moves to service svc5 and refers to shop.customer (which
# stays, owned by the superuser).  In the sibling aowner gives c5, in turn:
#
# 1. a BEFORE trigger that changes the customer of the row the shim sends
#    to one that does not exist;
# 2. a CHECK constraint whose function inserts a second row into c5, with a
#    customer that does not exist;
# 3. a column whose domain's CHECK does the same;
# 4. a column, missing in the shim, whose DEFAULT does the same;
# 5. a deferred constraint trigger that does the same at the commit of the
#    transaction that wrote through the shim (the source fires the
#    sibling's deferred triggers before it commits, and takes their rows'
#    keys back).
#
# Each time aowner's INSERT of a valid row through the shim is refused
# (23503) and nothing is written; an INSERT whose trigger or function
# names an existing customer goes in (with both rows, for 2 to 5).  The
# trigger's row was refused before too: postgres_fdw returns the row as
# the sibling stored it to the shim's AFTER triggers, which check it.  Before, the second
# row was taken for the shim's own (ActivePortal and the trigger depth are
# the client's while the function runs) and written unchecked.  A write
# into c5 through the shim with no such function still costs no check in
# the sibling (the rows are the shim's own: the source checked them).

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SplitdbTest qw(start_source psql_verbose psql_as);

my $node = start_source('nested_statements', 500);

sub query
{
	my ($db, $sql) = @_;
	return $node->safe_psql($db, $sql);
}

# $sql in $db as $role: (exit code, stdout, stderr)
sub as_role { return psql_as($node, @_); }

query(
	'postgres', q{
CREATE ROLE aowner LOGIN;
CREATE SCHEMA shop;
CREATE TABLE shop.customer (id integer PRIMARY KEY, name text);
INSERT INTO shop.customer SELECT g, 'c' || g FROM generate_series(1, 10) g;
CREATE TABLE shop.c5 (id integer PRIMARY KEY, customer_id integer REFERENCES shop.customer);
INSERT INTO shop.c5 VALUES (1, 1);
ALTER TABLE shop.c5 OWNER TO aowner;
GRANT USAGE ON SCHEMA shop TO aowner;
SELECT splitdb_add_service('svc5');
CREATE USER MAPPING FOR aowner SERVER splitdb_svc5 OPTIONS (user 'aowner', password_required 'false');
SELECT splitdb_assign('svc5', 'shop.c5');
});
# the cutover stops for the owner's user mapping on splitdb_source there
my ($rc, $out, $err) = psql_verbose($node, 'postgres', "SELECT splitdb_migrate('svc5', wait => true)");
like($err, qr/user mapping for role "aowner" on server "splitdb_source" in database "svc5" is missing/,
	"the cutover asks for aowner's user mapping in the sibling");
query('svc5',
	q{CREATE USER MAPPING FOR aowner SERVER splitdb_source OPTIONS (user 'aowner', password_required 'false')});
query('postgres', "SELECT splitdb_migrate('svc5', wait => true)");
is(query('postgres', q{SELECT string_agg(child_table || ' > ' || parent_table, ', ') FROM splitdb_references}),
	'shop.c5 > shop.customer', 'the reference crosses the split');
query('svc5', 'CREATE SCHEMA aown AUTHORIZATION aowner');

# the function every route calls: while aown.knob names a customer, it
# inserts a second row of c5 with that customer (once per statement of the
# client's: not again for the row it inserts itself)
($rc, $out, $err) = as_role(
	'aowner', 'svc5', q{
CREATE TABLE aown.knob (customer integer);
INSERT INTO aown.knob VALUES (NULL);
CREATE SEQUENCE aown.s START 100000;
CREATE FUNCTION aown.side() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	IF coalesce(current_setting('aown.busy', true), '') = 'on'
	   OR (SELECT customer FROM aown.knob) IS NULL THEN
		RETURN true;
	END IF;
	PERFORM set_config('aown.busy', 'on', true);
	INSERT INTO shop.c5 (id, customer_id) SELECT nextval('aown.s'), customer FROM aown.knob;
	PERFORM set_config('aown.busy', 'off', true);
	RETURN true;
END $$;
});
is($rc, 0, 'aowner makes a function in the sibling that inserts into c5') or diag($err);

my $c5_sql = q{SELECT string_agg(id || ':' || customer_id, ',' ORDER BY id) FROM shop.c5};
my %route = (
	'a CHECK constraint' => {
		make => 'ALTER TABLE shop.c5 ADD CONSTRAINT c5_side CHECK (aown.side())',
		undo => 'ALTER TABLE shop.c5 DROP CONSTRAINT c5_side',
	},
	"a domain's CHECK" => {
		make => q{
CREATE DOMAIN aown.dside AS integer CHECK (aown.side());
ALTER TABLE shop.c5 ADD COLUMN d aown.dside;},
		undo => 'ALTER TABLE shop.c5 DROP COLUMN d; DROP DOMAIN aown.dside',
	},
	'a BEFORE trigger that changes the key' => {
		make => q{
CREATE FUNCTION aown.bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF (SELECT customer FROM aown.knob) IS NOT NULL THEN
		NEW.customer_id := (SELECT customer FROM aown.knob);
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER c5_bump BEFORE INSERT OR UPDATE ON shop.c5 FOR EACH ROW EXECUTE FUNCTION aown.bump();},
		undo => 'DROP TRIGGER c5_bump ON shop.c5; DROP FUNCTION aown.bump()',
	},
	'a deferred constraint trigger' => {
		make => q{
CREATE FUNCTION aown.late() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.id < 100000 THEN
		PERFORM aown.side();
	END IF;
	RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER c5_late AFTER INSERT ON shop.c5 DEFERRABLE INITIALLY DEFERRED
	FOR EACH ROW EXECUTE FUNCTION aown.late();},
		undo => 'DROP TRIGGER c5_late ON shop.c5; DROP FUNCTION aown.late()',
	},
	'a DEFAULT of a column the shim lacks' => {
		make => q{
CREATE FUNCTION aown.dflt() RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
	PERFORM aown.side();
	RETURN 0;
END $$;
ALTER TABLE shop.c5 ADD COLUMN e integer DEFAULT aown.dflt();},
		undo => 'ALTER TABLE shop.c5 DROP COLUMN e; DROP FUNCTION aown.dflt()',
	},);

my $id = 10;
for my $name ('a BEFORE trigger that changes the key', 'a CHECK constraint', "a domain's CHECK",
	'a DEFAULT of a column the shim lacks', 'a deferred constraint trigger')
{
	my $before = query('svc5', $c5_sql);
	($rc, $out, $err) = as_role('aowner', 'svc5', $route{$name}{make});
	is($rc, 0, "aowner gives c5 $name in the sibling") or diag($err);

	query('svc5', 'UPDATE aown.knob SET customer = 4247');
	$id++;
	($rc, $out, $err) = as_role('aowner', 'postgres', "INSERT INTO shop.c5 (id, customer_id) VALUES ($id, 2)");
	like($err, qr/ERROR:  23503: insert or update on table "c5" violates foreign key constraint "c5_customer_id_fkey"/,
		"$name: the row it writes in turn, of a missing customer, is refused");
	is(query('svc5', $c5_sql), $before, "$name: c5 unchanged in the sibling");

	query('svc5', 'UPDATE aown.knob SET customer = 3');
	$id++;
	($rc, $out, $err) = as_role('aowner', 'postgres', "INSERT INTO shop.c5 (id, customer_id) VALUES ($id, 2)");
	is($rc, 0, "$name: a row whose function writes a row of an existing customer goes in") or diag($err);
	if ($name eq 'a BEFORE trigger that changes the key')
	{
		is(query('svc5', "SELECT customer_id FROM shop.c5 WHERE id = $id OR id >= 100000"),
			'3', "$name: the row is in the sibling as the trigger changed it");
	}
	else
	{
		is( query('svc5', "SELECT string_agg(customer_id::text, ',' ORDER BY id) FROM shop.c5 WHERE id = $id OR id >= 100000"),
			'2,3', "$name: both rows are in the sibling");
	}
	query('svc5', "UPDATE aown.knob SET customer = NULL; DELETE FROM shop.c5 WHERE id >= 100000");

	($rc, $out, $err) = as_role('aowner', 'svc5', $route{$name}{undo});
	is($rc, 0, "aowner takes $name away") or diag($err);
}

# the shim's own rows: no check in the sibling, only the source's
($rc, $out, $err) = as_role('aowner', 'postgres',
	'INSERT INTO shop.c5 VALUES (7, 4); UPDATE shop.c5 SET customer_id = 5 WHERE id = 7');
is($rc, 0, "the shim's own rows are written and changed as before") or diag($err);
($rc, $out, $err) = as_role('aowner', 'postgres', 'INSERT INTO shop.c5 VALUES (8, 4249)');
like($err, qr/ERROR:  23503: insert or update on table "c5" violates foreign key constraint "c5_customer_id_fkey"/,
	"the source still refuses a row of its own of a missing customer");
is(query('postgres', q{SELECT count(*) FROM splitdb_orphans('svc5')}), '0', 'splitdb_orphans() finds none');

done_testing();
