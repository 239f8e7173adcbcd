--
-- migrate_shared_database: services whose siblings are one database.
-- Without a reference between their tables they migrate; where a reference
-- joins two of them, splitdb_migrate() of the second refuses (0A000) before
-- it makes a job: splitdb keeps the two ends of a cross-service reference
-- in two databases, and in one the cutover's two sessions waited for each
-- other's locks until the job failed, after copying every row.  The peer
-- is found by the tables' owners now as well as by what the references
-- recorded, and counts from the moment it has a job that is not cancelled.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;
SELECT current_database() AS source_db \gset
SELECT splitdb_add_service('sd_orders', 'sd shared');
-- the other services reach the same database through servers of their own
DO $$
DECLARE
	opts text;
	s text;
BEGIN
	SELECT string_agg(format('%I %L', split_part(o, '=', 1), substr(o, strpos(o, '=') + 1)), ', ')
	  INTO opts
	  FROM pg_foreign_server f, unnest(f.srvoptions) o
	 WHERE f.srvname = 'splitdb_sd_orders' AND o NOT LIKE 'options=%';
	FOREACH s IN ARRAY ARRAY['sd_people', 'sd_notes', 'sd_cities', 'sd_a', 'sd_b',
							 'sd_f1', 'sd_f2', 'sd_g2'] LOOP
		EXECUTE format('CREATE SERVER %I FOREIGN DATA WRAPPER postgres_fdw OPTIONS (%s)', s || '_srv', opts);
		EXECUTE format('CREATE USER MAPPING FOR CURRENT_USER SERVER %I', s || '_srv');
		PERFORM splitdb_add_service(s::name, server => (s || '_srv')::name);
	END LOOP;
END
$$;
SELECT service, dbname FROM splitdb.service ORDER BY 1;

-- sd_order refers to sd_person, of another service, and to sd_city, which
-- no service owns yet
CREATE TABLE sd_person (id int PRIMARY KEY, name text);
CREATE TABLE sd_city (id int PRIMARY KEY, name text);
CREATE TABLE sd_order (id int PRIMARY KEY, person_id int REFERENCES sd_person,
					   city_id int REFERENCES sd_city);
CREATE TABLE sd_note (id int PRIMARY KEY, body text);
INSERT INTO sd_person SELECT g, 'p' || g FROM generate_series(1, 5) g;
INSERT INTO sd_city SELECT g, 'c' || g FROM generate_series(1, 5) g;
INSERT INTO sd_order SELECT g, g, g FROM generate_series(1, 5) g;
INSERT INTO sd_note SELECT g, 'n' || g FROM generate_series(1, 3) g;
SELECT splitdb_assign('sd_orders', 'sd_order');
SELECT splitdb_assign('sd_people', 'sd_person');
SELECT splitdb_assign('sd_notes', 'sd_note');

-- the plans warn of it: the same database name for two services that a
-- foreign key joins (the plan cannot tell whether the servers reach one
-- cluster); no warning for the service that nothing joins
SELECT p.service, s.object, s.detail
  FROM (VALUES ('sd_orders'), ('sd_people'), ('sd_notes')) p(service),
	   LATERAL splitdb_plan(p.service::name) s
 WHERE s.action = 'warning' AND s.detail LIKE '%names the same sibling database%'
 ORDER BY 1, 2;

-- the referencing table moves first: its ends now check the source
SELECT splitdb_migrate('sd_orders', mode => 'offline', wait => true) > 0 AS orders_migrated;

-- fails: the referenced table's service has its sibling in the same database
\set VERBOSITY default
SELECT splitdb_migrate('sd_people', mode => 'offline', wait => true);
-- nothing changed: no job, the table where it was, none in the sibling
SELECT count(*) AS people_jobs FROM splitdb.job WHERE service = 'sd_people';
SELECT relkind FROM pg_class WHERE oid = 'sd_person'::regclass;
\c 'sd shared'
SELECT to_regclass('public.sd_person') IS NULL AS no_person_in_sibling;
\c :source_db
SET client_min_messages = warning;
-- the reference still holds through the shim, both ways
INSERT INTO sd_order VALUES (10, 99, 1);
DELETE FROM sd_person WHERE id = 3;

-- fails too: sd_city had no service when sd_order moved, and has one now
SELECT splitdb_assign('sd_cities', 'sd_city');
SELECT splitdb_migrate('sd_cities', mode => 'offline', wait => true);
SELECT count(*) AS cities_jobs FROM splitdb.job WHERE service = 'sd_cities';

-- a service with no reference to the others shares the database
SELECT splitdb_migrate('sd_notes', mode => 'offline', wait => true) > 0 AS notes_migrated;
SELECT count(*) AS notes FROM sd_note;

-- a peer counts from its first job on, before it moved anything: sd_b's
-- job fails in the sibling (an event trigger there refuses its tables), so
-- sd_a, whose table sd_b's refers to, is refused while that job stands
CREATE TABLE sd_parent (id int PRIMARY KEY);
CREATE TABLE sd_child (id int PRIMARY KEY, parent_id int REFERENCES sd_parent);
INSERT INTO sd_parent VALUES (1);
INSERT INTO sd_child VALUES (1, 1);
SELECT splitdb_assign('sd_a', 'sd_parent');
SELECT splitdb_assign('sd_b', 'sd_child');
\c 'sd shared'
CREATE FUNCTION sd_refuse() RETURNS event_trigger LANGUAGE plpgsql AS
$$BEGIN RAISE EXCEPTION 'no new tables here'; END$$;
CREATE EVENT TRIGGER sd_refuse ON ddl_command_start WHEN TAG IN ('CREATE TABLE')
	EXECUTE FUNCTION sd_refuse();
