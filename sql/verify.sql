--
-- verify: splitdb_verify() compares row counts and checksums of the source
-- and the sibling
--
CREATE EXTENSION splitdb CASCADE;
SELECT current_database() AS source_db \gset
SELECT splitdb_add_service('ver_svc');

-- tables with values whose text form depends on settings, a partitioned
-- table, an empty table, and a table with a dropped column
CREATE TABLE ver_plain (id int PRIMARY KEY, name text, at timestamptz,
						f float8, b bytea, span interval, d date);
CREATE TABLE "Vér Part" (id int, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE "Vér Part 1" PARTITION OF "Vér Part" FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE "Vér Part 2" PARTITION OF "Vér Part" FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE ver_empty (id int PRIMARY KEY);
CREATE TABLE ver_dropped (id int PRIMARY KEY, gone text, kept text);
ALTER TABLE ver_dropped DROP COLUMN gone;
CREATE TABLE ver_nocols ();
INSERT INTO ver_nocols DEFAULT VALUES;
INSERT INTO ver_plain
	SELECT g, 'row ' || g, '2026-01-01 10:00+02'::timestamptz + g * interval '1 hour',
		   g / 3.0, decode(md5(g::text), 'hex'), g * interval '90 minutes',
		   '2026-01-01'::date + g
	  FROM generate_series(1, 500) g;
INSERT INTO "Vér Part" SELECT g, '2025-06-01'::date + g FROM generate_series(1, 300) g;
INSERT INTO ver_dropped SELECT g, 'k' || g FROM generate_series(1, 10) g;
SELECT splitdb_assign('ver_svc', 'ver_plain', '"Vér Part"', 'ver_empty', 'ver_dropped', 'ver_nocols');

-- ===== nothing in the sibling yet: every table is reported missing
SELECT table_name, source_rows, target_rows, target_checksum, ok
  FROM splitdb_verify('ver_svc') ORDER BY 1;

-- ===== the sibling gets the same rows, with other session settings, other
-- column orders, and no dropped column
\c ver_svc
SET datestyle = 'German, DMY';
SET timezone = 'America/New_York';
SET extra_float_digits = 0;
SET bytea_output = 'escape';
CREATE TABLE ver_plain (d date, span interval, b bytea, f float8, at timestamptz,
						name text, id int PRIMARY KEY);
CREATE TABLE "Vér Part" (at date, id int, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE "Vér Part 1" PARTITION OF "Vér Part" FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE "Vér Part 2" PARTITION OF "Vér Part" FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE ver_empty (id int PRIMARY KEY);
CREATE TABLE ver_dropped (id int PRIMARY KEY, kept text);
CREATE TABLE ver_nocols ();
INSERT INTO ver_nocols DEFAULT VALUES;
INSERT INTO ver_plain (id, name, at, f, b, span, d)
	SELECT g, 'row ' || g, '2026-01-01 10:00+02'::timestamptz + g * interval '1 hour',
		   g / 3.0, decode(md5(g::text), 'hex'), g * interval '90 minutes',
		   '2026-01-01'::date + g
	  FROM generate_series(500, 1, -1) g;
INSERT INTO "Vér Part" (id, at) SELECT g, '2025-06-01'::date + g FROM generate_series(1, 300) g;
INSERT INTO ver_dropped SELECT g, 'k' || g FROM generate_series(1, 10) g;
\c :source_db

SELECT table_name, source_rows, target_rows, source_checksum = target_checksum AS same, ok
  FROM splitdb_verify('ver_svc') ORDER BY 1;

-- ===== differences: one value changed (same count), one row missing
\c ver_svc
UPDATE ver_plain SET name = 'changed' WHERE id = 250;
DELETE FROM "Vér Part 2" WHERE id = 300;
\c :source_db
SELECT table_name, source_rows, target_rows, source_checksum = target_checksum AS same, ok
  FROM splitdb_verify('ver_svc') ORDER BY 1;

-- ===== column types: built-in types are hashed by value, the others as
-- text (an enum's labels have other OIDs in the sibling, a regclass names a
-- table that has another OID there); a nondeterministic collation does not
-- hide a change its equality ignores
CREATE TYPE ver_mood AS ENUM ('sad', 'ok', 'happy');
CREATE TYPE ver_pair AS (a int, b text);
CREATE DOMAIN ver_posint AS int CHECK (VALUE > 0);
CREATE DOMAIN ver_num AS numeric;
CREATE COLLATION ver_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE TABLE ver_types (id int PRIMARY KEY, mood ver_mood, moods ver_mood[], pair ver_pair,
						pos ver_posint, ci text COLLATE ver_ci, j json, p point,
						rel regclass, r int4range, n numeric, jb jsonb, tags text[]);
INSERT INTO ver_types VALUES
	(1, 'ok', '{sad,happy}', ROW(1, 'one'), 7, 'Alpha', '{"a": 1}', '(1,2)',
	 'ver_plain', '[1,5)', 1.50, '{"k": [1, 2.0]}', '{x,y}'),
	(2, 'sad', '{}', ROW(NULL, 'two'), 8, 'beta', '[]', '(0,0)',
	 'ver_empty', 'empty', -0.001, 'null', '{}'),
	(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
SELECT splitdb_assign('ver_svc', 'ver_types');
\c ver_svc
CREATE TYPE ver_decoy AS ENUM ('sad', 'ok', 'happy');
CREATE TYPE ver_mood AS ENUM ('sad', 'ok', 'happy');
CREATE TYPE ver_pair AS (a int, b text);
CREATE DOMAIN ver_posint AS int CHECK (VALUE > 0);
CREATE COLLATION ver_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE TABLE ver_types (id int PRIMARY KEY, mood ver_mood, moods ver_mood[], pair ver_pair,
						pos ver_posint, ci text COLLATE ver_ci, j json, p point,
						rel regclass, r int4range, n numeric, jb jsonb, tags text[]);
INSERT INTO ver_types VALUES
	(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
	(2, 'sad', '{}', ROW(NULL, 'two'), 8, 'beta', '[]', '(0,0)',
	 'ver_empty', 'empty', -0.001, 'null', '{}'),
	(1, 'ok', '{sad,happy}', ROW(1, 'one'), 7, 'Alpha', '{"a": 1}', '(1,2)',
	 'ver_plain', '[1,5)', 1.50, '{"k": [1, 2.0]}', '{x,y}');
-- the labels and the tables have other OIDs here than in the source
SELECT (SELECT oid FROM pg_enum WHERE enumlabel = 'ok'
		   AND enumtypid = 'ver_mood'::regtype) AS ok_oid_in_sibling \gset
\c :source_db
SELECT oid <> :ok_oid_in_sibling AS enum_oids_differ
  FROM pg_enum WHERE enumlabel = 'ok' AND enumtypid = 'ver_mood'::regtype;
SELECT table_name, source_rows, target_rows, source_checksum = target_checksum AS same, ok
  FROM splitdb_verify('ver_svc') WHERE table_name = 'public.ver_types';
-- a change of case, equal under ver_ci, is still a difference
\c ver_svc
UPDATE ver_types SET ci = 'ALPHA' WHERE id = 1;
SELECT count(*) AS equal_under_ci FROM ver_types WHERE ci = 'alpha';
\c :source_db
SELECT table_name, source_rows, target_rows, source_checksum = target_checksum AS same, ok
  FROM splitdb_verify('ver_svc') WHERE table_name = 'public.ver_types';
-- and so is another enum label, or a regclass naming another table
\c ver_svc
UPDATE ver_types SET ci = 'Alpha', mood = 'happy' WHERE id = 1;
\c :source_db
SELECT table_name, source_rows, target_rows, source_checksum = target_checksum AS same, ok
  FROM splitdb_verify('ver_svc') WHERE table_name = 'public.ver_types';
\c ver_svc
UPDATE ver_types SET mood = 'ok', rel = 'ver_dropped' WHERE id = 1;
\c :source_db
SELECT table_name, source_rows, target_rows, source_checksum = target_checksum AS same, ok
  FROM splitdb_verify('ver_svc') WHERE table_name = 'public.ver_types';
\c ver_svc
UPDATE ver_types SET rel = 'ver_plain' WHERE id = 1;
\c :source_db
SELECT table_name, source_rows, target_rows, source_checksum = target_checksum AS same, ok
  FROM splitdb_verify('ver_svc') WHERE table_name = 'public.ver_types';

-- ===== the row hash: splitdb.row_hash() is hash_record_extended(ROW(...), 0)
-- of its arguments, NULLs, arrays, ranges, enums and collations included
SELECT count(*) AS rows,
	   count(*) FILTER (WHERE splitdb.row_hash(id, name, at, f, b, span, d) =
							  hash_record_extended(ROW(id, name, at, f, b, span, d), 0)) AS equal
  FROM ver_plain;
SELECT id, splitdb.row_hash(id, mood, moods, pos, ci COLLATE "C", r, n, jb, tags) =
		   hash_record_extended(ROW(id, mood, moods, pos, ci COLLATE "C", r, n, jb, tags), 0) AS equal
  FROM ver_types ORDER BY id;
SELECT splitdb.row_hash(NULL::int) AS one_null, splitdb.row_hash(NULL::int, NULL::text) AS two_nulls;
-- each value hashed under its own collation
SELECT splitdb.row_hash('Alpha'::text COLLATE ver_ci) = splitdb.row_hash('ALPHA'::text COLLATE ver_ci) AS equal_under_ci,
	   splitdb.row_hash('Alpha'::text COLLATE "C") = splitdb.row_hash('ALPHA'::text COLLATE "C") AS equal_under_c;
-- fails: a type without an extended hash function, as hash_record_extended()
SELECT splitdb.row_hash(1, point '(1,2)');
SELECT hash_record_extended(ROW(1, point '(1,2)'), 0);
-- fails: the values come as separate arguments
SELECT splitdb.row_hash(VARIADIC ARRAY[1, 2]);

-- ===== the digest: splitdb.row_digest() combines its values as
-- splitdb.row_hash() does, with numeric, jsonb, text, varchar, bpchar and
-- bytea values hashed by their bytes, decompressed, the integer, date and
-- time types by their value, floats by their bits, uuid and interval by
-- their bytes and arrays with their shape, and mixes the row's hash once
-- more
SELECT splitdb.row_digest(1.50::ver_num) = splitdb.row_digest(1.50) AS domain_as_its_type,
	   splitdb.row_digest('vé'::text) = splitdb.row_digest('vé'::varchar) AS text_as_varchar,
	   splitdb.row_digest(repeat('long ', 10000)) =
		   splitdb.row_digest(repeat('long ', 10000) || '') AS long_text,
	   splitdb.row_digest(NULL::numeric, NULL::jsonb) =
		   splitdb.row_digest(NULL::int, NULL::text) AS nulls_alike;
-- no value hashes as a NULL does, where the types' hash functions give
-- 0, false, 2000-01-01, -0 and 0.0 the hash of a NULL
SELECT splitdb.row_digest(0) <> splitdb.row_digest(NULL::int) AS int_zero,
	   splitdb.row_digest(false) <> splitdb.row_digest(NULL::bool) AS "false",
	   splitdb.row_digest(date '2000-01-01') <> splitdb.row_digest(NULL::date) AS epoch_date,
	   splitdb.row_digest(timestamptz '2000-01-01 00:00+00') <> splitdb.row_digest(NULL::timestamptz) AS epoch_timestamptz,
	   splitdb.row_digest(0::float8) <> splitdb.row_digest(NULL::float8) AS float8_zero,
	   splitdb.row_digest('-0'::float4) <> splitdb.row_digest(NULL::float4) AS float4_minus_zero,
	   splitdb.row_digest(''::text) <> splitdb.row_digest(NULL::text) AS empty_text,
	   splitdb.row_digest(0, NULL::int) <> splitdb.row_digest(NULL::int, 0) AS zero_null_swapped;
SELECT splitdb.row_hash(0::float8) = splitdb.row_hash(NULL::float8) AS float8_zero_by_type,
	   splitdb.row_hash('-0'::float8) = splitdb.row_hash(0::float8) AS minus_zero_by_type;
-- values their types' functions call equal differ: -0 and 0, '1 day' and
-- '24 hours', 'a' and 'a ' in character, arrays of the same elements in
-- other shapes; every NaN is one (Infinity - Infinity gives another bit
-- pattern than 'NaN')
SELECT splitdb.row_digest('-0'::float8) <> splitdb.row_digest(0::float8) AS minus_zero,
	   splitdb.row_digest('NaN'::float8) = splitdb.row_digest('Infinity'::float8 - 'Infinity'::float8) AS nan_alike,
	   splitdb.row_digest(interval '1 day') <> splitdb.row_digest(interval '24 hours') AS day_hours,
	   splitdb.row_hash(interval '1 day') = splitdb.row_hash(interval '24 hours') AS day_hours_by_type,
	   splitdb.row_digest('a'::bpchar) <> splitdb.row_digest('a '::bpchar) AS bpchar_spaces,
	   splitdb.row_digest('{1,2,3,4}'::int[]) <> splitdb.row_digest('{{1,2},{3,4}}'::int[]) AS array_dims,
	   splitdb.row_digest('{1,2,3,4}'::int[]) <> splitdb.row_digest('[0:3]={1,2,3,4}'::int[]) AS array_lower_bound,
	   splitdb.row_hash('{1,2,3,4}'::int[]) = splitdb.row_hash('{{1,2},{3,4}}'::int[]) AS array_shape_by_type,
	   splitdb.row_digest('{1,2}'::int[]) = splitdb.row_digest('{1,2}'::int8[]) AS array_elements_by_type;
-- an integer hashes alike in smallint, integer and bigint, as with their
-- hash functions, and distinct integers do not
SELECT splitdb.row_digest(-1::int2) = splitdb.row_digest(-1::int4) AND
	   splitdb.row_digest(-1::int4) = splitdb.row_digest(-1::int8) AS minus_one_alike,
	   count(DISTINCT splitdb.row_digest(g)) AS distinct_of_1000
  FROM generate_series(-500, 499) g;
-- values their type calls equal, stored in other bytes, differ
SELECT splitdb.row_hash(1.5) = splitdb.row_hash(1.50) AS equal_by_type,
	   splitdb.row_digest(1.5) = splitdb.row_digest(1.50) AS equal_by_bytes;
-- fails: the values come as separate arguments
SELECT splitdb.row_digest(VARIADIC ARRAY[1, 2]);
-- both sides digest where the sibling's session can make the function: a
-- jsonb compressed here and stored uncompressed there has the same digest
CREATE TABLE ver_digest (id int PRIMARY KEY, n numeric, jb jsonb, d ver_num);
INSERT INTO ver_digest VALUES
	(1, 1.50, '{"k": [1, 2.0], "a": "b"}', 2.5),
	(2, -0.001, (SELECT jsonb_agg(repeat('splitdb ', 20) || g) FROM generate_series(1, 2000) g), NULL),
	(3, NULL, NULL, NULL);
SELECT id, pg_column_compression(jb) IS NOT NULL AS compressed FROM ver_digest WHERE id = 2;
SELECT splitdb_assign('ver_svc', 'ver_digest');
\c ver_svc
CREATE DOMAIN ver_num AS numeric;
CREATE TABLE ver_digest (id int PRIMARY KEY, n numeric, jb jsonb, d ver_num);
ALTER TABLE ver_digest ALTER COLUMN jb SET STORAGE EXTERNAL;
INSERT INTO ver_digest VALUES
	(3, NULL, NULL, NULL),
	(2, -0.001, (SELECT jsonb_agg(repeat('splitdb ', 20) || g) FROM generate_series(1, 2000) g), NULL),
	(1, 1.50, '{"a": "b", "k": [1, 2.0]}', 2.5);
SELECT id, pg_column_compression(jb) IS NULL AS uncompressed FROM ver_digest WHERE id = 2;
\c :source_db
-- the checksum is the sum of the digests (each a row's hash mixed once more)
SELECT sum(splitdb.row_digest(id, n, jb, d))::text AS digest_sum,
	   sum(splitdb.row_digest(id, n::text, jb::text, d::text))::text AS text_sum
  FROM ver_digest \gset
SELECT table_name, source_rows, target_rows, ok,
	   source_checksum = :'digest_sum' AS source_digested,
	   target_checksum = :'digest_sum' AS target_digested
  FROM splitdb_verify('ver_svc') WHERE table_name = 'public.ver_digest';
-- where the digests differ, both sides count again with the numeric and
-- jsonb values as text, which decides: a value in other bytes with the same
-- text passes (here a column of another type), 1.5 against 1.50 fails,
-- though numeric's hash calls them equal, and so do NaN against NULL and
-- {} against [], which their types hash alike
\c ver_svc
ALTER TABLE ver_digest ALTER COLUMN d TYPE int USING d::int;
UPDATE ver_digest SET d = 3 WHERE id = 1;
\c :source_db
UPDATE ver_digest SET d = 3 WHERE id = 1;
SELECT sum(splitdb.row_digest(id, n::text, jb::text, d::text))::text AS text_sum
  FROM ver_digest \gset
SELECT table_name, source_rows, target_rows, ok,
	   source_checksum = :'text_sum' AS source_as_text
  FROM splitdb_verify('ver_svc') WHERE table_name = 'public.ver_digest';
\c ver_svc
UPDATE ver_digest SET n = 1.5 WHERE id = 1;
\c :source_db
SELECT table_name, source_rows, target_rows, source_checksum = target_checksum AS same, ok,
	   source_checksum = :'text_sum' AS source_as_text
  FROM splitdb_verify('ver_svc') WHERE table_name = 'public.ver_digest';
SELECT splitdb.row_hash(1.5) = splitdb.row_hash(1.50) AS equal_by_type,
	   splitdb.row_hash('NaN'::numeric) = splitdb.row_hash(NULL::numeric) AS nan_null_by_type,
	   splitdb.row_hash('{}'::jsonb) = splitdb.row_hash('[]'::jsonb) AS empty_by_type;
\c ver_svc
UPDATE ver_digest SET n = 1.50 WHERE id = 1;
UPDATE ver_digest SET n = NULL WHERE id = 2;
\c :source_db
UPDATE ver_digest SET n = 'NaN' WHERE id = 2;
SELECT table_name, source_rows, target_rows, source_checksum = target_checksum AS same, ok
  FROM splitdb_verify('ver_svc') WHERE table_name = 'public.ver_digest';
UPDATE ver_digest SET n = NULL WHERE id = 2;
UPDATE ver_digest SET jb = '{}' WHERE id = 3;
\c ver_svc
UPDATE ver_digest SET jb = '[]' WHERE id = 3;
\c :source_db
SELECT table_name, source_rows, target_rows, source_checksum = target_checksum AS same, ok
  FROM splitdb_verify('ver_svc') WHERE table_name = 'public.ver_digest';
\c ver_svc
UPDATE ver_digest SET jb = '{}' WHERE id = 3;
ALTER TABLE ver_digest ALTER COLUMN d TYPE ver_num;
\c :source_db
SELECT sum(splitdb.row_digest(id, n, jb, d))::text AS digest_sum,
	   sum(hashint8extended(splitdb.row_hash(id, n::text, jb::text, d::text), 0))::text AS text_sum
  FROM ver_digest \gset
SELECT table_name, ok, source_checksum = :'digest_sum' AS source_digested
  FROM splitdb_verify('ver_svc') WHERE table_name = 'public.ver_digest';
-- values swapped between two rows change the checksum: each row's hash is
-- hashed again, so the sum is no weighted sum of each column's sum
CREATE TABLE ver_swap (id int PRIMARY KEY, a int, b text);
INSERT INTO ver_swap SELECT g, g * 7, 'v' || g FROM generate_series(1, 50) g;
SELECT splitdb_assign('ver_svc', 'ver_swap');
\c ver_svc
CREATE TABLE ver_swap (id int PRIMARY KEY, a int, b text);
INSERT INTO ver_swap SELECT g, g * 7, 'v' || g FROM generate_series(1, 50) g;
\c :source_db
SELECT table_name, ok FROM splitdb_verify('ver_svc') WHERE table_name = 'public.ver_swap';
-- one column's values swapped between two rows leave that column's sum as
-- it was: each such swap, in 25 pairs of rows, is found (written through a
-- foreign table, one statement each)
CREATE FOREIGN TABLE ver_swap_there (id int, a int, b text)
	SERVER splitdb_ver_svc OPTIONS (table_name 'ver_swap');
CREATE TABLE ver_swap_found (pair int, ok bool);
\set ECHO none
SELECT format('UPDATE ver_swap_there SET b = CASE id WHEN %s THEN %L ELSE %L END WHERE id IN (%s, %s)',
			  2 * i - 1, 'v' || 2 * i, 'v' || 2 * i - 1, 2 * i - 1, 2 * i),
	   format('INSERT INTO ver_swap_found SELECT %s, ok FROM splitdb_verify(%L) WHERE table_name = %L',
			  i, 'ver_svc', 'public.ver_swap'),
	   format('UPDATE ver_swap_there SET b = %L || id WHERE id IN (%s, %s)', 'v', 2 * i - 1, 2 * i)
  FROM generate_series(1, 25) i \gexec
\set ECHO all
SELECT count(*) AS swaps, count(*) FILTER (WHERE NOT ok) AS found FROM ver_swap_found;
SELECT table_name, ok FROM splitdb_verify('ver_svc') WHERE table_name = 'public.ver_swap';
DROP FOREIGN TABLE ver_swap_there;
DROP TABLE ver_swap_found;

-- the digested types through splitdb_verify(), and arrays and ranges of
-- numeric compared by their text: {1.5} and {1.50} differ
CREATE TABLE ver_kinds (id int2 PRIMARY KEY, flag bool, big int8, t time, ts timestamp,
						v varchar(10), nums numeric[], r numrange);
INSERT INTO ver_kinds VALUES
	(-1, true, -9000000000, '10:00', '2026-01-01 10:00', 'vé', '{1.50,NaN}', '[1.0,2.50)'),
	(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
SELECT splitdb_assign('ver_svc', 'ver_kinds');
\c ver_svc
CREATE TABLE ver_kinds (id int2 PRIMARY KEY, flag bool, big int8, t time, ts timestamp,
						v varchar(10), nums numeric[], r numrange);
INSERT INTO ver_kinds VALUES
	(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
	(-1, true, -9000000000, '10:00', '2026-01-01 10:00', 'vé', '{1.50,NaN}', '[1.0,2.50)');
\c :source_db
SELECT table_name, source_rows, target_rows, ok
  FROM splitdb_verify('ver_svc') WHERE table_name = 'public.ver_kinds';
\c ver_svc
UPDATE ver_kinds SET nums = '{1.5,NaN}' WHERE id = -1;
\c :source_db
SELECT table_name, source_rows, target_rows, ok
  FROM splitdb_verify('ver_svc') WHERE table_name = 'public.ver_kinds';
\c ver_svc
UPDATE ver_kinds SET nums = '{1.50,NaN}', r = '[1,2.5)' WHERE id = -1;
\c :source_db
SELECT table_name, source_rows, target_rows, ok
  FROM splitdb_verify('ver_svc') WHERE table_name = 'public.ver_kinds';
\c ver_svc
UPDATE ver_kinds SET r = '[1.0,2.50)', flag = false WHERE id = -1;
\c :source_db
SELECT table_name, source_rows, target_rows, ok
  FROM splitdb_verify('ver_svc') WHERE table_name = 'public.ver_kinds';
\c ver_svc
UPDATE ver_kinds SET flag = true WHERE id = -1;
\c :source_db
SELECT table_name, ok FROM splitdb_verify('ver_svc') WHERE table_name = 'public.ver_kinds';

-- a value against a NULL, -0 against 0, and arrays of other shapes or
-- of a NULL against a 0 element differ, which the types' hash functions
-- call alike; so does a case change in an array of a nondeterministic
-- collation's domain; aclitem values compare by their text
CREATE DOMAIN ver_ci_text AS text COLLATE ver_ci;
CREATE TABLE ver_zero (id int PRIMARY KEY, i int, f float8, fs float8[], a int[],
					   cis ver_ci_text[], acl aclitem[]);
INSERT INTO ver_zero VALUES
	(1, 0, 0, '{0}', '{1,2,3,4}', '{Alpha}', '{=r/postgres}'),
	(2, NULL, NULL, NULL, NULL, NULL, NULL);
SELECT splitdb_assign('ver_svc', 'ver_zero');
\c ver_svc
CREATE DOMAIN ver_ci_text AS text COLLATE ver_ci;
CREATE TABLE ver_zero (id int PRIMARY KEY, i int, f float8, fs float8[], a int[],
					   cis ver_ci_text[], acl aclitem[]);
INSERT INTO ver_zero VALUES
	(2, NULL, NULL, NULL, NULL, NULL, NULL),
	(1, 0, 0, '{0}', '{1,2,3,4}', '{Alpha}', '{=r/postgres}');
\c :source_db
SELECT table_name, source_rows, target_rows, ok
  FROM splitdb_verify('ver_svc') WHERE table_name = 'public.ver_zero';
CREATE TABLE ver_zero_found (change text, ok bool);
CREATE FOREIGN TABLE ver_zero_there (id int, i int, f float8, fs float8[], a int[],
									 cis text[], acl aclitem[])
	SERVER splitdb_ver_svc OPTIONS (table_name 'ver_zero');
\set ECHO none
SELECT format('UPDATE ver_zero_there SET %s WHERE id = 1', change),
	   format('INSERT INTO ver_zero_found SELECT %L, ok FROM splitdb_verify(%L) WHERE table_name = %L',
			  change, 'ver_svc', 'public.ver_zero'),
	   'UPDATE ver_zero_there SET i = 0, f = 0, fs = ''{0}'', a = ''{1,2,3,4}'', cis = ''{Alpha}'' WHERE id = 1'
  FROM unnest(ARRAY['i = NULL', 'f = NULL', 'fs = ''{NULL}''',
					'a = ''{{1,2},{3,4}}''', 'a = ''[0:3]={1,2,3,4}''', 'cis = ''{ALPHA}''']) change \gexec
\set ECHO all
SELECT change, ok FROM ver_zero_found ORDER BY change;
DROP FOREIGN TABLE ver_zero_there;
DROP TABLE ver_zero_found;
SELECT table_name, ok FROM splitdb_verify('ver_svc') WHERE table_name = 'public.ver_zero';
-- -0 written in the sibling's own session (postgres_fdw would send the
-- constant as (-0), which its server reads as the integer 0)
\c ver_svc
UPDATE ver_zero SET f = '-0' WHERE id = 1;
\c :source_db
SELECT table_name, source_rows, target_rows, ok
  FROM splitdb_verify('ver_svc') WHERE table_name = 'public.ver_zero';
\c ver_svc
UPDATE ver_zero SET f = 0 WHERE id = 1;
\c :source_db

-- a table of more columns than a function takes is hashed with ROW() on
-- both sides, its numeric and jsonb values as text
SELECT format('CREATE TABLE ver_wide (%s, n numeric DEFAULT 1.50)',
			  string_agg(format('c%s int DEFAULT %s', g, g), ', ' ORDER BY g)) AS wide_ddl
  FROM generate_series(1, 120) g \gset
:wide_ddl;
INSERT INTO ver_wide DEFAULT VALUES;
INSERT INTO ver_wide (c1) VALUES (0);
SELECT splitdb_assign('ver_svc', 'ver_wide');
\c ver_svc
:wide_ddl;
INSERT INTO ver_wide (c1) VALUES (0);
INSERT INTO ver_wide DEFAULT VALUES;
\c :source_db
SELECT table_name, source_rows, target_rows, source_checksum = target_checksum AS same, ok
  FROM splitdb_verify('ver_svc') WHERE table_name = 'public.ver_wide';
\c ver_svc
UPDATE ver_wide SET c120 = 0 WHERE c1 = 0;
\c :source_db
SELECT table_name, source_rows, target_rows, source_checksum = target_checksum AS same, ok
  FROM splitdb_verify('ver_svc') WHERE table_name = 'public.ver_wide';
\c ver_svc
UPDATE ver_wide SET c120 = 120, n = 1.5 WHERE c1 = 0;
\c :source_db
SELECT table_name, source_rows, target_rows, source_checksum = target_checksum AS same, ok
  FROM splitdb_verify('ver_svc') WHERE table_name = 'public.ver_wide';
\c ver_svc
UPDATE ver_wide SET n = 1.50 WHERE c1 = 0;

-- the sibling's session digests with a temporary function it makes from
-- splitdb's library; where it cannot make one (here an event trigger
-- refuses it), it hashes with ROW() and the source with row_hash(), numeric
-- and jsonb values as text: the same results, with other checksums
\c :source_db
SELECT string_agg(ok::text, ',' ORDER BY table_name) AS oks
  FROM splitdb_verify('ver_svc') \gset
-- the call dropped the function before it ended its session
\c ver_svc
SELECT count(*) AS row_hash_functions_left FROM pg_proc WHERE proname IN ('splitdb_row_hash', 'splitdb_row_digest');
CREATE FUNCTION ver_no_functions() RETURNS event_trigger LANGUAGE plpgsql AS
$$BEGIN RAISE EXCEPTION 'no functions here'; END$$;
CREATE EVENT TRIGGER ver_no_functions ON ddl_command_start WHEN TAG IN ('CREATE FUNCTION')
	EXECUTE FUNCTION ver_no_functions();
\c :source_db
SELECT count(*) AS tables, string_agg(ok::text, ',' ORDER BY table_name) = :'oks' AS same_results,
	   max(source_checksum) FILTER (WHERE table_name = 'public.ver_digest') = :'text_sum' AS source_as_text
  FROM splitdb_verify('ver_svc');
-- and where its role is no superuser, it does not try
\c ver_svc
DROP EVENT TRIGGER ver_no_functions;
DROP FUNCTION ver_no_functions();
CREATE ROLE splitdb_ver_reader LOGIN;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO splitdb_ver_reader;
\c :source_db
ALTER USER MAPPING FOR CURRENT_USER SERVER splitdb_ver_svc OPTIONS (SET user 'splitdb_ver_reader');
SELECT count(*) AS tables, string_agg(ok::text, ',' ORDER BY table_name) = :'oks' AS same_results,
	   max(source_checksum) FILTER (WHERE table_name = 'public.ver_digest') = :'text_sum' AS source_as_text
  FROM splitdb_verify('ver_svc');
-- ROW() compares numeric and jsonb values by their text too: NaN against
-- NULL differs, which numeric's hash calls alike
UPDATE ver_digest SET n = 'NaN' WHERE id = 3;
SELECT table_name, source_rows, target_rows, ok
  FROM splitdb_verify('ver_svc') WHERE table_name = 'public.ver_digest';
UPDATE ver_digest SET n = NULL WHERE id = 3;
-- and so do the floats, by their text, and a case change in an array of a
-- nondeterministic collation's domain, its text hashed under "C"
\c ver_svc
UPDATE ver_zero SET f = NULL WHERE id = 1;
\c :source_db
SELECT table_name, source_rows, target_rows, ok
  FROM splitdb_verify('ver_svc') WHERE table_name = 'public.ver_zero';
\c ver_svc
UPDATE ver_zero SET f = '-0' WHERE id = 1;
\c :source_db
SELECT table_name, source_rows, target_rows, ok
  FROM splitdb_verify('ver_svc') WHERE table_name = 'public.ver_zero';
\c ver_svc
UPDATE ver_zero SET f = 0, cis = '{ALPHA}' WHERE id = 1;
\c :source_db
SELECT table_name, source_rows, target_rows, ok
  FROM splitdb_verify('ver_svc') WHERE table_name = 'public.ver_zero';
\c ver_svc
UPDATE ver_zero SET cis = '{Alpha}' WHERE id = 1;
\c :source_db
SELECT table_name, ok FROM splitdb_verify('ver_svc') WHERE table_name = 'public.ver_zero';
DO $$BEGIN
	EXECUTE format('ALTER USER MAPPING FOR CURRENT_USER SERVER splitdb_ver_svc OPTIONS (SET user %L)', current_user);
END$$;

-- a source whose extension lacks the digest (a newer library before ALTER
-- EXTENSION ... UPDATE): both sides hash with row_hash() and ROW(), to the
-- same results
ALTER EXTENSION splitdb DROP FUNCTION splitdb.row_digest("any");
DROP FUNCTION splitdb.row_digest("any");
SELECT count(*) AS tables, string_agg(ok::text, ',' ORDER BY table_name) = :'oks' AS same_results,
	   max(source_checksum) FILTER (WHERE table_name = 'public.ver_digest') = :'text_sum' AS source_as_text
  FROM splitdb_verify('ver_svc');

-- ===== refusals
-- fails: unknown service
SELECT * FROM splitdb_verify('no_such_service');
-- fails: not a superuser
CREATE ROLE splitdb_ver_app;
SET ROLE splitdb_ver_app;
SELECT * FROM splitdb_verify('ver_svc');
RESET ROLE;
DROP ROLE splitdb_ver_app;
-- fails: the sibling cannot be reached; the remote error is relayed
ALTER SERVER splitdb_ver_svc OPTIONS (SET dbname 'ver_no_such_db');
\set VERBOSITY terse
SELECT * FROM splitdb_verify('ver_svc');
\set VERBOSITY default
ALTER SERVER splitdb_ver_svc OPTIONS (SET dbname 'ver_svc');

-- clean up
SELECT splitdb_unassign('ver_svc', 'ver_plain', '"Vér Part"', 'ver_empty', 'ver_dropped', 'ver_nocols', 'ver_types', 'ver_wide', 'ver_digest', 'ver_swap', 'ver_kinds', 'ver_zero');
SELECT splitdb_drop_service('ver_svc');
DROP TABLE ver_plain, "Vér Part", ver_empty, ver_dropped, ver_nocols, ver_types, ver_wide, ver_digest, ver_swap, ver_kinds, ver_zero;
DROP TYPE ver_mood, ver_pair;
DROP DOMAIN ver_posint, ver_num, ver_ci_text;
DROP COLLATION ver_ci;
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
DROP DATABASE ver_svc;
DROP ROLE splitdb_ver_reader;
