--
-- Values of type xml that are fragments (XMLPARSE (CONTENT ...)) where the
-- database that reads them defaults to xmloption = document.  splitdb's
-- sessions in the sibling and its rollback's worker read xml as pg_dump
-- does, with xmloption = content.  A copy keeps an xml value's output,
-- which leaves out an XML declaration that says no more than the defaults
-- (as pg_dump's does): the verification compares the values' outputs, not
-- their stored forms.  Checked here:
-- - the sibling's database set to document: an online migration copies
--   fragments, documents (one with a DOCTYPE) and NULLs, and its cutover's
--   last round replays fragments written while the worker was held there;
--   the job ends done, the sibling's values (through the shims) those of
--   the archived originals, both ways, by their outputs (a declaration
--   with standalone kept, one with the default version alone left out);
-- - the source's database set to document: splitdb_rollback() brings back
--   the fragments written through the shims; the job is rolled_back and
--   the originals hold the values as written.
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

-- Waits (at most 60 s) until the worker of service svc is paused at point
-- or its job has ended; returns what it saw.
CREATE FUNCTION xc_wait(svc name, point text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	st text;
BEGIN
	FOR i IN 1..3000 LOOP
		PERFORM pg_stat_clear_snapshot();
		SELECT j.state INTO st FROM splitdb.job j WHERE j.service = svc
		 ORDER BY j.job_id DESC LIMIT 1;
		IF EXISTS (SELECT FROM pg_stat_activity a JOIN splitdb.job j ON j.worker_pid = a.pid
					WHERE j.service = svc AND a.query = 'paused at ' || point) THEN
			RETURN 'paused at ' || point;
		END IF;
		IF st IN ('done', 'failed', 'cancelled') THEN
			RETURN st;
		END IF;
		PERFORM pg_sleep(0.02);
	END LOOP;
	RAISE EXCEPTION 'the worker of service % did not pause at % within 60 s (state %)', svc, point, st;
END
$$;

CREATE SCHEMA xc;
CREATE TABLE xc.doc (id integer PRIMARY KEY, body xml, note text NOT NULL);
INSERT INTO xc.doc VALUES
	(1, XMLPARSE (CONTENT 'a fragment <b>with</b> text around'), 'fragment'),
	(2, XMLPARSE (DOCUMENT '<?xml version="1.0"?><doc><p>one</p></doc>'), 'document'),
	(3, XMLPARSE (DOCUMENT '<!DOCTYPE note><note>typed</note>'), 'doctype'),
	(4, NULL, 'null'),
	(5, XMLPARSE (CONTENT '<x/><y/>'), 'two elements'),
	(8, XMLPARSE (DOCUMENT '<?xml version="1.0" standalone="yes"?><s>alone</s>'), 'standalone');

SELECT splitdb_add_service('xml_content');
SELECT splitdb_assign('xml_content', 'xc.doc');
ALTER DATABASE xml_content SET xmloption = document;

-- held before the cutover, while this session writes
SELECT pg_advisory_lock(1936747639, 0);
SET splitdb.migrate_pause_at = 'cutover';
SELECT splitdb_migrate('xml_content') > 0 AS started;
SELECT xc_wait('xml_content', 'cutover');
INSERT INTO xc.doc VALUES (6, XMLPARSE (CONTENT 'written <i>while held</i>'), 'held');
UPDATE xc.doc SET body = XMLPARSE (CONTENT 'now <u>a fragment</u>') WHERE id = 2;
SELECT pg_advisory_unlock(1936747639, 0);
SELECT xc_wait('xml_content', 'none');
SELECT state, phase, last_error FROM splitdb_status WHERE service = 'xml_content';
-- the shim's postgres_fdw session reads values with the sibling's defaults:
-- content again, before this session opens it
ALTER DATABASE xml_content RESET xmloption;
SELECT (SELECT count(*) FROM (SELECT id, format('%s', body), note FROM xc.doc
							  EXCEPT ALL SELECT id, format('%s', body), note FROM splitdb_archive.doc) d) AS only_in_sibling,
	   (SELECT count(*) FROM (SELECT id, format('%s', body), note FROM splitdb_archive.doc
							  EXCEPT ALL SELECT id, format('%s', body), note FROM xc.doc) d) AS only_in_source;
SELECT id, body, note FROM xc.doc ORDER BY id;

-- writes through the shim, then back into a source whose database
-- defaults to document
INSERT INTO xc.doc VALUES (7, XMLPARSE (CONTENT 'after <i>the cutover</i>'), 'after');
UPDATE xc.doc SET body = XMLPARSE (CONTENT 'changed <b/> after') WHERE id = 1;
DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET xmloption = document', current_database()); END $$;
SELECT splitdb_rollback('xml_content');
DO $$ BEGIN EXECUTE format('ALTER DATABASE %I RESET xmloption', current_database()); END $$;
SELECT state FROM splitdb.job WHERE service = 'xml_content';
SELECT c.relkind FROM pg_class c WHERE c.oid = 'xc.doc'::regclass;
SELECT id, body, note FROM xc.doc ORDER BY id;

RESET splitdb.migrate_pause_at;

-- clean up
DROP SCHEMA xc CASCADE;
DROP SCHEMA IF EXISTS splitdb_archive CASCADE;
DELETE FROM splitdb.job;
SELECT splitdb_drop_service('xml_content');
DROP DATABASE xml_content WITH (FORCE);
DROP FUNCTION xc_wait(name, text);
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
