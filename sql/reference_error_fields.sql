--
-- A cross-service reference refuses a write with the fields that
-- PostgreSQL's foreign keys set besides the message (errtableconstraint()
-- on the referencing table): SCHEMA_NAME, TABLE_NAME and CONSTRAINT_NAME.
-- Drivers and ORMs read them to tell which key a 23503 is about; without
-- them, an application that maps the constraint name to its own error
-- cannot do so once the key crosses the split.
-- - the referencing table stays, the referenced one moves (not present,
--   still referenced);
-- - the referencing table moves, the referenced one stays (not present
--   through the shim, still referenced in the source);
-- - a MATCH FULL key with some NULLs.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

CREATE SCHEMA ef;
-- moves
CREATE TABLE ef.shelf (id integer PRIMARY KEY);
CREATE TABLE ef.slot (a integer, b integer, PRIMARY KEY (a, b));
-- stays, referenced by a table that moves
CREATE TABLE ef.zone (id integer PRIMARY KEY);
-- moves, references a table that stays
CREATE TABLE ef.crate (id integer PRIMARY KEY,
                       zone integer CONSTRAINT crate_zone_ref REFERENCES ef.zone);
-- stay, reference tables that move
CREATE TABLE ef.box (id integer PRIMARY KEY, shelf integer REFERENCES ef.shelf);
CREATE TABLE ef.pick (id integer PRIMARY KEY, a integer, b integer,
                      CONSTRAINT pick_slot_full FOREIGN KEY (a, b) REFERENCES ef.slot MATCH FULL);
-- stays; the table that moves with a cascade has a child that moves too
CREATE TABLE ef.depot (id integer PRIMARY KEY);
CREATE TABLE ef.pallet (id integer PRIMARY KEY,
                       depot integer REFERENCES ef.depot ON DELETE CASCADE);
CREATE TABLE ef.parcel (id integer PRIMARY KEY,
                       pallet integer CONSTRAINT parcel_pallet_ref REFERENCES ef.pallet);
INSERT INTO ef.depot VALUES (1);
INSERT INTO ef.pallet VALUES (1, 1);
INSERT INTO ef.parcel VALUES (1, 1);
INSERT INTO ef.shelf VALUES (1), (2);
INSERT INTO ef.slot VALUES (1, 1);
INSERT INTO ef.zone VALUES (1), (2);
INSERT INTO ef.crate VALUES (1, 1);
INSERT INTO ef.box VALUES (1, 1);

SELECT splitdb_add_service('ef_svc');
SELECT splitdb_assign('ef_svc', 'ef.shelf', 'ef.slot', 'ef.crate', 'ef.pallet', 'ef.parcel');
SELECT splitdb_migrate('ef_svc', wait => true) > 0 AS migrated;

-- the SQLSTATE and the fields of the error a statement raises
CREATE FUNCTION pg_temp.fields(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	st text; sch text; tab text; con text;
BEGIN
	EXECUTE stmt;
	RETURN 'no error';
EXCEPTION WHEN foreign_key_violation THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, sch = SCHEMA_NAME,
		tab = TABLE_NAME, con = CONSTRAINT_NAME;
	RETURN format('%s schema=%s table=%s constraint=%s', st, sch, tab, con);
END $$;

-- what PostgreSQL's own foreign key gives, before the split
CREATE TABLE ef.local_kid (id integer PRIMARY KEY, zone integer CONSTRAINT local_kid_zone_ref REFERENCES ef.zone);
SELECT pg_temp.fields('INSERT INTO ef.local_kid VALUES (1, 99)');
-- the referencing table stays: key not present
SELECT pg_temp.fields('INSERT INTO ef.box VALUES (2, 99)');
-- the referenced table moved: deleting a referenced row through its shim
SELECT pg_temp.fields('DELETE FROM ef.shelf WHERE id = 1');
-- the referencing table moved: a missing key through its shim
SELECT pg_temp.fields('INSERT INTO ef.crate VALUES (2, 99)');
-- the referenced table stays: deleting a row the moved table references
SELECT pg_temp.fields('DELETE FROM ef.zone WHERE id = 1');
-- MATCH FULL with a NULL in the key
SELECT pg_temp.fields('INSERT INTO ef.pick VALUES (1, 1, NULL)');
-- a cascade into the sibling that a foreign key there refuses: the error
-- comes back from the sibling with its fields
SELECT pg_temp.fields('DELETE FROM ef.depot WHERE id = 1');
-- the writes that are no violations go through
SELECT pg_temp.fields('DELETE FROM ef.shelf WHERE id = 2');
SELECT pg_temp.fields('INSERT INTO ef.pick VALUES (2, 1, 1)');

-- clean up
DROP FOREIGN TABLE ef.shelf, ef.slot, ef.crate, ef.pallet, ef.parcel;
DROP SCHEMA ef CASCADE;
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
SELECT splitdb_drop_service('ef_svc');
DROP DATABASE ef_svc WITH (FORCE);
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
