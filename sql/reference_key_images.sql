--
-- A referenced key updated to a value that compares equal to the old one
-- but is not the same ('Tag1' -> 'TAG1' under a case-insensitive
-- collation, 1.0 -> 1.00): PostgreSQL counts that as a change of the key
-- (ri_KeysEqual() compares the referenced side's images), so ON UPDATE
-- CASCADE carries the new value to the referencing rows, SET NULL clears
-- them, RESTRICT refuses the update, and NO ACTION lets it pass (a row with
-- an equal key is still there).  Each cross-service reference must do the
-- same as a local foreign key on a copy of the same tables, in both
-- directions of the split:
-- - the referenced tables move (to kim_svc), the referencing ones stay;
-- - a referencing table moves (to kim_kid), its referenced table stays.
-- And ON DELETE SET DEFAULT whose default is the very key deleted: the
-- referencing row keeps its key, so PostgreSQL's check of that row does not
-- run and the delete is refused as NO ACTION refuses it (still referenced),
-- not as a missing default.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;
CREATE COLLATION "ohne Fall" (provider = icu, locale = 'und-u-ks-level2',
							  deterministic = false);

-- the same tables twice: in schema lokal with local foreign keys, and in
-- public, whose references cross the split
CREATE SCHEMA lokal;
CREATE TABLE "Etikett" (name text COLLATE "ohne Fall" PRIMARY KEY);
CREATE TABLE "Preis" (betrag numeric PRIMARY KEY);
CREATE TABLE "Kaskade" (id int PRIMARY KEY,
	name text COLLATE "ohne Fall" REFERENCES "Etikett" ON UPDATE CASCADE,
	betrag numeric REFERENCES "Preis" ON UPDATE CASCADE);
CREATE TABLE "Nullen" (id int PRIMARY KEY,
	name text COLLATE "ohne Fall" REFERENCES "Etikett" ON UPDATE SET NULL,
	betrag numeric REFERENCES "Preis" ON UPDATE SET NULL);
CREATE TABLE "Strikt" (id int PRIMARY KEY,
	name text COLLATE "ohne Fall" REFERENCES "Etikett" ON UPDATE RESTRICT);
CREATE TABLE "Ohne" (id int PRIMARY KEY,
	name text COLLATE "ohne Fall" REFERENCES "Etikett");
CREATE TABLE "Vorgabe" (id int PRIMARY KEY,
	name text COLLATE "ohne Fall" DEFAULT 'Leer' REFERENCES "Etikett" ON DELETE SET DEFAULT,
	fehlt text COLLATE "ohne Fall" DEFAULT 'Fehlt' REFERENCES "Etikett" ON DELETE SET DEFAULT);
-- stays; referenced by a table that moves to kim_kid
CREATE TABLE "Gruppe" (code text COLLATE "ohne Fall" PRIMARY KEY);
CREATE TABLE "Mitglied" (id int PRIMARY KEY,
	code text COLLATE "ohne Fall" REFERENCES "Gruppe" ON UPDATE CASCADE);
CREATE TABLE lokal."Etikett" (LIKE "Etikett" INCLUDING ALL);
CREATE TABLE lokal."Preis" (LIKE "Preis" INCLUDING ALL);
CREATE TABLE lokal."Kaskade" (id int PRIMARY KEY,
	name text COLLATE "ohne Fall" REFERENCES lokal."Etikett" ON UPDATE CASCADE,
	betrag numeric REFERENCES lokal."Preis" ON UPDATE CASCADE);
CREATE TABLE lokal."Nullen" (id int PRIMARY KEY,
	name text COLLATE "ohne Fall" REFERENCES lokal."Etikett" ON UPDATE SET NULL,
	betrag numeric REFERENCES lokal."Preis" ON UPDATE SET NULL);
CREATE TABLE lokal."Strikt" (id int PRIMARY KEY,
	name text COLLATE "ohne Fall" REFERENCES lokal."Etikett" ON UPDATE RESTRICT);
CREATE TABLE lokal."Ohne" (id int PRIMARY KEY,
	name text COLLATE "ohne Fall" REFERENCES lokal."Etikett");
CREATE TABLE lokal."Vorgabe" (id int PRIMARY KEY,
	name text COLLATE "ohne Fall" DEFAULT 'Leer' REFERENCES lokal."Etikett" ON DELETE SET DEFAULT,
	fehlt text COLLATE "ohne Fall" DEFAULT 'Fehlt' REFERENCES lokal."Etikett" ON DELETE SET DEFAULT);
CREATE TABLE lokal."Gruppe" (LIKE "Gruppe" INCLUDING ALL);
CREATE TABLE lokal."Mitglied" (id int PRIMARY KEY,
	code text COLLATE "ohne Fall" REFERENCES lokal."Gruppe" ON UPDATE CASCADE);

CREATE FUNCTION fill(s text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE format('INSERT INTO %I."Etikett" VALUES (''Tag1''), (''Tag2''), (''Tag3''), (''Tag4''), (''Leer''), (''Tag5''), (''Tag6'')', s);
	EXECUTE format('INSERT INTO %I."Preis" VALUES (1.0), (2.0), (3.0)', s);
	EXECUTE format('INSERT INTO %I."Kaskade" VALUES (1, ''tag1'', 1.0), (2, ''TAG1'', 1), (3, ''Tag4'', 3.0)', s);
	EXECUTE format('INSERT INTO %I."Nullen" VALUES (1, ''tag4'', 2.0), (2, ''Tag1'', 2)', s);
	EXECUTE format('INSERT INTO %I."Strikt" VALUES (1, ''tag2'')', s);
	EXECUTE format('INSERT INTO %I."Ohne" VALUES (1, ''tag3'')', s);
	EXECUTE format('INSERT INTO %I."Vorgabe" VALUES (1, ''Leer'', NULL), (2, ''Tag5'', NULL), (3, NULL, ''Tag6'')', s);
	EXECUTE format('INSERT INTO %I."Gruppe" VALUES (''Rot''), (''Blau'')', s);
	EXECUTE format('INSERT INTO %I."Mitglied" VALUES (1, ''rot''), (2, ''BLAU'')', s);
END $$;
SELECT fill('public'), fill('lokal');

SELECT splitdb_add_service('kim_svc');
SELECT splitdb_assign('kim_svc', '"Etikett"', '"Preis"');
SELECT splitdb_migrate('kim_svc', wait => true) > 0 AS migrated;
SELECT splitdb_add_service('kim_kid');
SELECT splitdb_assign('kim_kid', '"Mitglied"');
SELECT splitdb_migrate('kim_kid', wait => true) > 0 AS migrated;
SELECT constraint_name, child_table, parent_table, on_update
  FROM splitdb_references ORDER BY 1, 2;

-- the same statements on both copies; each result is shown for lokal, then
-- for the copy whose references cross the split
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

-- ON UPDATE CASCADE: the referencing rows take the new spelling and scale
SELECT * FROM both_ways($$UPDATE %I."Etikett" SET name = 'TAG1' WHERE name = 'Tag1'$$);
SELECT * FROM both_ways($$UPDATE %I."Preis" SET betrag = 1.00 WHERE betrag = 1$$);
SELECT * FROM show('Kaskade', 'id, name, betrag');
-- ON UPDATE SET NULL: the referencing rows lose the key
SELECT * FROM both_ways($$UPDATE %I."Preis" SET betrag = 2.000 WHERE betrag = 2$$);
SELECT * FROM both_ways($$UPDATE %I."Etikett" SET name = 'tag4' WHERE name = 'Tag4'$$);
SELECT * FROM show('Nullen', 'id, name, betrag');
SELECT * FROM show('Kaskade', 'id, name, betrag');
-- ON UPDATE RESTRICT: refused, and nothing changed
SELECT * FROM both_ways($$UPDATE %I."Etikett" SET name = 'TAG2' WHERE name = 'Tag2'$$);
SELECT * FROM show('Etikett', 'name', 'name');
-- NO ACTION: an equal key is still there, so the update passes
SELECT * FROM both_ways($$UPDATE %I."Etikett" SET name = 'tag3' WHERE name = 'Tag3'$$);
SELECT * FROM show('Ohne', 'id, name');
-- the same image is no change, even under a cascade
SELECT * FROM both_ways($$UPDATE %I."Preis" SET betrag = 3.0 WHERE betrag = 3$$);
SELECT * FROM show('Kaskade', 'id, name, betrag');
-- the referenced table stays, the referencing one moved
SELECT * FROM both_ways($$UPDATE %I."Gruppe" SET code = 'ROT' WHERE code = 'rot'$$);
SELECT * FROM both_ways($$UPDATE %I."Gruppe" SET code = 'blau' WHERE code = 'Blau'$$);
SELECT * FROM show('Mitglied', 'id, code');
-- ON DELETE SET DEFAULT: to a default that is there, to one that is not,
-- and to the very key deleted
SELECT * FROM both_ways($$DELETE FROM %I."Etikett" WHERE name = 'tag5'$$);
SELECT * FROM both_ways($$DELETE FROM %I."Etikett" WHERE name = 'tag6'$$);
SELECT * FROM both_ways($$DELETE FROM %I."Etikett" WHERE name = 'leer'$$);
SELECT * FROM show('Vorgabe', 'id, name, fehlt');
SELECT * FROM splitdb_orphans('kim_svc');
SELECT * FROM splitdb_orphans('kim_kid');

-- clean up
DROP FOREIGN TABLE "Etikett", "Preis", "Mitglied";
DROP TABLE "Kaskade", "Nullen", "Strikt", "Ohne", "Vorgabe", "Gruppe";
DROP SCHEMA lokal CASCADE;
DROP FUNCTION fill(text), both_ways(text), show(text, text, text);
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
SELECT splitdb_drop_service('kim_svc');
SELECT splitdb_drop_service('kim_kid');
DROP DATABASE kim_svc WITH (FORCE);
DROP DATABASE kim_kid WITH (FORCE);
DROP COLLATION "ohne Fall";
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
