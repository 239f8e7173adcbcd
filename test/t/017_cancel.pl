# Copyright (c) 2026, splitdb developers

# splitdb_cancel() in each phase of a migration job, and a cancel that is
# itself killed and called again.
#
# For each phase, a service of its own, NAME, owns NAME_big (4000 rows, a
# bigserial key, a secondary index, a column of enum NAME_kind), NAME_small
# (a foreign key to NAME_big) and NAME_zplain (no key: so the jobs are
# offline, which online mode refuses; sql/cancel.sql cancels an online
# job); NAME_bill stays in
# the source and refers to NAME_big, so the job records a cross-service
# reference and its cutover installs reference ends in the sibling.  The
# sibling holds, beforehand, the enum NAME_kind (splitdb must keep it) and
# the test's faults (as in 010_resume_each_phase.pl): a gate table and an
# event trigger that holds splitdb's sessions at the gate for an armed tag.
# The job is held in its phase and cancelled there:
#
# 1. preparing (prep): the CREATE TABLE of the before-data transaction
#    waits at the gate;
# 2. copying (copy): a COPY waits at the gate;
# 3. indexing (idx): a CREATE INDEX waits at the gate;
# 4. verifying (ver): the verification's read of NAME_zplain waits for a
#    lock the test holds; the cancel, run in the background, stops the
#    worker, ends its sibling session, and then waits for that lock to drop
#    NAME_zplain: the test kills the cancel there (the job stays failed,
#    its registry rows standing), releases the lock, and a second cancel
#    finishes;
# 5. cutting_over (cut): the cutover's setval waits for a lock the test
#    holds on the sibling's sequence, after the reference ends (and
#    splitdb's extension, its server) were installed in the sibling; the
#    cancel runs in the background and ends once the lock is released;
# 6. an immediate stop of the server during a cancel (stop): the job held
#    while indexing by a CREATE INDEX that sleeps while a tag is armed (a
#    hold that would outlive a restart), the cancel waiting to drop
#    NAME_zplain (a reader holds it) when the server stops, after it
#    stopped the worker; the worker recorded its stop by the cancel
#    (57014), so the launcher does not resume the job, which stays failed,
#    and one cancel ends it; the same (term) for a job whose worker was
#    terminated (57P01, which the launcher resumes) before the cancel
#    began: the cancel records 57014 at once, through a background worker;
# 7. splitdb_finalize() of the job done after 6, killed while it drops the
#    archive (a reader of the archive holds it), then cut short by an
#    immediate stop: the job stays done with its archive each time, and the
#    next finalize ends it; the shim still reads every row.
#
# 8. a cutover that fails after it installed reference ends in the sibling
#    of another service migrated before (peer), whose tables reference the
#    service's and are referenced by them (peer): the cutover held at its
#    setval as in 5, the peer's sibling seen checking against this
#    service's sibling, then cancelled; the peer's sibling holds again
#    exactly what it held before (its ends reach the source, their
#    triggers, servers, user mappings and the places of its secrets), the
#    registry knew the server the cutover made there, and a key missing in
#    the source is refused there again.
#
# After each cancel: the job is cancelled and every registry row of it is
# dropped; pg_dump --schema-only of the source is what it was before the
# job, and so are the triggers, dependencies and ACLs of its relations and
# the rows of its tables (count, distinct keys, checksum); the sibling holds
# exactly the objects it held before the job (the enum, the faults).  Then
# a new splitdb_migrate(wait => true) ends done, with splitdb_verify()
# matching every table.

use strict;
use warnings FATAL => 'all';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SplitdbTest qw(start_source job_sql fingerprint_sql poll_until faults_sql JOB_SUMMARY);

my $node = start_source('main', 500);

sub query
{
	my ($db, $sql) = @_;
	return $node->safe_psql($db, $sql);
}

# the service's last job
sub job
{
	my ($svc, $columns) = @_;
	return query('postgres', job_sql($svc, $columns) . ' ORDER BY job_id DESC LIMIT 1');
}

