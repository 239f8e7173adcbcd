--
-- Keys whose text form depends on the session, and keys whose type has its
-- equality outside pg_catalog or differs between the two ends.  Each
-- statement runs on a copy with local foreign keys too (schema lokal), and
-- both must do the same:
-- - arrays and ranges of dates inserted and updated under DateStyle
--   'SQL, DMY': 4 March prints as 04/03/2024 there, which another server
--   reads as 3 April or refuses; the key's text form is pinned to ISO as
--   for a date key;
-- - citext keys: citext's "=" is in the schema of the extension, and
--   pg_catalog's would compare the keys as text, case-sensitively, so an
--   ON DELETE SET NULL or ON UPDATE CASCADE missed the rows whose key
--   differs in case, and a lookup refused them;
-- - keys of other types than the referenced key's (integer referencing
--   bigint, smallint referencing numeric): PostgreSQL compares them with
--   the referenced type's equality, so a bigint key beyond the integer
--   range is referenced by no row, and a numeric 3.00 is smallint 3;
--   a character(n) key referencing a text one is compared as text, without
--   its padding;
-- - a referencing column of another collation than a nondeterministic
--   referenced key's: PostgreSQL 15 compares under the referenced key's
--   collation in its NO ACTION and RESTRICT checks and its ON DELETE
--   CASCADE, under the referencing column's in ON UPDATE CASCADE, SET NULL
--   and SET DEFAULT.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;
CREATE EXTENSION citext;
CREATE COLLATION "rkf ohne Fall" (provider = icu, locale = 'und-u-ks-level2',
								  deterministic = false);

