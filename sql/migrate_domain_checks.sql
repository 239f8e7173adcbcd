--
-- A domain whose CHECK constraint calls a function made by a user.  The
-- sibling gets the types before the functions; such a constraint is added to
-- its domain once the function is there.  Checked here:
-- - the job ends done (before, the sibling never got the function and the
--   job stopped in preparing: "function public.dc_in_range(integer) does not
--   exist");
-- - in the sibling: the domain with its constraints, and the function;
-- - through the shim, a value the domain refuses is refused, and nothing is
--   written;
-- - the rollback drops the sibling's copies, domain and function included
--   (the domain goes first: it depends on the function).
--
CREATE EXTENSION splitdb CASCADE;
SET client_min_messages = warning;

CREATE FUNCTION dc_in_range(v integer) RETURNS boolean LANGUAGE plpgsql IMMUTABLE
	AS $$ BEGIN RETURN v BETWEEN 1 AND 100; END $$;
CREATE DOMAIN dc_qty AS integer NOT NULL
	CONSTRAINT dc_qty_positive CHECK (VALUE > 0)
	CONSTRAINT dc_qty_range CHECK (dc_in_range(VALUE));
CREATE TABLE dc_item (id integer PRIMARY KEY, qty dc_qty);
INSERT INTO dc_item VALUES (1, 5), (2, 100);

SELECT splitdb_add_service('dc_svc');
SELECT splitdb_assign('dc_svc', 'dc_item');
SELECT action, object FROM splitdb_plan('dc_svc') WHERE action = 'blocker';
SELECT splitdb_migrate('dc_svc', mode => 'offline', wait => true) > 0 AS migrated;
SELECT state, phase, last_error FROM splitdb.job;

\c dc_svc
SELECT t.typname, c.conname, pg_get_constraintdef(c.oid)
  FROM pg_type t JOIN pg_constraint c ON c.contypid = t.oid
 WHERE t.typname = 'dc_qty' ORDER BY 2;
SELECT p.oid::regprocedure FROM pg_proc p WHERE p.proname = 'dc_in_range';
SELECT * FROM dc_item ORDER BY id;
\c splitdb_regression
SET client_min_messages = warning;

-- through the shim: 500 is out of the function's range
INSERT INTO dc_item VALUES (3, 500);
INSERT INTO dc_item VALUES (4, 50);
SELECT * FROM dc_item ORDER BY id;

-- the rollback brings the rows back and drops the sibling's copies
SELECT splitdb_rollback('dc_svc');
SELECT state FROM splitdb.job;
SELECT * FROM dc_item ORDER BY id;
\c dc_svc
SELECT count(*) AS domains FROM pg_type WHERE typname = 'dc_qty';
SELECT count(*) AS functions FROM pg_proc WHERE proname = 'dc_in_range';
\c splitdb_regression
SET client_min_messages = warning;

-- clean up
SELECT splitdb_unassign('dc_svc', 'dc_item');
DELETE FROM splitdb.job;
SELECT splitdb_drop_service('dc_svc');
DROP DATABASE dc_svc WITH (FORCE);
DROP TABLE dc_item;
DROP DOMAIN dc_qty;
DROP FUNCTION dc_in_range(integer);
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
