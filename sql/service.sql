--
-- service: splitdb_add_service() and splitdb_drop_service()
--
CREATE EXTENSION splitdb CASCADE;

-- what the catalog holds, without the socket path and port of this cluster
CREATE VIEW svc AS
SELECT s.service, s.dbname, s.server, s.server_created, s.database_created,
       s.mapping_role IS NOT NULL AS has_mapping,
       (SELECT option_value FROM pg_options_to_table(f.srvoptions)
         WHERE option_name = 'dbname') AS server_dbname,
       (SELECT count(*) FROM pg_user_mappings m WHERE m.srvname = s.server) AS mappings
  FROM splitdb.service s LEFT JOIN pg_foreign_server f ON f.srvname = s.server;

-- ===== a sibling on this cluster, created because it is missing
SELECT count(*) FROM pg_database WHERE datname = 'svc_reservation';
SELECT splitdb_add_service('svc_reservation');
SELECT * FROM svc ORDER BY service;
SELECT count(*) FROM pg_database WHERE datname = 'svc_reservation';
-- the server and mapping splitdb made reach the sibling through postgres_fdw too
CREATE FOREIGN TABLE probe (datname name)
  SERVER splitdb_svc_reservation
  OPTIONS (schema_name 'pg_catalog', table_name 'pg_database');
SELECT datname FROM probe WHERE datname = 'svc_reservation';
DROP FOREIGN TABLE probe;

-- ===== an existing database, another name than the service
CREATE DATABASE "svc billing DB";
SELECT splitdb_add_service('svc_billing', dbname => 'svc billing DB');
SELECT * FROM svc ORDER BY service;

-- ===== names with quotes, spaces, mixed case and non-ASCII letters
SELECT splitdb_add_service('Résa "Ünit" 2');
SELECT * FROM svc WHERE service = 'Résa "Ünit" 2';
SELECT count(*) FROM pg_database WHERE datname = 'Résa "Ünit" 2';

-- ===== refusals, each leaving the catalog as it was
CREATE TABLE svc_before AS SELECT * FROM svc;
CREATE FUNCTION svc_unchanged() RETURNS boolean LANGUAGE sql
  AS $$ SELECT NOT EXISTS (SELECT * FROM svc EXCEPT SELECT * FROM svc_before)
           AND NOT EXISTS (SELECT * FROM svc_before EXCEPT SELECT * FROM svc) $$;

-- fails: the service exists
SELECT splitdb_add_service('svc_reservation');
SELECT svc_unchanged();
-- fails: the database is missing and may not be created
SELECT splitdb_add_service('svc_nodb', create_database => false);
SELECT svc_unchanged(), count(*) FROM pg_database WHERE datname = 'svc_nodb';
-- fails: a database cannot be created inside a transaction block, where a
-- ROLLBACK could not take it back
BEGIN;
SELECT splitdb_add_service('svc_inblock');
ROLLBACK;
SELECT svc_unchanged(), count(*) FROM pg_database WHERE datname = 'svc_inblock';
-- an existing database is fine there, and a ROLLBACK takes it all back
BEGIN;
SELECT splitdb_add_service('svc_inblock', dbname => 'svc billing DB');
SELECT service, dbname FROM svc WHERE service = 'svc_inblock';
ROLLBACK;
SELECT svc_unchanged();
-- fails: the source database itself
SELECT splitdb_add_service('svc_self', dbname => current_database());
SELECT svc_unchanged();
-- fails: the server name splitdb would use is taken
CREATE SERVER splitdb_svc_taken FOREIGN DATA WRAPPER postgres_fdw;
SELECT splitdb_add_service('svc_taken');
SELECT svc_unchanged(), count(*) FROM pg_database WHERE datname = 'svc_taken';
DROP SERVER splitdb_svc_taken;
-- fails: NULL and empty names
SELECT splitdb_add_service(NULL);
SELECT splitdb_add_service('');
SELECT splitdb_add_service('svc_x', dbname => '');
-- fails: a service name too long for the server name
SELECT splitdb_add_service(repeat('s', 60));
SELECT svc_unchanged();

