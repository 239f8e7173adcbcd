--
-- The DETAIL of a cross-service reference's violation shows the key only
-- to a role that may read it, as PostgreSQL's foreign keys decide
-- (ri_ReportViolation): not when row-level security applies to the role on
-- the table whose row the key is; else when the role may read that table,
-- or each column of the key.  A role that may insert or delete rows it may
-- not read learns nothing of them from the error.  Each case runs against a
-- local foreign key (the oracle) and against the same key across the split:
-- - the referencing table stays (a missing key of an insert);
-- - the referenced table stays (a delete of a row that is still referenced);
-- - table-level SELECT, column-level SELECT on the key, row-level security.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

CREATE SCHEMA rk;
-- moves: referenced by a table that stays
CREATE TABLE rk.shelf (id integer PRIMARY KEY, secret text);
-- stays: referenced by a table that moves
CREATE TABLE rk.vault (id integer PRIMARY KEY, secret text);
-- moves
CREATE TABLE rk.coin (id integer PRIMARY KEY, vault integer REFERENCES rk.vault);
-- stays
CREATE TABLE rk.book (id integer PRIMARY KEY, shelf integer REFERENCES rk.shelf);
-- the oracle: the same shapes with local foreign keys
CREATE TABLE rk.lshelf (id integer PRIMARY KEY, secret text);
CREATE TABLE rk.lbook (id integer PRIMARY KEY, shelf integer REFERENCES rk.lshelf);
CREATE TABLE rk.lvault (id integer PRIMARY KEY, secret text);
CREATE TABLE rk.lcoin (id integer PRIMARY KEY, vault integer REFERENCES rk.lvault);
INSERT INTO rk.shelf VALUES (1, 's');
INSERT INTO rk.lshelf VALUES (1, 's');
INSERT INTO rk.vault VALUES (7, 'v');
INSERT INTO rk.lvault VALUES (7, 'v');
INSERT INTO rk.coin VALUES (1, 7);
INSERT INTO rk.lcoin VALUES (1, 7);

SELECT splitdb_add_service('kd_svc');
SELECT splitdb_assign('kd_svc', 'rk.shelf', 'rk.coin');
SELECT splitdb_migrate('kd_svc', wait => true) > 0 AS migrated;

CREATE ROLE regress_rk_app LOGIN;
GRANT USAGE ON SCHEMA rk TO regress_rk_app;
-- may insert books and delete vaults, read neither
GRANT INSERT ON rk.book, rk.lbook TO regress_rk_app;
GRANT DELETE ON rk.vault, rk.lvault TO regress_rk_app;

SET ROLE regress_rk_app;
-- no SELECT: the key is not shown, in both
INSERT INTO rk.lbook VALUES (1, 42);
INSERT INTO rk.book VALUES (1, 42);
DELETE FROM rk.lvault;
DELETE FROM rk.vault;
RESET ROLE;

-- SELECT on the key column alone is enough
GRANT SELECT (id, shelf) ON rk.book, rk.lbook TO regress_rk_app;
GRANT SELECT (id) ON rk.vault, rk.lvault TO regress_rk_app;
SET ROLE regress_rk_app;
INSERT INTO rk.lbook VALUES (1, 42);
INSERT INTO rk.book VALUES (1, 42);
DELETE FROM rk.lvault;
DELETE FROM rk.vault;
RESET ROLE;

-- SELECT on the table, and row-level security that applies to the role:
-- not shown again
GRANT SELECT ON rk.book, rk.lbook, rk.vault, rk.lvault TO regress_rk_app;
ALTER TABLE rk.book ENABLE ROW LEVEL SECURITY;
ALTER TABLE rk.lbook ENABLE ROW LEVEL SECURITY;
ALTER TABLE rk.vault ENABLE ROW LEVEL SECURITY;
ALTER TABLE rk.lvault ENABLE ROW LEVEL SECURITY;
CREATE POLICY everything ON rk.book TO regress_rk_app USING (true) WITH CHECK (true);
CREATE POLICY everything ON rk.lbook TO regress_rk_app USING (true) WITH CHECK (true);
CREATE POLICY everything ON rk.vault TO regress_rk_app USING (true);
CREATE POLICY everything ON rk.lvault TO regress_rk_app USING (true);
SET ROLE regress_rk_app;
INSERT INTO rk.lbook VALUES (1, 42);
INSERT INTO rk.book VALUES (1, 42);
DELETE FROM rk.lvault;
DELETE FROM rk.vault;
RESET ROLE;

-- the table's owner, to whom its policies do not apply, sees the key
INSERT INTO rk.lbook VALUES (1, 42);
INSERT INTO rk.book VALUES (1, 42);
DELETE FROM rk.lvault;
DELETE FROM rk.vault;

-- a moved referencing table, written through its shim and in the sibling:
-- the same rule, on the shim here and on the table there
CREATE USER MAPPING FOR regress_rk_app SERVER splitdb_kd_svc
	OPTIONS (user 'regress_rk_app', password_required 'false');
GRANT INSERT ON rk.coin TO regress_rk_app;
\c kd_svc
SET client_min_messages = warning;
GRANT USAGE ON SCHEMA rk TO regress_rk_app;
GRANT INSERT ON rk.coin TO regress_rk_app;
SET ROLE regress_rk_app;
INSERT INTO rk.coin VALUES (2, 99);
RESET ROLE;
GRANT SELECT (vault) ON rk.coin TO regress_rk_app;
SET ROLE regress_rk_app;
INSERT INTO rk.coin VALUES (2, 99);
RESET ROLE;
-- postgres_fdw reads back the rows it inserts through a shim with row
-- triggers (RETURNING), which takes SELECT here
GRANT SELECT ON rk.coin TO regress_rk_app;
\c splitdb_regression
SET client_min_messages = warning;
SET ROLE regress_rk_app;
INSERT INTO rk.coin VALUES (2, 99);
RESET ROLE;
GRANT SELECT ON rk.coin TO regress_rk_app;
SET ROLE regress_rk_app;
INSERT INTO rk.coin VALUES (2, 99);
RESET ROLE;

-- nothing was written by the refused statements
SELECT (SELECT count(*) FROM rk.book) AS books, (SELECT count(*) FROM rk.vault) AS vaults,
       (SELECT count(*) FROM rk.lbook) AS lbooks, (SELECT count(*) FROM rk.lvault) AS lvaults,
       (SELECT count(*) FROM rk.coin) AS coins;

-- clean up
DROP USER MAPPING FOR regress_rk_app SERVER splitdb_kd_svc;
DROP FOREIGN TABLE rk.shelf, rk.coin;
DROP SCHEMA rk CASCADE;
REVOKE ALL ON SCHEMA public FROM regress_rk_app;
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
SELECT splitdb_drop_service('kd_svc');
DROP DATABASE kd_svc WITH (FORCE);
DROP ROLE regress_rk_app;
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
