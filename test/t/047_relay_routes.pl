# Copyright (c) 2026, splitdb developers
#
# The rows that a write through a shim makes the sibling write in turn, and
# which the sibling hands back to the source (splitdb.reference_relayed()),
# on the routes a table owner's code in the sibling may take.
#
# One cluster (splitdb preloaded, trust authentication).  aowner owns
# shop.c7, shop.d7 and shop.e7, which move to service svc7 and refer to
# shop.customer (which stays); e7's key is DEFERRABLE INITIALLY DEFERRED.
#
# 1. A trigger of aowner's on c7 in the sibling inserts a row into d7 and
#    then runs a block whose error it catches (a PL/pgSQL EXCEPTION clause:
#    a subtransaction rolled back).  Before, the rollback of that
#    subtransaction emptied every queue of keys, those queued before it
#    began included: the d7 row's key, waiting for the source, was lost,
#    and a row of a missing customer was written.  The same in a plain
#    INSERT into d7 in the sibling whose own trigger runs such a block: its
#    key, waiting for the statement's check, was lost too.  Now the
#    rollback drops only the keys queued inside it: the INSERT is refused
#    (23503), nothing written; rows that the rolled-back block itself wrote
#    cost no check (no false 23503).
# 2. The trigger inserts the row into e7 instead, whose check the sibling
#    defers to its commit.  Before, the deferred trigger fired at the
#    sibling's commit, outside any statement of the source's: the key went
#    to the queue of keys for the source, which nobody took any more.
#    Now an immediate trigger of splitdb's (_handback) hands such a row
#    back at the end of the statement: refused at the source's commit
#    (23503); a customer that the same transaction inserts in the source
#    is found there.
# 3. A deferred constraint trigger of aowner's on c7 in the sibling, fired
#    at the sibling's commit, inserts the row into d7.  Before, its key went
#    to the queue of keys for the source, which had taken back what was
#    left at the end of the statement already.  Now the source, as it
#    commits, fires the sibling's deferred triggers (SET CONSTRAINTS ALL
#    IMMEDIATE there, where the sibling reports splitdb.deferred_waiting on)
#    and checks what they left: refused (23503); a customer that the
#    transaction inserts after the shim write is found.
# 4. A DO ALSO rule of aowner's on c7 in the sibling, on INSERT, UPDATEs
#    the row the shim just inserted to a customer that does not exist; and
#    one on UPDATE inserts a second row into c7 (the rules of
#    test/t/044_guard_other_routes.pl write another table).  Before, the
#    rows of the rule's statement were taken for the shim's own (the
#    portal's text names c7, and the portal's statement that sets the tag
#    writes c7): an orphan.  Now only the rows of the statement that runs
#    now, when it is the one that sets the tag: refused (23503), nothing
#    written; with an existing customer the INSERT goes in, changed by the
#    rule.
# 5. Part 1's trigger through a shim with batch_size 10 (a two-row INSERT)
#    and through COPY FROM: refused (23503); COPY of an existing customer
#    goes in.  These routes held: postgres_fdw sends one INSERT per row
#    where the shim has AFTER ROW triggers, and COPY fires the shim's
#    statement trigger.
# 6. aowner's trigger on c7 in the sibling writes a row of a missing
#    customer into d7 and then calls splitdb.reference_relayed(), which
#    hands the keys waiting for the source to its caller and forgets them;
#    or writes one through splitdb.reference_relay(); or a DO ALSO rule of
#    the shim's INSERT calls reference_relayed().  Before, the keys went to
#    that code and the source checked none: an orphan.  Now the functions
#    refuse any call but a statement of its own (42501): nothing written.

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SplitdbTest qw(start_source psql_verbose psql_as);

my $node = start_source('relay_routes', 500);

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
GRANT SELECT, INSERT ON shop.customer TO aowner;
CREATE TABLE shop.c7 (id integer PRIMARY KEY, customer_id integer REFERENCES shop.customer);
CREATE TABLE shop.d7 (id integer PRIMARY KEY, customer_id integer REFERENCES shop.customer);
CREATE TABLE shop.e7 (id integer PRIMARY KEY,
	customer_id integer REFERENCES shop.customer DEFERRABLE INITIALLY DEFERRED);