sub no_worker
{
	return query('postgres',
		"SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE backend_type = 'splitdb worker')")
	  eq 't';
}

# pg_dump --schema-only of the source
sub schema_dump
{
	my ($out, $err);
	IPC::Run::run([ 'pg_dump', '--schema-only', '-d', $node->connstr('postgres') ],
		'>', \$out, '2>', \$err)
	  or die "pg_dump failed: $err";
	# pg_dump's \restrict key is new on every run
	$out =~ s/^\\(un)?restrict .*$//mg;
	return $out;
}

# the triggers, dependencies and ACLs of the source's relations in public
sub catalogs
{
	return query(
		'postgres', q{
SELECT string_agg(x, E'\n' ORDER BY x) FROM (
  SELECT 'trigger ' || t.tgrelid::regclass || ' ' || t.tgname || ' ' || t.tgenabled::text
    FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
   WHERE c.relnamespace = 'public'::regnamespace
  UNION ALL
  SELECT 'depend ' || pg_describe_object(d.classid, d.objid, d.objsubid) || ' -> '
         || pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid) || ' ' || d.deptype::text
    FROM pg_depend d JOIN pg_class c ON c.oid = d.refobjid AND d.refclassid = 'pg_class'::regclass
   WHERE c.relnamespace = 'public'::regnamespace
  UNION ALL
  SELECT 'acl ' || c.oid::regclass || ' ' || coalesce(c.relacl::text, 'default')
    FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace) s(x)});
}

# every object of the sibling of $svc that is not PostgreSQL's own
sub sibling_objects
{
	my ($svc) = @_;
	return query(
		$svc, q{
SELECT string_agg(x, E'\n' ORDER BY x) FROM (
  SELECT 'schema ' || n.nspname FROM pg_namespace n
   WHERE n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema'
  UNION ALL
  SELECT 'relation ' || c.oid::regclass || ' ' || c.relkind::text FROM pg_class c
   WHERE c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace,
                                'pg_toast'::regnamespace)
  UNION ALL
  SELECT 'type ' || t.oid::regtype FROM pg_type t
   WHERE t.typnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace,
                                'pg_toast'::regnamespace) AND t.typrelid = 0 AND t.typelem = 0
  UNION ALL
  SELECT 'function ' || p.oid::regprocedure FROM pg_proc p
   WHERE p.pronamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
  UNION ALL
  SELECT 'trigger ' || t.tgrelid::regclass || ' ' || t.tgname FROM pg_trigger t WHERE NOT t.tgisinternal
  UNION ALL
  SELECT 'extension ' || e.extname FROM pg_extension e
  UNION ALL
  SELECT 'server ' || s.srvname FROM pg_foreign_server s
  UNION ALL
  SELECT 'user mapping ' || m.srvname || ' ' || m.usename FROM pg_user_mappings m) s(x)});
}

# rows, distinct keys and a checksum of each of the service's tables
sub fingerprints
{
	my ($svc) = @_;
	return join("\n",
		map { "$_: " . query('postgres', fingerprint_sql("public.$_", 't::text')) }
		  ("${svc}_big", "${svc}_small", "${svc}_zplain", "${svc}_bill"));
}

# the source and the sibling as they are, for the comparison after the cancel
sub snapshot
{
	my ($svc) = @_;
	return {
		dump     => schema_dump(),
		catalogs => catalogs(),
		rows     => fingerprints($svc),
		sibling  => sibling_objects($svc)
	};
}

