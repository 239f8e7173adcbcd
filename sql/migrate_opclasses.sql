--
-- A table whose exclusion constraint uses operator classes of an extension
-- (btree_gist's, for an integer column under GiST), and that uses no type
-- or function of that extension.  Checked here:
-- - the sibling gets the extension before the data, so the job ends done
--   (before, its indexing step failed: "data type integer has no default
--   operator class for access method "gist"");
-- - the constraint is in the sibling, and refuses an overlapping row
--   written through the shim, which leaves the rows unchanged;
-- - a CHECK that calls a function of earthdistance, which requires cube:
--   the sibling gets cube first, then earthdistance (before, the job
--   failed in preparing: "required extension "cube" is not installed").
--
CREATE EXTENSION splitdb CASCADE;
CREATE EXTENSION btree_gist;
CREATE EXTENSION earthdistance CASCADE;
SET client_min_messages = warning;

CREATE TABLE oc_booking (
	id     integer PRIMARY KEY,
	room   integer NOT NULL,
	during int4range NOT NULL,
	EXCLUDE USING gist (room WITH =, during WITH &&)
);
INSERT INTO oc_booking VALUES (1, 10, '[1,5)'), (2, 10, '[5,9)'), (3, 11, '[1,5)');
CREATE TABLE oc_reach (
	id     integer PRIMARY KEY,
	metres float8 NOT NULL CHECK (metres <= earth())
);
INSERT INTO oc_reach VALUES (1, 1000);

SELECT splitdb_add_service('oc_svc');
SELECT splitdb_assign('oc_svc', 'oc_booking', 'oc_reach');
SELECT splitdb_migrate('oc_svc', mode => 'offline', wait => true) > 0 AS migrated;
SELECT state, phase, last_error FROM splitdb.job;

\c oc_svc
SELECT extname FROM pg_extension WHERE extname IN ('btree_gist', 'cube', 'earthdistance') ORDER BY 1;
SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
 WHERE conrelid = 'oc_booking'::regclass AND contype = 'x';
\c splitdb_regression
SET client_min_messages = warning;

-- through the shim: an overlapping booking of room 10 is refused, another
-- room's is taken
INSERT INTO oc_booking VALUES (4, 10, '[3,6)');
INSERT INTO oc_booking VALUES (5, 12, '[3,6)');
SELECT * FROM oc_booking ORDER BY id;
-- and a reach beyond the earth's radius, checked by earth() in the sibling
INSERT INTO oc_reach VALUES (2, 1e9);
INSERT INTO oc_reach VALUES (3, 5000);
SELECT * FROM oc_reach ORDER BY id;

-- clean up
DROP FOREIGN TABLE oc_booking, oc_reach;
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
SELECT splitdb_drop_service('oc_svc');
DROP DATABASE oc_svc WITH (FORCE);
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
DROP EXTENSION btree_gist;
DROP EXTENSION earthdistance;
DROP EXTENSION cube;