-- ===== a server the DBA brings
CREATE SERVER svc_ext FOREIGN DATA WRAPPER postgres_fdw
  OPTIONS (host 'localhost', dbname 'svc billing DB');
-- fails: no user mapping for the current user
SELECT splitdb_add_service('svc_external', server => 'svc_ext');
SELECT svc_unchanged();
-- fails: the server does not exist
SELECT splitdb_add_service('svc_external', server => 'no_such_server');
-- fails: not a postgres_fdw server
CREATE FOREIGN DATA WRAPPER svc_dummy_fdw;
CREATE SERVER svc_dummy FOREIGN DATA WRAPPER svc_dummy_fdw;
SELECT splitdb_add_service('svc_external', server => 'svc_dummy');
DROP SERVER svc_dummy;
DROP FOREIGN DATA WRAPPER svc_dummy_fdw;
-- fails: already used by another service
SELECT splitdb_add_service('svc_external', server => 'splitdb_svc_billing');
-- fails: unreachable; the connection error is shown, the password never
CREATE SERVER svc_lost FOREIGN DATA WRAPPER postgres_fdw
  OPTIONS (host '/nonexistent', port '5432', dbname 'lost');
CREATE USER MAPPING FOR CURRENT_USER SERVER svc_lost
  OPTIONS (user 'someone', password 'SeCrEt-pw-123');
SELECT splitdb_add_service('svc_lost', server => 'svc_lost');
SELECT svc_unchanged();
DROP SERVER svc_lost CASCADE;

-- a working external server: host and port of this cluster
DO $$
BEGIN
	EXECUTE (SELECT format('ALTER SERVER svc_ext OPTIONS (SET host %L, ADD port %L)',
						   h.option_value, p.option_value)
			   FROM pg_foreign_server s,
					pg_options_to_table(s.srvoptions) h,
					pg_options_to_table(s.srvoptions) p
			  WHERE s.srvname = 'splitdb_svc_billing'
				AND h.option_name = 'host' AND p.option_name = 'port');
END
$$;
CREATE USER MAPPING FOR CURRENT_USER SERVER svc_ext;
-- fails: the server reaches another database than the one named
SELECT splitdb_add_service('svc_external', dbname => 'elsewhere', server => 'svc_ext');
SELECT svc_unchanged();
-- fails: a server that reaches the source database itself
CREATE SERVER svc_loop FOREIGN DATA WRAPPER postgres_fdw;
DO $$
BEGIN
	EXECUTE (SELECT format('ALTER SERVER svc_loop OPTIONS (ADD host %L, ADD port %L, ADD dbname %L)',
						   h.option_value, p.option_value, current_database())
			   FROM pg_foreign_server s,
					pg_options_to_table(s.srvoptions) h,
					pg_options_to_table(s.srvoptions) p
			  WHERE s.srvname = 'svc_ext' AND h.option_name = 'host' AND p.option_name = 'port');
END
$$;
CREATE USER MAPPING FOR CURRENT_USER SERVER svc_loop;
SELECT splitdb_add_service('svc_loop', server => 'svc_loop');
SELECT svc_unchanged();
DROP SERVER svc_loop CASCADE;
-- fails: a sibling whose encoding is not the source's (its text would be
-- converted on the way, and no check could call the copy faithful); the
-- database, which was there before, is kept, and no server is left
CREATE DATABASE svc_latin1 ENCODING 'LATIN1' LOCALE 'C' TEMPLATE template0;
SELECT splitdb_add_service('svc_latin1');
SELECT svc_unchanged(), count(*) AS servers FROM pg_foreign_server WHERE srvname = 'splitdb_svc_latin1';
-- and the same through a server of the DBA's
CREATE SERVER svc_latin1_srv FOREIGN DATA WRAPPER postgres_fdw;
DO $$
BEGIN
	EXECUTE (SELECT format('ALTER SERVER svc_latin1_srv OPTIONS (ADD host %L, ADD port %L, ADD dbname %L)',
						   h.option_value, p.option_value, 'svc_latin1')
			   FROM pg_foreign_server s,
					pg_options_to_table(s.srvoptions) h,
					pg_options_to_table(s.srvoptions) p
			  WHERE s.srvname = 'svc_ext' AND h.option_name = 'host' AND p.option_name = 'port');
