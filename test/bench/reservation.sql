-- test/bench/reservation.sql - the table that test/bench/migrate moves
--
-- A reservation table: bigint key, uuid, text, timestamptz, numeric and
-- jsonb, with three indexes (the primary key, a unique uuid, a timestamp).
-- About 170 bytes a row on disk.  Read with psql; variables:
--
--   rows     rows to generate (only read when load is true)
--   load     true: fill the table, then vacuum, freeze and analyze it
--   indexes  true: add the primary key and the two secondary indexes (after
--            the data, if any); false: a table without any index
--
-- The rows are a function of their key, so every run moves the same data.

CREATE TABLE public.reservation (
	id          bigint NOT NULL,
	ref         uuid NOT NULL,
	guest       text NOT NULL,
	starts_at   timestamptz NOT NULL,
	amount      numeric(10,2) NOT NULL,
	details     jsonb NOT NULL
);

\if :load
INSERT INTO public.reservation (id, ref, guest, starts_at, amount, details)
SELECT i,
	   md5('reservation ' || i)::uuid,
	   'guest ' || (i * 7919 % 100003) || ' ' || substr(md5(i::text), 1, 8),
	   timestamptz '2024-01-01 00:00+00' + (i * 7919 % 1000003) * interval '37 seconds',
	   (i * 31 % 100000) / 100.0,
	   jsonb_build_object('pets', 1 + i % 3,
						  'room', 'R' || (i % 500),
						  'channel', (ARRAY['web', 'phone', 'desk'])[1 + i % 3],
						  'late', i % 7 = 0)
  FROM generate_series(1::bigint, :rows) AS i;
\endif

\if :indexes
ALTER TABLE public.reservation ADD CONSTRAINT reservation_pkey PRIMARY KEY (id);
ALTER TABLE public.reservation ADD CONSTRAINT reservation_ref_key UNIQUE (ref);
CREATE INDEX reservation_starts_at_idx ON public.reservation (starts_at);
\endif

\if :load
-- hint bits set and pages frozen now, so no method pays for them later
VACUUM (FREEZE, ANALYZE) public.reservation;
\endif
