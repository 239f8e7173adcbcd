# Copyright (c) 2026, splitdb developers

# The schema oracle: after splitdb_migrate(), `pg_dump --schema-only -t X`
# of every relation X a service owns gives, in the sibling, the text it gave
# in the source before the migration, except for the foreign keys that cross
# services (those splitdb.reference lists), which stay out of the sibling.
#
# One cluster; the siblings are databases on it.  Two parts:
#
# 1. A schema written for this test, in database postgres, with every kind
#    of object the sibling must reproduce:
#    - types: an enum, a domain (CHECK, NOT NULL, DEFAULT), a composite type,
#      a range type, a multirange and an enum-array column, an enum in a
#      second schema;
#    - functions that the functions of a CHECK and of a trigger call by name
#      in their bodies (where pg_depend records nothing), and one named there
#      that takes a staying table's row type, which the sibling cannot have;
#    - text search configurations and a dictionary of the user's, named by
#      an index expression and in a function's body, and a collation named
#      only in a function's body;
#    - sequences: serial (one of an UNLOGGED table), identity ALWAYS and BY
#      DEFAULT with their own START, INCREMENT, MINVALUE and CACHE, a
#      sequence shared by two defaults;
#    - columns: a generated column, COLLATE "C", NOT NULL, a dropped column,
#      statistics targets, storage, compression and attribute options;
#    - constraints: CHECK (one NOT VALID, one NO INHERIT, one calling a user
#      function, one on a single partition, one on a partition that was a
#      table of its own before it was attached), primary keys (one
#      composite), unique constraints (DEFERRABLE, NULLS NOT DISTINCT, one on
#      a partitioned table), an exclusion constraint, foreign keys among the
#      owned tables (ON DELETE CASCADE, ON DELETE SET NULL (col), MATCH FULL,
#      DEFERRABLE, NOT VALID, self-referencing, to a partitioned table);
#    - indexes: unique, partial, expression (on a user function, with a
#      COLLATE and an opclass), INCLUDE, BRIN on one partition, on
#      partitioned tables, a statistics target on an index column, CLUSTER
#      ON, replica identity FULL and USING INDEX, extended statistics;
#    - partitions: RANGE (one DEFAULT, one attached with its columns in
#      another order) and LIST in a second schema;
#    - triggers: row and statement level (transition table), a constraint
#      trigger, a disabled one, one cloned to partitions with a state of its
#      own on one of them, one on a single partition;
#    - comments on tables, columns, indexes, constraints, types, a function,
#      a sequence, extended statistics, a trigger and a policy;
#    - privileges: grants to two roles (column-level, WITH GRANT OPTION, on a
#      sequence, on one partition to PUBLIC), privileges the owner revoked
#      from itself, a table owner other than the migrating role, row-level
#      security with a permissive and a restrictive policy;
#    - names with quotes, spaces, mixed case and non-ASCII letters, storage
#      parameters, an UNLOGGED table.
#    A foreign key from an owned table to a staying one, one from a staying
#    table to an owned one and one from a staying table to an owned
#    partitioned table are the cross-service references.
# 2. The public sample databases next to the checkout (../shared/samples,
#    or the directory $SPLITDB_SAMPLES names), each split into services one
#    after the other: pagila (the film catalog, the partitioned payments,
#    the rest), chinook (sales, then music) and northwind (orders).  A
#    missing sample folder fails this part; it is never skipped.
#
# For every owned relation (partitions and the sequences the tables use
# included), one is() compares the two dumps, so a failure prints the diff.
# Besides, for each service:
# - the job ends in state done;
# - splitdb.reference lists exactly the expected cross-service foreign keys,
#   and each of them is an entry of the source's dump that the comparison
#   removes (nothing else is removed);
# - every type and function the sibling got dumps as in the source, but for
#   the SET search_path that a function without one gets there (the path
#   it resolved names with in the source), which must be there;
# - the sibling has exactly the sequences the service's tables use (serial,
#   identity, defaults), each with the source's last value;
# - each table has the same rows on both sides (count, order-independent md5);
# - every secondary index, unique and exclusion constraint and foreign key
#   in the sibling was made after the rows were copied: its catalog row is
#   newer than the newest row of its table.
# For pagila's payments, whose keys are declared on their partitions: a
# payment for a missing customer is refused (23503) through the shim and
# directly in the sibling in partitions that declare the key, and accepted
# in the one that does not, as is one for a present customer.
# And once: the server's own column versions, which this platform's
# PostgreSQL keeps among the attribute options (pg_attver=N), are not sent
# to the sibling as options, while an option a user set is.
#
# The only normalisation of the dumps is dropping the \restrict and
# \unrestrict lines, whose key pg_dump draws at random on every run.

use strict;
use warnings FATAL => 'all';
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('oracle');
$node->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'splitdb'
max_worker_processes = 16
});
$node->start;

# ---------------------------------------------------------------- helpers

