--
-- A job that fails, and resumes.  The sibling gets a trigger that changes
-- every row the copy writes, so verification fails.  Checked here:
-- - splitdb_migrate(wait => true) raises the job's error, which names the
--   table that differs and both sides' counts and checksums;
-- - the job is left failed, in phase copying, and the service's tables are
--   sent back to be copied again (phase created, nothing copied): foreign
--   keys among them exist in the sibling now, so they are emptied together;
-- - calling splitdb_migrate again resumes the same job (runs counts up),
--   empties the sibling's table before copying it again, and fails the
--   same way while the cause is there;
-- - once the cause is gone the same job ends done, with the sibling
--   holding exactly the source's rows.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

CREATE TABLE res_t (id integer PRIMARY KEY, v text NOT NULL);
INSERT INTO res_t SELECT g, 'row ' || g FROM generate_series(1, 100) g;
CREATE TABLE res_u (id integer PRIMARY KEY);
INSERT INTO res_u SELECT generate_series(1, 10);

SELECT splitdb_add_service('res_svc');
SELECT splitdb_assign('res_svc', 'res_t', 'res_u');

-- in the sibling: whenever res_t appears, a trigger that upper-cases v,
-- ENABLE ALWAYS so that it fires in the copy's replica sessions, and made
-- so again whenever a run of the job puts it back to the default
\c res_svc
CREATE FUNCTION public.sabotage() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN NEW.v := upper(NEW.v); RETURN NEW; END $$;
CREATE FUNCTION public.add_sabotage() RETURNS event_trigger LANGUAGE plpgsql AS
$$
BEGIN
	IF pg_catalog.to_regclass('public.res_t') IS NOT NULL THEN
		IF NOT EXISTS (SELECT FROM pg_catalog.pg_trigger WHERE tgname = 'sabotage') THEN
			CREATE TRIGGER sabotage BEFORE INSERT ON public.res_t
				FOR EACH ROW EXECUTE FUNCTION public.sabotage();
		END IF;
		IF EXISTS (SELECT FROM pg_catalog.pg_trigger WHERE tgname = 'sabotage' AND tgenabled <> 'A') THEN
			ALTER TABLE public.res_t ENABLE ALWAYS TRIGGER sabotage;
		END IF;
	END IF;
END
$$;
CREATE EVENT TRIGGER add_sabotage ON ddl_command_end EXECUTE FUNCTION public.add_sabotage();
\c splitdb_regression
SET client_min_messages = warning;

SELECT splitdb_migrate('res_svc', wait => true);
SELECT state, phase, last_error IS NOT NULL AS has_error, tables_done, tables_total
  FROM splitdb_status WHERE service = 'res_svc';
SELECT runs, last_sqlstate FROM splitdb.job;
SELECT table_name, phase, rows_copied, verified, error
  FROM splitdb_table_status WHERE service = 'res_svc' ORDER BY 1;

-- the cause is still there: the resumed job fails again, the same way
SELECT splitdb_migrate('res_svc', wait => true);
SELECT runs, state, phase FROM splitdb.job;

-- remove it, and resume: the same job ends done
\c res_svc
DROP EVENT TRIGGER add_sabotage;
DROP TRIGGER sabotage ON res_t;
SELECT count(*) AS rows_left_from_the_failed_run FROM res_t;
\c splitdb_regression
SET client_min_messages = warning;
SELECT splitdb_migrate('res_svc', wait => true) = (SELECT job_id FROM splitdb.job) AS same_job;
SELECT runs, state, phase, last_error FROM splitdb.job;
SELECT table_name, phase, rows_copied, verified
  FROM splitdb_table_status WHERE service = 'res_svc' ORDER BY 1;
\c res_svc
SELECT count(*), count(DISTINCT id), min(v), max(v) FROM res_t;
\c splitdb_regression
SET client_min_messages = warning;
SELECT table_name, source_rows, target_rows, ok FROM splitdb_verify('res_svc') ORDER BY 1;

-- clean up
DROP FOREIGN TABLE res_t, res_u;
DELETE FROM splitdb.job;
DROP SCHEMA splitdb_archive CASCADE;
DELETE FROM splitdb.job;
SELECT splitdb_drop_service('res_svc');
DROP DATABASE res_svc WITH (FORCE);
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