ALTER TABLE shop.c7 OWNER TO aowner;
ALTER TABLE shop.d7 OWNER TO aowner;
ALTER TABLE shop.e7 OWNER TO aowner;
GRANT USAGE ON SCHEMA shop TO aowner;
SELECT splitdb_add_service('svc7');
CREATE USER MAPPING FOR aowner SERVER splitdb_svc7 OPTIONS (user 'aowner', password_required 'false');
SELECT splitdb_assign('svc7', 'shop.c7');
SELECT splitdb_assign('svc7', 'shop.d7');
SELECT splitdb_assign('svc7', 'shop.e7');
});
my ($rc, $out, $err) = psql_verbose($node, 'postgres', "SELECT splitdb_migrate('svc7', wait => true)");
like($err, qr/user mapping for role "aowner" on server "splitdb_source" in database "svc7" is missing/,
	"the cutover asks for aowner's user mapping in the sibling");
query('svc7',
	q{CREATE USER MAPPING FOR aowner SERVER splitdb_source OPTIONS (user 'aowner', password_required 'false')});
query('postgres', "SELECT splitdb_migrate('svc7', wait => true)");
is( query('postgres',
		q{SELECT string_agg(child_table || ' > ' || parent_table, ', ' ORDER BY child_table) FROM splitdb_references}),
	'shop.c7 > shop.customer, shop.d7 > shop.customer, shop.e7 > shop.customer',
	'the references cross the split');
query('svc7', 'CREATE SCHEMA aown AUTHORIZATION aowner');

# aowner's code in the sibling: aown.knob says which table the trigger on
# c7 writes (d7 or e7) and with which customer; aown.swallow() runs a
# block that fails, and whose error it catches
($rc, $out, $err) = as_role(
	'aowner', 'svc7', q{
CREATE TABLE aown.knob (target text, customer integer, inner_customer integer);
INSERT INTO aown.knob VALUES (NULL, NULL, NULL);
CREATE SEQUENCE aown.s START 100000;
CREATE FUNCTION aown.swallow() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	BEGIN
		-- a row written inside the block, rolled back with it
		IF (SELECT inner_customer FROM aown.knob) IS NOT NULL
		   AND coalesce(current_setting('aown.busy', true), '') <> 'on' THEN
			PERFORM set_config('aown.busy', 'on', true);
			INSERT INTO shop.d7 SELECT nextval('aown.s'), inner_customer FROM aown.knob;
		END IF;
		PERFORM 1 / 0;
	EXCEPTION WHEN division_by_zero THEN
		NULL;
	END;
END $$;
CREATE FUNCTION aown.side() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	k aown.knob;
BEGIN
	SELECT * INTO k FROM aown.knob;
	IF k.target = 'd7' THEN
		INSERT INTO shop.d7 VALUES (nextval('aown.s'), k.customer);
	ELSIF k.target = 'e7' THEN
		INSERT INTO shop.e7 VALUES (nextval('aown.s'), k.customer);
	END IF;
	PERFORM aown.swallow();
	RETURN NULL;
END $$;
CREATE TRIGGER c7_side AFTER INSERT ON shop.c7 FOR EACH ROW EXECUTE FUNCTION aown.side();
CREATE FUNCTION aown.only_swallow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM aown.swallow();
	RETURN NULL;
END $$;
CREATE TRIGGER zz_swallow AFTER INSERT ON shop.d7 FOR EACH ROW EXECUTE FUNCTION aown.only_swallow();
});
is($rc, 0, 'aowner makes its triggers in the sibling') or diag($err);

my $rows_sql = q{SELECT coalesce(string_agg(t || ':' || id || ':' || customer_id, ',' ORDER BY t, id), '')
	FROM (SELECT 'c7' t, * FROM shop.c7 UNION ALL SELECT 'd7', * FROM shop.d7
		  UNION ALL SELECT 'e7', * FROM shop.e7) r};
my $fk_err = sub {
	my ($table) = @_;
	return qr/ERROR:  23503: insert or update on table "$table" violates foreign key constraint "${table}_customer_id_fkey"/;
};

# 1. the subtransaction rolled back after the row's key was queued
my $before = query('svc7', $rows_sql);
query('svc7', q{UPDATE aown.knob SET target = 'd7', customer = 4247});
($rc, $out, $err) = as_role('aowner', 'postgres', 'INSERT INTO shop.c7 VALUES (1, 2)');
like($err, $fk_err->('d7'),
	'a shim write whose trigger writes a row of a missing customer, then rolls a block back: refused');
