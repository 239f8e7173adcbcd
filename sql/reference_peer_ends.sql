--
-- reference_peer_ends: a reference whose referencing table moved with one
-- service and whose referenced table then moves with another joins two
-- siblings; the second cutover takes the end off the first service's shim
-- in the source, and marks its registry row dropped, so that
-- splitdb_doctor() finds nothing missing.  Plain and partitioned
-- referencing tables.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;
SELECT splitdb_add_service('pe_orders');
SELECT splitdb_add_service('pe_people');
CREATE TABLE pe_person (id int PRIMARY KEY, name text);
CREATE TABLE pe_order (id int PRIMARY KEY, person_id int REFERENCES pe_person);
CREATE TABLE pe_visit (day date, id int, person_id int, PRIMARY KEY (day, id))
	PARTITION BY RANGE (day);
CREATE TABLE pe_visit_1 PARTITION OF pe_visit FOR VALUES FROM ('2024-01-01') TO ('2024-02-01');
ALTER TABLE pe_visit_1 ADD FOREIGN KEY (person_id) REFERENCES pe_person;
INSERT INTO pe_person SELECT g, 'p' || g FROM generate_series(1, 5) g;
INSERT INTO pe_order SELECT g, g FROM generate_series(1, 5) g;
INSERT INTO pe_visit_1 SELECT '2024-01-05', g, g FROM generate_series(1, 5) g;

-- the referencing tables move first, then the referenced one
SELECT splitdb_assign('pe_orders', 'pe_order', 'pe_visit');
SELECT splitdb_migrate('pe_orders', mode => 'offline', wait => true) > 0 AS orders_migrated;
SELECT * FROM splitdb_doctor();
SELECT splitdb_assign('pe_people', 'pe_person');
SELECT splitdb_migrate('pe_people', mode => 'offline', wait => true) > 0 AS people_migrated;
SELECT state FROM splitdb_status ORDER BY service;

-- nothing is missing; the references are enforced in the siblings
SELECT severity, object, problem FROM splitdb_doctor();
SELECT tgrelid::regclass AS relation, tgname FROM pg_trigger
 WHERE tgname LIKE 'splitdb\_ref\_%' ORDER BY 1, 2;
INSERT INTO pe_order VALUES (10, 99);
INSERT INTO pe_visit VALUES ('2024-01-06', 10, 99);
INSERT INTO pe_order VALUES (11, 3);
DELETE FROM pe_person WHERE id = 3;

-- clean up
SELECT splitdb_finalize('pe_people', drop_shim => true);
SELECT splitdb_finalize('pe_orders', drop_shim => true);
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
DROP TABLE IF EXISTS pe_person, pe_order, pe_visit;
DROP EXTENSION splitdb CASCADE;
DROP SERVER splitdb_pe_orders, splitdb_pe_people CASCADE;
DROP DATABASE pe_orders WITH (FORCE);
DROP DATABASE pe_people WITH (FORCE);
DROP EXTENSION postgres_fdw;
