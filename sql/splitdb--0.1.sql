/* sql/splitdb--0.1.sql */
\echo Use "CREATE EXTENSION splitdb" to load this file. \quit

/*
 * Catalog.  splitdb's own tables live in schema splitdb; the functions that
 * users call live in the extension's schema and carry the splitdb_ prefix.
 */
CREATE SCHEMA splitdb;
COMMENT ON SCHEMA splitdb IS 'splitdb catalog: services and the tables they own';

CREATE TABLE splitdb.service (
	service          name PRIMARY KEY,
	dbname           text NOT NULL,
	server           name NOT NULL UNIQUE,
	server_created   boolean NOT NULL,
	database_created boolean NOT NULL,
	mapping_role     name,
	created_at       timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE splitdb.service IS 'services: one sibling database each, reached through a postgres_fdw server';
COMMENT ON COLUMN splitdb.service.service IS 'the service name used in every splitdb call';
COMMENT ON COLUMN splitdb.service.dbname IS 'name of the sibling database';
COMMENT ON COLUMN splitdb.service.server IS 'postgres_fdw foreign server that reaches the sibling';
COMMENT ON COLUMN splitdb.service.server_created IS 'true when splitdb created the server (and drops it with the service)';
COMMENT ON COLUMN splitdb.service.database_created IS 'true when splitdb created the sibling database';
COMMENT ON COLUMN splitdb.service.mapping_role IS 'role whose user mapping splitdb created, NULL when it made none';

CREATE TABLE splitdb.owned_table (
	relid          regclass PRIMARY KEY,
	service        name NOT NULL REFERENCES splitdb.service (service),
	partition_root regclass,
	assigned_at    timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX owned_table_service_idx ON splitdb.owned_table (service);
COMMENT ON TABLE splitdb.owned_table IS 'table ownership: which service each assigned table moves to';
COMMENT ON COLUMN splitdb.owned_table.relid IS 'the owned table';
COMMENT ON COLUMN splitdb.owned_table.service IS 'the service that owns it';
COMMENT ON COLUMN splitdb.owned_table.partition_root IS 'the partitioned table it was assigned through, NULL when assigned by itself';

SELECT pg_catalog.pg_extension_config_dump('splitdb.service', '');
SELECT pg_catalog.pg_extension_config_dump('splitdb.owned_table', '');

GRANT USAGE ON SCHEMA splitdb TO PUBLIC;
GRANT SELECT ON splitdb.service, splitdb.owned_table TO PUBLIC;

/*
 * A dropped table leaves no ownership row behind, so the catalog never holds
 * a dangling OID.
 */
CREATE FUNCTION splitdb.forget_dropped_tables()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER	-- any role's DROP fires it; only the owner may write the catalog
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	DELETE FROM splitdb.owned_table o
	 USING pg_catalog.pg_event_trigger_dropped_objects() d
	 WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
	   AND d.objsubid = 0
	   AND o.relid::pg_catalog.oid = d.objid;
END
$$;
COMMENT ON FUNCTION splitdb.forget_dropped_tables() IS 'event trigger: removes ownership rows of dropped tables';
REVOKE ALL ON FUNCTION splitdb.forget_dropped_tables() FROM PUBLIC;

CREATE EVENT TRIGGER splitdb_forget_dropped_tables ON sql_drop
	EXECUTE FUNCTION splitdb.forget_dropped_tables();

/*
 * Services
 */
CREATE FUNCTION splitdb_add_service(service name,
									dbname text DEFAULT NULL,
									server name DEFAULT NULL,
									create_database boolean DEFAULT true)
RETURNS void
AS 'MODULE_PATHNAME', 'splitdb_add_service'
LANGUAGE C VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION splitdb_add_service(name, text, name, boolean) IS
'registers a service: its sibling database and the postgres_fdw server that reaches it';

CREATE FUNCTION splitdb_drop_service(service name)
RETURNS void
AS 'MODULE_PATHNAME', 'splitdb_drop_service'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION splitdb_drop_service(name) IS
'forgets a service that owns no tables, with the server and user mapping splitdb made for it';

/*
 * Ownership
 */
CREATE FUNCTION splitdb_assign(service name, VARIADIC tables regclass[])
RETURNS integer
AS 'MODULE_PATHNAME', 'splitdb_assign'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION splitdb_assign(name, regclass[]) IS
'assigns tables (partitioned tables with their partitions) to a service; returns how many were newly assigned';

CREATE FUNCTION splitdb_unassign(service name, VARIADIC tables regclass[])
RETURNS integer
AS 'MODULE_PATHNAME', 'splitdb_unassign'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION splitdb_unassign(name, regclass[]) IS
'takes tables (partitioned tables with their partitions) away from a service; returns how many were removed';

/*
 * The plan
 */
CREATE FUNCTION splitdb_plan(service name)
RETURNS TABLE (step integer, action text, object text, detail text)
AS 'MODULE_PATHNAME', 'splitdb_plan'
LANGUAGE C STRICT STABLE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
SET datestyle = 'ISO, YMD';
COMMENT ON FUNCTION splitdb_plan(name) IS
'dry run: the steps a migration of the service would take, with warnings and blockers';

CREATE FUNCTION splitdb_plan_dot(service name)
RETURNS text
AS 'MODULE_PATHNAME', 'splitdb_plan_dot'
LANGUAGE C STRICT STABLE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION splitdb_plan_dot(name) IS
'the foreign-key graph of the service''s tables and their neighbours, as Graphviz DOT';

/*
 * Verification
 */
CREATE FUNCTION splitdb_verify(service name)
RETURNS TABLE (table_name text, source_rows bigint, target_rows bigint,
			   source_checksum text, target_checksum text, ok boolean)
AS 'MODULE_PATHNAME', 'splitdb_verify'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
SET datestyle = 'ISO, YMD'
SET intervalstyle = 'postgres'
SET timezone = 'UTC'
SET extra_float_digits = 3
SET bytea_output = 'hex'
SET lc_monetary = 'C';
COMMENT ON FUNCTION splitdb_verify(name) IS
'row counts and order-independent checksums of each owned table, in the source and in the sibling';

/*
 * Privileges: every function is callable by anyone; the functions that change
 * the catalog or read table data check for superuser themselves, so a
 * refusal carries a hint.
 */
REVOKE ALL ON FUNCTION splitdb_add_service(name, text, name, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION splitdb_drop_service(name) FROM PUBLIC;
REVOKE ALL ON FUNCTION splitdb_assign(name, regclass[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION splitdb_unassign(name, regclass[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION splitdb_plan(name) FROM PUBLIC;
REVOKE ALL ON FUNCTION splitdb_plan_dot(name) FROM PUBLIC;
REVOKE ALL ON FUNCTION splitdb_verify(name) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION splitdb_add_service(name, text, name, boolean) TO PUBLIC;
GRANT EXECUTE ON FUNCTION splitdb_drop_service(name) TO PUBLIC;
GRANT EXECUTE ON FUNCTION splitdb_assign(name, regclass[]) TO PUBLIC;
GRANT EXECUTE ON FUNCTION splitdb_unassign(name, regclass[]) TO PUBLIC;
GRANT EXECUTE ON FUNCTION splitdb_plan(name) TO PUBLIC;
GRANT EXECUTE ON FUNCTION splitdb_plan_dot(name) TO PUBLIC;
GRANT EXECUTE ON FUNCTION splitdb_verify(name) TO PUBLIC;