is(query('svc7', $rows_sql), $before, 'nothing written in the sibling');

($rc, $out, $err) = as_role('aowner', 'svc7', 'INSERT INTO shop.d7 VALUES (2, 4248)');
like($err, $fk_err->('d7'),
	"a plain INSERT in the sibling of a missing customer, whose own trigger rolls a block back: refused");
is(query('svc7', $rows_sql), $before, 'nothing written in the sibling');

# a row of an existing customer, with a row of a missing one that the
# rolled-back block wrote: no check of the rolled-back row
query('svc7', q{UPDATE aown.knob SET target = 'd7', customer = 3, inner_customer = 4249});
($rc, $out, $err) = as_role('aowner', 'postgres', 'INSERT INTO shop.c7 VALUES (3, 2)');
is($rc, 0, 'a shim write whose rolled-back block wrote a row of a missing customer goes in') or diag($err);
query('svc7', q{UPDATE aown.knob SET inner_customer = NULL});
($rc, $out, $err) = as_role('aowner', 'svc7', 'INSERT INTO shop.d7 VALUES (4, 5)');
is($rc, 0, 'a plain INSERT in the sibling whose trigger rolls a block back goes in') or diag($err);
is( query('svc7', q{SELECT string_agg(customer_id::text, ',' ORDER BY id) FROM shop.d7 WHERE id = 4 OR customer_id IN (3, 4249)}),
	'5,3', 'd7 holds the rows outside the rolled-back blocks');
query('svc7', q{UPDATE aown.knob SET inner_customer = NULL});

# 2. the row's check deferred to the sibling's commit
$before = query('svc7', $rows_sql);
query('svc7', q{UPDATE aown.knob SET target = 'e7', customer = 4250});
($rc, $out, $err) = as_role('aowner', 'postgres', 'INSERT INTO shop.c7 VALUES (5, 2)');
like($err, $fk_err->('e7'),
	'a shim write whose trigger writes a row of a missing customer into a deferred reference: refused');
is(query('svc7', $rows_sql), $before, 'nothing written in the sibling');

($rc, $out, $err) = as_role('aowner', 'postgres',
	q{BEGIN; INSERT INTO shop.customer VALUES (4250, 'new'); INSERT INTO shop.c7 VALUES (6, 2); COMMIT});
is($rc, 0, 'with the customer inserted by the same transaction in the source, it goes in') or diag($err);
is( query('svc7', q{SELECT string_agg(customer_id::text, ',' ORDER BY id) FROM shop.e7}),
	'4250', 'e7 holds the row');

# the shim's own rows of the deferred reference: checked by the source alone
($rc, $out, $err) = as_role('aowner', 'postgres', 'INSERT INTO shop.e7 VALUES (7, 4251)');
like($err, $fk_err->('e7'), "the source refuses a shim's own row of a missing customer");
($rc, $out, $err) = as_role('aowner', 'postgres',
	q{BEGIN; INSERT INTO shop.e7 VALUES (8, 4252); INSERT INTO shop.customer VALUES (4252, 'late'); COMMIT});
is($rc, 0, "a shim's own row whose customer comes later in the transaction goes in") or diag($err);
query('svc7', q{UPDATE aown.knob SET target = NULL, customer = NULL});

# 3. a deferred trigger of aowner's on c7, fired at the sibling's commit,
# writes the row into d7
($rc, $out, $err) = as_role(
	'aowner', 'svc7', q{
ALTER TABLE aown.knob ADD COLUMN late_customer integer;
CREATE FUNCTION aown.late() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF (SELECT late_customer FROM aown.knob) IS NOT NULL THEN
		INSERT INTO shop.d7 SELECT nextval('aown.s'), late_customer FROM aown.knob;
	END IF;
	RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER c7_late AFTER INSERT ON shop.c7 DEFERRABLE INITIALLY DEFERRED
	FOR EACH ROW EXECUTE FUNCTION aown.late();
});
is($rc, 0, 'aowner makes a deferred trigger on c7 in the sibling') or diag($err);
$before = query('svc7', $rows_sql);
query('svc7', q{UPDATE aown.knob SET late_customer = 4253});
($rc, $out, $err) = as_role('aowner', 'postgres', 'INSERT INTO shop.c7 VALUES (9, 2)');
like($err, $fk_err->('d7'),
	"a shim write whose deferred trigger writes a row of a missing customer at the sibling's commit: refused");