# Create the service's tables, the service, and the sibling's enum and
# faults (see 010_resume_each_phase.pl).
sub make_service
{
	my ($svc) = @_;

	query(
		'postgres', qq{
CREATE TYPE ${svc}_kind AS ENUM ('plain', 'fancy');
CREATE TABLE ${svc}_big (
	id    bigserial PRIMARY KEY,
	label text NOT NULL,
	kind  ${svc}_kind NOT NULL DEFAULT 'plain'
);
INSERT INTO ${svc}_big (label) SELECT 'row ' || g FROM generate_series(1, 4000) g;
CREATE INDEX ${svc}_big_label_idx ON ${svc}_big (label);
CREATE TABLE ${svc}_small (
	id     integer PRIMARY KEY,
	big_id bigint NOT NULL REFERENCES ${svc}_big (id)
);
INSERT INTO ${svc}_small SELECT g, g * 7 FROM generate_series(1, 300) g;
CREATE TABLE ${svc}_zplain (n integer NOT NULL);
INSERT INTO ${svc}_zplain SELECT generate_series(1, 1000);
CREATE TABLE ${svc}_bill (id integer PRIMARY KEY, big_id bigint REFERENCES ${svc}_big (id));
INSERT INTO ${svc}_bill SELECT g, g FROM generate_series(1, 50) g;
CREATE ROLE ${svc}_reader;
GRANT SELECT ON ${svc}_big, ${svc}_small TO ${svc}_reader;
SELECT splitdb_add_service('$svc');
SELECT splitdb_assign('$svc', '${svc}_big', '${svc}_small', '${svc}_zplain');
});
	query(
		$svc, qq{
CREATE TYPE public.${svc}_kind AS ENUM ('plain', 'fancy');
} . faults_sql(sleep => 1));
	return snapshot($svc);
}

# a session of the test in database $db, in a transaction, that ran $sql
sub hold
{
	my ($db, $sql) = @_;
	my $bg = $node->background_psql($db);
	$bg->query_safe("BEGIN; $sql");
	return $bg;
}

sub release
{
	my ($bg) = @_;
	$bg->query_safe('ROLLBACK');
	$bg->quit;
	return;
}

