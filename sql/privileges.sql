--
-- privileges: who may call what
--
CREATE EXTENSION splitdb CASCADE;
SELECT splitdb_add_service('priv_svc');
CREATE TABLE priv_t (id int PRIMARY KEY);
SELECT splitdb_assign('priv_svc', 'priv_t');

CREATE ROLE splitdb_priv_app LOGIN;
GRANT SELECT ON priv_t TO splitdb_priv_app;
GRANT CREATE ON SCHEMA public TO splitdb_priv_app;
SET ROLE splitdb_priv_app;
\set VERBOSITY default

-- fails: the functions that change services and ownership need a superuser
SELECT splitdb_add_service('priv_other', dbname => 'postgres', create_database => false);
SELECT splitdb_drop_service('priv_svc');
SELECT splitdb_assign('priv_svc', 'priv_t');
SELECT splitdb_unassign('priv_svc', 'priv_t');
-- fails: the catalog tables are read-only for everyone else
INSERT INTO splitdb.service (service, dbname, server, server_created, database_created)
	VALUES ('x', 'x', 'x', false, false);
DELETE FROM splitdb.owned_table;

-- the plan and the catalog are readable by anyone
SELECT step, action, object FROM splitdb_plan('priv_svc') ORDER BY step;
SELECT splitdb_plan_dot('priv_svc') LIKE 'digraph%' AS is_dot;
SELECT service, dbname, server FROM splitdb.service;
SELECT relid, service FROM splitdb.owned_table;
-- a role that is no superuser can still create and drop its own tables:
-- the event trigger that forgets dropped tables runs with its owner's rights
CREATE TABLE priv_own (id int);
DROP TABLE priv_own;
RESET ROLE;

-- an owned table dropped by its owner, who is no superuser, loses its row
CREATE TABLE priv_app_t (id int PRIMARY KEY);
ALTER TABLE priv_app_t OWNER TO splitdb_priv_app;
SELECT splitdb_assign('priv_svc', 'priv_app_t');
SET ROLE splitdb_priv_app;
DROP TABLE priv_app_t;
RESET ROLE;

-- nothing changed
SELECT service, dbname, server FROM splitdb.service;
SELECT relid, service FROM splitdb.owned_table;

-- clean up
SELECT splitdb_unassign('priv_svc', 'priv_t');
SELECT splitdb_drop_service('priv_svc');
DROP TABLE priv_t;
REVOKE CREATE ON SCHEMA public FROM splitdb_priv_app;
DROP ROLE splitdb_priv_app;
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
DROP DATABASE priv_svc;