# "schema"."name", each part quoted: the relation in SQL, and a pg_dump -t
# pattern that matches exactly this relation whatever its name holds
sub quote_rel
{
	my ($schema, $name) = @_;
	return join('.', map { my $p = $_; $p =~ s/"/""/g; qq{"$p"} } $schema, $name);
}

# pg_dump --schema-only of one relation (or of the whole database when
# $schema is undef), without the \restrict lines; pg_dump's error when it
# fails (the relation is missing, say), which no comparison will accept
sub dump_schema
{
	my ($db, $schema, $name) = @_;
	my @cmd = ('pg_dump', '--schema-only', '-d', $node->connstr($db));
	push @cmd, '-t', quote_rel($schema, $name) if defined $schema;
	my ($out, $err);
	IPC::Run::run(\@cmd, '>', \$out, '2>', \$err)
	  or return "pg_dump failed in database $db: $err";
	$out =~ s/^\\(?:un)?restrict [A-Za-z0-9]+\n//mg;
	return $out;
}

# A dump cut into its entries: the text before the first entry, one
# [type, schema, name, text] per "-- Name: ...; Type: ...; Schema: ..."
# header, each text running to the next header, and the closing lines.
sub dump_entries
{
	my ($dump) = @_;
	my @parts = split /(?=^--\n-- (?:Name: |PostgreSQL database dump complete))/m, $dump;
	my @entries = ([ 'prologue', '', '', shift @parts ]);
	for my $part (@parts)
	{
		if ($part =~ /^--\n-- PostgreSQL database dump complete\n/)
		{
			push @entries, [ 'epilogue', '', '', $part ];
			next;
		}
		$part =~ /^--\n-- Name: (.*); Type: (.*?); Schema: (.*?); Owner: .*\n--\n/
		  or die "unexpected pg_dump entry:\n$part";
		push @entries, [ $2, $3, $1, $part ];
	}
	return @entries;
}

# The dump without the triggers that enforce cross-service references (they
# call splitdb.reference_row() or splitdb.reference_flush(); the references
# test checks them) and those of the sibling's change capture (they call
# splitdb.capture_changes(); the rollback tests check them), and without the
# function entries pg_dump prints for nothing else
sub without_reference_triggers
{
	my ($dump) = @_;
	return $dump unless defined $dump && $dump =~ /^--\n-- Name: /m;
	my $kept = '';
	for my $e (dump_entries($dump))
	{
		my ($type, $schema, $name, $text) = @$e;
		next
		  if $type eq 'TRIGGER'
		  && $text =~ /EXECUTE FUNCTION splitdb\.(?:reference_(?:row|flush)|capture_changes)\(/;
		$kept .= $text;
	}
	return $kept;
}

# The dump without the FK CONSTRAINT entries named in %$drop
# ("schema|table constraint" => 1); dies when one of them is not there.
sub without_foreign_keys
{
	my ($dump, $drop, $what) = @_;
	my %seen;
	my $kept = '';
	for my $e (dump_entries($dump))
	{
		my ($type, $schema, $name, $text) = @$e;
		if ($type eq 'FK CONSTRAINT' && $drop->{"$schema|$name"})
		{
			$seen{"$schema|$name"} = 1;
			next;
		}
		$kept .= $text;
	}
	for my $k (sort keys %$drop)
	{
		die "cross-service foreign key $k is not in the source's dump of $what"
		  unless $seen{$k};
	}
	return $kept;
}

# "WITH owned AS (...)," the relations the service owns, partitions included;
# the caller's query goes on with more CTEs
sub owned_cte
{
	my ($service) = @_;
	return qq{
WITH owned AS (
	SELECT o.relid::oid AS relid FROM splitdb.owned_table o WHERE o.service = '$service'
	UNION
	SELECT p.relid FROM splitdb.owned_table o, pg_partition_tree(o.relid) p
	 WHERE o.service = '$service'),
};
}

# [schema, name, relkind] of every relation the service owns (partitions
# included) and of the sequences their defaults use or serial columns own;
# identity sequences are dumped with their table
sub oracle_relations
{
	my ($db, $service) = @_;
	my $rows = $node->safe_psql(
		$db, owned_cte($service) . qq{
rels AS (
	SELECT relid FROM owned
	UNION
	SELECT d.refobjid FROM pg_attrdef ad
	  JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid
	   AND d.refclassid = 'pg_class'::regclass
	  JOIN pg_class s ON s.oid = d.refobjid AND s.relkind = 'S'
	 WHERE ad.adrelid IN (SELECT relid FROM owned)
	UNION
	SELECT d.objid FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
	 WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
	   AND d.deptype = 'a' AND d.refobjid IN (SELECT relid FROM owned))
SELECT n.nspname, c.relname, c.relkind
  FROM rels r JOIN pg_class c ON c.oid = r.relid JOIN pg_namespace n ON n.oid = c.relnamespace
 ORDER BY 1, 2});
	return map { [ split /\|/, $_, 3 ] } split /\n/, $rows;
}

# the sequences the service's tables use (serial, identity, defaults), as
# "schema.name, ..." with quote_ident, sorted
sub service_sequences
{
	my ($db, $service) = @_;
	my $rows = $node->safe_psql(
		$db, owned_cte($service) . qq{
seqs AS (
	SELECT d.objid AS seq FROM pg_depend d
	 WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
	   AND d.deptype IN ('a', 'i') AND d.refobjid IN (SELECT relid FROM owned)
	UNION
	SELECT d.refobjid FROM pg_attrdef ad
	  JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid
	   AND d.refclassid = 'pg_class'::regclass
	 WHERE ad.adrelid IN (SELECT relid FROM owned))
SELECT format('%I.%I', n.nspname, c.relname)
  FROM seqs s JOIN pg_class c ON c.oid = s.seq AND c.relkind = 'S'
  JOIN pg_namespace n ON n.oid = c.relnamespace});
	return join(', ', sort split /\n/, $rows);
}

# is() on two texts; on failure, a unified diff of them as well
sub is_text
{
	my ($got, $expected, $name) = @_;
	return 1 if is($got, $expected, $name);
	my $dir = PostgreSQL::Test::Utils::tempdir();
	append_to_file("$dir/expected", $expected // '');
	append_to_file("$dir/got",      $got      // '');
	my ($out, $err);
	IPC::Run::run([ 'diff', '-u', "$dir/expected", "$dir/got" ], '>', \$out, '2>', \$err);
	diag("diff -u expected got:\n$out$err");
	return 0;
}

# a string as an SQL literal
sub sql_literal
{
	my ($s) = @_;
	$s =~ s/'/''/g;
	return "'$s'";
}

# "count|md5" of a table's rows, independent of their order
sub row_digest
{
	my ($db, $schema, $name) = @_;
	my $rel = quote_rel($schema, $name);
	return $node->safe_psql($db,
		qq{SELECT count(*) || '|' || coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '')
			 FROM ONLY $rel t});
}

# name => last value of every sequence of the given schemas, identity ones too
sub sequence_values
{
	my ($db, $schemas) = @_;
	my $rows = $node->safe_psql(
		$db, qq{
SELECT format('%I.%I', n.nspname, c.relname), coalesce(pg_sequence_last_value(c.oid)::text, 'never used')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'S' AND n.nspname IN ($schemas) ORDER BY 1});
	return map { split /\|/, $_, 2 } split /\n/, $rows;
}

# entries of a whole-database dump that describe types and functions
sub type_entries
{
	my ($dump) = @_;
	my %e;
	for my $entry (dump_entries($dump))
	{
		my ($type, $schema, $name, $text) = @$entry;
		next
		  unless $type =~ /^(TYPE|DOMAIN|FUNCTION|COLLATION|TEXT SEARCH (CONFIGURATION|DICTIONARY))$/
		  || ($type =~ /^(COMMENT|ACL)$/ && $name =~ /^(TYPE|DOMAIN|FUNCTION) /);
		# the SET lines pg_dump writes before a section belong to no entry
		$text =~ s/(?:^SET [^\n]*;\n\n?)+\z//m;
		$e{"$type $schema.$name"} = $text;
	}
	return %e;
}

# Everything the oracle compares, read from database $db for the relations
# @$rels.
sub snapshot
{
	my ($db, $rels, $seq_schemas) = @_;
	my %s = (dumps => {}, rows => {});
	for my $r (@$rels)
	{
		my ($schema, $name, $kind) = @$r;
		$s{dumps}{"$schema.$name"} = dump_schema($db, $schema, $name);
		$s{rows}{"$schema.$name"} = row_digest($db, $schema, $name)
		  if $kind eq 'r';
	}
	$s{sequences} = { sequence_values($db, $seq_schemas) };
	$s{types} = { type_entries(dump_schema($db)) };
	return \%s;
}

# The secondary indexes, unique and exclusion constraints and foreign keys
# of a sibling table whose catalog row is not newer than the table's newest
# row: made before (or with) the data.  Empty when all came after.  An
# index's age is that of the older of its pg_class and pg_index rows: ALTER
# INDEX ... ATTACH PARTITION rewrites the first, CLUSTER ON the second.
sub made_before_data
{
	my ($db, $schema, $name) = @_;
	my $rel = quote_rel($schema, $name);
	my $relid = sql_literal($rel) . '::regclass';
	return $node->safe_psql(
		$db, qq{
WITH newest AS (SELECT min(age(xmin)) AS age FROM ONLY $rel),
objs AS (
	SELECT 'index ' || c.relname AS what, greatest(age(c.xmin), age(i.xmin)) AS age
	  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
	 WHERE i.indrelid = $relid AND NOT i.indisprimary
	UNION ALL
	SELECT 'constraint ' || k.conname, age(k.xmin)
	  FROM pg_constraint k
	 WHERE k.conrelid = $relid AND k.contype IN ('f', 'u', 'x'))
SELECT coalesce(string_agg(o.what, ', ' ORDER BY o.what), '')
  FROM objs o, newest n WHERE o.age >= n.age});
}

# Migrate service $service of database $db, which owns @$tables, and check
# the oracle.  $expected_refs: the cross-service foreign keys, one
# "child_table constraint -> parent_table" line each, sorted.
sub check_service
{
	my (%a) = @_;
	my ($db, $service, $tables) = @a{qw(db service tables)};
	my $sibling = "${db}_$service";
	my $seq_schemas = $a{seq_schemas} // "'public'";

	$node->safe_psql(
		$db, qq{
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS splitdb CASCADE;
SELECT splitdb_add_service('$service', dbname => '$sibling');
SELECT splitdb_assign('$service', } . join(', ', map { sql_literal($_) } @$tables) . ')');

	my @rels = oracle_relations($db, $service);
	my $sequences = service_sequences($db, $service);
	my $before = snapshot($db, \@rels, $seq_schemas);

	# online, the default; a schema with a table that has no key is refused
	# for it, changing nothing, and goes offline
	my ($ret, $out, $err) = $node->psql($db, "SELECT splitdb_migrate('$service', wait => true)");
	if ($ret != 0 && $err =~ /has no primary key or unique key over NOT NULL columns/)
	{
		like($err, qr/mode => 'offline'/, "$db: online refused for a table without a key, the hint names offline");
		is($node->safe_psql($db, "SELECT count(*) FROM splitdb.job WHERE service = '$service'"),
			'0', "$db: the refused online call started no job");
		($ret, $out, $err) = $node->psql($db,
			"SELECT splitdb_migrate('$service', mode => 'offline', wait => true)");
	}
	is($ret, 0, "$db: splitdb_migrate('$service') succeeds") or diag($err);
	is( $node->safe_psql(
			$db, "SELECT state || coalesce(' ' || last_error, '') FROM splitdb_status WHERE service = '$service'"),
		'done',
		"$db: the job of service $service is done");

	# the cross-service foreign keys, as splitdb recorded them
	my $refs = $node->safe_psql(
		$db, qq{
SELECT (parse_ident(child_table))[1], (parse_ident(child_table))[2], constraint_name,
	   child_service IS NOT NULL, child_table, parent_table
  FROM splitdb.reference r JOIN splitdb.job j USING (job_id)
 WHERE j.service = '$service' ORDER BY 5, 3});
	my (%drop, @ref_lines);
	for my $line (split /\n/, $refs)
	{
		my ($schema, $table, $con, $child_owned, $child, $parent) = split /\|/, $line;
		push @ref_lines, "$child $con -> $parent";
		$drop{"$schema.$table"}{"$schema|$table $con"} = 1 if $child_owned eq 't';
	}
	is(join("\n", @ref_lines), $a{expected_refs},
		"$db: splitdb.reference lists the cross-service foreign keys of service $service");

	my $after = snapshot($sibling, \@rels, $seq_schemas);

	for my $r (@rels)
	{
		my ($schema, $name, $kind) = @$r;
		my $key = "$schema.$name";
		is_text(without_reference_triggers($after->{dumps}{$key}),
			without_reference_triggers(
				without_foreign_keys($before->{dumps}{$key}, $drop{$key} // {}, $key)),
			"$db: pg_dump --schema-only -t $key in the sibling matches the source");
	}

	for my $k (sort keys %{ $after->{types} })
	{
		# a function without a search_path of its own gets, in the sibling,
		# the one it resolved names with in the source
		if ($k =~ /^FUNCTION / && ($before->{types}{$k} // '') !~ /^    SET search_path TO /m)
		{
			ok($after->{types}{$k} =~ s/^    SET search_path TO [^\n]*\n//m,
				"$db: $k in the sibling has the source's search_path");
		}
		is_text($after->{types}{$k}, $before->{types}{$k},
			"$db: $k in the sibling matches the source");
	}
	is(join(', ', sort keys %{ $after->{types} }),
		$a{expected_types}, "$db: the sibling has the types and functions of service $service")
	  if defined $a{expected_types};

	my %seqs = map { $_ => $before->{sequences}{$_} }
	  grep { exists $before->{sequences}{$_} } keys %{ $after->{sequences} };
	is_deeply($after->{sequences}, \%seqs,
		"$db: the sibling's sequences have the source's last values");
	is(join(', ', sort keys %{ $after->{sequences} }),
		$sequences, "$db: the sibling has the sequences of service $service, no other");
	is($sequences, $a{expected_sequences}, "$db: service $service uses the expected sequences")
	  if defined $a{expected_sequences};

	for my $r (grep { $_->[2] eq 'r' } @rels)
	{
		my ($schema, $name) = @$r;
		is($after->{rows}{"$schema.$name"}, $before->{rows}{"$schema.$name"},
			"$db: rows of $schema.$name are the same in the sibling");
		is(made_before_data($sibling, $schema, $name), '',
			"$db: indexes and constraints of $schema.$name were made after its rows");
	}
}

# ---------------------------------------------------------------- part 1

$node->safe_psql(
	'postgres', <<'SQL');
CREATE ROLE reader;
CREATE ROLE "Prüfer ""Q""";
CREATE ROLE lager;
CREATE SCHEMA inventar;
GRANT USAGE, CREATE ON SCHEMA inventar TO lager;

CREATE TYPE room_kind AS ENUM ('single', 'double', 'suite', 'Grüne Suite');
CREATE DOMAIN price AS numeric(10, 2) DEFAULT 1.00 NOT NULL
	CONSTRAINT price_positive CHECK (VALUE > 0);
CREATE TYPE address AS (street text, city text COLLATE "C", zip varchar(10));
CREATE TYPE floatrange AS RANGE (subtype = float8, subtype_diff = float8mi);
CREATE TYPE inventar.einheit AS ENUM ('Stück', 'kg');
CREATE TYPE unused AS ENUM ('never');
COMMENT ON TYPE room_kind IS 'kinds of room';
REVOKE USAGE ON TYPE room_kind FROM PUBLIC;
GRANT USAGE ON TYPE room_kind TO reader;
ALTER DOMAIN price OWNER TO lager;
COMMENT ON DOMAIN price IS 'a price, never zero';
COMMENT ON TYPE address IS 'postal address';

CREATE FUNCTION norm(t text) RETURNS text IMMUTABLE LANGUAGE sql
	RETURN lower(btrim(t));
-- a CHECK calls tidy(), whose body calls padded() by name: PostgreSQL
-- records neither call in pg_depend
CREATE FUNCTION padded(t text) RETURNS boolean IMMUTABLE LANGUAGE sql
	AS $$ SELECT btrim(t) <> t $$;
CREATE FUNCTION tidy(t text) RETURNS boolean IMMUTABLE LANGUAGE sql
	SET search_path = public AS $$ SELECT NOT padded(t) $$;
-- text search configurations of the user's, one named by an index (a
-- regconfig, in pg_depend), one only in a function's body, and a
-- dictionary of the user's
CREATE TEXT SEARCH DICTIONARY hotel_stop (TEMPLATE = pg_catalog.simple, stopwords = english);
CREATE TEXT SEARCH CONFIGURATION "Hotel FTS" (PARSER = pg_catalog."default");
ALTER TEXT SEARCH CONFIGURATION "Hotel FTS" ADD MAPPING FOR asciiword, word WITH hotel_stop, simple;
ALTER TEXT SEARCH CONFIGURATION "Hotel FTS" ADD MAPPING FOR int WITH simple;
CREATE TEXT SEARCH CONFIGURATION hotel_words (COPY = pg_catalog.simple);
CREATE FUNCTION hotel_words(t text) RETURNS tsvector IMMUTABLE LANGUAGE sql
	AS $$ SELECT to_tsvector('public.hotel_words', t) $$;
-- a collation named only in the body of a function that an index calls
CREATE COLLATION "Nummern" (provider = icu, locale = 'und-u-kn-true');
CREATE FUNCTION num_key(t text) RETURNS text IMMUTABLE LANGUAGE sql
	AS $$ SELECT lower(t COLLATE public."Nummern") $$;

CREATE SEQUENCE shared_seq AS integer START WITH 100 INCREMENT BY 5 CACHE 3;
COMMENT ON SEQUENCE shared_seq IS 'reference numbers';
GRANT USAGE ON SEQUENCE shared_seq TO reader;

-- stays in the source; booking refers to it
CREATE TABLE guest (guest_id int PRIMARY KEY, name text NOT NULL);

CREATE TABLE hotel (
	hotel_id serial PRIMARY KEY,
	obsolete int,
	name text COLLATE "C" NOT NULL,
	address address,
	amenities room_kind[],
	rating int CONSTRAINT hotel_rating_check CHECK (rating BETWEEN 1 AND 5),
	code text NOT NULL DEFAULT 'H-' || nextval('shared_seq'),
	parent_hotel int,
	CONSTRAINT hotel_name_key UNIQUE (name) DEFERRABLE INITIALLY IMMEDIATE,
	CONSTRAINT hotel_code_key UNIQUE NULLS NOT DISTINCT (code),
	CONSTRAINT hotel_name_norm CHECK (norm(name) <> ''),
	CONSTRAINT hotel_name_tidy CHECK (tidy(name))
) WITH (fillfactor = 70, autovacuum_enabled = false);
CREATE INDEX hotel_norm_idx ON hotel (norm(name) COLLATE "C");
CREATE INDEX hotel_fts_idx ON hotel USING gin (to_tsvector('"Hotel FTS"', name));
CREATE INDEX hotel_words_idx ON hotel USING gin (hotel_words(name));
CREATE INDEX hotel_num_idx ON hotel (num_key(name));
ALTER TABLE hotel DROP COLUMN obsolete;
ALTER TABLE hotel ADD CONSTRAINT hotel_parent_fkey FOREIGN KEY (parent_hotel) REFERENCES hotel
	NOT VALID;
COMMENT ON TABLE hotel IS 'hotels';
COMMENT ON COLUMN hotel.name IS 'the name, sorted bytewise';
COMMENT ON CONSTRAINT hotel_name_key ON hotel IS 'names are unique';
COMMENT ON CONSTRAINT hotel_rating_check ON hotel IS 'one to five stars';
GRANT SELECT, INSERT ON hotel TO reader;
GRANT SELECT ON hotel TO "Prüfer ""Q""" WITH GRANT OPTION;
ALTER TABLE hotel ALTER COLUMN name SET STATISTICS 500;

CREATE TABLE "Zimmer ""Größe""" (
	hotel_id int REFERENCES hotel ON DELETE CASCADE,
	"Zimmer Nr" int,
	kind room_kind NOT NULL DEFAULT 'single',
	preis price,
	"Fläche m²" numeric(6, 1),
	volumen numeric GENERATED ALWAYS AS ("Fläche m²" * 2.5) STORED,
	PRIMARY KEY (hotel_id, "Zimmer Nr")
);
COMMENT ON TABLE "Zimmer ""Größe""" IS 'rooms, with a "quoted" name';
COMMENT ON COLUMN "Zimmer ""Größe"""."Fläche m²" IS 'floor area';
GRANT SELECT ("Zimmer Nr", kind), UPDATE (preis) ON "Zimmer ""Größe""" TO "Prüfer ""Q""";
GRANT SELECT ON "Zimmer ""Größe""" TO reader;

CREATE TABLE booking (
	booking_id bigint GENERATED ALWAYS AS IDENTITY (START WITH 1000 INCREMENT BY 10 CACHE 5),
	hotel_id int NOT NULL,
	room_no int NOT NULL,
	guest_id int REFERENCES guest (guest_id),
	during tstzrange NOT NULL,
	temps floatrange,
	nights int4multirange,
	ref_no int DEFAULT nextval('shared_seq'),
	note text,
	PRIMARY KEY (booking_id),
	CONSTRAINT booking_room_fkey FOREIGN KEY (hotel_id, room_no)
		REFERENCES "Zimmer ""Größe""" (hotel_id, "Zimmer Nr") MATCH FULL
		DEFERRABLE INITIALLY DEFERRED,
	CONSTRAINT booking_no_overlap EXCLUDE USING gist (during WITH &&)
		WHERE (note IS DISTINCT FROM 'overbooked')
);
ALTER TABLE booking ADD CONSTRAINT booking_note_len CHECK (length(note) < 500) NOT VALID;
CREATE INDEX booking_hotel_idx ON booking (hotel_id) INCLUDE (room_no);
CREATE INDEX booking_lower_note ON booking (lower(note) text_pattern_ops);
CREATE INDEX booking_partial ON booking (hotel_id, room_no) WHERE note IS NOT NULL;
CREATE UNIQUE INDEX booking_ref_uq ON booking (ref_no DESC NULLS LAST);
COMMENT ON INDEX booking_partial IS 'bookings with a note';
COMMENT ON CONSTRAINT booking_room_fkey ON booking IS 'the room booked';
COMMENT ON COLUMN booking.during IS 'check-in to check-out';
ALTER TABLE booking ALTER COLUMN note SET STORAGE EXTERNAL;
ALTER TABLE booking ALTER COLUMN hotel_id SET (n_distinct = 3);
ALTER TABLE booking CLUSTER ON booking_hotel_idx;
ALTER INDEX booking_lower_note ALTER COLUMN 1 SET STATISTICS 200;
CREATE STATISTICS booking_stats (dependencies, ndistinct) ON hotel_id, room_no FROM booking;
ALTER STATISTICS booking_stats SET STATISTICS 300;
COMMENT ON STATISTICS booking_stats IS 'hotel and room go together';

CREATE TABLE "ÄnderungsLog" (
	"LogId" bigint GENERATED BY DEFAULT AS IDENTITY
		(START WITH 7 INCREMENT BY 3 MINVALUE 7 CACHE 10),
	"Geändert am" timestamptz NOT NULL DEFAULT now(),
	"Mixed Case" text,
	booking_id bigint REFERENCES booking ON DELETE CASCADE,
	CONSTRAINT "ÄnderungsLog_pkey" PRIMARY KEY ("LogId")
);
ALTER TABLE "ÄnderungsLog" REPLICA IDENTITY FULL;
ALTER TABLE "ÄnderungsLog" ALTER COLUMN "Mixed Case" SET COMPRESSION pglz;
COMMENT ON COLUMN "ÄnderungsLog"."Mixed Case" IS 'what happened';

CREATE FUNCTION log_booking() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO public."ÄnderungsLog" ("Mixed Case", booking_id)
	VALUES (TG_OP || ' ' || NEW.booking_id, NEW.booking_id);
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION log_booking() IS 'writes the change log';
REVOKE EXECUTE ON FUNCTION log_booking() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION log_booking() TO reader;
CREATE TRIGGER booking_log AFTER INSERT OR UPDATE OF note ON booking
	FOR EACH ROW WHEN (NEW.note IS NOT NULL) EXECUTE FUNCTION log_booking();
CREATE TRIGGER booking_log_off AFTER DELETE ON booking
	FOR EACH ROW EXECUTE FUNCTION log_booking();
ALTER TABLE booking DISABLE TRIGGER booking_log_off;
COMMENT ON TRIGGER booking_log ON booking IS 'keeps the change log';
-- a trigger's function calls count_text() by name, and names
-- guest_label(), which takes the row type of a table that stays and so
-- cannot be in the sibling
CREATE FUNCTION count_text(n bigint) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	RETURN n || CASE WHEN n = 1 THEN ' booking' ELSE ' bookings' END;
END
$$;
CREATE FUNCTION guest_label(g guest) RETURNS text LANGUAGE sql AS $$ SELECT g.name $$;
CREATE FUNCTION booking_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE NOTICE '%', count_text((SELECT count(*) FROM inserted));
	IF false THEN
		RAISE NOTICE '%', guest_label(NULL);
	END IF;
	RETURN NULL;
END
$$;
CREATE TRIGGER booking_count AFTER INSERT ON booking
	REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION booking_count();
CREATE CONSTRAINT TRIGGER booking_check_late AFTER UPDATE ON booking
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION log_booking();

-- stays in the source and refers to an owned table
CREATE TABLE invoice (
	invoice_id int PRIMARY KEY,
	booking_id bigint REFERENCES booking,
	amount numeric
);

CREATE UNLOGGED TABLE cache_entry (
	key text PRIMARY KEY,
	value jsonb,
	expires timestamptz,
	hits serial,
	CONSTRAINT cache_key_len CHECK (length(key) < 100) NO INHERIT
);
ALTER TABLE cache_entry ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY cache_read ON cache_entry FOR SELECT TO reader USING (key <> 'secret');
CREATE POLICY cache_write ON cache_entry AS RESTRICTIVE FOR UPDATE TO reader, "Prüfer ""Q"""
	USING (true) WITH CHECK (key <> 'secret');
COMMENT ON POLICY cache_read ON cache_entry IS 'no secrets';
GRANT SELECT ON cache_entry TO reader;
REVOKE TRUNCATE, TRIGGER ON cache_entry FROM CURRENT_USER;

-- RANGE partitions, one of them DEFAULT; a CHECK on one partition only
CREATE TABLE measurement (
	id bigint NOT NULL,
	logdate date NOT NULL,
	value numeric CONSTRAINT measurement_value_check CHECK (value >= 0),
	hotel_id int,
	PRIMARY KEY (id, logdate),
	CONSTRAINT measurement_hotel_fkey FOREIGN KEY (hotel_id) REFERENCES hotel
		ON DELETE SET NULL (hotel_id)
) PARTITION BY RANGE (logdate);
CREATE TABLE measurement_2024 PARTITION OF measurement
	FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE measurement_2025 PARTITION OF measurement
	FOR VALUES FROM ('2025-01-01') TO ('2026-01-01') WITH (fillfactor = 80);
CREATE TABLE measurement_rest PARTITION OF measurement DEFAULT;
-- made as a table of its own, columns in another order, then attached
CREATE TABLE measurement_2023 (
	hotel_id int,
	value numeric CONSTRAINT measurement_value_check CHECK (value >= 0),
	logdate date NOT NULL,
	id bigint NOT NULL
);
ALTER TABLE measurement ATTACH PARTITION measurement_2023
	FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
GRANT SELECT ON measurement_rest TO PUBLIC;
ALTER TABLE measurement_2024 ADD CONSTRAINT measurement_2024_id_check CHECK (id > 0);
CREATE INDEX measurement_value_idx ON measurement (value);
CREATE FUNCTION measurement_clamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	NEW.value := greatest(NEW.value, 0);
	RETURN NEW;
END
$$;
ALTER FUNCTION measurement_clamp() OWNER TO lager;
CREATE TRIGGER measurement_clamp BEFORE INSERT ON measurement
	FOR EACH ROW EXECUTE FUNCTION measurement_clamp();
ALTER TABLE measurement_rest ENABLE ALWAYS TRIGGER measurement_clamp;
CREATE TRIGGER measurement_2024_touch BEFORE UPDATE ON measurement_2024
	FOR EACH ROW EXECUTE FUNCTION measurement_clamp();
CREATE INDEX measurement_2025_brin ON measurement_2025 USING brin (logdate);
COMMENT ON TABLE measurement IS 'readings';
COMMENT ON TABLE measurement_rest IS 'everything else';
GRANT SELECT ON measurement TO reader;

-- a foreign key to a partitioned table, from an owned table and from one that stays
CREATE TABLE measurement_note (
	id bigint,
	logdate date,
	note text,
	CONSTRAINT measurement_note_fkey FOREIGN KEY (id, logdate) REFERENCES measurement
		ON DELETE CASCADE
);
CREATE TABLE alarm (
	alarm_id int PRIMARY KEY,
	id bigint,
	logdate date,
	CONSTRAINT alarm_measurement_fkey FOREIGN KEY (id, logdate) REFERENCES measurement
);

-- LIST partitions in a second schema, owned by another role
CREATE TABLE inventar."Artikel" (
	region text NOT NULL,
	"ArtikelNr" int NOT NULL,
	bezeichnung text COLLATE "C",
	einheit inventar.einheit NOT NULL DEFAULT 'Stück',
	menge int DEFAULT 0 CHECK (menge >= 0),
	hotel_id int,
	PRIMARY KEY (region, "ArtikelNr")
) PARTITION BY LIST (region);
CREATE TABLE inventar."Artikel_Nord" PARTITION OF inventar."Artikel" FOR VALUES IN ('nord', 'Nord');
CREATE TABLE inventar."Artikel_Süd" PARTITION OF inventar."Artikel" FOR VALUES IN ('süd');
ALTER TABLE inventar."Artikel" ADD CONSTRAINT "Artikel_bez_key" UNIQUE (region, bezeichnung);
CREATE INDEX "Artikel_hotel_idx" ON inventar."Artikel" (hotel_id);
ALTER TABLE inventar."Artikel_Süd" REPLICA IDENTITY USING INDEX "Artikel_Süd_pkey";
ALTER TABLE inventar."Artikel" ADD CONSTRAINT artikel_hotel_fkey FOREIGN KEY (hotel_id) REFERENCES hotel;
ALTER TABLE inventar."Artikel" OWNER TO lager;
ALTER TABLE inventar."Artikel_Nord" OWNER TO lager;
ALTER TABLE inventar."Artikel_Süd" OWNER TO lager;
GRANT SELECT ON inventar."Artikel" TO reader;

INSERT INTO guest VALUES (1, 'Ada'), (2, 'Bo');
INSERT INTO hotel (name, address, amenities, rating, parent_hotel) VALUES
	('Alpenblick', ROW('Hauptstraße 1', 'Zürich', '8001'), '{suite,"Grüne Suite"}', 4, NULL),
	('Zum Löwen', ROW('Markt 2', 'Köln', '50667'), NULL, NULL, 1),
	('beach', NULL, '{}', 5, 1);
INSERT INTO "Zimmer ""Größe""" (hotel_id, "Zimmer Nr", kind, preis, "Fläche m²")
	SELECT h, r, (ARRAY['single', 'double', 'suite', 'Grüne Suite'])[1 + r % 4]::room_kind,
		   10 + r, r * 3.5
	  FROM generate_series(1, 3) h, generate_series(1, 20) r;
INSERT INTO booking (hotel_id, room_no, guest_id, during, temps, nights, note)
	SELECT 1 + i % 3, 1 + i % 20, 1 + i % 2,
		   tstzrange('2024-01-01'::timestamptz + i * interval '1 day',
					 '2024-01-01'::timestamptz + (i + 1) * interval '1 day'),
		   floatrange(i * 0.5, i * 0.5 + 1),
		   int4multirange(int4range(i, i + 2), int4range(i + 5, i + 6)),
		   CASE WHEN i % 3 = 0 THEN 'note ' || i END
	  FROM generate_series(1, 200) i;
UPDATE booking SET note = 'changed' WHERE booking_id = 1010;
INSERT INTO invoice SELECT i, 1000 + i * 10, i * 9.5 FROM generate_series(1, 50) i;
INSERT INTO cache_entry VALUES ('a', '{"x": 1}', now()), ('b', NULL, NULL);
INSERT INTO measurement
	SELECT i, date '2024-06-01' + i * 3, i * 1.5, 1 + i % 3 FROM generate_series(1, 300) i;
INSERT INTO measurement VALUES (1000, date '2030-01-01', -4, NULL),
	(2000, date '2023-05-05', 7, 2);
INSERT INTO measurement_note SELECT id, logdate, 'checked' FROM measurement WHERE id % 50 = 0;
INSERT INTO alarm VALUES (1, 2000, date '2023-05-05');
INSERT INTO inventar."Artikel" VALUES
	('nord', 1, 'Seife', 'Stück', 10, 1), ('Nord', 2, 'Handtuch', 'Stück', 3, 2),
	('süd', 1, 'Seife', 'kg', 0, NULL);
SQL

check_service(
	db      => 'postgres',
	service => 'svc',
	tables  => [
		'hotel', '"Zimmer ""Größe"""', 'booking', '"ÄnderungsLog"',
		'cache_entry', 'measurement', 'measurement_note', 'inventar."Artikel"'
	],
	seq_schemas   => "'public', 'inventar'",
	expected_refs => join("\n",
		'public.alarm alarm_measurement_fkey -> public.measurement',
		'public.booking booking_guest_id_fkey -> public.guest',
		'public.invoice invoice_booking_id_fkey -> public.booking'),
	expected_types => join(', ',
		'ACL public.FUNCTION log_booking()',
		'ACL public.TYPE room_kind',
		'COLLATION public.Nummern',
		'COMMENT public.DOMAIN price',
		'COMMENT public.FUNCTION log_booking()',
		'COMMENT public.TYPE address',
		'COMMENT public.TYPE room_kind',
		'DOMAIN public.price',
		'FUNCTION public.booking_count()',
		'FUNCTION public.count_text(bigint)',
		'FUNCTION public.hotel_words(text)',
		'FUNCTION public.log_booking()',
		'FUNCTION public.measurement_clamp()',
		'FUNCTION public.norm(text)',
		'FUNCTION public.num_key(text)',
		'FUNCTION public.padded(text)',
		'FUNCTION public.tidy(text)',
		'TEXT SEARCH CONFIGURATION public.Hotel FTS',
		'TEXT SEARCH CONFIGURATION public.hotel_words',
		'TEXT SEARCH DICTIONARY public.hotel_stop',
		'TYPE inventar.einheit',
		'TYPE public.address',
		'TYPE public.floatrange',
		'TYPE public.room_kind'),
	expected_sequences => join(', ',
		'public."ÄnderungsLog_LogId_seq"', 'public.booking_booking_id_seq',
		'public.cache_entry_hits_seq',      'public.hotel_hotel_id_seq',
		'public.shared_seq'));

# This server keeps a version of each column among its attribute options
# (pg_attver=N, which pg_dump leaves out): the sibling's DDL copies only the
# options users set.  Every statement is in the log (log_statement = all).
{
	my $log = slurp_file($node->logfile);
	like($log, qr/ALTER TABLE ONLY public\.booking ALTER COLUMN hotel_id SET \(n_distinct=3\)/,
		'the attribute option set by the user reached the sibling');
	unlike($log, qr/SET \([^)]*pg_attver/,
		'the column versions of the server were not copied as attribute options');
}

# ---------------------------------------------------------------- part 2

# the samples: $SPLITDB_SAMPLES, or ../shared/samples next to the checkout
# (as test/samples/run finds them)
my $top = dirname(dirname(dirname(abs_path(__FILE__))));
my $samples = $ENV{SPLITDB_SAMPLES} // "$top/../shared/samples";
my @missing = grep { !-d "$samples/$_" } qw(pagila chinook northwind);
if (@missing)
{
	fail("sample databases: no @missing in $samples"
		  . ' (put the samples in ../shared/samples next to the checkout,'
		  . ' or name their directory in SPLITDB_SAMPLES)');
}
else
{
	# run psql on a file of SQL in database $db; stop at the first error
	my $load = sub {
		my ($db, $file) = @_;
		local $ENV{LC_ALL} = 'C';
		PostgreSQL::Test::Utils::system_or_bail('psql', '-X', '-q', '-v',
			'ON_ERROR_STOP=1', '-d', $node->connstr($db), '-f', $file);
	};
	# the samples' dumps give their objects to role postgres
	$node->safe_psql('postgres',
		q{DO $$ BEGIN IF to_regrole('postgres') IS NULL THEN CREATE ROLE postgres; END IF; END $$});

	# pagila: the film catalog, the partitioned payments, then the rest
	$node->safe_psql('postgres', 'CREATE DATABASE pagila');
	$load->('pagila', "$samples/pagila/pagila-schema.sql");
	$load->('pagila', "$samples/pagila/pagila-data.sql");
	check_service(
		db      => 'pagila',
		service => 'catalog',
		tables =>
		  [qw(public.film public.film_actor public.film_category public.actor public.category public.language)],
		expected_refs => join("\n",
			'public.inventory inventory_film_id_fkey -> public.film'));
	check_service(
		db            => 'pagila',
		service       => 'billing',
		tables        => [qw(public.payment)],
		expected_refs => join("\n",
			map {
				my $p = "payment_p2022_0$_";
				map { "public.$p ${p}_${_}_id_fkey -> public.$_" } qw(customer rental staff)
			} 1 .. 6));
	# the payments' keys are declared on their partitions: a payment whose
	# customer is missing is refused through the shim and directly in the
	# sibling (23503) in a partition that declares the key, accepted in the
	# one that does not (payment_p2022_07), as with the original keys
	for my $db (qw(pagila pagila_billing))
	{
		for my $day (qw(2022-01-15 2022-05-20))
		{
			my ($ret, $out, $err) = $node->psql($db,
				"INSERT INTO public.payment (customer_id, staff_id, rental_id, amount, payment_date)"
				  . " VALUES (-5, 1, 1, 1.00, '$day')",
				extra_params => [ '-v', 'VERBOSITY=verbose' ]);
			like($err, qr/ERROR:  23503: .*payment_p2022_0\d_customer_id_fkey/,
				"$db: a payment of $day for a missing customer is refused with 23503");
		}
		is( $node->safe_psql(
				$db, q{BEGIN;
INSERT INTO public.payment (customer_id, staff_id, rental_id, amount, payment_date)
VALUES (1, 1, 1, 1.00, '2022-05-20'), (-5, 1, 1, 1.00, '2022-07-20')
RETURNING customer_id;
ROLLBACK}),
			"1\n-5",
			"$db: a payment for a present customer, and one where no key is declared, are accepted");
	}
	is($node->safe_psql('pagila_billing', 'SELECT count(*) FROM public.payment WHERE customer_id < 0'),
		'0', 'pagila: the refused payments reached no partition of the sibling');

	# the keys to the film catalog and the payments were dropped by their cutovers
	check_service(
		db      => 'pagila',
		service => 'store',
		tables  => [
			qw(public.store public.staff public.customer public.address public.city
			  public.country public.inventory public.rental)
		],
		expected_refs => '');

	# chinook: sales (a self-referencing key among them), then the music
	$node->safe_psql('postgres', 'CREATE DATABASE chinook');
	{
		my $sql = slurp_file("$samples/chinook/Chinook_PostgreSql_AutoIncrementPKs.sql");
		$sql =~ s/^(DROP DATABASE|CREATE DATABASE|\\c ).*\n//mg;
		my $file = PostgreSQL::Test::Utils::tempdir() . '/chinook.sql';
		append_to_file($file, $sql);
		$load->('chinook', $file);
	}
	check_service(
		db            => 'chinook',
		service       => 'sales',
		tables =>
		  [qw(public.invoice public.invoice_line public.customer public.employee)],
		expected_refs =>
		  'public.invoice_line invoice_line_track_id_fkey -> public.track');
	check_service(
		db      => 'chinook',
		service => 'music',
		tables  => [
			qw(public.artist public.album public.track public.genre public.media_type
			  public.playlist public.playlist_track)
		],
		expected_refs => '');

	# northwind: orders with their details, shippers and employees
	$node->safe_psql('postgres', 'CREATE DATABASE northwind');
	$load->('northwind', "$samples/northwind/northwind.sql");
	check_service(
		db            => 'northwind',
		service       => 'orders',
		tables => [
			qw(public.orders public.order_details public.shippers public.employees
			  public.employee_territories)
		],
		expected_refs => join("\n",
			'public.employee_territories fk_employee_territories_territories -> public.territories',
			'public.order_details fk_order_details_products -> public.products',
			'public.orders fk_orders_customers -> public.customers'));
}

$node->stop;

done_testing();
