--
-- The plan of a service linked by a foreign key to another service that
-- is migrated warns that, once both are, splitdb_rollback() refuses
-- either: the key can come back only with both tables in the source.
-- Checked here:
-- - no such warning while the other service is not migrated;
-- - the warning, in both directions (this service's table the child, and
--   the parent), once it is, and again after it is finalized;
-- - the rollback refused as the warning says, after the migration.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

CREATE TABLE wb_account (id integer PRIMARY KEY);
CREATE TABLE wb_booking (id integer PRIMARY KEY,
	account_id integer NOT NULL REFERENCES wb_account);
CREATE TABLE wb_bill (id integer PRIMARY KEY,
	booking_id integer NOT NULL REFERENCES wb_booking);
CREATE TABLE wb_note (id integer PRIMARY KEY,
	bill_id integer REFERENCES wb_bill);
INSERT INTO wb_account VALUES (1);
INSERT INTO wb_booking VALUES (1, 1);
INSERT INTO wb_bill VALUES (1, 1);

SELECT splitdb_add_service('wb_first');
SELECT splitdb_add_service('wb_second');
SELECT splitdb_assign('wb_first', 'wb_booking');
SELECT splitdb_assign('wb_second', 'wb_bill');

-- the other service is not migrated: no warning of the kind
SELECT action, object FROM splitdb_plan('wb_second')
 WHERE action IN ('warning', 'blocker') ORDER BY 1, 2;

SELECT splitdb_migrate('wb_first', mode => 'offline', wait => true) IS NOT NULL AS migrated;

-- wb_bill, the child, moves with wb_second; its parent is in wb_first
SELECT action, object, detail FROM splitdb_plan('wb_second')
 WHERE action IN ('warning', 'blocker') ORDER BY 1, 2;

-- the parent's side: wb_account, referenced from wb_booking
SELECT splitdb_add_service('wb_third');
SELECT splitdb_assign('wb_third', 'wb_account');
SELECT action, object, detail FROM splitdb_plan('wb_third')
 WHERE action IN ('warning', 'blocker') ORDER BY 1, 2;
SELECT splitdb_unassign('wb_third', 'wb_account');

SELECT splitdb_finalize('wb_first');
SELECT action, object FROM splitdb_plan('wb_second')
 WHERE action IN ('warning', 'blocker') ORDER BY 1, 2;

-- as warned
SELECT splitdb_migrate('wb_second', mode => 'offline', wait => true) IS NOT NULL AS migrated;
SELECT splitdb_rollback('wb_second');

-- clean up
SELECT splitdb_finalize('wb_second');
DROP FOREIGN TABLE wb_bill, wb_booking;
DROP TABLE wb_note, wb_account;
DELETE FROM splitdb.reference;
DELETE FROM splitdb.job;
SELECT splitdb_drop_service('wb_first');
SELECT splitdb_drop_service('wb_second');
SELECT splitdb_drop_service('wb_third');
DROP DATABASE wb_first WITH (FORCE);
DROP DATABASE wb_second WITH (FORCE);
DROP DATABASE wb_third WITH (FORCE);
DROP SCHEMA IF EXISTS splitdb_archive CASCADE;
DROP EXTENSION splitdb CASCADE;
DROP EXTENSION postgres_fdw CASCADE;
