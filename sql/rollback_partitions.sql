--
-- splitdb_rollback() of a service with partitioned tables whose foreign
-- keys, declared on the partitioned table, reference a table that stays.
-- PostgreSQL 15 adds no NOT VALID foreign key to a partitioned table, so
-- the rollback adds such a key whole (validated at once): back on the
-- partitioned table and its partitions, valid, as before the migration.
-- When rows written while the service lived apart refer to missing keys,
-- the key goes NOT VALID on each leaf partition instead, and the rollback
-- warns.  Either way the rollback completes, and nothing is left behind.
-- Rows written in the sibling through a partitioned table of the second
-- level (whose statement triggers alone fire) are captured and come back.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

CREATE TABLE rp_kunde (id integer PRIMARY KEY);
INSERT INTO rp_kunde VALUES (1), (2);
CREATE TABLE rp_ereignis (
	id       integer,
	am       date,
	kunde_id integer REFERENCES rp_kunde,
	PRIMARY KEY (id, am)
) PARTITION BY RANGE (am);
CREATE TABLE rp_ereignis_1 PARTITION OF rp_ereignis
	FOR VALUES FROM ('2026-01-01') TO ('2026-07-01');
CREATE TABLE rp_ereignis_2 PARTITION OF rp_ereignis
	FOR VALUES FROM ('2026-07-01') TO ('2027-01-01');
-- two levels, and a default partition
CREATE TABLE rp_notiz (
	id       integer,
	am       date,
	kunde_id integer REFERENCES rp_kunde ON DELETE CASCADE,
	PRIMARY KEY (id, am)
) PARTITION BY RANGE (am);
CREATE TABLE rp_notiz_1 PARTITION OF rp_notiz
	FOR VALUES FROM ('2026-01-01') TO ('2026-07-01') PARTITION BY RANGE (id);
CREATE TABLE rp_notiz_1a PARTITION OF rp_notiz_1 FOR VALUES FROM (0) TO (100);
CREATE TABLE rp_notiz_2 PARTITION OF rp_notiz DEFAULT;
INSERT INTO rp_ereignis VALUES (1, '2026-02-01', 1), (2, '2026-08-01', NULL);
INSERT INTO rp_notiz VALUES (1, '2026-02-01', 2), (2, '2026-09-01', 1);

SELECT splitdb_add_service('rp_svc');
SELECT splitdb_assign('rp_svc', 'rp_ereignis', 'rp_notiz');
SELECT splitdb_migrate('rp_svc', mode => 'offline', wait => true) > 0 AS migrated;

-- writes through the shims, checked against the source
INSERT INTO rp_ereignis VALUES (3, '2026-03-01', 2);
INSERT INTO rp_notiz VALUES (3, '2026-03-01', 1);
-- with the notes' reference off, the sibling takes a note whose customer
-- is missing
SELECT splitdb_reference_mode(reference_id, 'off') FROM splitdb.reference
 WHERE constraint_name = 'rp_notiz_kunde_id_fkey';
\c rp_svc
INSERT INTO rp_notiz VALUES (4, '2026-10-01', 42);
-- writes through the partitioned table of the second level fire its own
-- statement triggers alone: it captures them as the root and the leaves do
SELECT tgrelid::regclass AS "table", count(*) AS capture_triggers
  FROM pg_trigger WHERE tgname LIKE 'splitdb\_capture\_%'
 GROUP BY 1 ORDER BY tgrelid::regclass::text;
INSERT INTO rp_notiz_1 VALUES (5, '2026-02-02', 1), (6, '2026-03-03', 2);
UPDATE rp_notiz_1 SET kunde_id = 2 WHERE id = 3;
DELETE FROM rp_notiz_1 WHERE id = 6;
\c splitdb_regression
SET client_min_messages = warning;

SELECT splitdb_rollback('rp_svc');
SET client_min_messages = warning;
SELECT state FROM splitdb.job;

-- the events' key is back on the partitioned table, valid, and on its
-- partitions; the notes' key is NOT VALID on each leaf partition
SELECT conrelid::regclass AS "table", conname, convalidated, conparentid <> 0 AS inherited
  FROM pg_constraint
 WHERE contype = 'f' AND conrelid::regclass::text LIKE 'rp\_%'
 ORDER BY conrelid::regclass::text, conname;
SELECT relname, relkind FROM pg_class
 WHERE relname IN ('rp_ereignis', 'rp_notiz') ORDER BY 1;
SELECT tableoid::regclass, * FROM rp_ereignis ORDER BY id;
SELECT tableoid::regclass, * FROM rp_notiz ORDER BY id;

-- both keys check new rows; the notes' on every partition
\set VERBOSITY terse
INSERT INTO rp_ereignis VALUES (9, '2026-09-01', 77);
INSERT INTO rp_notiz VALUES (9, '2026-02-01', 77);
INSERT INTO rp_notiz VALUES (10, '2026-11-01', 77);
\set VERBOSITY default
-- and their actions: a customer's notes go with it, from every partition
INSERT INTO rp_kunde VALUES (3);
INSERT INTO rp_notiz VALUES (11, '2026-02-01', 3), (12, '2026-12-01', 3);
DELETE FROM rp_kunde WHERE id = 3;
SELECT * FROM rp_notiz ORDER BY id;
SELECT severity, location, object, problem FROM splitdb_doctor() ORDER BY 2, 3;

-- clean up
DROP TABLE rp_ereignis, rp_notiz, rp_kunde;
DELETE FROM splitdb.job;
DROP SCHEMA IF EXISTS splitdb_archive CASCADE;
SELECT splitdb_drop_service('rp_svc');
DROP DATABASE rp_svc WITH (FORCE);
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