CREATE SCHEMA lokal;
CREATE FUNCTION make_tables(s text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE format('CREATE TABLE %I."Tage" (k date[] PRIMARY KEY)', s);
	EXECUTE format('CREATE TABLE %I."Spanne" (k daterange PRIMARY KEY)', s);
	EXECUTE format('CREATE TABLE %1$I."Termin" (id int PRIMARY KEY,
		tage date[] REFERENCES %1$I."Tage" ON UPDATE CASCADE,
		spanne daterange REFERENCES %1$I."Spanne" ON UPDATE CASCADE)', s);
	EXECUTE format('CREATE TABLE %I."Marke" (k citext PRIMARY KEY)', s);
	EXECUTE format('CREATE TABLE %I."Gross" (k bigint PRIMARY KEY)', s);
	EXECUTE format('CREATE TABLE %I."Betrag" (k numeric PRIMARY KEY)', s);
	EXECUTE format('CREATE TABLE %1$I."Artikel" (id int PRIMARY KEY,
		marke citext REFERENCES %1$I."Marke" ON UPDATE CASCADE ON DELETE SET NULL,
		gross int REFERENCES %1$I."Gross" ON UPDATE CASCADE,
		betrag int2 REFERENCES %1$I."Betrag" ON UPDATE CASCADE ON DELETE SET NULL)', s);
	EXECUTE format('CREATE TABLE %1$I."Sperre" (id int PRIMARY KEY,
		marke citext REFERENCES %1$I."Marke" ON DELETE RESTRICT)', s);
	EXECUTE format('CREATE TABLE %I."Wort" (k text PRIMARY KEY)', s);
	EXECUTE format('CREATE TABLE %1$I."Zeile" (id int PRIMARY KEY,
		k char(6) REFERENCES %1$I."Wort" ON UPDATE CASCADE ON DELETE SET NULL)', s);
	EXECUTE format('INSERT INTO %I."Wort" VALUES (''abc''), (''abc ''), (''de'')', s);
	EXECUTE format('INSERT INTO %I."Zeile" VALUES (1, ''de'')', s);
	EXECUTE format('CREATE TABLE %I."Kennung" (k text COLLATE "rkf ohne Fall" PRIMARY KEY)', s);
	EXECUTE format('CREATE TABLE %1$I."Verweis" (id int PRIMARY KEY,
		weg text COLLATE "C" REFERENCES %1$I."Kennung" ON DELETE CASCADE,
		halt text COLLATE "C" REFERENCES %1$I."Kennung",
		mit text COLLATE "C" REFERENCES %1$I."Kennung" ON UPDATE CASCADE)', s);
	EXECUTE format('INSERT INTO %I."Kennung" VALUES (''Abc''), (''Def''), (''Ghi'')', s);
	EXECUTE format('INSERT INTO %I."Verweis" VALUES (1, ''ABC'', NULL, NULL), (2, NULL, ''DEF'', NULL), (3, NULL, NULL, ''GHI'')', s);
	EXECUTE format('INSERT INTO %I."Marke" VALUES (''Acme''), (''Bolt''), (''Cord''), (''Dash'')', s);
	EXECUTE format('INSERT INTO %I."Gross" VALUES (1), (2), (5000000000)', s);
	EXECUTE format('INSERT INTO %I."Betrag" VALUES (1), (2.5), (3.0), (4)', s);
	EXECUTE format('INSERT INTO %I."Artikel" VALUES (1, ''ACME'', 1, 1), (2, ''bolt'', 2, 3), (3, ''cord'', NULL, 4)', s);
	EXECUTE format('INSERT INTO %I."Sperre" VALUES (1, ''DASH'')', s);
	EXECUTE format('INSERT INTO %I."Tage" VALUES (''{2024-03-04}''), (''{2024-04-03}'')', s);
	EXECUTE format('INSERT INTO %I."Spanne" VALUES (''[2024-03-04,2024-03-10)''), (''[2024-04-03,2024-10-03)'')', s);
	EXECUTE format('INSERT INTO %I."Termin" VALUES (1, ''{2024-04-03}'', ''[2024-04-03,2024-10-03)'')', s);
END $$;
SELECT make_tables('public'), make_tables('lokal');

SELECT splitdb_add_service('rkf_svc');
SELECT splitdb_assign('rkf_svc', '"Tage"', '"Spanne"', '"Marke"', '"Gross"', '"Betrag"', '"Wort"', '"Kennung"');
SELECT splitdb_migrate('rkf_svc', mode => 'offline', wait => true) > 0 AS migrated;

CREATE FUNCTION both_ways(stmt text) RETURNS TABLE (copy text, outcome text)
LANGUAGE plpgsql AS $$
DECLARE
	s text;
	n bigint;
BEGIN
	FOREACH s IN ARRAY ARRAY['lokal', 'public'] LOOP
		copy := s;
		BEGIN
			EXECUTE format(stmt, s);
			GET DIAGNOSTICS n = ROW_COUNT;
			outcome := n || ' row(s)';
		EXCEPTION WHEN OTHERS THEN
			outcome := SQLSTATE || ': ' || regexp_replace(SQLERRM, ' of database "[^"]*"', '');
		END;
		RETURN NEXT;
	END LOOP;
END $$;
CREATE FUNCTION show(tab text, cols text, ord text DEFAULT 'id') RETURNS TABLE (copy text, rows text)
LANGUAGE plpgsql AS $$
DECLARE
	s text;
BEGIN
	FOREACH s IN ARRAY ARRAY['lokal', 'public'] LOOP
		copy := s;
		EXECUTE format('SELECT string_agg(ROW(%s)::text, '' '' ORDER BY %s) FROM %I.%I',
					   cols, ord, s, tab) INTO rows;
		RETURN NEXT;
	END LOOP;
END $$;

-- dates in arrays and ranges under a day-month DateStyle
SET DateStyle = 'SQL, DMY';
SELECT * FROM both_ways($$INSERT INTO %I."Termin" VALUES (2, '{2024-03-04}', '[2024-03-04,2024-03-10)')$$);
SELECT * FROM both_ways($$INSERT INTO %I."Termin" VALUES (3, '{2024-03-05}', NULL)$$);
SELECT * FROM both_ways($$UPDATE %I."Tage" SET k = '{2024-03-05}' WHERE k = '{2024-03-04}'$$);
SELECT * FROM both_ways($$UPDATE %I."Spanne" SET k = '[2024-03-04,2024-03-11)' WHERE k = '[2024-03-04,2024-03-10)'$$);
SET DateStyle = ISO;
SELECT * FROM show('Termin', 'id, tage, spanne');
SELECT * FROM splitdb_orphans('rkf_svc');

-- citext keys compare without case, as citext's own "=" compares them
SELECT * FROM both_ways($$INSERT INTO %I."Artikel" VALUES (4, 'aCmE', NULL, NULL)$$);
SELECT * FROM both_ways($$UPDATE %I."Marke" SET k = 'acme' WHERE k = 'ACME'$$);
SELECT * FROM both_ways($$DELETE FROM %I."Marke" WHERE k = 'BOLT'$$);
SELECT * FROM both_ways($$DELETE FROM %I."Marke" WHERE k = 'dash'$$);
SELECT * FROM show('Artikel', 'id, marke');
-- a bigint key beyond integer's range is referenced by no integer row;
-- one carried to an integer row is out of its range (22003)
SELECT * FROM both_ways($$UPDATE %I."Gross" SET k = 3 WHERE k = 5000000000$$);
SELECT * FROM both_ways($$UPDATE %I."Gross" SET k = 5000000001 WHERE k = 2$$);
-- smallint rows referencing numeric keys: compared and carried as numeric
SELECT * FROM both_ways($$INSERT INTO %I."Artikel" VALUES (5, NULL, NULL, 3)$$);
SELECT * FROM both_ways($$UPDATE %I."Betrag" SET k = 3.00 WHERE k = 3$$);
SELECT * FROM both_ways($$UPDATE %I."Betrag" SET k = 1.5 WHERE k = 1$$);
SELECT * FROM both_ways($$DELETE FROM %I."Betrag" WHERE k = 4.0$$);
SELECT * FROM show('Artikel', 'id, marke, gross, betrag');
SELECT * FROM show('Gross', 'k', 'k');
SELECT * FROM show('Betrag', 'k', 'k');
-- character(n) keys referencing text ones: compared as text, unpadded
SELECT * FROM both_ways($$INSERT INTO %I."Zeile" VALUES (2, 'abc   '), (3, 'abc')$$);
SELECT * FROM both_ways($$UPDATE %I."Wort" SET k = 'abc  ' WHERE k = 'abc '$$);
SELECT * FROM both_ways($$UPDATE %I."Wort" SET k = 'xyz' WHERE k = 'abc'$$);
SELECT * FROM both_ways($$DELETE FROM %I."Wort" WHERE k = 'de'$$);
SELECT * FROM show('Zeile', 'id, k');
-- a nondeterministic referenced key, referencing columns in "C"
SELECT * FROM both_ways($$DELETE FROM %I."Kennung" WHERE k = 'def'$$);
SELECT * FROM both_ways($$UPDATE %I."Kennung" SET k = 'Xyz' WHERE k = 'ghi'$$);
SELECT * FROM both_ways($$DELETE FROM %I."Kennung" WHERE k = 'abc'$$);
SELECT * FROM show('Verweis', 'id, weg, halt, mit');
-- the same, written in the sibling directly
\c rkf_svc
SET client_min_messages = warning;
UPDATE "Marke" SET k = 'CORD' WHERE k = 'cord';
DELETE FROM "Betrag" WHERE k = 2.5;
UPDATE "Betrag" SET k = 3.000 WHERE k = 3;
\c splitdb_regression
SET client_min_messages = warning;
UPDATE lokal."Marke" SET k = 'CORD' WHERE k = 'cord';
DELETE FROM lokal."Betrag" WHERE k = 2.5;
UPDATE lokal."Betrag" SET k = 3.000 WHERE k = 3;
SELECT * FROM show('Artikel', 'id, marke, gross, betrag');
SELECT * FROM splitdb_orphans('rkf_svc');

-- clean up
DROP FOREIGN TABLE "Tage", "Spanne", "Marke", "Gross", "Betrag", "Wort", "Kennung";
DROP TABLE "Termin", "Artikel", "Sperre", "Zeile", "Verweis";
DROP SCHEMA lokal CASCADE;
DROP FUNCTION make_tables(text), both_ways(text), show(text, text, text);
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
SELECT splitdb_drop_service('rkf_svc');
DROP DATABASE rkf_svc WITH (FORCE);
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
DROP EXTENSION citext;
DROP COLLATION "rkf ohne Fall";