\c :source_db
SET client_min_messages = warning;
\set VERBOSITY terse
SELECT splitdb_migrate('sd_b', mode => 'offline', wait => true);
\set VERBOSITY default
\c 'sd shared'
DROP EVENT TRIGGER sd_refuse;
DROP FUNCTION sd_refuse();
\c :source_db
SET client_min_messages = warning;
SELECT state FROM splitdb.job WHERE service = 'sd_b';
SELECT splitdb_migrate('sd_a', mode => 'offline', wait => true);
-- once that job is cancelled, sd_a migrates
SELECT splitdb_cancel('sd_b');
SELECT splitdb_migrate('sd_a', mode => 'offline', wait => true) > 0 AS a_migrated;
SELECT service, state FROM splitdb_status ORDER BY service;

-- a peer found by the reference it recorded, after its finalize dropped
-- the original and the original's owner with it: sd_fchild had no service
-- when sd_f1 moved sd_fparent, and has one now
CREATE TABLE sd_fparent (id int PRIMARY KEY);
CREATE TABLE sd_fchild (id int PRIMARY KEY, parent_id int REFERENCES sd_fparent);
INSERT INTO sd_fparent VALUES (1), (2);
INSERT INTO sd_fchild VALUES (1, 1);
SELECT splitdb_assign('sd_f1', 'sd_fparent');
SELECT splitdb_migrate('sd_f1', mode => 'offline', wait => true) > 0 AS f1_migrated;
SELECT splitdb_finalize('sd_f1');
SELECT count(*) AS f1_owned FROM splitdb.owned_relation WHERE service = 'sd_f1';
SELECT child_service, parent_service FROM splitdb.reference
 WHERE child_relid = 'sd_fchild'::regclass;
SELECT splitdb_assign('sd_f2', 'sd_fchild');
SELECT s.object, s.detail FROM splitdb_plan('sd_f2') s
 WHERE s.action = 'warning' AND s.detail LIKE '%names the same sibling database%';
SELECT splitdb_migrate('sd_f2', mode => 'offline', wait => true);
SELECT count(*) AS f2_jobs FROM splitdb.job WHERE service = 'sd_f2';
SELECT relkind FROM pg_class WHERE oid = 'sd_fchild'::regclass;
-- the reference still holds through the shim
INSERT INTO sd_fchild VALUES (2, 99);

-- a peer whose server was pointed at the shared database after the service
-- was added: the check reads the server's dbname option now, not the name
-- recorded then
SELECT splitdb_add_service('sd_g1', 'sd other');
SELECT dbname FROM splitdb.service WHERE service = 'sd_g1';
ALTER SERVER splitdb_sd_g1 OPTIONS (SET dbname 'sd shared');
CREATE TABLE sd_gparent (id int PRIMARY KEY);
CREATE TABLE sd_gchild (id int PRIMARY KEY, parent_id int REFERENCES sd_gparent);
INSERT INTO sd_gparent VALUES (1);
INSERT INTO sd_gchild VALUES (1, 1);
SELECT splitdb_assign('sd_g1', 'sd_gparent');
SELECT splitdb_assign('sd_g2', 'sd_gchild');
SELECT s.object, s.detail FROM splitdb_plan('sd_g2') s
 WHERE s.action = 'warning' AND s.detail LIKE '%names the same sibling database%';
-- (a job's claim is stamped after every earlier one, even one stamped
-- ahead of the clock, as after the clock stepped back)
UPDATE splitdb.job SET started_at = started_at + interval '1 day' WHERE service = 'sd_f1';
SELECT splitdb_migrate('sd_g1', mode => 'offline', wait => true) > 0 AS g1_migrated;
SELECT (SELECT started_at FROM splitdb.job WHERE service = 'sd_g1')
	   > (SELECT started_at FROM splitdb.job WHERE service = 'sd_f1') AS g1_claimed_after_f1;
\c 'sd shared'
SELECT count(*) AS gparent_in_shared FROM public.sd_gparent;
\c :source_db
SET client_min_messages = warning;
\set VERBOSITY default
SELECT splitdb_migrate('sd_g2', mode => 'offline', wait => true);
SELECT count(*) AS g2_jobs FROM splitdb.job WHERE service = 'sd_g2';
SELECT relkind FROM pg_class WHERE oid = 'sd_gchild'::regclass;

-- clean up
SELECT splitdb_finalize('sd_notes', drop_shim => true);
SELECT splitdb_finalize('sd_orders', drop_shim => true);
SELECT splitdb_finalize('sd_a', drop_shim => true);
SELECT splitdb_finalize('sd_g1', drop_shim => true);
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
DROP TABLE IF EXISTS sd_person, sd_city, sd_order, sd_note, sd_parent, sd_child,
	sd_fchild, sd_gchild;
DROP FOREIGN TABLE IF EXISTS sd_fparent;
DROP EXTENSION splitdb CASCADE;
DROP SERVER splitdb_sd_orders, sd_people_srv, sd_notes_srv, sd_cities_srv, sd_a_srv, sd_b_srv,
	sd_f1_srv, sd_f2_srv, sd_g2_srv, splitdb_sd_g1 CASCADE;
DROP DATABASE "sd shared" WITH (FORCE);
DROP DATABASE "sd other" WITH (FORCE);
DROP EXTENSION postgres_fdw;
