--
-- plan_dot: splitdb_plan_dot(), the foreign-key graph of a service as DOT
--
-- Two services, dot_res and dot_bill, each with a sibling database on this
-- cluster made by splitdb_add_service(); everything is dropped at the end.
--
CREATE EXTENSION splitdb CASCADE;

-- The graph is printed as plain text, one DOT line per output line.
\pset format unaligned
\pset tuples_only on

-- ===== schema: a small booking application, some names hard to quote
CREATE SCHEMA dot_app;
CREATE SCHEMA "Dot Other";
SET search_path = dot_app, public;

CREATE TABLE customer (id int PRIMARY KEY);
CREATE TABLE resource (
	site int,
	code text,
	PRIMARY KEY (site, code)
);
-- a reservation: cross-service edges to customer and (composite) resource,
-- and a self-reference to the reservation it was rebooked from
CREATE TABLE reservation (
	id int PRIMARY KEY,
	customer_id int NOT NULL REFERENCES customer,
	site int,
	code text,
	rebooked_from int REFERENCES reservation,
	CONSTRAINT reservation_resource_fkey FOREIGN KEY (site, code)
		REFERENCES resource (site, code)
);
-- in-service edge
CREATE TABLE reservation_line (
	reservation_id int REFERENCES reservation,
	line int,
	PRIMARY KEY (reservation_id, line)
);
-- a table in a schema off the search_path, with a backslash in its name
CREATE TABLE "Dot Other"."Back\slash" (id int PRIMARY KEY);
-- quotes, a space, mixed case and non-ASCII, in the table and the constraint
CREATE TABLE "Ré""serv ation" (
	id int PRIMARY KEY,
	other_id int,
	CONSTRAINT "fk ""Odd"" \ Name" FOREIGN KEY (other_id)
		REFERENCES "Dot Other"."Back\slash"
);
-- partitioned, foreign keys declared only on partitions
CREATE TABLE event (
	id int,
	day date,
	customer_id int,
	reservation_id int,
	PRIMARY KEY (id, day)
) PARTITION BY RANGE (day);
CREATE TABLE event_2024 PARTITION OF event
	FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
ALTER TABLE event_2024 ADD CONSTRAINT event_2024_customer_fkey
	FOREIGN KEY (customer_id) REFERENCES customer;
-- a source table referencing the partitioned table: PostgreSQL adds a clone
-- of the constraint for each partition, which must not be drawn
CREATE TABLE event_note (
	event_id int,
	event_day date,
	FOREIGN KEY (event_id, event_day) REFERENCES event (id, day)
);
-- billing: partitioned, the foreign key declared on the root (clones on the
-- partitions must not be drawn)
CREATE TABLE invoice (
	id int,
	year int,
	reservation_id int REFERENCES reservation,
	customer_id int REFERENCES customer,
	PRIMARY KEY (id, year)
) PARTITION BY LIST (year);
CREATE TABLE invoice_2024 PARTITION OF invoice FOR VALUES IN (2024);
CREATE TABLE invoice_2025 PARTITION OF invoice FOR VALUES IN (2025);
-- not in any graph: no foreign key to or from an owned table
CREATE TABLE unrelated (customer_id int REFERENCES customer);

SELECT splitdb_add_service('dot_res');
SELECT splitdb_add_service('dot_bill');

-- ===== a service with no tables: its cluster alone, with a note node
SELECT splitdb_plan_dot('dot_bill');

-- ===== assign, then draw both services
SELECT splitdb_assign('dot_res', 'reservation', 'reservation_line',
					  '"Ré""serv ation"', 'event');
SELECT splitdb_assign('dot_bill', 'invoice');

-- a partition attached after the assignment belongs to dot_res too; its
-- foreign key is an in-service edge, and event_2026 (no foreign key) is
-- not drawn
CREATE TABLE event_2025 PARTITION OF event
	FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
ALTER TABLE event_2025 ADD CONSTRAINT event_2025_reservation_fkey
	FOREIGN KEY (reservation_id) REFERENCES reservation;
CREATE TABLE event_2026 PARTITION OF event
	FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');

SELECT service, relid::regclass, partition_root
  FROM splitdb.owned_table ORDER BY service, relid::regclass::text COLLATE "C";

-- dot_res: clusters dot_res (shaded), dot_bill, source; edges to customer,
-- resource, "Back\slash" and from invoice and event_note cross databases
SELECT splitdb_plan_dot('dot_res');

-- dot_bill: reservation shows up in dot_res's cluster as a neighbour
SELECT splitdb_plan_dot('dot_bill');

-- tables are always schema-qualified (the function pins its search_path), so
-- the caller's search_path does not change the graph
SELECT splitdb_plan_dot('dot_bill') AS bill_graph \gset
SET search_path = public;
SELECT splitdb_plan_dot('dot_bill') = :'bill_graph' AS same_graph;
SET search_path = dot_app, public;

-- ===== errors and NULL
-- fails: service "dot_nope" does not exist
SELECT splitdb_plan_dot('dot_nope');
-- STRICT: NULL in, NULL out
SELECT splitdb_plan_dot(NULL) IS NULL AS is_null;

-- the function changed nothing
SELECT service, dbname FROM splitdb.service ORDER BY service;
SELECT service, count(*) FROM splitdb.owned_table GROUP BY service ORDER BY service;

-- ===== clean up
SELECT splitdb_unassign('dot_res', 'reservation', 'reservation_line',
						'"Ré""serv ation"', 'event');
SELECT splitdb_unassign('dot_bill', 'invoice');
SELECT splitdb_drop_service('dot_res');
SELECT splitdb_drop_service('dot_bill');
RESET search_path;
DROP SCHEMA dot_app CASCADE;
DROP SCHEMA "Dot Other" CASCADE;
DROP EXTENSION splitdb;
DROP EXTENSION postgres_fdw;
DROP DATABASE dot_res;
DROP DATABASE dot_bill;