# Wait until a splitdb session in $svc's sibling waits for a lock on
# $relation (running a statement that starts with $statement, when given);
# true when one does.
sub wait_sibling_waiter
{
	my ($svc, $relation, $what, $statement) = @_;
	my $waiter = qq{SELECT EXISTS (SELECT FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE a.datname = current_database() AND a.application_name = 'splitdb' AND NOT l.granted
		  AND l.locktype = 'relation' AND l.relation = '$relation'::regclass}
	  . (defined $statement ? " AND a.query LIKE '$statement%'" : '') . ')';

	return ok(poll_until(sub { query($svc, $waiter) eq 't' }, undef, "$what in the sibling of $svc"),
		"$svc: $what waits in the sibling");
}

# a cancel in a session of its own; its answer comes with cancel_result()
sub cancel_start
{
	my ($svc) = @_;
	my $bg = $node->background_psql('postgres');
	$bg->query_until(qr/cancel sent/, "\\echo cancel sent\nSELECT splitdb_cancel('$svc');\n");
	return $bg;
}

sub cancel_result
{
	my ($bg, $svc) = @_;
	my ($out) = $bg->query('SELECT 0');
	my $err = $bg->{stderr};
	$bg->quit;
	return is($out, "\n0", "$svc: the cancel in the background returned") || diag("stderr: $err");
}

# The cancel's effects, compared with the snapshot taken before the job,
# then one more migration to done.
sub check_cancelled
{
	my ($svc, $before, $phase) = @_;

	is(job($svc, "state || '|' || phase"), "cancelled|$phase",
		"$svc: the job is cancelled, in phase $phase")
	  or diag('job: ' . job($svc, JOB_SUMMARY));
	ok(no_worker(), "$svc: no worker runs");
	is( query(
			'postgres', "SELECT count(*) FROM splitdb.artifact a JOIN splitdb.job j USING (job_id)
			  WHERE j.service = '$svc' AND a.dropped_at IS NULL"),
		'0',
		"$svc: every registry row of the job is dropped");
	my $after = snapshot($svc);
	is($after->{dump}, $before->{dump},
		"$svc: pg_dump --schema-only of the source is as before the job");
	is($after->{catalogs}, $before->{catalogs},
		"$svc: the source's triggers, dependencies and ACLs are as before");
	is($after->{rows}, $before->{rows}, "$svc: the source's rows are as before");
	is($after->{sibling}, $before->{sibling},
		"$svc: the sibling holds exactly what it held before the job");

	query($svc, 'DELETE FROM faults.armed');
	my ($out, $err);
	$node->psql(
		'postgres',
		"SET statement_timeout = '120s'; SELECT splitdb_migrate('$svc', mode => 'offline', wait => true) > 0",
		stdout => \$out,
		stderr => \$err);
	is($out, 't', "$svc: a new migration after the cancel") || diag("stderr: $err");
	is(job($svc, 'state'), 'done', "$svc: the new job is done");
	is(query('postgres', "SELECT bool_and(ok) || ' ' || count(*) FROM splitdb_verify('$svc')"),
		'true 3', "$svc: splitdb_verify matches every table after the new migration");
	return;
}

# 1-3: held at the gate, cancelled there
sub case_gate
{
	my ($svc, $phase, $tag) = @_;
	my $before = make_service($svc);
	query($svc, "INSERT INTO faults.armed VALUES ('$tag')");
	my $gate = hold($svc, 'LOCK TABLE faults.gate IN EXCLUSIVE MODE');

	query('postgres', "SELECT splitdb_migrate('$svc', mode => 'offline')");
	wait_sibling_waiter($svc, 'faults.gate', "a $tag of the $phase step")
	  or return release($gate);
	is(job($svc, 'phase'), $phase, "$svc: the job is in phase $phase");
	query('postgres', "SELECT splitdb_cancel('$svc')");
	release($gate);
	check_cancelled($svc, $before, $phase);
	return;
}

# 4: held at the verification; the cancel killed while it drops, then again
sub case_verifying
{
	my $svc    = 'ver';
	my $before = make_service($svc);
	query($svc, "INSERT INTO faults.armed VALUES ('CREATE INDEX')");
	my $gate = hold($svc, 'LOCK TABLE faults.gate IN EXCLUSIVE MODE');

	query('postgres', "SELECT splitdb_migrate('$svc', mode => 'offline')");
	wait_sibling_waiter($svc, 'faults.gate', 'a CREATE INDEX of the indexing step')
	  or return release($gate);
	my $plain = hold($svc, "LOCK TABLE public.${svc}_zplain IN ACCESS EXCLUSIVE MODE");
	query($svc, 'DELETE FROM faults.armed');
	release($gate);
	wait_sibling_waiter($svc, "public.${svc}_zplain", "the verification's read of ${svc}_zplain")
	  or return release($plain);
	is(job($svc, 'phase'), 'verifying', "$svc: the job is in phase verifying");

	my $cancel = cancel_start($svc);
	wait_sibling_waiter($svc, "public.${svc}_zplain", "the cancel's drop of ${svc}_zplain", 'DROP');
	ok(no_worker(), "$svc: the cancel stopped the worker before it dropped anything");
	my $pid = query('postgres',
		"SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT splitdb_cancel(%'");
	query('postgres', "SELECT pg_terminate_backend($pid)");
	$node->poll_query_until('postgres',
		"SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $pid)")
	  or die "the cancel's backend $pid did not exit";
	eval { $cancel->quit; };
	is(job($svc, 'state'), 'failed', "$svc: killed in the middle, the cancel left the job failed");
	ok( query(
			'postgres', "SELECT count(*) > 0 FROM splitdb.artifact a JOIN splitdb.job j USING (job_id)
			  WHERE j.service = '$svc' AND a.dropped_at IS NULL") eq 't',
		"$svc: and its registry rows standing");

	# the killed cancel's session still waits in the sibling; the next ends it
	$cancel = cancel_start($svc);
	release($plain);
	cancel_result($cancel, $svc);
	check_cancelled($svc, $before, 'verifying');
	return;
}

# Hold the job of $svc at its cutover's setval, after the reference ends
# were installed in every database: the job held at indexing, the
# verification held by a lock on NAME_zplain, then the sibling's sequence
# locked.  Returns the session that holds the sequence, or undef.
sub hold_cutover
{
	my ($svc) = @_;
	my $seq    = hold($svc, 'SELECT 1');
	my $plain  = hold($svc, 'SELECT 1');
	query($svc, "INSERT INTO faults.armed VALUES ('CREATE INDEX')");
	my $gate = hold($svc, 'LOCK TABLE faults.gate IN EXCLUSIVE MODE');

	query('postgres', "SELECT splitdb_migrate('$svc', mode => 'offline')");
	wait_sibling_waiter($svc, 'faults.gate', 'a CREATE INDEX of the indexing step')
	  or return release($gate);
	$plain->query_safe("LOCK TABLE public.${svc}_zplain IN ACCESS EXCLUSIVE MODE");
	query($svc, 'DELETE FROM faults.armed');
	release($gate);
	wait_sibling_waiter($svc, "public.${svc}_zplain", "the verification's read of ${svc}_zplain");
	# the sibling's sequence behind the source's, so that the cutover sets it (it leaves one that is already as far alone)
	query($svc, "SELECT setval('public.${svc}_big_id_seq', 1)");
	$seq->query_safe("ALTER SEQUENCE public.${svc}_big_id_seq INCREMENT BY 1");
	release($plain);
	wait_sibling_waiter($svc, "public.${svc}_big_id_seq", "the cutover's setval")
	  or return release($seq);
	is(job($svc, 'phase'), 'cutting_over', "$svc: the job is in phase cutting_over");
	return $seq;
}

# 5: held at the cutover's setval, after the reference ends were installed
sub case_cutting_over
{
	my $svc    = 'cut';
	my $before = make_service($svc);
	my $seq    = hold_cutover($svc) or return;
	like(sibling_objects($svc), qr/extension splitdb/,
		"$svc: the cutover installed splitdb in the sibling");

	my $cancel = cancel_start($svc);
	poll_until(\&no_worker, undef, 'the worker of cut to stop');
	release($seq);
	cancel_result($cancel, $svc);
	check_cancelled($svc, $before, 'cutting_over');
	return;
}

# What the sibling of a migrated service holds for cross-service references,
# beyond sibling_objects(): its ends, where they reach, the triggers'
# definitions, its servers' options and the secrets' places (not the
# secrets).
sub peer_state
{
	my ($svc) = @_;
	return sibling_objects($svc) . "\n" . query(
		$svc, q{
SELECT string_agg(x, E'\n' ORDER BY x) FROM (
  SELECT 'end ' || e.reference_id || ' ' || e.side::text || ' ' || e.relid::regclass || ' -> '
         || e.other_location || ' ' || coalesce(e.other_server, '-') || ' '
         || e.other_database || ' ' || e.other_table
    FROM splitdb.reference_end e
  UNION ALL
  SELECT 'key ' || k.location || ' ' || coalesce(k.server, '-') || ' ' || k.here
    FROM splitdb.origin_key k
  UNION ALL
  SELECT 'triggerdef ' || pg_get_triggerdef(t.oid) || ' ' || t.tgenabled::text
    FROM pg_trigger t WHERE NOT t.tgisinternal
  UNION ALL
  SELECT 'server ' || s.srvname || ' ' || coalesce(array_to_string(s.srvoptions, ','), '')
    FROM pg_foreign_server s) s(x)});
}

# 8: a cutover that fails after it installed, in the sibling of another
# migrated service (peer), the ends of the references between the two
# services again, to reach its own sibling; the cancel puts the peer's
# sibling back as it was, ends reaching the source
sub case_peer
{
	my $svc  = 'pair';
	my $peer = 'peer';

	make_service($svc);
	query(
		'postgres', qq{
CREATE TABLE ${peer}_main (id integer PRIMARY KEY);
INSERT INTO ${peer}_main SELECT generate_series(1, 20);
CREATE TABLE ${peer}_note (id integer PRIMARY KEY, big_id bigint NOT NULL REFERENCES ${svc}_big (id));
INSERT INTO ${peer}_note SELECT g, g * 3 FROM generate_series(1, 20) g;
ALTER TABLE ${svc}_small ADD COLUMN peer_id integer REFERENCES ${peer}_main (id);
UPDATE ${svc}_small SET peer_id = 1 + id % 20;
SELECT splitdb_add_service('$peer');
SELECT splitdb_assign('$peer', '${peer}_main', '${peer}_note');
SET statement_timeout = '120s';
SELECT splitdb_migrate('$peer', wait => true);
});
	is(job($peer, 'state'), 'done', "$peer: migrated first");
	my $before      = snapshot($svc);
	my $peer_before = peer_state($peer);
	like(
		$peer_before,
		qr/end \d+ c ${peer}_note -> source splitdb_source /,
		"$peer: its sibling checks ${peer}_note against the source");

	my $seq = hold_cutover($svc) or return;
	like(
		peer_state($peer),
		qr/end \d+ c ${peer}_note -> $svc splitdb_$svc /,
		"$svc: the held cutover installed the peer's ends again, reaching the sibling of $svc");

	my $cancel = cancel_start($svc);
	poll_until(\&no_worker, undef, "the worker of $svc to stop");
	release($seq);
	cancel_result($cancel, $svc);
	is(peer_state($peer), $peer_before,
		"$peer: after the cancel its sibling holds what it held before: ends, triggers, servers, mappings, secrets"
	);
	is( query(
			'postgres', "SELECT count(*) FROM splitdb.artifact a JOIN splitdb.job j USING (job_id)
			  WHERE j.service = '$svc' AND a.service = '$peer'"),
		'1',
		"$svc: the registry recorded the server the cutover made in the peer's sibling");

	# the peer's sibling checks against the source again
	query($peer, "INSERT INTO public.${peer}_note VALUES (100, 5)");
	my ($ret, $out, $err) =
	  $node->psql($peer, "INSERT INTO public.${peer}_note VALUES (101, 999999)");
	like($err, qr/violates foreign key constraint "${peer}_note_big_id_fkey"/,
		"$peer: a key missing in the source is refused in the peer's sibling");
	query($peer, "DELETE FROM public.${peer}_note WHERE id = 100");

	check_cancelled($svc, $before, 'cutting_over');
	return;
}

# 6: an immediate stop of the server during a cancel, then one cancel.
# $svc 'term': the worker was terminated (57P01) before the cancel began
sub case_stop
{
	my ($svc) = @_;
	my $before = make_service($svc);
	my $asleep = qq{SELECT EXISTS (SELECT FROM pg_stat_activity WHERE datname = current_database()
		AND application_name = 'splitdb' AND wait_event = 'PgSleep')};

	# held while indexing, in a way that outlives a restart
	query($svc, "INSERT INTO faults.armed VALUES ('sleep CREATE INDEX')");
	query('postgres', "SELECT splitdb_migrate('$svc', mode => 'offline')");
	poll_until(sub { query($svc, $asleep) eq 't' }, undef, "a CREATE INDEX of $svc to sleep");
	my $plain = hold($svc, "SELECT FROM public.${svc}_zplain LIMIT 0");
	if ($svc eq 'term')
	{
		query('postgres',
			"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'splitdb worker'");
		poll_until(\&no_worker, undef, "the worker of $svc to exit");
		is(job($svc, 'state') . ' ' . job($svc, 'last_sqlstate'),
			'failed 57P01', "$svc: terminated, the job is failed with 57P01, which the launcher resumes");
	}

	my $cancel = cancel_start($svc);
	wait_sibling_waiter($svc, "public.${svc}_zplain", "the cancel's drop of ${svc}_zplain", 'DROP');
	ok(no_worker(), "$svc: the cancel stopped the worker before the server stopped");
	my $offset = -s $node->logfile;
	$node->stop('immediate');
	eval { $cancel->quit; $plain->quit; };
	$node->start;

	# the worker recorded its stop by the cancel, committed before the
	# crash: the launcher leaves the job failed, and nothing runs it
	$node->wait_for_log(qr/the launcher looked for interrupted jobs in (\d+) of \1 databases/, $offset);
	is(job($svc, 'state') . ' ' . job($svc, 'last_sqlstate'),
		'failed 57014', "$svc: after the restart the job stays failed, stopped by the cancel (57014)");
	like(
		job($svc, 'last_error'),
		$svc eq 'term'
		? qr/^splitdb_cancel\(\) began after the worker was gone \(the worker \(pid \d+\) was terminated before the job ended\)$/
		: qr/^the worker \(pid \d+\) was stopped by splitdb_cancel\(\)$/,
		"$svc: its error says the cancel stopped it");
	ok(no_worker() && query($svc, $asleep) eq 'f', "$svc: the launcher did not resume it");
	unlike(slurp_file($node->logfile, $offset), qr/resuming job \d+ of service "$svc"/,
		"$svc: the log has no resumption of it");
	query('postgres', "SELECT splitdb_cancel('$svc')");
	check_cancelled($svc, $before, 'indexing');
	return;
}

# 7: a finalize killed while it drops the archive, then one cut short by an
# immediate stop, then one that ends it
sub case_finalize
{
	my $svc     = 'stop';
	my $archive = "splitdb_archive.${svc}_big";
	my $rows    = query('postgres', "SELECT count(*) FROM public.${svc}_big");

	is(job($svc, 'state'), 'done', "$svc: the job to finalize is done");
	ok(query('postgres', "SELECT to_regclass('$archive') IS NOT NULL") eq 't',
		"$svc: its archive is there");

	# held at the archive's drop by a reader of the archive
	for my $how ('kill', 'stop')
	{
		my $reader = hold('postgres', "SELECT FROM $archive LIMIT 0");
		my $bg = $node->background_psql('postgres');
		$bg->query_until(qr/finalize sent/,
			"\\echo finalize sent\nSELECT splitdb_finalize('$svc');\n");
		$node->poll_query_until('postgres',
			"SELECT EXISTS (SELECT FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
			  . " AND query LIKE 'SELECT splitdb_finalize(%')")
		  or die 'the finalize did not wait';
		if ($how eq 'kill')
		{
			query('postgres',
				"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'SELECT splitdb_finalize(%'");
			$node->poll_query_until('postgres',
				"SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE query LIKE 'SELECT splitdb_finalize(%')")
			  or die 'the finalize did not exit';
			eval { $bg->quit; };
			release($reader);
		}
		else
		{
			$node->stop('immediate');
			eval { $bg->quit; $reader->quit; };
			$node->start;
		}
		is(job($svc, 'state'), 'done', "$svc: a finalize cut short ($how) leaves the job done");
		ok(query('postgres', "SELECT to_regclass('$archive') IS NOT NULL") eq 't',
			"$svc: and its archive");
	}

	query('postgres', "SELECT splitdb_finalize('$svc')");
	is(job($svc, 'state'), 'finalized', "$svc: the next finalize ends it");
	ok(query('postgres', "SELECT to_regclass('$archive') IS NULL") eq 't', "$svc: the archive is gone");
	is(query('postgres', "SELECT count(*) FROM public.${svc}_big"), $rows,
		"$svc: the shim still reads every row in the sibling");
	my ($ret, $out, $err) = $node->psql('postgres', "SELECT splitdb_finalize('$svc')");
	like($err, qr/already finalized/, "$svc: a finalize after that is refused");
	return;
}

case_gate('prep', 'preparing', 'CREATE TABLE');
case_gate('copy', 'copying',   'COPY');
case_gate('idx',  'indexing',  'CREATE INDEX');
case_verifying();
case_cutting_over();
case_peer();
case_stop('term');
case_stop('stop');
case_finalize();

done_testing();
