--
-- splitdb_migrate() from a transaction whose changes its worker cannot
-- see: the worker runs in a transaction of its own and reads only what is
-- committed.  Checked here:
-- - in the transaction that assigned the service's tables, splitdb_migrate()
--   is refused (25001), with wait => true and with wait => false: the
--   refused call records no job, creates nothing in the sibling, and the
--   table stays an ordinary table, still assigned in that transaction;
-- - the same in a transaction that unassigned a table (the worker would
--   still see it assigned);
-- - in a transaction that wrote to a table of the service, it is refused
--   (25001) naming the lock the worker would wait for;
-- - a change undone by ROLLBACK TO SAVEPOINT does not count;
-- - after COMMIT the same splitdb_migrate() starts a job with every table,
--   which ends done with the rows in the sibling.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

CREATE TABLE tx_t (id integer PRIMARY KEY, v text NOT NULL);
INSERT INTO tx_t SELECT g, 'row ' || g FROM generate_series(1, 50) g;
CREATE TABLE tx_u (id integer PRIMARY KEY);
INSERT INTO tx_u SELECT generate_series(1, 5);
SELECT splitdb_add_service('tx_svc');

-- assigned, then migrated in the same transaction
BEGIN;
SELECT splitdb_assign('tx_svc', 'tx_t', 'tx_u');
SAVEPOINT before_migrate;
SELECT splitdb_migrate('tx_svc', wait => true);
ROLLBACK TO before_migrate;
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
SELECT splitdb_migrate('tx_svc', wait => false);
ROLLBACK TO before_migrate;
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
-- nothing recorded, nothing changed
SELECT count(*) AS jobs FROM splitdb.job;
SELECT count(*) AS job_tables FROM splitdb.job_table;
SELECT relid, service FROM splitdb.owned_table ORDER BY 1::text;
SELECT relname, relkind FROM pg_class WHERE oid IN ('tx_t'::regclass, 'tx_u'::regclass) ORDER BY 1;
COMMIT;
\c tx_svc
SELECT count(*) AS sibling_tables FROM pg_class WHERE relname IN ('tx_t', 'tx_u');
\c splitdb_regression
SET client_min_messages = warning;

-- unassigned in the transaction: the worker would still see it assigned
BEGIN;
SELECT splitdb_unassign('tx_svc', 'tx_u');
SELECT splitdb_migrate('tx_svc');
ROLLBACK;
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;

-- a write to a table of the service: the worker's SHARE lock would wait
BEGIN;
INSERT INTO tx_t VALUES (51, 'row 51');
SELECT splitdb_migrate('tx_svc');
ROLLBACK;
SELECT :'LAST_ERROR_SQLSTATE' AS sqlstate;
SELECT count(*) AS jobs FROM splitdb.job;

-- after COMMIT the same call works, with every table
SELECT splitdb_migrate('tx_svc', wait => true) > 0 AS migrated;
SELECT state, phase, runs, last_error FROM splitdb.job WHERE service = 'tx_svc';
SELECT table_name, phase FROM splitdb.job_table ORDER BY 1;
SELECT relname, relkind FROM pg_class
 WHERE relname IN ('tx_t', 'tx_u') AND relnamespace = 'public'::regnamespace ORDER BY 1;
SELECT count(*), min(v), max(v) FROM tx_t;
\c tx_svc
SELECT count(*), min(v), max(v) FROM tx_t;
SELECT count(*) FROM tx_u;
\c splitdb_regression
SET client_min_messages = warning;

-- the same with wait => false, for a second service
CREATE TABLE tx_w (id integer PRIMARY KEY);
INSERT INTO tx_w SELECT generate_series(1, 7);
SELECT splitdb_add_service('tx_svc2');
BEGIN;
SELECT splitdb_assign('tx_svc2', 'tx_w');
SAVEPOINT s;
SELECT splitdb_migrate('tx_svc2');
ROLLBACK TO s;
SELECT count(*) AS jobs FROM splitdb.job WHERE service = 'tx_svc2';
-- an assignment undone by ROLLBACK TO does not count
SAVEPOINT t;
SELECT splitdb_unassign('tx_svc2', 'tx_w');
ROLLBACK TO t;
COMMIT;
SELECT splitdb_migrate('tx_svc2') > 0 AS started;
DO $$
BEGIN
	FOR i IN 1 .. 600 LOOP
		EXIT WHEN (SELECT state IN ('done', 'failed') FROM splitdb.job WHERE service = 'tx_svc2');
		PERFORM pg_sleep(0.1);
	END LOOP;
END
$$;
SELECT state, last_error FROM splitdb.job WHERE service = 'tx_svc2';
SELECT table_name FROM splitdb.job_table
 WHERE job_id = (SELECT job_id FROM splitdb.job WHERE service = 'tx_svc2');
\c tx_svc2
SELECT count(*) FROM tx_w;
\c splitdb_regression
SET client_min_messages = warning;

-- clean up
DROP FOREIGN TABLE tx_t, tx_u, tx_w;
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
DELETE FROM splitdb.job;
SELECT splitdb_drop_service('tx_svc');
SELECT splitdb_drop_service('tx_svc2');
DROP DATABASE tx_svc WITH (FORCE);
DROP DATABASE tx_svc2 WITH (FORCE);
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