is(query('svc7', $rows_sql), $before, 'nothing written in the sibling');
($rc, $out, $err) = as_role('aowner', 'postgres',
	q{BEGIN; INSERT INTO shop.c7 VALUES (10, 2); INSERT INTO shop.customer VALUES (4253, 'late'); COMMIT});
is($rc, 0, 'with the customer inserted later by the same transaction in the source, it goes in') or diag($err);
is(query('svc7', q{SELECT count(*) FROM shop.d7 WHERE customer_id = 4253}), '1', 'd7 holds the row');
query('svc7', q{UPDATE aown.knob SET late_customer = NULL});

# 4. a DO ALSO rule of aowner's on c7 in the sibling changes the row the
# shim inserted
($rc, $out, $err) = as_role(
	'aowner', 'svc7', q{
ALTER TABLE aown.knob ADD COLUMN rule_customer integer;
CREATE RULE c7_also AS ON INSERT TO shop.c7 DO ALSO
	UPDATE shop.c7 SET customer_id = k.rule_customer FROM aown.knob k
	 WHERE shop.c7.id = NEW.id AND k.rule_customer IS NOT NULL;
});
is($rc, 0, 'aowner makes a DO ALSO rule on c7 in the sibling') or diag($err);
$before = query('svc7', $rows_sql);
query('svc7', q{UPDATE aown.knob SET rule_customer = 4254});
($rc, $out, $err) = as_role('aowner', 'postgres', 'INSERT INTO shop.c7 VALUES (11, 2)');
like($err, $fk_err->('c7'),
	"a shim write whose rule changes the row it wrote to a missing customer: refused");
is(query('svc7', $rows_sql), $before, 'nothing written in the sibling');
query('svc7', q{UPDATE aown.knob SET rule_customer = 4});
($rc, $out, $err) = as_role('aowner', 'postgres', 'INSERT INTO shop.c7 VALUES (12, 2)');
is($rc, 0, 'with an existing customer, it goes in') or diag($err);
is(query('svc7', q{SELECT customer_id FROM shop.c7 WHERE id = 12}), '4', 'c7 holds the row as the rule changed it');
query('svc7', q{UPDATE aown.knob SET rule_customer = NULL});

# an UPDATE's DO ALSO rule that inserts a row into c7
($rc, $out, $err) = as_role(
	'aowner', 'svc7', q{
DROP RULE c7_also ON shop.c7;
CREATE RULE c7_also_insert AS ON UPDATE TO shop.c7 DO ALSO
	INSERT INTO shop.c7 SELECT nextval('aown.s'), k.rule_customer FROM aown.knob k
	 WHERE k.rule_customer IS NOT NULL;
});
is($rc, 0, 'aowner makes a DO ALSO rule on UPDATE of c7 in the sibling') or diag($err);
$before = query('svc7', $rows_sql);
query('svc7', q{UPDATE aown.knob SET rule_customer = 4255});
($rc, $out, $err) = as_role('aowner', 'postgres', 'UPDATE shop.c7 SET customer_id = 3 WHERE id = 12');
like($err, $fk_err->('c7'),
	"a shim UPDATE whose rule inserts a row of a missing customer: refused");
is(query('svc7', $rows_sql), $before, 'nothing written in the sibling');
query('svc7', q{UPDATE aown.knob SET rule_customer = NULL});

