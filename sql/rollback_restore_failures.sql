--
-- A rollback whose restore of the source fails, and the rollback of one of
-- two services that share a sibling database.
--
-- The rollback committed the sibling (its tables refusing every write) and
-- then restored the source.  A restore that failed for a reason of the
-- data or the schema, not a crash, failed at every later call the same
-- way, and the service then took writes nowhere: a materialized view over
-- the moved table that no longer refreshed (a row written in the sibling
-- since makes it divide by zero), one dropped from the archive (the
-- refresh named a relation that is gone).  Now the source is restored in
-- its transaction before the sibling commits: such a failure changes
-- nothing, the sibling still takes writes, and the next call succeeds once
-- the cause is gone.
--
-- Two services whose siblings are one database: the rollback of the first
-- dropped splitdb's extension there at its cleanup, which the capture
-- triggers of the second depend on (2BP01, at every later call, and the
-- doctor failed with it).  Now the extension stays while a trigger outside
-- it calls its functions.
-- Names with spaces, mixed case and non-ASCII letters.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

CREATE SCHEMA "Rück Fehl";
CREATE TABLE "Rück Fehl"."Posten" (id integer PRIMARY KEY, "Menge" integer NOT NULL);
INSERT INTO "Rück Fehl"."Posten" SELECT g, g FROM generate_series(1, 5) g;
CREATE MATERIALIZED VIEW "Rück Fehl"."Je Stück" AS
	SELECT id, 100 / "Menge" AS "Anteil" FROM "Rück Fehl"."Posten";
CREATE MATERIALIZED VIEW "Rück Fehl"."Summe" AS
	SELECT sum("Menge") AS "Summe" FROM "Rück Fehl"."Posten";

SELECT splitdb_add_service('rf_svc');
SELECT splitdb_assign('rf_svc', '"Rück Fehl"."Posten"');
SELECT splitdb_migrate('rf_svc', mode => 'offline', wait => true) > 0 AS migrated;

-- a row the archived materialized view cannot take
INSERT INTO "Rück Fehl"."Posten" VALUES (6, 0);
\set VERBOSITY terse
SELECT splitdb_rollback('rf_svc');
\set VERBOSITY default
-- nothing switched: the job is done, the shim takes writes, the sibling too
SELECT state FROM splitdb.job WHERE service = 'rf_svc';
SELECT step FROM splitdb.rollback r JOIN splitdb.job j USING (job_id) WHERE j.service = 'rf_svc';
SELECT relkind FROM pg_class WHERE oid = '"Rück Fehl"."Posten"'::regclass;
UPDATE "Rück Fehl"."Posten" SET "Menge" = 4 WHERE id = 6;
\c rf_svc
INSERT INTO "Rück Fehl"."Posten" VALUES (7, 7);
\c splitdb_regression
SET client_min_messages = warning;
-- the cause gone, the next call rolls back, with every row
SELECT splitdb_rollback('rf_svc');
SELECT state FROM splitdb.job WHERE service = 'rf_svc';
SELECT relkind, relnamespace::regnamespace FROM pg_class WHERE oid = '"Rück Fehl"."Posten"'::regclass;
SELECT * FROM "Rück Fehl"."Posten" ORDER BY id;
SELECT * FROM "Rück Fehl"."Je Stück" ORDER BY id;

-- an archived materialized view dropped: the restore leaves it out
SELECT splitdb_migrate('rf_svc', mode => 'offline', wait => true) > 0 AS migrated;
DROP MATERIALIZED VIEW splitdb_archive."Summe";
SELECT splitdb_rollback('rf_svc');
SELECT state FROM splitdb.job WHERE service = 'rf_svc' ORDER BY job_id DESC LIMIT 1;
SELECT count(*) AS rows FROM "Rück Fehl"."Posten";
SELECT to_regclass('"Rück Fehl"."Summe"') AS summe;

-- two services, one sibling database
CREATE TABLE "Rück Fehl"."Erste" (id integer PRIMARY KEY);
CREATE TABLE "Rück Fehl"."Zweite" (id integer PRIMARY KEY);
INSERT INTO "Rück Fehl"."Erste" VALUES (1);
INSERT INTO "Rück Fehl"."Zweite" VALUES (1);
SELECT splitdb_add_service('rf_eins', dbname => 'rf geteilt');
SELECT splitdb_add_service('rf_zwei', dbname => 'rf geteilt');
SELECT splitdb_assign('rf_eins', '"Rück Fehl"."Erste"');
SELECT splitdb_assign('rf_zwei', '"Rück Fehl"."Zweite"');
SELECT splitdb_migrate('rf_eins', mode => 'offline', wait => true) > 0 AS migrated;
SELECT splitdb_migrate('rf_zwei', mode => 'offline', wait => true) > 0 AS migrated;
INSERT INTO "Rück Fehl"."Erste" VALUES (2);
INSERT INTO "Rück Fehl"."Zweite" VALUES (2);
SELECT splitdb_rollback('rf_eins');
SELECT j.service, j.state, r.step
  FROM splitdb.job j LEFT JOIN splitdb.rollback r USING (job_id)
 WHERE j.service IN ('rf_eins', 'rf_zwei') ORDER BY 1;
-- the second service's capture is there and logs
\c "rf geteilt"
SELECT extname FROM pg_extension WHERE extname = 'splitdb';
SELECT tgname FROM pg_trigger
 WHERE tgrelid = '"Rück Fehl"."Zweite"'::regclass AND tgname LIKE 'splitdb_capture%' ORDER BY 1;
\c splitdb_regression
SET client_min_messages = warning;
INSERT INTO "Rück Fehl"."Zweite" VALUES (3);
SELECT splitdb_rollback('rf_zwei');
SELECT j.service, j.state, r.step
  FROM splitdb.job j LEFT JOIN splitdb.rollback r USING (job_id)
 WHERE j.service IN ('rf_eins', 'rf_zwei') ORDER BY 1;
SELECT 'Erste' AS tbl, * FROM "Rück Fehl"."Erste"
UNION ALL SELECT 'Zweite', * FROM "Rück Fehl"."Zweite" ORDER BY 1, 2;
SELECT severity, service, object, problem FROM splitdb_doctor() ORDER BY 1, 2, 3;

-- clean up
DELETE FROM splitdb.job;
DROP SCHEMA IF EXISTS splitdb_archive CASCADE;
DROP SCHEMA "Rück Fehl" CASCADE;
SELECT splitdb_drop_service('rf_svc');
SELECT splitdb_drop_service('rf_eins');
SELECT splitdb_drop_service('rf_zwei');
DROP DATABASE rf_svc WITH (FORCE);
DROP DATABASE "rf geteilt" WITH (FORCE);
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
