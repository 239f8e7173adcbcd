--
-- migrate_shared_database: two services whose siblings are one database.
-- Without a reference between their tables both migrate; where a reference
-- joins them, splitdb_migrate() of the second refuses (0A000) before it
-- makes a job: splitdb keeps the two ends of a cross-service reference in
-- two databases, and in one the cutover's two sessions waited for each
-- other's locks until the job failed, after copying every row.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;
SELECT current_database() AS source_db \gset
SELECT splitdb_add_service('sd_orders', 'sd shared');
-- two more services reach the same database through servers of their own
DO $$
DECLARE
	opts text;
BEGIN
	SELECT string_agg(format('%I %L', split_part(o, '=', 1), substr(o, strpos(o, '=') + 1)), ', ')
	  INTO opts
	  FROM pg_foreign_server s, unnest(s.srvoptions) o
	 WHERE s.srvname = 'splitdb_sd_orders' AND o NOT LIKE 'options=%';
	EXECUTE format('CREATE SERVER sd_people_srv FOREIGN DATA WRAPPER postgres_fdw OPTIONS (%s)', opts);
	EXECUTE format('CREATE SERVER sd_notes_srv FOREIGN DATA WRAPPER postgres_fdw OPTIONS (%s)', opts);
END
$$;
CREATE USER MAPPING FOR CURRENT_USER SERVER sd_people_srv;
CREATE USER MAPPING FOR CURRENT_USER SERVER sd_notes_srv;
SELECT splitdb_add_service('sd_people', server => 'sd_people_srv');
SELECT splitdb_add_service('sd_notes', server => 'sd_notes_srv');
SELECT service, dbname FROM splitdb.service ORDER BY 1;

CREATE TABLE sd_person (id int PRIMARY KEY, name text);
CREATE TABLE sd_order (id int PRIMARY KEY, person_id int REFERENCES sd_person);
CREATE TABLE sd_note (id int PRIMARY KEY, body text);
INSERT INTO sd_person SELECT g, 'p' || g FROM generate_series(1, 5) g;
INSERT INTO sd_order SELECT g, g FROM generate_series(1, 5) g;
INSERT INTO sd_note SELECT g, 'n' || g FROM generate_series(1, 3) g;
SELECT splitdb_assign('sd_orders', 'sd_order');
SELECT splitdb_assign('sd_people', 'sd_person');
SELECT splitdb_assign('sd_notes', 'sd_note');

-- the referencing table moves first: its end now checks the source
SELECT splitdb_migrate('sd_orders', mode => 'offline', wait => true) > 0 AS orders_migrated;

-- fails: the referenced table's service has its sibling in the same database
SELECT splitdb_migrate('sd_people', mode => 'offline', wait => true);
-- nothing changed: no job, the table where it was, none in the sibling
SELECT count(*) AS people_jobs FROM splitdb.job WHERE service = 'sd_people';
SELECT relkind FROM pg_class WHERE oid = 'sd_person'::regclass;
\c 'sd shared'
SELECT to_regclass('public.sd_person') IS NULL AS no_person_in_sibling;
\c :source_db
SET client_min_messages = warning;
-- the reference still holds through the shim, both ways
INSERT INTO sd_order VALUES (10, 99);
DELETE FROM sd_person WHERE id = 3;

-- a service with no reference to the others shares the database
SELECT splitdb_migrate('sd_notes', mode => 'offline', wait => true) > 0 AS notes_migrated;
SELECT service, state FROM splitdb_status ORDER BY service;
SELECT count(*) AS notes FROM sd_note;

-- clean up
SELECT splitdb_finalize('sd_notes', drop_shim => true);
SELECT splitdb_finalize('sd_orders', drop_shim => true);
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
DROP TABLE IF EXISTS sd_person, sd_order, sd_note;
DROP EXTENSION splitdb CASCADE;
DROP SERVER splitdb_sd_orders, sd_people_srv, sd_notes_srv CASCADE;
DROP DATABASE "sd shared" WITH (FORCE);
DROP EXTENSION postgres_fdw;