# 5. the trigger of part 1 again, through a shim with batch_size 10 (which
# postgres_fdw does not use for a foreign table with AFTER ROW triggers)
# and through COPY FROM
($rc, $out, $err) = as_role('aowner', 'postgres', q{ALTER FOREIGN TABLE shop.c7 OPTIONS (ADD batch_size '10')});
is($rc, 0, 'aowner sets batch_size on the shim') or diag($err);
$before = query('svc7', $rows_sql);
query('svc7', q{UPDATE aown.knob SET target = 'd7', customer = 4256});
($rc, $out, $err) = as_role('aowner', 'postgres', 'INSERT INTO shop.c7 VALUES (13, 2), (14, 2)');
like($err, $fk_err->('d7'), 'a two-row INSERT through the batched shim: refused');
($rc, $out, $err) = as_role('aowner', 'postgres', "COPY shop.c7 FROM STDIN;\n15\t2\n16\t2\n\\.\n");
like($err, $fk_err->('d7'), 'COPY FROM into the shim: refused');
is(query('svc7', $rows_sql), $before, 'nothing written in the sibling');
query('svc7', q{UPDATE aown.knob SET customer = 5});
($rc, $out, $err) = as_role('aowner', 'postgres', "COPY shop.c7 FROM STDIN;\n15\t2\n16\t2\n\\.\n");
is($rc, 0, 'with an existing customer, COPY FROM goes in') or diag($err);
is(query('svc7', q{SELECT count(*) FROM shop.c7 WHERE id IN (15, 16)}), '2', 'c7 holds the copied rows');
query('svc7', q{UPDATE aown.knob SET target = NULL, customer = NULL});

# 6. aowner's code in the sibling, set off by a shim write, takes the keys
# that the sibling hands back to the source (splitdb.reference_relayed())
# after writing a row of a missing customer, or writes one through
# splitdb.reference_relay(), from a trigger or a DO ALSO rule: before, the
# keys went to that code, and the source, which takes them from that call,
# checked none (an orphan written); now each call but a statement of its
# own is refused (42501), and nothing is written
($rc, $out, $err) = as_role(
	'aowner', 'svc7', q{
CREATE FUNCTION aown.drain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	t text := (SELECT target FROM aown.knob);
BEGIN
	IF t = 'drain' THEN
		INSERT INTO shop.d7 VALUES (nextval('aown.s'), 4257);
		PERFORM * FROM splitdb.reference_relayed();
	ELSIF t = 'relay' THEN
		PERFORM * FROM splitdb.reference_relay(
			format('INSERT INTO shop.d7 VALUES (%s, 4258)', nextval('aown.s')), '{}');
	END IF;
	RETURN NULL;
END $$;
CREATE TRIGGER c7_drain AFTER INSERT ON shop.c7 FOR EACH STATEMENT EXECUTE FUNCTION aown.drain();
});
is($rc, 0, 'aowner makes a trigger on c7 in the sibling that calls the relay functions') or diag($err);
$before = query('svc7', $rows_sql);
query('svc7', q{UPDATE aown.knob SET target = 'drain'});
($rc, $out, $err) = as_role('aowner', 'postgres', 'INSERT INTO shop.c7 VALUES (17, 2)');
like($err, qr/ERROR:  42501: splitdb\.reference_relayed\(\) must be called as a statement of its own/,
	'a trigger set off by a shim write cannot take the keys handed back to the source');
query('svc7', q{UPDATE aown.knob SET target = 'relay'});
($rc, $out, $err) = as_role('aowner', 'postgres', 'INSERT INTO shop.c7 VALUES (18, 2)');
like($err, qr/ERROR:  42501: splitdb\.reference_relay\(\) must be called as a statement of its own/,
	'nor write through splitdb.reference_relay()');
is(query('svc7', $rows_sql), $before, 'nothing written in the sibling');
query('svc7', q{UPDATE aown.knob SET target = NULL});
($rc, $out, $err) = as_role(
	'aowner', 'svc7', q{
DROP TRIGGER c7_drain ON shop.c7;
CREATE RULE c7_drain_rule AS ON INSERT TO shop.c7 DO ALSO SELECT * FROM splitdb.reference_relayed();
});
is($rc, 0, 'aowner makes a DO ALSO rule on c7 in the sibling that calls reference_relayed()') or diag($err);
($rc, $out, $err) = as_role('aowner', 'postgres', 'INSERT INTO shop.c7 VALUES (19, 2)');
like($err, qr/ERROR:  42501: splitdb\.reference_relayed\(\) must be called as a statement of its own/,
	'nor a rule of its statement');
is(query('svc7', $rows_sql), $before, 'nothing written in the sibling');
query('svc7', 'DROP RULE c7_drain_rule ON shop.c7');
($rc, $out, $err) = as_role('aowner', 'postgres', 'INSERT INTO shop.c7 VALUES (19, 2)');
is($rc, 0, 'without them, the shim write goes in') or diag($err);

is(query('postgres', q{SELECT count(*) FROM splitdb_orphans('svc7')}), '0', 'splitdb_orphans() finds none');

done_testing();
