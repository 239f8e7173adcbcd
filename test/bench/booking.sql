-- test/bench/booking.sql - the second table that test/bench/migrate moves
--
-- A wider table of twelve columns: a bigint key, a text, two uuids, an
-- integer, two timestamptz, a short text (a status) and a repeated text (a
-- note that many rows share), numeric(10,2), jsonb and a boolean, with three
-- indexes (the primary key, a uuid, a timestamp).  Read with psql;
-- variables:
--
--   rows     rows to generate (only read when load is true)
--   load     true: fill the table, then vacuum, freeze and analyze it
--   indexes  true: add the primary key and the two secondary indexes (after
--            the data, if any); false: a table without any index
--
-- The rows are a function of their key, so every run moves the same data.

CREATE TABLE public.booking (
	id          bigint NOT NULL,
	title       text NOT NULL,
	customer_id uuid NOT NULL,
	pet_id      uuid NOT NULL,
	nights      integer NOT NULL,
	starts_at   timestamptz NOT NULL,
	created_at  timestamptz NOT NULL,
	status      text NOT NULL,
	note        text NOT NULL,
	price       numeric(10,2) NOT NULL,
	extras      jsonb NOT NULL,
	paid        boolean NOT NULL
);

\if :load
INSERT INTO public.booking
SELECT i,
	   'booking ' || i || ' for ' || substr(md5(i::text), 1, 12),
	   md5('customer ' || (i % 100000))::uuid,
	   md5('pet ' || (i * 7919 % 100000))::uuid,
	   (1 + i % 14)::integer,
	   timestamptz '2024-01-01 00:00+00' + (i * 7919 % 1000003) * interval '37 seconds',
	   timestamptz '2023-06-01 00:00+00' + i * interval '3 seconds',
	   (ARRAY['open', 'paid', 'void'])[1 + i % 3],
	   repeat('no smoking, pets on a leash; ', (1 + i % 4)::integer),
	   (i * 31 % 100000) / 100.0,
	   jsonb_build_object('breakfast', i % 2 = 0, 'room', 'R' || (i % 500),
						  'channel', (ARRAY['web', 'phone', 'desk'])[1 + i % 3]),
	   i % 5 <> 0
  FROM generate_series(1::bigint, :rows) AS i;
\endif

\if :indexes
ALTER TABLE public.booking ADD CONSTRAINT booking_pkey PRIMARY KEY (id);
CREATE INDEX booking_customer_id_idx ON public.booking (customer_id);
CREATE INDEX booking_starts_at_idx ON public.booking (starts_at);
\endif

\if :load
-- hint bits set and pages frozen now, so no method pays for them later
VACUUM (FREEZE, ANALYZE) public.booking;
\endif
