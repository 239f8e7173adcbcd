--
-- Keys whose text form depends on the session, and keys whose type has its
-- equality outside pg_catalog or differs between the two ends.  Each
-- statement runs on a copy with local foreign keys too (schema lokal), and
-- both must do the same:
-- - arrays and ranges of dates inserted and updated under DateStyle
--   'SQL, DMY': 4 March prints as 04/03/2024 there, which another server
--   reads as 3 April or refuses; the key's text form is pinned to ISO as
--   for a date key.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

CREATE SCHEMA lokal;
CREATE FUNCTION make_tables(s text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE format('CREATE TABLE %I."Tage" (k date[] PRIMARY KEY)', s);
	EXECUTE format('CREATE TABLE %I."Spanne" (k daterange PRIMARY KEY)', s);
	EXECUTE format('CREATE TABLE %1$I."Termin" (id int PRIMARY KEY,
		tage date[] REFERENCES %1$I."Tage" ON UPDATE CASCADE,
		spanne daterange REFERENCES %1$I."Spanne" ON UPDATE CASCADE)', s);
	EXECUTE format('INSERT INTO %I."Tage" VALUES (''{2024-03-04}''), (''{2024-04-03}'')', s);
	EXECUTE format('INSERT INTO %I."Spanne" VALUES (''[2024-03-04,2024-03-10)''), (''[2024-04-03,2024-10-03)'')', s);
	EXECUTE format('INSERT INTO %I."Termin" VALUES (1, ''{2024-04-03}'', ''[2024-04-03,2024-10-03)'')', s);
END $$;
SELECT make_tables('public'), make_tables('lokal');

SELECT splitdb_add_service('rkf_svc');
SELECT splitdb_assign('rkf_svc', '"Tage"', '"Spanne"');
SELECT splitdb_migrate('rkf_svc', wait => true) > 0 AS migrated;

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

-- clean up
DROP FOREIGN TABLE "Tage", "Spanne";
DROP TABLE "Termin";
DROP SCHEMA lokal CASCADE;
DROP FUNCTION make_tables(text), both_ways(text), show(text, text, text);
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
SELECT splitdb_drop_service('rkf_svc');
DROP DATABASE rkf_svc WITH (FORCE);
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