END
$$;
CREATE USER MAPPING FOR CURRENT_USER SERVER svc_latin1_srv;
SELECT splitdb_add_service('svc_latin1', server => 'svc_latin1_srv');
SELECT svc_unchanged();
DROP SERVER svc_latin1_srv CASCADE;
-- succeeds: the database is read from the sibling itself
SELECT splitdb_add_service('svc_external', server => 'svc_ext');
SELECT * FROM svc WHERE service = 'svc_external';
-- fails: a migration into a sibling whose encoding is not the source's
-- (its server pointed at another database since); no job is made
CREATE TABLE svc_enc (id int PRIMARY KEY);
SELECT splitdb_assign('svc_external', 'svc_enc');
ALTER SERVER svc_ext OPTIONS (SET dbname 'svc_latin1');
SELECT splitdb_migrate('svc_external');
SELECT count(*) AS jobs FROM splitdb.job WHERE service = 'svc_external';
ALTER SERVER svc_ext OPTIONS (SET dbname 'svc billing DB');
SELECT splitdb_unassign('svc_external', 'svc_enc');
DROP TABLE svc_enc;
DROP DATABASE svc_latin1;
-- succeeds: a source whose encoding and locale template1 lacks gets a
-- sibling made from template0 with them
SELECT current_database() AS source_db \gset
CREATE DATABASE svc_latin1_src ENCODING 'LATIN1' LOCALE 'C' TEMPLATE template0;
\c svc_latin1_src
CREATE EXTENSION splitdb CASCADE;
SELECT splitdb_add_service('svc_latin1_sib');
SELECT datname, pg_encoding_to_char(encoding) AS encoding, datcollate, datctype, datlocprovider
  FROM pg_database WHERE datname IN ('svc_latin1_src', 'svc_latin1_sib') ORDER BY 1;
\c :source_db
DROP DATABASE svc_latin1_src;
DROP DATABASE svc_latin1_sib;

-- ===== drop_service
-- fails: unknown service
SELECT splitdb_drop_service('no_such_service');
-- fails: it owns tables
CREATE TABLE svc_owned (id int PRIMARY KEY);
SELECT splitdb_assign('svc_billing', 'svc_owned');
SELECT splitdb_drop_service('svc_billing');
SELECT service FROM splitdb.service WHERE service = 'svc_billing';
-- fails: a foreign table still uses the server splitdb made
SELECT splitdb_unassign('svc_billing', 'svc_owned');
CREATE FOREIGN TABLE svc_ft (id int) SERVER splitdb_svc_billing;
SELECT splitdb_drop_service('svc_billing');
SELECT service FROM splitdb.service WHERE service = 'svc_billing';
DROP FOREIGN TABLE svc_ft;
-- succeeds: its server and user mapping go, the database stays
SELECT splitdb_drop_service('svc_billing');
SELECT count(*) FROM pg_foreign_server WHERE srvname = 'splitdb_svc_billing';
SELECT count(*) FROM pg_database WHERE datname = 'svc billing DB';
-- an external server stays when its service goes
SELECT splitdb_drop_service('svc_external');
SELECT srvname FROM pg_foreign_server WHERE srvname = 'svc_ext';
-- a database splitdb created is kept, with a notice; a server someone
-- dropped by hand does not stand in the way
DROP SERVER splitdb_svc_reservation CASCADE;
SELECT splitdb_drop_service('svc_reservation');
SELECT splitdb_drop_service('Résa "Ünit" 2');
SELECT * FROM svc ORDER BY service;

-- the GUC that bounds connection attempts
SHOW splitdb.connect_timeout;
SET splitdb.connect_timeout = '5s';
SHOW splitdb.connect_timeout;
-- fails: out of range
SET splitdb.connect_timeout = -1;
RESET splitdb.connect_timeout;

-- clean up
DROP TABLE svc_owned, svc_before;
DROP FUNCTION svc_unchanged();
DROP VIEW svc;
DROP SERVER svc_ext CASCADE;
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
DROP DATABASE svc_reservation;
DROP DATABASE "svc billing DB";
DROP DATABASE "Résa ""Ünit"" 2";
