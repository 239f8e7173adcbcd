--
-- assign: splitdb_assign() and splitdb_unassign()
--
CREATE EXTENSION splitdb CASCADE;
SELECT splitdb_add_service('asg_a');
SELECT splitdb_add_service('asg_b');

CREATE VIEW owned AS
SELECT relid::text, service, partition_root::text
  FROM splitdb.owned_table ORDER BY relid::text COLLATE "C";

CREATE SCHEMA "Sché ma";
CREATE TABLE "Sché ma"."Ré""serv ation" (id int PRIMARY KEY);
CREATE TABLE plain (id int PRIMARY KEY);
CREATE TABLE other (id int PRIMARY KEY);
-- a two-level partition tree
CREATE TABLE measure (id int, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE measure_2025 PARTITION OF measure
  FOR VALUES FROM ('2025-01-01') TO ('2026-01-01') PARTITION BY HASH (id);
CREATE TABLE measure_2025_h0 PARTITION OF measure_2025 FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE measure_2025_h1 PARTITION OF measure_2025 FOR VALUES WITH (MODULUS 2, REMAINDER 1);
CREATE TABLE measure_2026 PARTITION OF measure FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
-- inheritance, not partitioning
CREATE TABLE animal (id int PRIMARY KEY);
CREATE TABLE dog () INHERITS (animal);

-- ===== assign
SELECT splitdb_assign('asg_a', 'plain', '"Sché ma"."Ré""serv ation"');
SELECT * FROM owned;
-- a partitioned table comes with all its partitions
SELECT splitdb_assign('asg_a', 'measure');
SELECT * FROM owned;
-- an inheritance parent comes alone: its children are tables of their own
SELECT splitdb_assign('asg_a', 'animal');
SELECT * FROM owned WHERE relid IN ('animal', 'dog');
-- a table owned already by the same service is skipped
SELECT splitdb_assign('asg_a', 'plain', 'plain');
SELECT count(*) FROM splitdb.owned_table;

-- ===== refusals, each leaving the catalog as it was
CREATE TABLE owned_before AS SELECT * FROM owned;
CREATE FUNCTION owned_unchanged() RETURNS boolean LANGUAGE sql
  AS $$ SELECT NOT EXISTS (SELECT * FROM owned EXCEPT SELECT * FROM owned_before)
           AND NOT EXISTS (SELECT * FROM owned_before EXCEPT SELECT * FROM owned) $$;
-- fails: unknown service
SELECT splitdb_assign('no_such_service', 'other');
-- fails: owned by another service; the first table in the list is not taken either
SELECT splitdb_assign('asg_b', 'other', 'plain');
SELECT owned_unchanged();
-- fails: a partition owned through its parent, too
SELECT splitdb_assign('asg_b', 'measure_2026');
-- fails: a partition on its own
SELECT splitdb_assign('asg_b', 'measure_2025_h0');
SELECT owned_unchanged();
-- fails: unknown table (regclass input)
SELECT splitdb_assign('asg_b', 'no_such_table');
-- fails: a system catalog, an information_schema table, an extension's table
SELECT splitdb_assign('asg_b', 'pg_catalog.pg_class');
SELECT splitdb_assign('asg_b', 'information_schema.sql_features');
SELECT splitdb_assign('asg_b', 'splitdb.owned_table');
-- fails: not tables
CREATE VIEW v_plain AS SELECT * FROM plain;
CREATE MATERIALIZED VIEW mv_plain AS SELECT * FROM plain;
CREATE SEQUENCE seq_plain;
CREATE FOREIGN TABLE ft_plain (id int) SERVER splitdb_asg_b;
SELECT splitdb_assign('asg_b', 'v_plain');
SELECT splitdb_assign('asg_b', 'mv_plain');
SELECT splitdb_assign('asg_b', 'seq_plain');
SELECT splitdb_assign('asg_b', 'ft_plain');
-- fails: a partitioned table with a foreign partition
CREATE TABLE mixed (id int) PARTITION BY LIST (id);
CREATE FOREIGN TABLE mixed_far PARTITION OF mixed FOR VALUES IN (1) SERVER splitdb_asg_b;
SELECT splitdb_assign('asg_b', 'mixed');
DROP TABLE mixed;
-- fails: a temporary table
CREATE TEMP TABLE tmp_plain (id int);
SELECT splitdb_assign('asg_b', 'tmp_plain');
-- fails: NULL and empty lists
SELECT splitdb_assign('asg_b', NULL::regclass);
SELECT splitdb_assign('asg_b', VARIADIC '{}'::regclass[]);
SELECT splitdb_assign('asg_b', VARIADIC ARRAY['other'::regclass, NULL]);
SELECT owned_unchanged();

-- ===== unassign
-- fails: unknown service
SELECT splitdb_unassign('no_such_service', 'plain');
-- fails: owned by another service
SELECT splitdb_unassign('asg_b', 'plain');
-- fails: owned by nobody
SELECT splitdb_unassign('asg_a', 'other');
-- fails: a partition on its own
SELECT splitdb_unassign('asg_a', 'measure_2025_h1');
SELECT owned_unchanged();
-- a partitioned table goes with its partitions
SELECT splitdb_unassign('asg_a', 'measure');
SELECT * FROM owned;
SELECT splitdb_unassign('asg_a', 'plain', '"Sché ma"."Ré""serv ation"');
SELECT * FROM owned;
-- now another service may take them
SELECT splitdb_assign('asg_b', 'plain', 'measure');
SELECT * FROM owned;

-- ===== a partition attached after the assignment is owned with its parent
CREATE TABLE measure_2027 (id int, at date, PRIMARY KEY (id, at));
ALTER TABLE measure ATTACH PARTITION measure_2027 FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
SELECT object FROM splitdb_plan('asg_b') WHERE action = 'copy_data' ORDER BY 1;
-- fails: it cannot go to another service on its own
SELECT splitdb_assign('asg_a', 'measure_2027');
-- a table owned by itself and attached later keeps its own service
CREATE TABLE measure_2028 (id int, at date, PRIMARY KEY (id, at));
SELECT splitdb_assign('asg_a', 'measure_2028');
ALTER TABLE measure ATTACH PARTITION measure_2028 FOR VALUES FROM ('2028-01-01') TO ('2029-01-01');
SELECT service, object FROM (SELECT 'asg_a' AS service, object FROM splitdb_plan('asg_a') WHERE action = 'copy_data'
							 UNION ALL
							 SELECT 'asg_b', object FROM splitdb_plan('asg_b') WHERE action = 'copy_data') s
 WHERE object LIKE '%measure_202%' ORDER BY 1, 2;
ALTER TABLE measure DETACH PARTITION measure_2028;
SELECT splitdb_unassign('asg_a', 'measure_2028');
DROP TABLE measure_2028;

-- ===== dropping an owned table forgets its ownership
DROP TABLE plain CASCADE;
DROP TABLE measure_2026;
SELECT * FROM owned;

-- clean up
SELECT splitdb_unassign('asg_a', 'animal');
SELECT splitdb_unassign('asg_b', 'measure');
DROP FOREIGN TABLE ft_plain;
SELECT splitdb_drop_service('asg_a');
SELECT splitdb_drop_service('asg_b');
DROP VIEW owned;
DROP TABLE owned_before, other, measure, animal CASCADE;
DROP FUNCTION owned_unchanged();
DROP SCHEMA "Sché ma" CASCADE;
DROP SEQUENCE seq_plain;
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
DROP DATABASE asg_a;
DROP DATABASE asg_b;
