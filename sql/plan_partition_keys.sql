--
-- A partitioned table without a key of its own whose partitions have one.
-- Each partition is copied by its own unique key; only an online migration
-- needs a key on the partitioned table (it replays writes by it).  The
-- plan's warning says so, not that the table is copied in one pass.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;
\set SHOW_CONTEXT never

CREATE TABLE credit (
	is_va   boolean NOT NULL,
	artist  integer NOT NULL,
	release integer NOT NULL,
	name    text
) PARTITION BY LIST (is_va);
CREATE TABLE "credit VA" PARTITION OF credit FOR VALUES IN (true);
CREATE TABLE credit_other PARTITION OF credit FOR VALUES IN (false);
CREATE UNIQUE INDEX ON "credit VA" (release, artist);
CREATE UNIQUE INDEX ON credit_other (release, artist);
INSERT INTO credit SELECT i % 3 = 0, i, i * 10, 'c' || i FROM generate_series(1, 30) i;
ANALYZE credit;

SELECT splitdb_add_service('pk_svc');
SELECT splitdb_assign('pk_svc', 'credit');
SELECT action, object, detail FROM splitdb_plan('pk_svc')
 WHERE action IN ('copy_data', 'warning', 'blocker') ORDER BY step;
SELECT splitdb_migrate('pk_svc');
\echo :LAST_ERROR_SQLSTATE
SELECT splitdb_migrate('pk_svc', mode => 'offline', wait => true) > 0 AS migrated;
SELECT table_name, key_columns, verified FROM splitdb_table_status
 WHERE service = 'pk_svc' ORDER BY table_name;

-- clean up
SELECT splitdb_rollback('pk_svc');
SELECT splitdb_unassign('pk_svc', 'credit');
SELECT splitdb_drop_service('pk_svc');
DROP DATABASE pk_svc WITH (FORCE);
DROP TABLE credit;
DROP SCHEMA splitdb_archive CASCADE;
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
