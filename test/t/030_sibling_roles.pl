# Copyright (c) 2026, splitdb developers

# A service whose sibling is on another server, where some of the roles that
# the tables' policies and grants name do not exist.
#
# "memo" (in schema "Büro", forced row-level security) moves; its policies
# name roles of the source's cluster only (memo_only_here), roles of both
# clusters (memo_reader) or PUBLIC.  Checked here:
# - the job ends done (before, CREATE POLICY failed with 42704 in indexing,
#   after the whole copy: role "memo_only_here" does not exist);
# - in the sibling: a policy that names only roles missing there is not
#   made (it applies to no role there), one that names some of them names
#   the others, one TO PUBLIC is made as it is; row-level security is
#   enabled and forced;
# - the schema grants USAGE to memo_reader, which exists there, and the
#   reader reads, as the policies let it, the table in the sibling.

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SplitdbTest qw(start_pair sibling_service_sql);

my ($source, $sibling, $user) = start_pair();
$sibling->safe_psql('postgres', 'CREATE DATABASE memos');
$sibling->safe_psql('postgres', 'CREATE ROLE memo_reader');
$source->safe_psql('postgres', 'CREATE DATABASE mono');
$source->safe_psql(
	'mono', q{
CREATE ROLE memo_reader;
CREATE ROLE memo_only_here;
CREATE ROLE memo_also_here;
CREATE SCHEMA "Büro";
GRANT USAGE ON SCHEMA "Büro" TO memo_reader, memo_only_here;
CREATE TABLE "Büro".memo (id integer PRIMARY KEY, author text NOT NULL, body text);
ALTER TABLE "Büro".memo ENABLE ROW LEVEL SECURITY;
ALTER TABLE "Büro".memo FORCE ROW LEVEL SECURITY;
CREATE POLICY only_here ON "Büro".memo TO memo_only_here USING (true);
CREATE POLICY "some here" ON "Büro".memo FOR SELECT TO memo_only_here, memo_reader, memo_also_here
	USING (author = 'ann');
CREATE POLICY everyone ON "Büro".memo AS RESTRICTIVE TO PUBLIC USING (body IS NOT NULL);
GRANT SELECT ON "Büro".memo TO memo_reader, memo_only_here;
INSERT INTO "Büro".memo VALUES (1, 'ann', 'a'), (2, 'bob', 'b'), (3, 'ann', NULL);
});
$source->safe_psql('mono',
	"CREATE EXTENSION splitdb CASCADE;\n"
	  . sibling_service_sql($sibling, $user, 'memo', dbname => 'memos', tables => ['"Büro".memo']));
my ($rc, $out, $err) =
  $source->psql('mono', "SELECT splitdb_migrate('memo', mode => 'offline', wait => true) > 0");
is($rc, 0, 'the migration ends, though policies name roles the sibling lacks');
diag($err) if $rc;
is( $source->safe_psql('mono', "SELECT state FROM splitdb.job WHERE service = 'memo'"),
	'done', 'the job is done');

is( $sibling->safe_psql(
		'memos', q{
SELECT string_agg(format('%s %s %s %s', polname, polpermissive, polcmd, polroles::regrole[]), E'\n'
				  ORDER BY polname)
  FROM pg_policy WHERE polrelid = '"Büro".memo'::regclass}),
	"everyone f * {-}\nsome here t r {memo_reader}",
	'the sibling has the policies for its own roles, and none that applies to no role there');
is( $sibling->safe_psql(
		'memos',
		q{SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = '"Büro".memo'::regclass}),
	't|t',
	'row-level security is enabled and forced in the sibling');
is( $sibling->safe_psql('memos',
		q{SELECT has_schema_privilege('memo_reader', 'Büro', 'USAGE'),
				 has_schema_privilege('memo_reader', 'Büro', 'CREATE')}),
	't|f',
	'the schema grants USAGE, and only USAGE, to the role that has it in the source');
is( $sibling->safe_psql('memos',
		q{SET ROLE memo_reader; SELECT string_agg(id::text, ',' ORDER BY id) FROM "Büro".memo}),
	'1',
	'the reader reads in the sibling the rows the policies let it');

done_testing();
